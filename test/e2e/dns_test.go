package e2e

import (
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/internal/resolver/dnstest"
)

// The DNS tests run a real DNS server on loopback (miekg/dns, UDP and
// TCP) whose records each test changes while wsgate runs.

// dnsConf is a gate whose upstream "pool" has the body ups; /ws proxies
// WebSockets to it, / plain HTTP, both with scheme (http or https) and
// the extra location settings loc.
func dnsConf(port int, ups, scheme, loc string) string {
	return fmt.Sprintf(`pid {{DIR}}/logs/wsgate.pid;
error_log {{DIR}}/error.log info;
events { worker_connections 256; }
http {
    access_log off;
    upstream pool {
%s
    }
    server {
        listen 127.0.0.1:%d;
        location /ws {
            proxy_pass %[3]s://pool;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
%[4]s
        }
        location / {
            proxy_pass %[3]s://pool;
%[4]s
        }
    }
}
`, ups, port, scheme, loc)
}

// backendOf asks url and returns the X-Backend of a 200, "" otherwise.
func backendOf(url string) string {
	c := &http.Client{Timeout: slow(5 * time.Second), Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 {
		return ""
	}
	return resp.Header.Get("X-Backend")
}

// allFrom checks that n requests in a row reach backend name.
func allFrom(t *testing.T, url, name string, n int) {
	t.Helper()
	for i := range n {
		if got := backendOf(url); got != name {
			t.Fatalf("request %d went to %q, want %q", i, got, name)
		}
	}
}

// sharedPort is a port free on both 127.0.0.2 and 127.0.0.3, for two
// backends that one name:port resolves to in turn.
func sharedPort(t *testing.T) int {
	for range 50 {
		p := freePort(t)
		ok := true
		for _, ip := range []string{"127.0.0.2", "127.0.0.3"} {
			ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(p)))
			if err != nil {
				ok = false
				break
			}
			ln.Close()
		}
		if ok {
			return p
		}
	}
	t.Fatal("no port free on 127.0.0.2 and 127.0.0.3")
	return 0
}

// TestDNSResolveFollowsRecords: `server NAME resolve` takes the addresses
// DNS gives and follows them without a reload; a WebSocket on an address
// that left the answer stays open and echoes, across a reload too, while
// new traffic goes to the new address.
func TestDNSResolveFollowsRecords(t *testing.T) {
	ns := dnstest.Start(t)
	p := sharedPort(t)
	a := startUBackend(t, "a", fmt.Sprintf("127.0.0.2:%d", p), false)
	b := startUBackend(t, "b", fmt.Sprintf("127.0.0.3:%d", p), false)
	ns.SetHost("app.test", "127.0.0.2")
	port := freePort(t)
	conf := dnsConf(port, fmt.Sprintf("zone pool 64k;\nresolver %s ipv6=off;\nresolver_timeout 2s;\nserver app.test:%d resolve;", ns.Addr, p), "http", "")
	g := startGate(t, conf)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	waitFor(t, 10*time.Second, "the first resolution", func() bool { return backendOf(url) == "a" })

	ws, resp := dial(t, fmt.Sprintf("ws://127.0.0.1:%d/ws", port), nil)
	if resp.Header.Get("X-Backend") != "a" {
		t.Fatalf("WebSocket went to %q", resp.Header.Get("X-Backend"))
	}
	echo(t, ws, "before")

	ns.SetHost("app.test", "127.0.0.3")
	waitFor(t, 10*time.Second, "traffic to move to b", func() bool { return backendOf(url) == "b" })
	allFrom(t, url, "b", 5)
	echo(t, ws, "after the change")
	if a.open.Load() != 1 {
		t.Fatalf("a has %d open WebSockets, want 1", a.open.Load())
	}

	if !g.reload(t, conf) {
		t.Fatalf("reload failed:\n%s", g.errorLog())
	}
	allFrom(t, url, "b", 3) // the reload serves the resolved address at once
	echo(t, ws, "after a reload")

	ns.SetHost("app.test", "127.0.0.2", "127.0.0.3")
	seen := map[string]bool{}
	waitFor(t, 10*time.Second, "both addresses to take traffic", func() bool {
		seen[backendOf(url)] = true
		return seen["a"] && seen["b"]
	})
	ws.Close()
	waitFor(t, 5*time.Second, "the tunnel to end", func() bool { return a.open.Load() == 0 })
	if b.requests.Load() == 0 {
		t.Fatal("b saw no requests")
	}
	if l := g.errorLog(); strings.Contains(l, "could not be resolved") {
		t.Fatalf("unexpected resolution failure:\n%s", l)
	}
}

// TestDNSResolverDown: when the DNS server stops answering, the error log
// says so once and the last known addresses keep serving; when it
// answers again, new records take effect.
func TestDNSResolverDown(t *testing.T) {
	ns := dnstest.Start(t)
	p := sharedPort(t)
	startUBackend(t, "a", fmt.Sprintf("127.0.0.2:%d", p), false)
	startUBackend(t, "b", fmt.Sprintf("127.0.0.3:%d", p), false)
	ns.SetHost("app.test", "127.0.0.2")
	port := freePort(t)
	g := startGate(t, dnsConf(port, fmt.Sprintf("zone pool 64k;\nresolver %s ipv6=off;\nresolver_timeout 1s;\nserver app.test:%d resolve;", ns.Addr, p), "http", ""))
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	waitFor(t, 10*time.Second, "the first resolution", func() bool { return backendOf(url) == "a" })

	ns.SetSilent(true)
	want := fmt.Sprintf(`upstream "pool" server "app.test:%d": app.test could not be resolved (110: Operation timed out); its 1 last known addresses stay in use`, p)
	waitFor(t, 15*time.Second, "the error log line", func() bool { return strings.Contains(g.errorLog(), want) })
	allFrom(t, url, "a", 5)
	ns.SetHost("app.test", "127.0.0.3")
	allFrom(t, url, "a", 2) // not asked yet: the server is still silent

	ns.SetSilent(false)
	waitFor(t, 15*time.Second, "traffic to move to b", func() bool { return backendOf(url) == "b" })
	l := g.errorLog()
	if strings.Count(l, "could not be resolved") != 1 || !strings.Contains(l, `upstream "pool" server "app.test:`+strconv.Itoa(p)+`" resolves again: 1 addresses`) {
		t.Fatalf("error log:\n%s", l)
	}
}

// TestDNSServiceSRV: service=http asks _http._tcp.NAME for SRV records:
// their ports and weights make the peers, the best priority the primaries
// and the rest backups, and a changed answer moves traffic.
func TestDNSServiceSRV(t *testing.T) {
	ns := dnstest.Start(t)
	a, b, c := startBackend(t, "a"), startBackend(t, "b"), startBackend(t, "c")
	portOf := func(addr string) uint16 {
		_, p, _ := net.SplitHostPort(addr)
		n, _ := strconv.Atoi(p)
		return uint16(n)
	}
	ns.SetHost("a.test", "127.0.0.1")
	ns.SetHost("b.test", "127.0.0.1")
	ns.SetHost("c.test", "127.0.0.1")
	ns.SetSRV("_http._tcp.app.test",
		dnstest.SRV{Target: "a.test", Port: portOf(a.addr), Priority: 10, Weight: 3},
		dnstest.SRV{Target: "b.test", Port: portOf(b.addr), Priority: 10, Weight: 1},
		dnstest.SRV{Target: "c.test", Port: portOf(c.addr), Priority: 20, Weight: 1})
	port := freePort(t)
	startGate(t, dnsConf(port, fmt.Sprintf("zone pool 64k;\nresolver %s ipv6=off;\nserver app.test service=http resolve;", ns.Addr), "http", ""))
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	waitFor(t, 10*time.Second, "the first resolution", func() bool { return backendOf(url) != "" })
	got := map[string]int{}
	for range 8 {
		got[backendOf(url)]++
	}
	if got["a"] != 6 || got["b"] != 2 {
		t.Fatalf("8 requests went %v, want a=6 b=2 (SRV weights 3:1, c a backup)", got)
	}
	ns.SetSRV("_http._tcp.app.test", dnstest.SRV{Target: "c.test", Port: portOf(c.addr), Priority: 10, Weight: 1})
	waitFor(t, 10*time.Second, "traffic to move to c", func() bool { return backendOf(url) == "c" })
	allFrom(t, url, "c", 3)
}

// startTLSBackendAt is startTLSBackend on a chosen address.
func startTLSBackendAt(t *testing.T, p *tlsPKI, name, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewUnstartedServer(backendHandler(name))
	s.Listener.Close()
	s.Listener = ln
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.TLS = &tls.Config{Certificates: []tls.Certificate{p.serverCert}}
	s.StartTLS()
	t.Cleanup(s.Close)
}

// TestDNSWssResolveUpstream: a wss:// client through a `resolve` upstream
// of TLS backends (verified, with SNI from proxy_ssl_name): messages flow
// on a WebSocket while its backend's record is replaced, new WebSockets
// go to the new address.
func TestDNSWssResolveUpstream(t *testing.T) {
	pki := makeTLSPKI(t)
	ns := dnstest.Start(t)
	p := sharedPort(t)
	startTLSBackendAt(t, pki, "a", fmt.Sprintf("127.0.0.2:%d", p))
	startTLSBackendAt(t, pki, "b", fmt.Sprintf("127.0.0.3:%d", p))
	ns.SetHost("app.test", "127.0.0.2")
	port := freePort(t)
	loc := fmt.Sprintf("proxy_ssl_verify on; proxy_ssl_trusted_certificate %s; proxy_ssl_name other.test; proxy_ssl_server_name on;", pki.path("ca.pem"))
	startGate(t, dnsConf(port, fmt.Sprintf("zone pool 64k;\nresolver %s ipv6=off;\nserver app.test:%d resolve;", ns.Addr, p), "https", loc))
	addr := "127.0.0.1:" + strconv.Itoa(port)
	bodyOf := func() string {
		st, body, _ := bget(t, addr, "/x")
		if st != 200 {
			return ""
		}
		return body
	}
	waitFor(t, 10*time.Second, "the first resolution", func() bool { return strings.HasPrefix(bodyOf(), "a ") })
	if body := bodyOf(); !strings.Contains(body, `sni="other.test"`) {
		t.Fatalf("backend saw %q, want SNI other.test", body)
	}
	ws, resp := dial(t, "ws://"+addr+"/ws", nil)
	if resp.Header.Get("X-Backend") != "a" {
		t.Fatalf("WebSocket went to %q", resp.Header.Get("X-Backend"))
	}
	var sent atomic.Int64
	stop, failed := make(chan struct{}), make(chan error, 1)
	go func() { // messages flow throughout the change
		for i := 0; ; i++ {
			select {
			case <-stop:
				failed <- nil
				return
			default:
			}
			msg := fmt.Sprintf("m%d", i)
			ws.SetWriteDeadline(time.Now().Add(slow(5 * time.Second)))
			ws.SetReadDeadline(time.Now().Add(slow(5 * time.Second)))
			if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
				failed <- err
				return
			}
			if _, got, err := ws.ReadMessage(); err != nil || string(got) != msg {
				failed <- fmt.Errorf("echo of %s: %q %v", msg, got, err)
				return
			}
			sent.Add(1)
			time.Sleep(10 * time.Millisecond)
		}
	}()
	ns.SetHost("app.test", "127.0.0.3")
	waitFor(t, 10*time.Second, "traffic to move to b", func() bool { return strings.HasPrefix(bodyOf(), "b ") })
	ws2, resp2 := dial(t, "ws://"+addr+"/ws", nil)
	if resp2.Header.Get("X-Backend") != "b" {
		t.Fatalf("a new WebSocket went to %q", resp2.Header.Get("X-Backend"))
	}
	echo(t, ws2, "new")
	n := sent.Load()
	waitFor(t, 5*time.Second, "more messages on the old WebSocket", func() bool { return sent.Load() > n+5 })
	close(stop)
	if err := <-failed; err != nil {
		t.Fatalf("the WebSocket to the departed address failed: %v", err)
	}
}

// TestDNSProxyPassVariables: proxy_pass with variables resolves the host
// through the resolver at request time (records changing take effect
// after their TTL), uses an upstream block a name matches, takes an IP
// address as is, and without a resolver answers 502 with nginx's log
// line; WebSockets pass through it.
func TestDNSProxyPassVariables(t *testing.T) {
	ns := dnstest.Start(t)
	p := sharedPort(t)
	a := startUBackend(t, "a", fmt.Sprintf("127.0.0.2:%d", p), false)
	startUBackend(t, "b", fmt.Sprintf("127.0.0.3:%d", p), false)
	c := startBackend(t, "c")
	tlsBe := startTLSBackend(t, makeTLSPKI(t), "tls")
	ns.SetHost("app.test", "127.0.0.2")
	port, port2 := freePort(t), freePort(t)
	conf := fmt.Sprintf(`pid {{DIR}}/logs/wsgate.pid;
error_log {{DIR}}/error.log info;
events { worker_connections 256; }
http {
    access_log off;
    upstream pool { server %[1]s; }
    server {
        listen 127.0.0.1:%[2]d;
        resolver %[3]s ipv6=off;
        location /v/ {
            proxy_pass http://$http_x_target:%[4]d;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }
        location /name/ { proxy_pass http://$http_x_target; }
        location /uri/ { proxy_pass http://$http_x_target:%[4]d/fixed$is_args$args; }
        location /s/ { proxy_pass $http_x_scheme://$http_x_target; }
    }
    server {
        listen 127.0.0.1:%[5]d;
        location /v/ { proxy_pass http://$http_x_target:%[4]d; }
    }
}
`, c.addr, port, ns.Addr, p, port2)
	g := startGate(t, conf)
	get := func(port int, path, target string) (int, string, string) {
		st, head, body := rawRequest(t, fmt.Sprintf("127.0.0.1:%d", port), "GET "+path+" HTTP/1.1\r\nHost: front.test\r\nX-Target: "+target+"\r\nConnection: close\r\n\r\n")
		return st, parseHead(head).Get("X-Backend"), body
	}
	if st, be, body := get(port, "/v/x?y=1", "app.test"); st != 200 || be != "a" || body != "a GET /v/x?y=1" {
		t.Fatalf("resolved name: %d %q %q", st, be, body)
	}
	if st, _, body := get(port, "/uri/x?y=1", "app.test"); st != 200 || body != "a GET /fixed?y=1" {
		t.Fatalf("URI part: %d %q", st, body)
	}
	if st, _, body := get(port, "/name/x", "POOL"); st != 200 || !strings.HasPrefix(body, "c GET /name/x") {
		t.Fatalf("upstream block by name: %d %q", st, body)
	}
	if h := c.lastPlain(); h.Get("Host") != "POOL" {
		t.Fatalf("Host for an upstream block: %q, want the name as evaluated", h.Get("Host"))
	}
	for scheme, want := range map[string]string{"http": "c GET /s/x", "https": "tls sni="} {
		target := map[string]string{"http": c.addr, "https": tlsBe}[scheme]
		st, _, body := rawRequest(t, fmt.Sprintf("127.0.0.1:%d", port), "GET /s/x HTTP/1.1\r\nHost: front.test\r\nX-Scheme: "+scheme+"\r\nX-Target: "+target+"\r\nConnection: close\r\n\r\n")
		if st != 200 || !strings.HasPrefix(body, want) {
			t.Fatalf("scheme from a variable, %s: %d %q", scheme, st, body)
		}
	}
	if st, be, _ := get(port2, "/v/x", "127.0.0.3"); st != 200 || be != "b" {
		t.Fatalf("IP address without a resolver: %d %q", st, be)
	}
	if st, _, _ := get(port2, "/v/x", "app.test"); st != 502 {
		t.Fatalf("no resolver: %d, want 502", st)
	}
	if st, _, _ := get(port, "/v/x", "missing.test"); st != 502 {
		t.Fatalf("unknown name: %d, want 502", st)
	}
	l := g.errorLog()
	for _, want := range []string{"no resolver defined to resolve app.test, client: 127.0.0.1", "missing.test could not be resolved (3: Host not found), client: 127.0.0.1"} {
		if !strings.Contains(l, want) {
			t.Errorf("error log lacks %q:\n%s", want, l)
		}
	}

	ws, resp := dial(t, fmt.Sprintf("ws://127.0.0.1:%d/v/ws", port), http.Header{"X-Target": {"app.test"}})
	if resp.Header.Get("X-Backend") != "a" {
		t.Fatalf("WebSocket went to %q", resp.Header.Get("X-Backend"))
	}
	echo(t, ws, "through a variable")
	ns.SetHost("app.test", "127.0.0.3")
	waitFor(t, 10*time.Second, "the new record after its TTL", func() bool {
		_, be, _ := get(port, "/v/x", "app.test")
		return be == "b"
	})
	echo(t, ws, "still open")
	if !g.reload(t, conf) {
		t.Fatalf("reload failed:\n%s", g.errorLog())
	}
	echo(t, ws, "still open after a reload")
	if a.open.Load() != 1 {
		t.Fatalf("a has %d open WebSockets, want 1", a.open.Load())
	}
}

// TestDNSResolverStatusZone: a resolver's status_zone is reported at
// nginx Plus's /api/9/resolvers/ZONE: the questions and their outcomes.
func TestDNSResolverStatusZone(t *testing.T) {
	ns := dnstest.Start(t)
	be := startBackend(t, "be")
	host, bport, _ := net.SplitHostPort(be.addr)
	ns.SetHost("app.test", host)
	port := freePort(t)
	startGate(t, fmt.Sprintf(`pid {{DIR}}/logs/wsgate.pid;
error_log {{DIR}}/error.log info;
events { worker_connections 256; }
http {
    access_log off;
    resolver %s ipv6=off status_zone=dns;
    server {
        listen 127.0.0.1:%d;
        location /v/ { proxy_pass http://$http_x_target:%s; }
        location /api/ { api; }
    }
}
`, ns.Addr, port, bport))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for target, want := range map[string]int{"app.test": 200, "missing.test": 502} {
		if st, _, _ := rawRequest(t, addr, "GET /v/ HTTP/1.1\r\nHost: x\r\nX-Target: "+target+"\r\nConnection: close\r\n\r\n"); st != want {
			t.Fatalf("%s: %d, want %d", target, st, want)
		}
	}
	st, _, body := rawRequest(t, addr, "GET /api/9/resolvers/dns HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	want := `{"requests":{"addr":0,"name":2,"srv":0},"responses":{"formerr":0,"noerror":1,"notimp":0,"nxdomain":1,"refused":0,"servfail":0,"timedout":0,"unknown":0}}`
	if st != 200 || strings.TrimSpace(body) != want {
		t.Fatalf("resolver zone: %d %s\nwant %s", st, body, want)
	}
	if st, _, body := rawRequest(t, addr, "GET /api/9/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); st != 200 || !strings.Contains(body, `"resolvers"`) {
		t.Fatalf("api root: %d %s", st, body)
	}
	if st, _, _ := rawRequest(t, addr, "GET /api/9/resolvers/nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); st != 404 {
		t.Fatalf("unknown zone: %d, want 404", st)
	}
}
