package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/resolver/dnstest"
)

// TestDiffProxyPassVariables: proxy_pass with variables under nginx and
// wsgate, resolving through the same DNS server: a resolved name with and
// without a URI part, an upstream block named by a variable, an IP
// address without a resolver, an unknown name and a missing resolver.
// Clients see the same answers, the backend the same requests and Host
// headers, and both error logs name the same failures.
func TestDiffProxyPassVariables(t *testing.T) {
	ns := dnstest.Start(t)
	be := startBackend(t, "be")
	host, bport, _ := net.SplitHostPort(be.addr)
	ns.SetHost("app.test", host)
	pr := startPair(t, diffConf{HTTP: fmt.Sprintf(`
upstream pool { server %[1]s; }
server {
    listen 127.0.0.1:{{PORT}};
    location /r/ {
        resolver %[2]s;
        resolver_timeout 5s;
        proxy_pass http://$http_x_target:%[3]s;
    }
    location /uri/ {
        resolver %[2]s valid=10s;
        proxy_pass http://$http_x_target:%[3]s/fixed$is_args$args;
    }
    location /name/ { proxy_pass http://$http_x_target; }
    location /ip/ { proxy_pass http://$http_x_target:%[3]s; }
}`, be.addr, ns.Addr, bport)})
	cases := []struct{ path, target string }{
		{"/r/a?b=1", "app.test"},
		{"/r/%41", "APP.test"},
		{"/uri/x?q=2", "app.test"},
		{"/uri/y", "app.test"},
		{"/name/z", "pool"},
		{"/name/y", "POOL"},
		{"/ip/w", host},
		{"/r/u", "missing.test"},
		{"/ip/v", "app.test"},
	}
	for _, c := range cases {
		req := "GET " + c.path + " HTTP/1.1\r\nHost: {{HOST}}\r\nX-Target: " + c.target + "\r\nConnection: close\r\n\r\n"
		pr.compare(t, req)
		// what the backend saw: the request line (in the body compared
		// above) and the Host header
		sendRaw(t, pr.nginx, strings.ReplaceAll(req, "{{HOST}}", pr.nginx))
		ngHost := be.lastPlain().Get("Host")
		sendRaw(t, pr.wsgate, strings.ReplaceAll(req, "{{HOST}}", pr.wsgate))
		if wsHost := be.lastPlain().Get("Host"); wsHost != ngHost {
			t.Errorf("%s with %s: backend saw Host %q from nginx, %q from wsgate", c.path, c.target, ngHost, wsHost)
		}
	}
	for _, want := range []string{"missing.test could not be resolved (3: Host not found)", "no resolver defined to resolve app.test"} {
		if !strings.Contains(pr.ng.errorLog(), want) {
			t.Errorf("nginx's error log lacks %q (the test's premise)", want)
		}
		if gl, _ := os.ReadFile(filepath.Join(pr.gate.dir, "logs", "error.log")); !strings.Contains(string(gl), want) {
			t.Errorf("wsgate's error log lacks %q", want)
		}
	}
}
