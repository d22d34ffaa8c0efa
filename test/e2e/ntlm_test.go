package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// portBackend is a backend named name that answers with the remote
// address of the connection each request came over (X-Remote) and
// records which of those connections it saw closed.
type portBackend struct {
	addr   string
	mu     sync.Mutex
	closed map[string]bool
}

func startPortBackend(t *testing.T, name string) *portBackend {
	t.Helper()
	b := &portBackend{closed: map[string]bool{}}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", name)
		w.Header().Set("X-Remote", r.RemoteAddr)
		io.WriteString(w, name)
	}))
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			b.mu.Lock()
			b.closed[c.RemoteAddr().String()] = true
			b.mu.Unlock()
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	b.addr = srv.Listener.Addr().String()
	return b
}

func (b *portBackend) sawClosed(remote string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed[remote]
}

// keptClient is one keep-alive client connection to the gate.
type keptClient struct {
	c  net.Conn
	br *bufio.Reader
}

func newKeptClient(t *testing.T, addr string) *keptClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, slow(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &keptClient{c: c, br: bufio.NewReader(c)}
}

// get sends GET path with the extra header lines and returns the backend
// that answered and the address its connection came from.
func (k *keptClient) get(t *testing.T, path, extra string) (backend, remote string) {
	t.Helper()
	k.c.SetDeadline(time.Now().Add(slow(10 * time.Second)))
	fmt.Fprintf(k.c, "GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n", path, extra)
	resp, err := http.ReadResponse(k.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
	return resp.Header.Get("X-Backend"), resp.Header.Get("X-Remote")
}

// TestUpstreamNTLM: nginx Plus's `ntlm`: a client connection whose
// request carried NTLM (or Negotiate) credentials keeps that backend
// connection for its following requests, with or without credentials, while
// another client connection's requests, in alternation, keep their own; a
// connection without such credentials shares the keepalive cache. The
// bound connection closes with its client connection.
func TestUpstreamNTLM(t *testing.T) {
	a, b := startPortBackend(t, "a"), startPortBackend(t, "b")
	port := freePort(t)
	startGate(t, fmt.Sprintf(`error_log {{DIR}}/error.log info;
events { worker_connections 1024; }
http {
    upstream pool { server %s; server %s; keepalive 8; ntlm; }
    server {
        listen 127.0.0.1:%d;
        location / {
            proxy_pass http://pool;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
`, a.addr, b.addr, port))
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	c1, c2 := newKeptClient(t, addr), newKeptClient(t, addr)
	be1, r1 := c1.get(t, "/", "Authorization: NTLM TlRMTVNTUAABAAAAB4IIAAAAAAAAAAAAAAAAAAAAAAA=\r\n")
	be2, r2 := c2.get(t, "/", "Authorization: Negotiate TlRMTVNTUAABAAAA\r\n")
	if be1 == be2 && r1 == r2 {
		t.Fatalf("two client connections share the backend connection %s of %s", r1, be1)
	}
	plain := newKeptClient(t, addr)
	for i := range 4 {
		// A plain request in between moves round robin on: only the
		// binding keeps each client on its peer.
		plain.get(t, "/", "")
		if be, r := c1.get(t, "/", ""); be != be1 || r != r1 {
			t.Fatalf("request %d of client 1 went to %s from %s, bound to %s from %s", i, be, r, be1, r1)
		}
		if be, r := c2.get(t, "/", "Authorization: NTLM TlRMTVNTUAADAAAA\r\n"); be != be2 || r != r2 {
			t.Fatalf("request %d of client 2 went to %s from %s, bound to %s from %s", i, be, r, be2, r2)
		}
	}
	// The bound connection goes with its client connection.
	owner := map[string]*portBackend{"a": a, "b": b}[be1]
	if owner.sawClosed(r1) {
		t.Fatal("the bound connection closed while its client was connected")
	}
	c1.c.Close()
	waitFor(t, slow(10*time.Second), "the bound backend connection to close", func() bool { return owner.sawClosed(r1) })
	if be, r := c2.get(t, "/", ""); be != be2 || r != r2 {
		t.Fatalf("client 2 lost its binding when client 1 left: %s from %s", be, r)
	}
	owner2 := map[string]*portBackend{"a": a, "b": b}[be2]
	c2.c.Close()
	waitFor(t, slow(10*time.Second), "client 2's bound backend connection to close", func() bool { return owner2.sawClosed(r2) })
}
