package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// guideDir holds the guide's fourteen example configs, unchanged; the
// parser's tests read the same copy.
const guideDir = "../conf/testdata/seed"

// resolveExamples maps the guide's example host names to loopback so that
// its configs load unchanged.
func resolveExamples(host string) ([]netip.Addr, error) {
	if strings.HasSuffix(host, ".example.com") || host == "backend" || host == "websocket_backend" || host == "localhost" {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}
	return nil, os.ErrNotExist
}

func load(t *testing.T, src string) (*Config, error) {
	t.Helper()
	return LoadBytes(filepath.Join(t.TempDir(), "wsgate.conf"), []byte(src), Options{Resolve: resolveExamples})
}

// TestSeedConfigs: every config of the guide loads.
func TestSeedConfigs(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(guideDir, "*.conf"))
	if err != nil || len(files) != 14 {
		t.Fatalf("found %d guide configs in %s, want 14 (%v)", len(files), guideDir, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := Load(f, Options{Resolve: resolveExamples})
			if err != nil {
				t.Fatal(err)
			}
			if cfg.HTTP == nil {
				t.Fatal("no http block")
			}
		})
	}
}

func TestQuickStart(t *testing.T) {
	cfg, err := Load(filepath.Join(guideDir, "01-quick-start.conf"), Options{Resolve: resolveExamples})
	if err != nil {
		t.Fatal(err)
	}
	srv := cfg.HTTP.Servers[0]
	if srv.Listens[0].Addr != "0.0.0.0:80" || srv.Names[0].Name != "ws.example.com" {
		t.Fatalf("server %+v %+v", srv.Listens, srv.Names)
	}
	loc := srv.Locations.Prefixes[0]
	c := loc.Conf
	if c.Proxy == nil || c.Proxy.Upstream.Name != "websocket_backend" || c.Proxy.Upstream.Servers[0].Addr != "127.0.0.1:8080" {
		t.Fatalf("proxy %+v", c.Proxy)
	}
	if c.ProxyHTTPVersion != "1.1" || len(c.ProxyHeaders) != 6 || c.ReadTimeout != time.Minute {
		t.Fatalf("conf %+v", c)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings: %v", cfg.Warnings)
	}
}

func TestInheritance(t *testing.T) {
	cfg, err := load(t, `http {
    proxy_read_timeout 7d;
    add_header X-A a;
    proxy_set_header X-H h;
    server {
        listen 127.0.0.1:1;
        add_header X-S s;
        location /a { proxy_pass http://127.0.0.1:2; }
        location /b {
            add_header X-B b always;
            proxy_set_header X-L l;
            proxy_read_timeout 5s;
            location /b/c { proxy_pass http://127.0.0.1:2/; }
        }
    }
}`)
	if err != nil {
		t.Fatal(err)
	}
	srv := cfg.HTTP.Servers[0]
	a, b := srv.Locations.Prefixes[0], srv.Locations.Prefixes[1]
	bc := b.Prefixes[0]
	if a.Conf.ReadTimeout != 7*24*time.Hour || b.Conf.ReadTimeout != 5*time.Second || bc.Conf.ReadTimeout != 5*time.Second {
		t.Errorf("timeouts %v %v %v", a.Conf.ReadTimeout, b.Conf.ReadTimeout, bc.Conf.ReadTimeout)
	}
	if len(a.Conf.AddHeaders) != 1 || a.Conf.AddHeaders[0].Name != "X-S" {
		t.Errorf("a add_header %+v", a.Conf.AddHeaders)
	}
	if len(bc.Conf.AddHeaders) != 1 || bc.Conf.AddHeaders[0].Name != "X-B" || !bc.Conf.AddHeaders[0].Always {
		t.Errorf("b/c add_header %+v", bc.Conf.AddHeaders)
	}
	if a.Conf.ProxyHeaders[0].Name != "X-H" || bc.Conf.ProxyHeaders[0].Name != "X-L" {
		t.Errorf("proxy headers %+v %+v", a.Conf.ProxyHeaders, bc.Conf.ProxyHeaders)
	}
	if !bc.Conf.Proxy.HasURI || bc.Conf.Proxy.URI != "/" || a.Conf.Proxy.HasURI {
		t.Errorf("proxy uri %+v %+v", bc.Conf.Proxy, a.Conf.Proxy)
	}
	if len(cfg.Warnings) != 2 {
		t.Errorf("want 2 warnings for locations without upgrade headers, got %v", cfg.Warnings)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{"http { server { location / { proxy_pas http://x; } } }", `unknown directive "proxy_pas", did you mean "proxy_pass"? in `},
		{"http {\n listen 80;\n}", `"listen" directive is not allowed here in `},
		{"worker_processes 1 2;", `invalid number of arguments in "worker_processes" directive in `},
		{"worker_shutdown_timeout soon;", `"worker_shutdown_timeout" directive invalid value in `},
		{"worker_shutdown_timeout 1s; worker_shutdown_timeout 2s;", `"worker_shutdown_timeout" directive is duplicate in `},
		{"http { worker_shutdown_timeout 1s; }", `"worker_shutdown_timeout" directive is not allowed here in `},
		{"http { server { location / { proxy_read_timeout 5x; } } }", `"proxy_read_timeout" directive invalid value`},
		{"http { server { location / { proxy_pass https://127.0.0.1:1; proxy_ssl_protocols SSLv3 TLSv1.2; } } }", `Go's TLS does not implement SSLv3`},
		{"http { server { location / { proxy_pass https://127.0.0.1:1; proxy_ssl_verify on; } } }", `no "proxy_ssl_trusted_certificate" for "proxy_ssl_verify"`},
		{"http { server { location / { proxy_ssl_verify maybe; } } }", `it must be "on" or "off"`},
		{"http { server { listen unix:run/x.sock; } }", `needs an absolute path`},
		{"http { server { listen unix:/run/x.sock ssl; } }", `on a unix domain socket in "listen" are not supported`},
		{"http { server { listen unix:/run/x.sock reuseport; } }", `do not apply to a unix domain socket`},
		{"http { server { listen unix:/run/x.sock; listen unix:/run/x.sock; } }", `a duplicate listen unix:/run/x.sock`},
		{"http { server { location / { proxy_pass https://127.0.0.1:1; proxy_ssl_protocols TLSv1.3; proxy_ssl_conf_command MaxProtocol TLSv1.2; } } }", `proxy_ssl_conf_command MaxProtocol TLSv1.2 leaves no protocol enabled with proxy_ssl_protocols`},
		{"http { server { location / { proxy_pass http://unix:; } } }", `no path in the unix domain socket`},
		{"http { server { listen 1 ssl; } }", `no "ssl_certificate" is defined for the "listen ... ssl" directive in `},
		{"http { upstream u { sticky learn create=$a lookup=$b zone=s:1m; server 127.0.0.1:1; } }", `unknown "a" variable`},
		{"http { upstream u { sticky other x; server 127.0.0.1:1; } }", `invalid sticky type "other"`},
		{"http { upstream u { sticky cookie srv samesite=odd; server 127.0.0.1:1; } }", `invalid parameter "samesite=odd"`},
		{"http { upstream u { ip_hash; server 127.0.0.1:1 backup; } }", `balancing method does not support parameter "backup"`},
		{"http { upstream u { ip_hash; least_conn; server 127.0.0.1:1; } }", `load balancing method redefined`},
		{"http { upstream u { health_check interval=0; server 127.0.0.1:1; } }", `invalid parameter "interval=0"`},
		{"http { server { location / { proxy_pass http://u; } } }", `host not found in upstream "u"`},
		{"http { server { location ~ ^/x { proxy_pass http://127.0.0.1:1/y; } } }", `cannot have URI part`},
		{"http { server { listen 1 default_server; } server { listen 1 default_server; } }", `a duplicate default server for 0.0.0.0:1`},
		{"http { server { return 999x; } }", `invalid return code`},
		{"http { server { set $a $nope; } }", `unknown "nope" variable`},
		{"http { upstream u { } }", `no servers are inside upstream`},
		{"http { server { location / { proxy_http_version 2; } } }", `invalid value "2"`},
		{"events { worker_connections x; }", `invalid number "x"`},
		{"http { server { location / { proxy_read_timeout 1s; proxy_read_timeout 2s; } } }", `"proxy_read_timeout" directive is duplicate`},
		{"http { map $a $b { default 1; default 2; } }", `duplicate default map parameter`},
		{"http { server { if ($a = ) { return 200; } } }", `invalid condition`},
	}
	for _, tt := range tests {
		_, err := load(t, tt.src)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want %q", tt.src, err, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), "wsgate.conf:") {
			t.Errorf("%q: error %q has no file:line", tt.src, err)
		}
		if strings.Contains(err.Error(), "issue") || strings.Contains(err.Error(), " yet") {
			t.Errorf("%q: error %q speaks of plans, not of the config", tt.src, err)
		}
	}
}

func TestWorkerShutdownTimeout(t *testing.T) {
	for src, want := range map[string]time.Duration{"": 0, "worker_shutdown_timeout 30s;": 30 * time.Second, "worker_shutdown_timeout 1500ms;": 1500 * time.Millisecond} {
		cfg, err := load(t, src+" http { }")
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		if cfg.WorkerShutdownTimeout != want {
			t.Errorf("%q: %v, want %v", src, cfg.WorkerShutdownTimeout, want)
		}
	}
}
