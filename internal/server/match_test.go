package server

import (
	"net/netip"
	"testing"

	"github.com/wsgate/wsgate/internal/accesslog"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/limit"
)

func loadConf(t *testing.T, src string) *config.Config {
	t.Helper()
	cfg, err := config.LoadBytes("/tmp/test.conf", []byte(src), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestFindLocation checks nginx's documented matching order with the
// example of its location docs, plus nesting and ^~.
func TestFindLocation(t *testing.T) {
	cfg := loadConf(t, `http { server {
        location = / { return 200 A; }
        location / { return 200 B; }
        location /documents/ { return 200 C; }
        location ^~ /images/ { return 200 D; }
        location ~* \.(gif|jpg|jpeg)$ { return 200 E; }
        location /api/ {
            location ~ ^/api/v(\d+)/ { return 200 F; }
            location /api/admin/ { return 200 G; }
        }
        location ~ ^/api/x { return 200 H; }
        location = /exact { return 200 I; }
    } }`)
	root := cfg.HTTP.Servers[0].Locations
	tests := []struct{ path, want, cap1 string }{
		{"/", "A", ""},
		{"/index.html", "B", ""},
		{"/documents/document.html", "C", ""},
		{"/images/1.gif", "D", ""},
		{"/documents/1.jpg", "E", ""},
		{"/api/v2/users", "F", "2"},
		{"/api/admin/x", "G", ""},
		{"/api/admin/v1/", "G", ""},
		{"/api/x", "H", ""},
		{"/api/other", "api-prefix", ""}, // the /api/ block itself, which has no return
		{"/exact", "I", ""},
		{"/exactly", "B", ""},
	}
	for _, tt := range tests {
		loc, caps, err := findLocation(root, tt.path)
		if err != nil || loc == nil {
			t.Errorf("%s: no location", tt.path)
			continue
		}
		got := ""
		if len(loc.Rewrite) > 0 && loc.Rewrite[0].Text != nil {
			got = loc.Rewrite[0].Text.Raw()
		} else if loc.Path == "/api/" {
			got = "api-prefix"
		}
		if got != tt.want {
			t.Errorf("%s: matched %s %q (%s), want %s", tt.path, loc.Modifier, loc.Path, got, tt.want)
		}
		if tt.cap1 != "" && (len(caps) < 2 || caps[1] != tt.cap1) {
			t.Errorf("%s: captures %v", tt.path, caps)
		}
	}
}

func TestServerSelection(t *testing.T) {
	cfg := loadConf(t, `http {
        access_log off;
        server { listen 127.0.0.1:1; server_name first; return 200 first; }
        server { listen 127.0.0.1:1; server_name www.example.com example.com; return 200 exact; }
        server { listen 127.0.0.1:1; server_name *.example.com; return 200 wild; }
        server { listen 127.0.0.1:1; server_name *.b.example.com; return 200 longer; }
        server { listen 127.0.0.1:1; server_name mail.*; return 200 suffix; }
        server { listen 127.0.0.1:1 default_server; server_name ~^(?P<n>\w+)\.test$; return 200 regex; }
        server { listen 127.0.0.1:2; return 200 other; }
        server { listen 2; server_name wildcard-addr; return 200 any; }
    }`)
	rt, err := buildGeneration(New(nil), cfg, nil, nil, limit.NewRegistry(nil).Begin(), &accesslog.Files{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		local, host, want string
	}{
		{"127.0.0.1:1", "www.example.com", "exact"},
		{"127.0.0.1:1", "a.example.com", "wild"},
		{"127.0.0.1:1", "a.b.example.com", "longer"},
		{"127.0.0.1:1", "mail.foo.org", "suffix"},
		{"127.0.0.1:1", "abc.test", "regex"},
		{"127.0.0.1:1", "unknown", "regex"}, // default_server
		{"127.0.0.1:1", "", "regex"},
		{"127.0.0.1:2", "whatever", "other"},
		{"127.0.0.2:2", "wildcard-addr", "any"}, // through the wildcard socket
	}
	for _, tt := range tests {
		v := rt.vhostsFor(netip.MustParseAddrPort(tt.local))
		if v == nil {
			t.Errorf("%s: no vhosts", tt.local)
			continue
		}
		srv, _ := v.find(tt.host)
		if got := srv.Loc.Rewrite[0].Text.Raw(); got != tt.want {
			t.Errorf("%s %q: %s, want %s", tt.local, tt.host, got, tt.want)
		}
	}
	// 127.0.0.1:2 and 0.0.0.0:2 are both configured: only the wildcard is bound.
	binds := map[string]bool{}
	for _, b := range rt.binds {
		binds[b.Addr] = true
	}
	if !binds["0.0.0.0:2"] || binds["127.0.0.1:2"] || !binds["127.0.0.1:1"] {
		t.Errorf("binds %v", binds)
	}
}
