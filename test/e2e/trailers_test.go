package e2e

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// trailerBackend serves a chunked body that ends with trailer fields: one
// the client may get (X-Sum), one of nginx's default hidden fields
// (X-Pad), a hop-by-hop one (Keep-Alive) and one the test's
// proxy_hide_header hides (X-Hidden).
func trailerBackend(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "part one, ")
		w.(http.Flusher).Flush() // the head goes out without a length: chunked
		io.WriteString(w, "part two")
		for name, v := range map[string]string{"X-Sum": "abc123", "X-Pad": "pad", "Keep-Alive": "timeout=5", "X-Hidden": "h"} {
			w.Header().Set(http.TrailerPrefix+name, v)
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// rawExchange sends req on a fresh connection and returns everything the
// server wrote until it closed the connection.
func rawExchange(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, slow(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(slow(10 * time.Second)))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", req, err)
	}
	return string(b)
}

// TestProxyPassTrailers: with proxy_pass_trailers on, a backend's trailer
// fields reach an HTTP/1.1 client at the end of its chunked body (with
// proxy_buffering on and off), except the hidden, hop-by-hop and
// proxy_hide_header ones, and before add_trailer's, which may use them;
// with it off, and for an HTTP/1.0 client, the body ends without them. $upstream_trailer_x_sum logs the backend's
// field in every case.
func TestProxyPassTrailers(t *testing.T) {
	be := trailerBackend(t)
	port := freePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	g := startGate(t, `pid {{DIR}}/logs/wsgate.pid;
error_log {{DIR}}/logs/error.log info;
events { worker_connections 64; }
http {
    log_format tr '$uri|$upstream_trailer_x_sum|$upstream_trailer_x_pad|$upstream_trailer_none';
    access_log {{DIR}}/logs/tr.log tr;
    server {
        listen 127.0.0.1:`+strconv.Itoa(port)+`;
        proxy_http_version 1.1;
        proxy_hide_header X-Hidden;
        location /on { proxy_pass http://`+be+`; proxy_pass_trailers on; add_trailer X-Added "[$upstream_trailer_x_sum]"; }
        location /unbuf { proxy_pass http://`+be+`; proxy_pass_trailers on; proxy_buffering off; }
        location /off { proxy_pass http://`+be+`; }
    }
}
`)
	cases := []struct {
		uri, proto string
		trailer    string // the trailer section the client gets; "" for an unchunked body
	}{
		{"/on", "HTTP/1.1", "X-Sum: abc123\r\nX-Added: [abc123]\r\n"},
		{"/unbuf", "HTTP/1.1", "X-Sum: abc123\r\n"},
		{"/off", "HTTP/1.1", ""},
		{"/on", "HTTP/1.0", ""},
	}
	for _, tc := range cases {
		raw := rawExchange(t, addr, "GET "+tc.uri+" "+tc.proto+"\r\nHost: t\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), nil)
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", tc.proto, tc.uri, err, raw)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil || string(body) != "part one, part two" {
			t.Fatalf("%s %s: body %q, %v", tc.proto, tc.uri, body, err)
		}
		chunked := tc.proto == "HTTP/1.1"
		if got := len(resp.TransferEncoding) > 0; got != chunked {
			t.Fatalf("%s %s: chunked %v, want %v\n%s", tc.proto, tc.uri, got, chunked, raw)
		}
		if chunked && !strings.HasSuffix(raw, "\r\n0\r\n"+tc.trailer+"\r\n") {
			t.Errorf("%s %s: the body does not end with the trailer section %q:\n%q", tc.proto, tc.uri, tc.trailer, raw)
		}
		if !chunked && bytes.Contains([]byte(raw), []byte("abc123")) {
			t.Errorf("%s %s: a trailer field reached an unchunked answer:\n%q", tc.proto, tc.uri, raw)
		}
	}
	lines := logLines(t, g.dir, "tr.log", len(cases))
	for i, tc := range cases {
		if want := tc.uri + "|abc123|pad|-"; lines[i] != want {
			t.Errorf("log line %d = %q, want %q", i, lines[i], want)
		}
	}
}
