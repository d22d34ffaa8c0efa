package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// secConf serves a folder with files a regex location denies, shows
// request variables, redirects, and proxies /raw to a backend.
const secConf = `
error_log {{DIR}}/error.log info;
events { worker_connections 1024; }
http {
    log_format s '$status "$request" $request_uri';
    access_log {{DIR}}/access.log s;
    client_header_timeout 1s;
    server {
        listen %s;
        root {{DIR}}/root;
        location ~ \.secret$ { deny all; }
        location /redir { return 301 https://$host$request_uri; }
        location = /status { stub_status; }
        location /show {
            add_header X-Uri "$uri" always;
            return 200 "uri=[$uri] request_uri=[$request_uri] host=[$host]";
        }
        location /raw {
            proxy_pass http://%s;
            proxy_http_version 1.1;
        }
    }
    server {
        listen %s;
        server_name evil.example;
        location / { return 200 "evil host=[$host] request_uri=[$request_uri]"; }
    }
}
`

// startSec starts wsgate with secConf, a root holding static/x.secret
// and static/a.txt, and backend as /raw's upstream.
func startSec(t *testing.T, backend string) (*gate, string) {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	g := startGate(t, fmt.Sprintf(secConf, addr, backend, addr))
	static := filepath.Join(g.dir, "root", "static")
	if err := os.MkdirAll(static, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"x.secret": "SECRET", "a.txt": "public"} {
		if err := os.WriteFile(filepath.Join(static, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return g, addr
}

// get sends one request with the given request line and Host header.
func get(t *testing.T, addr, line, host string) (int, string, string) {
	t.Helper()
	return rawRequest(t, addr, line+"\r\nHost: "+host+"\r\nConnection: close\r\n\r\n")
}

// TestTrailingSlashDoesNotBypassLocation: a URI that ends in "/" names a
// directory, so a file a regex location denies cannot be fetched by
// adding a slash, an encoded slash, "/." or "//"; the answers are
// nginx's (403 for the file, 404 for the directory forms).
func TestTrailingSlashDoesNotBypassLocation(t *testing.T) {
	_, addr := startSec(t, "127.0.0.1:9")
	for _, tc := range []struct {
		uri  string
		want int
	}{
		{"/static/x.secret", 403},
		{"/static//x.secret", 403},
		{"/static/./x.secret", 403},
		{"/static/x.secre%74", 403},
		{"/static/x.secret/", 404},
		{"/static/x.secret%2f", 404},
		{"/static/x.secret%2F", 404},
		{"/static/x.secret/.", 404},
		{"/static/x.secret//", 404},
		{"/static/x.secret/%2e", 404},
		{"/static/a.txt/", 404},
		{"/static/a.txt", 200},
		{"/static/../static/a.txt", 200},
		{"/static/%2e%2e/static/a.txt", 200},
		{"/../static/a.txt", 400},
		{"/static/%2e%2e/%2e%2e/static/a.txt", 400},
	} {
		st, _, body := get(t, addr, "GET "+tc.uri+" HTTP/1.1", "x")
		if st != tc.want || strings.Contains(body, "SECRET") {
			t.Errorf("GET %s: %d %q, want %d", tc.uri, st, body, tc.want)
		}
	}
}

// TestAbsoluteFormRequest: the host of an absolute-form target is $host
// and picks the server; $request_uri is the path and query; the backend
// receives origin form.
func TestAbsoluteFormRequest(t *testing.T) {
	lines := make(chan string, 4)
	be := rawBackend(t, func(c net.Conn) {
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		lines <- strings.TrimRight(line, "\r\n")
		c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"))
	})
	g, addr := startSec(t, be)

	st, head, _ := get(t, addr, "GET http://127.0.0.1/redir?a=1 HTTP/1.1", "127.0.0.1")
	if want := "Location: https://127.0.0.1/redir?a=1\r\n"; st != 301 || !strings.Contains(head, want) {
		t.Errorf("redirect: %d\n%s\nwant %q", st, head, want)
	}
	st, _, body := get(t, addr, "GET http://Evil.Example:99/show/a?b=1 HTTP/1.1", "127.0.0.1")
	if want := "evil host=[evil.example] request_uri=[/show/a?b=1]"; st != 200 || body != want {
		t.Errorf("server by absolute host: %d %q, want %q", st, body, want)
	}
	// No path is "/": the root folder, which has no index (403, as nginx).
	st, _, body = get(t, addr, "GET http://127.0.0.1 HTTP/1.1", "other")
	if st != 403 {
		t.Errorf("absolute form without a path: %d %q, want 403", st, body)
	}
	st, _, body = get(t, addr, "GET http://127.0.0.1/raw/a?q=1 HTTP/1.1", "127.0.0.1")
	if st != 200 || body != "ok" {
		t.Fatalf("proxied: %d %q", st, body)
	}
	select {
	case line := <-lines:
		if line != "GET /raw/a?q=1 HTTP/1.1" {
			t.Errorf("backend got request line %q, want origin form", line)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("backend got no request")
	}
	// $request keeps the line as sent; $request_uri is origin form.
	waitFor(t, 10*time.Second, "the access log line", func() bool {
		return strings.Contains(readFile(filepath.Join(g.dir, "access.log")), `200 "GET http://127.0.0.1/raw/a?q=1 HTTP/1.1" /raw/a?q=1`)
	})
}

// TestEscapedControlCharsRefused: an escaped NUL (as nginx) or CR/LF
// (where nginx would copy them into $uri) in the path is a 400 before
// any variable holds it; the refusal is logged without the raw bytes.
func TestEscapedControlCharsRefused(t *testing.T) {
	g, addr := startSec(t, "127.0.0.1:9")
	for _, uri := range []string{"/show/a%00b", "/show/a%0d%0aX-Evil:%20y", "/show/a%0ab", "http://127.0.0.1/show/%00"} {
		st, head, body := get(t, addr, "GET "+uri+" HTTP/1.1", "x")
		if st != 400 || strings.Contains(head, "X-Uri") || strings.Contains(head, "X-Evil") || strings.Contains(body, "uri=") {
			t.Errorf("GET %s: %d\n%s%q, want 400 and no X-Uri", uri, st, head, body)
		}
	}
	waitFor(t, 10*time.Second, "the refusals in the error log", func() bool {
		return strings.Count(g.errorLog(), "client sent invalid request") >= 4
	})
	if l := g.errorLog(); strings.ContainsAny(l, "\x00\r") {
		t.Errorf("raw control bytes in the error log:\n%q", l)
	}
}

// TestRefusedRequestsLogged: requests the parser refuses reach the access
// log with their status and what was parsed of them, and the error log
// at info; so does a head that client_header_timeout ends.
func TestRefusedRequestsLogged(t *testing.T) {
	g, addr := startSec(t, "127.0.0.1:9")
	before := stub(t, addr)
	cases := []struct {
		req  string
		st   int
		line string // expected in the access log
	}{
		{"\x01\x02 / HTTP/1.1\r\nHost: x\r\n\r\n", 400, `400 "\x01\x02 / HTTP/1.1" -`},
		{"GET /show/h HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n", 400, `400 "GET /show/h HTTP/1.1" /show/h`},
		{"POST /show/te HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501, `501 "POST /show/te HTTP/1.1" /show/te`},
		{"GET /" + strings.Repeat("a", 9000) + " HTTP/1.1\r\nHost: x\r\n\r\n", 414, `414 "-" -`},
		{"GET /show/a%00b HTTP/1.1\r\nHost: x\r\n\r\n", 400, `400 "GET /show/a%00b HTTP/1.1" /show/a%00b`},
	}
	for _, tc := range cases {
		if st, _, _ := rawRequest(t, addr, tc.req); st != tc.st {
			t.Errorf("%.30q: %d, want %d", tc.req, st, tc.st)
		}
		waitFor(t, 10*time.Second, "access log line "+tc.line, func() bool {
			return strings.Contains(readFile(filepath.Join(g.dir, "access.log")), tc.line+"\n")
		})
	}
	for _, want := range []string{
		`[info] `,
		`client sent invalid request, client: 127.0.0.1, request: "GET /show/a%00b HTTP/1.1"`,
		`client sent too long URI, client: 127.0.0.1`,
	} {
		if !strings.Contains(g.errorLog(), want) {
			t.Errorf("error log lacks %q:\n%s", want, g.errorLog())
		}
	}

	// stub_status counts them as requests, as nginx: the refused ones
	// and the status request itself.
	if after := stub(t, addr); after.requests-before.requests != int64(len(cases))+1 {
		t.Errorf("stub_status requests %d -> %d, want +%d", before.requests, after.requests, len(cases)+1)
	}

	// A head that stops arriving, and a connection that sends nothing:
	// client_header_timeout (1s) closes both.
	slow, idle := dialTCP(t, addr), dialTCP(t, addr)
	slow.Write([]byte("GET /show/slow HTTP/1.1\r\nHost: x\r\n"))
	for _, c := range []net.Conn{slow, idle} {
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		if n, err := c.Read(make([]byte, 1)); err == nil || n != 0 {
			t.Fatalf("read %d, %v; want the connection closed", n, err)
		}
	}
	waitFor(t, 10*time.Second, "the timeouts in the logs", func() bool {
		l := g.errorLog()
		return strings.Contains(l, `[info]`) &&
			strings.Contains(l, `client timed out (110: Connection timed out) while reading client request headers, client: 127.0.0.1, request: "GET /show/slow HTTP/1.1"`) &&
			strings.Contains(l, `client timed out (110: Connection timed out) while waiting for request, client: 127.0.0.1`) &&
			strings.Contains(readFile(filepath.Join(g.dir, "access.log")), `408 "GET /show/slow HTTP/1.1" /show/slow`+"\n")
	})
}

func dialTCP(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestBackendResetLoggedAsBackend: a backend that resets a WebSocket
// tunnel is named as the side that failed in the error log, not the
// client.
func TestBackendResetLoggedAsBackend(t *testing.T) {
	conns := make(chan net.Conn, 1)
	be := rawBackend(t, func(c net.Conn) {
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			c.Close()
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", websocketAccept(req.Header.Get("Sec-WebSocket-Key")))
		conns <- c
	})
	port := freePort(t)
	g := startGate(t, faultConf(port, be, ""))
	c, _ := dial(t, fmt.Sprintf("ws://127.0.0.1:%d/", port), nil)
	bc := <-conns
	bc.(*net.TCPConn).SetLinger(0)
	bc.Close() // RST
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	c.ReadMessage()
	waitFor(t, 10*time.Second, "the tunnel's end in the error log", func() bool {
		return strings.Contains(g.errorLog(), "reading from backend")
	})
	if l := g.errorLog(); !strings.Contains(l, "(backend side)") || strings.Contains(l, "(client side)") {
		t.Errorf("error log blames the wrong side:\n%s", l)
	}
}
