package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestClusterStoreDirective(t *testing.T) {
	cfg, err := load(t, `http {
    cluster_store redis://u:s3cret@127.0.0.1:6379/2 timeout=80ms;
    limit_req_zone $binary_remote_addr zone=r:1m rate=10r/s sync;
    limit_conn_zone $binary_remote_addr zone=c:1m sync;
    server { listen 127.0.0.1:8080; location / { websocket_session_key $arg_user; return 204; } }
}`)
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Cluster
	if c == nil || c.Timeout != 80*time.Millisecond || !cfg.HTTP.ReqZones[0].Sync || !cfg.HTTP.ConnZones[0].Sync {
		t.Fatalf("cluster %+v, zones %+v %+v", c, cfg.HTTP.ReqZones[0], cfg.HTTP.ConnZones[0])
	}
	if s := c.String(); strings.Contains(s, "s3cret") {
		t.Fatalf("String() shows the password: %s", s)
	}
	loc := cfg.HTTP.Servers[0].Locations.Children[0]
	if loc.Conf.Cluster.SessionKey == nil || loc.Conf.Cluster.SessionKey.Raw() != "$arg_user" {
		t.Fatalf("session key %+v", loc.Conf.Cluster.SessionKey)
	}
	for _, tc := range []struct{ conf, want string }{
		{`cluster_store redis://127.0.0.1:1 timeout=0;`, "invalid timeout"},
		{`cluster_store redis://127.0.0.1:1 password=hunter2 pasword=hunter2;`, `invalid parameter "pasword=xxxxx"`},
		{`cluster_store ftp://u:hunter2@127.0.0.1:1;`, "scheme"},
		{`cluster_store redis://127.0.0.1:1; cluster_store redis://127.0.0.1:2;`, "duplicate"},
	} {
		_, err := load(t, "http { "+tc.conf+" }")
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: %v, want %q without the password", tc.conf, err, tc.want)
		}
	}
}

// api write=on needs an access restriction, here or above: allow/deny
// rules that deny someone, auth_basic or auth_request.
func TestAPIWriteNeedsRestriction(t *testing.T) {
	for _, tc := range []struct{ conf, want string }{
		{`location /api { api write=on; }`, "needs an access restriction"},
		{`location /api { allow 127.0.0.1; api write=on; }`, "needs an access restriction"},
		{`location /api { allow 127.0.0.1; deny all; api write=on; }`, ""},
		{`allow 10.0.0.0/8; deny all; location /api { api write=on; }`, ""},
		{`location /api { auth_basic "api"; auth_basic_user_file /etc/htpasswd; api write=on; }`, ""},
		{`auth_basic "api"; location /api { auth_basic_user_file /etc/htpasswd; api write=on; }`, ""},
		{`location /api { auth_basic off; auth_basic_user_file /etc/htpasswd; api write=on; }`, "needs an access restriction"},
		{`location /api { auth_basic "api"; api write=on; }`, "needs an access restriction"},
		{`location /api { auth_request /auth; api write=on; }`, ""},
		{`auth_request /auth; location /api { auth_request off; api write=on; }`, "needs an access restriction"},
		{`location /api { api write=off; }`, ""},
		{`location /api { api write=maybe; }`, "invalid parameter"},
	} {
		_, err := load(t, "http { server { listen 127.0.0.1:8080; "+tc.conf+" } }")
		if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.conf, err, tc.want)
		}
	}
}

func TestSessionKeyWithoutStoreWarns(t *testing.T) {
	cfg, err := load(t, `http { server { listen 127.0.0.1:8080; location / { websocket_session_key $arg_u; return 204; } } }`)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], "without \"cluster_store\"") {
		t.Fatalf("warnings %q", cfg.Warnings)
	}
}

func TestUpstreamStateAndClusterRebalance(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "app.state")
	os.WriteFile(state, []byte("server 127.0.0.1:81 weight=2 max_fails=1 fail_timeout=10s route=a drain;\nserver 127.0.0.1:82 weight=1 max_fails=1 fail_timeout=10s down;\n"), 0o644)
	cfg, err := load(t, `http {
    cluster_rebalance threshold=15% rate=50/s;
    cluster_store redis://127.0.0.1:6379;
    upstream app { zone app 64k; state `+state+`; }
    upstream none { zone none 64k; state `+filepath.Join(dir, "missing.state")+`; }
    server { listen 127.0.0.1:8080; location / { proxy_pass http://app; } }
}`)
	if err != nil {
		t.Fatal(err)
	}
	rb := cfg.HTTP.ClusterRebalance
	if rb == nil || rb.Threshold != 0.15 || rb.Rate != 50 {
		t.Fatalf("cluster_rebalance %+v", rb)
	}
	app, none := cfg.HTTP.Upstreams[0], cfg.HTTP.Upstreams[1]
	if app.Zone != "app" || app.State != state || len(app.Servers) != 2 || len(none.Servers) != 0 {
		t.Fatalf("upstreams %+v %+v", app, none)
	}
	s0, s1 := app.Servers[0], app.Servers[1]
	if s0.Addr != "127.0.0.1:81" || s0.Weight != 2 || !s0.Drain || s0.Route != "a" || !s1.Down || s1.Drain {
		t.Fatalf("servers %+v %+v", s0, s1)
	}
	bad := filepath.Join(dir, "bad.state")
	os.WriteFile(bad, []byte("keepalive 2;\n"), 0o644)
	for _, tc := range []struct{ conf, want string }{
		{`cluster_rebalance;`, `"cluster_rebalance" needs a "cluster_store"`},
		{`cluster_store redis://127.0.0.1:1; cluster_rebalance rate=fast;`, `invalid parameter "rate=fast"`},
		{`upstream u { state ` + state + `; }`, `has "state" but no "zone"`},
		{`upstream u { zone u; server 127.0.0.1:1; state ` + state + `; }`, `"state" directive is incompatible with "server"`},
		{`upstream u { zone u; state ` + state + `; server 127.0.0.1:1; }`, `"state" directive is incompatible with "server"`},
		{`upstream u { zone u; state ` + bad + `; }`, `unexpected "keepalive" in state file`},
		{`upstream u { server 127.0.0.1:1 route=; }`, `invalid parameter "route="`},
	} {
		_, err := load(t, "http { "+tc.conf+" }")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.conf, err, tc.want)
		}
	}
}
