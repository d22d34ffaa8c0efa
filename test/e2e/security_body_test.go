package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// bodyBackend is a plain HTTP backend that counts the connections it
// accepts and records the bodies (and their framing) it receives.
type bodyBackend struct {
	addr    string
	accepts atomic.Int64
	hits    atomic.Int64

	mu      sync.Mutex
	bodies  [][]byte
	lengths []int64 // r.ContentLength of each request (-1: chunked)
}

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func startBodyBackend(t testing.TB) *bodyBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &bodyBackend{addr: ln.Addr().String()}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(400)
			return
		}
		b.mu.Lock()
		b.bodies = append(b.bodies, body)
		b.lengths = append(b.lengths, r.ContentLength)
		b.mu.Unlock()
		b.hits.Add(1)
		fmt.Fprintf(w, "%s got %d", b.addr, len(body))
	})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(countingListener{ln, &b.accepts})
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return b
}

func bodyConf(port int, loc string, addrs ...string) string {
	return fmt.Sprintf(`error_log {{DIR}}/error.log info;
events { worker_connections 1024; }
http {
    upstream pool {
%s
    }
    server {
        listen 127.0.0.1:%d;
        client_max_body_size 10m;
        location / {
            proxy_pass http://pool;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_connect_timeout 2s;
%s
        }
    }
}
`, servers("", addrs...), port, loc)
}

// statusOf writes req on a new connection, then reads the answer's status
// (0 if the connection closed without one).
func statusOf(t testing.TB, addr, req string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	var status int
	buf := make([]byte, 64)
	n, _ := io.ReadAtLeast(c, buf, 12)
	fmt.Sscanf(string(buf[:n]), "HTTP/1.1 %d", &status)
	return status
}

// abandonBody announces a 100000-byte body, sends 10 bytes and leaves.
func abandonBody(t testing.TB, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n0123456789")
	time.Sleep(50 * time.Millisecond) // let the head be read before the FIN; correctness does not depend on it
	c.Close()
}

// accessCount counts the access log lines that contain s.
func accessCount(g *gate, s string) int {
	b, _ := os.ReadFile(filepath.Join(g.dir, "logs", "access.log"))
	return strings.Count(string(b), s)
}

// bothPeersServe sends plain GETs until each backend has answered one; every
// answer must be 200.
func bothPeersServe(t *testing.T, port int, bs ...*bodyBackend) {
	t.Helper()
	g := newGetter("127.0.0.1")
	url := fmt.Sprintf("http://127.0.0.1:%d/after", port)
	for i := 0; i < 4; i++ {
		status, _, body := g.get(t, url)
		if status != 200 {
			t.Fatalf("GET after the bad bodies: %d %q, want 200", status, body)
		}
	}
	for _, b := range bs {
		if b.hits.Load() == 0 {
			t.Fatalf("backend %s served nothing after the bad bodies", b.addr)
		}
	}
}

// A client that abandons its body must not make a backend unavailable:
// only failures of the backend count against a peer.
func TestSecurityBodyAbandonedNotBlamed(t *testing.T) {
	for _, mode := range []string{"on", "off"} {
		t.Run("request_buffering_"+mode, func(t *testing.T) {
			a, b := startBodyBackend(t), startBodyBackend(t)
			port := freePort(t)
			g := startGate(t, bodyConf(port, "proxy_request_buffering "+mode+";", a.addr, b.addr))
			addr := fmt.Sprintf("127.0.0.1:%d", port)
			abandonBody(t, addr)
			abandonBody(t, addr)
			waitFor(t, 20*time.Second, "two POST lines in the access log", func() bool { return accessCount(g, `"POST /upload`) >= 2 })
			bothPeersServe(t, port, a, b)
			if n := accessCount(g, `"POST /upload HTTP/1.1" 499`); n != 2 {
				t.Fatalf("%d of 2 abandoned bodies logged 499 (a client that left)\n%s", n, g.errorLog())
			}
		})
	}
}

// A malformed chunked body streamed upstream (proxy_request_buffering off)
// is the client's fault: 400, and the peer stays usable.
func TestSecurityMalformedChunkedStreamedNotBlamed(t *testing.T) {
	a, b := startBodyBackend(t), startBodyBackend(t)
	port := freePort(t)
	startGate(t, bodyConf(port, "proxy_request_buffering off;", a.addr, b.addr))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for i := 0; i < 2; i++ {
		req := "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n"
		if status := statusOf(t, addr, req); status != 400 {
			t.Fatalf("malformed chunked body: %d, want 400", status)
		}
	}
	bothPeersServe(t, port, a, b)
}

// With proxy_request_buffering on (the default) a malformed chunked body
// is refused before any backend is contacted.
func TestSecurityMalformedChunkedBufferedNoBackend(t *testing.T) {
	a := startBodyBackend(t)
	port := freePort(t)
	g := startGate(t, bodyConf(port, "", a.addr))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for _, body := range []string{"zz\r\n", "5\r\nhello\r\n0\r\nbad trailer\r\n\r\n", "5;a\r\nhelloXX\r\n0\r\n\r\n"} {
		req := "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + body
		if status := statusOf(t, addr, req); status != 400 {
			t.Fatalf("malformed chunked body %q: %d, want 400", body, status)
		}
	}
	waitFor(t, 10*time.Second, "three POST lines in the access log", func() bool { return accessCount(g, `"POST /up HTTP/1.1" 400`) >= 3 })
	if n := a.accepts.Load(); n != 0 {
		t.Fatalf("the backend accepted %d connections for malformed bodies, want 0", n)
	}
	// A too large body still gets 413 without a backend.
	status := statusOf(t, addr, "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 20000000\r\n\r\n")
	if status != 413 {
		t.Fatalf("too large body: %d, want 413", status)
	}
	if n := a.accepts.Load(); n != 0 {
		t.Fatalf("the backend accepted %d connections, want 0", n)
	}
}

// A body larger than client_body_buffer_size goes through a temporary
// file (created under client_body_temp_path and unlinked at once) and
// reaches the backend intact, with a Content-Length.
func TestSecurityBufferedBodyTempFile(t *testing.T) {
	a := startBodyBackend(t)
	port := freePort(t)
	g := startGate(t, bodyConf(port, "client_body_buffer_size 1k;\n            client_body_temp_path {{DIR}}/bodytemp;", a.addr))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	base := g.fdCount(t)
	want := bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuvwxyz"), 200000/36)
	var req bytes.Buffer
	req.WriteString("POST /big HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
	for rest := want; len(rest) > 0; {
		n := min(len(rest), 7000)
		fmt.Fprintf(&req, "%x;ext=1\r\n%s\r\n", n, rest[:n])
		rest = rest[n:]
	}
	req.WriteString("0\r\nX-Trailer: 1\r\n\r\n")
	status, _, body := rawRequest(t, addr, req.String())
	if status != 200 {
		t.Fatalf("big chunked body: %d %q\n%s", status, body, g.errorLog())
	}
	a.mu.Lock()
	got, length := a.bodies[0], a.lengths[0]
	a.mu.Unlock()
	if !bytes.Equal(got, want) {
		t.Fatalf("the backend got %d bytes, want %d identical ones", len(got), len(want))
	}
	if length != int64(len(want)) {
		t.Fatalf("the backend saw Content-Length %d, want %d", length, len(want))
	}
	ents, err := os.ReadDir(filepath.Join(g.dir, "bodytemp"))
	if err != nil {
		t.Fatalf("client_body_temp_path was not used: %v", err)
	}
	if len(ents) != 0 {
		t.Fatalf("temporary body files left behind: %v", ents)
	}
	// A Content-Length body under the buffer size is kept in memory.
	status, _, body = rawRequest(t, addr, "POST /small HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
	if status != 200 || !strings.HasSuffix(body, "got 5") {
		t.Fatalf("small body: %d %q", status, body)
	}
	g.waitFDs(t, base) // the temporary file is closed with its request
}

// A buffered body is sent again to the next peer when the first fails
// (proxy_next_upstream error), as nginx does; a streamed one is not.
func TestBufferedBodyRetriedOnNextPeer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var dropped atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // a peer that takes the request and closes without an answer
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			req, err := http.ReadRequest(bufio.NewReader(c))
			if err == nil {
				io.Copy(io.Discard, req.Body)
			}
			dropped.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	b := startBodyBackend(t)
	for _, mode := range []string{"on", "off"} {
		port := freePort(t)
		g := startGate(t, bodyConf(port, "proxy_request_buffering "+mode+";", ln.Addr().String(), b.addr))
		before, hits := dropped.Load(), b.hits.Load()
		body := strings.Repeat("x", 50000)
		status, _, got := rawRequest(t, fmt.Sprintf("127.0.0.1:%d", port), "PUT /r HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 50000\r\n\r\n"+body)
		if dropped.Load() != before+1 {
			t.Fatalf("%s: the dropping peer saw %d requests, want 1", mode, dropped.Load()-before)
		}
		switch mode {
		case "on":
			if status != 200 || got != b.addr+" got 50000" || b.hits.Load() != hits+1 {
				t.Fatalf("buffered body after a failed peer: %d %q\n%s", status, got, g.errorLog())
			}
			b.mu.Lock()
			last := b.bodies[len(b.bodies)-1]
			b.mu.Unlock()
			if string(last) != body {
				t.Fatalf("the next peer got %d bytes, not the body", len(last))
			}
		case "off":
			if status != 502 || b.hits.Load() != hits {
				t.Fatalf("streamed body after a failed peer: %d %q, want 502 and no retry", status, got)
			}
		}
		g.stop()
	}
}

// client_max_body_size bounds a chunked body as it is read: 413, and with
// buffering no backend is contacted.
func TestSecurityChunkedBodyTooLarge(t *testing.T) {
	for _, mode := range []string{"on", "off"} {
		a := startBodyBackend(t)
		port := freePort(t)
		g := startGate(t, bodyConf(port, "client_max_body_size 1k;\n            proxy_request_buffering "+mode+";", a.addr))
		body := strings.Repeat("y", 3000)
		req := fmt.Sprintf("POST /big HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(body), body)
		if status := statusOf(t, fmt.Sprintf("127.0.0.1:%d", port), req); status != 413 {
			t.Fatalf("%s: chunked body over client_max_body_size: %d, want 413", mode, status)
		}
		if mode == "on" && a.accepts.Load() != 0 {
			t.Fatalf("the backend accepted %d connections for a body over the limit", a.accepts.Load())
		}
		if a.hits.Load() != 0 {
			t.Fatalf("%s: the backend got a request with a body over the limit", mode)
		}
		g.stop()
	}
}
