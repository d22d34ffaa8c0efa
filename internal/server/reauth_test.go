package server

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/errlog"
)

// holdBackend accepts WebSocket handshakes and keeps each connection open
// and silent until the test ends.
func holdBackend(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReaderSize(c, 16)
				if !answerUpgrade(c, br) {
					return
				}
				c.Read(make([]byte, 1)) // until the tunnel closes
			}()
		}
	}()
	return ln
}

// upgrade opens a WebSocket through path of s with a session cookie and
// returns the client's connection once the 101 has arrived.
func upgrade(t *testing.T, s *Server, path, cookie string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", s.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nCookie: session=%s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", path, cookie)
	head := make([]byte, 0, 256)
	buf := make([]byte, 1)
	for !strings.HasSuffix(string(head), "\r\n\r\n") {
		if _, err := c.Read(buf); err != nil {
			c.Close()
			t.Fatalf("handshake: %v after %q", err, head)
		}
		head = append(head, buf[0])
	}
	if !strings.HasPrefix(string(head), "HTTP/1.1 101 ") {
		c.Close()
		t.Fatalf("handshake: %q", head)
	}
	c.SetDeadline(time.Time{})
	return c
}

// reauthServer runs a server with locations /plain (no check), /auth
// (auth_request at the handshake only) and /reauth (re-authorised every
// interval), proxying to backend and asking auth.
func reauthServer(t *testing.T, backend, auth, interval string) *Server {
	t.Helper()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := free.Addr().(*net.TCPAddr).Port
	free.Close()
	s := applyTestConfig(t, "/tmp/t.conf", fmt.Sprintf(`
error_log stderr crit;
events { worker_connections 4096; }
http {
    access_log off;
    proxy_http_version 1.1;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection "upgrade";
    server {
        listen 127.0.0.1:%d;
        location /plain { proxy_pass http://%s; }
        location /auth { auth_request /check; proxy_pass http://%[2]s; }
        location /reauth {
            auth_request /check;
            websocket_reauth_interval %[3]s;
            proxy_pass http://%[2]s;
        }
        location = /check { internal; proxy_pass http://%[4]s; }
    }
}`, port, backend, interval, auth))
	return s
}

// idleTunnelHeap opens n idle tunnels through location path of s, each
// handshake carrying a 1 KiB cookie, and returns the heap they hold, per
// tunnel, on both sides of the loopback (the test's own sockets are the
// same for every location).
func idleTunnelHeap(t *testing.T, s *Server, path string, n int) int64 {
	t.Helper()
	cookie := strings.Repeat("c", 1024)
	before := heapInUse()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
		for end := time.Now().Add(10 * time.Second); s.Stats.Tunnels.Load() > 0; {
			if time.Now().After(end) {
				t.Fatalf("%d tunnels still open", s.Stats.Tunnels.Load())
			}
			time.Sleep(time.Millisecond)
		}
	}()
	for range n {
		conns = append(conns, upgrade(t, s, path, cookie))
	}
	return (heapInUse() - before) / int64(n)
}

func heapInUse() int64 {
	var ms runtime.MemStats
	for range 2 {
		runtime.GC()
	}
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// TestReauthIdleMemory: only a tunnel of a location with
// websocket_reauth_interval keeps its request (here with a 1 KiB cookie);
// a tunnel of any other location holds no more than it did without
// re-authorisation. The figures are logged per tunnel.
func TestReauthIdleMemory(t *testing.T) {
	baseline := runtime.NumGoroutine()
	defer func() {
		// Every tunnel, check and connection goroutine is gone.
		for end := time.Now().Add(10 * time.Second); runtime.NumGoroutine() > baseline; {
			if time.Now().After(end) {
				t.Errorf("%d goroutines, %d before", runtime.NumGoroutine(), baseline)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	be := holdBackend(t)
	defer be.Close()
	auth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer auth.Close()
	s := reauthServer(t, be.Addr().String(), auth.Listener.Addr().String(), "1h")
	defer s.Close()
	// The least of three rounds: the first grows the server's maps and
	// pools once for all.
	const n = 300
	plain, authOnly, reauth := int64(1<<62), int64(1<<62), int64(1<<62)
	for range 3 {
		plain = min(plain, idleTunnelHeap(t, s, "/plain", n))
		authOnly = min(authOnly, idleTunnelHeap(t, s, "/auth", n))
		reauth = min(reauth, idleTunnelHeap(t, s, "/reauth", n))
	}
	t.Logf("idle tunnel, both sides of the loopback: plain %d B, auth_request %d B, auth_request with websocket_reauth_interval %d B", plain, authOnly, reauth)
	// The request (its 1 KiB cookie among its headers) stays with the
	// re-authorised tunnel, and with no other.
	if reauth-plain < 1024 || reauth-authOnly < 1024 {
		t.Errorf("a re-authorised tunnel holds %d B, a plain one %d B, one with auth_request only %d B: want the request (over 1 KiB) kept only by the first", reauth, plain, authOnly)
	}
	if authOnly-plain >= 1024 {
		t.Errorf("a tunnel with auth_request only holds %d B more than a plain one: it keeps its request", authOnly-plain)
	}
}

// TestReauthFirstCheckSpread: first checks fall within the interval and
// spread over all of it.
func TestReauthFirstCheckSpread(t *testing.T) {
	const every = time.Second
	var tenths [10]int
	for range 10000 {
		d := firstCheck(every)
		if d <= 0 || d > every {
			t.Fatalf("first check after %v, want within (0, %v]", d, every)
		}
		tenths[min(int(d*10/every), 9)]++
	}
	for i, n := range tenths {
		if n < 800 || n > 1200 { // 1000 expected; 6 standard deviations
			t.Errorf("tenth %d of the interval has %d first checks of 10000: %v", i, n, tenths)
		}
	}
}

// TestReauthBoundedConcurrency: when many checks are due at once, at most
// reauthConcurrency of them wait on the auth backend together, and the
// sessions can end meanwhile.
func TestReauthBoundedConcurrency(t *testing.T) {
	be := holdBackend(t)
	var (
		mu            sync.Mutex
		block         bool
		inFlight, top int
	)
	release := make(chan struct{})
	auth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if !block {
			mu.Unlock()
			return
		}
		inFlight++
		top = max(top, inFlight)
		mu.Unlock()
		<-release
		mu.Lock()
		inFlight--
		mu.Unlock()
	}))
	defer auth.Close()
	const interval = 200 * time.Millisecond
	s := reauthServer(t, be.Addr().String(), auth.Listener.Addr().String(), "200ms")
	defer s.Close()
	const n = 2 * reauthConcurrency
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		conns = append(conns, upgrade(t, s, "/reauth", "t"))
	}
	last := time.Now()
	mu.Lock()
	block = true
	mu.Unlock()
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		f := inFlight
		mu.Unlock()
		if f == reauthConcurrency {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d checks in flight, want %d", f, reauthConcurrency)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Two intervals after the last handshake, every session's check has
	// come due and the others wait for a slot.
	time.Sleep(time.Until(last.Add(2 * interval)))
	mu.Lock()
	got := top
	mu.Unlock()
	if got != reauthConcurrency {
		t.Errorf("at most %d checks in flight, want %d", got, reauthConcurrency)
	}
	// The sessions end while their checks still wait on the auth backend:
	// a slow auth backend does not hold up a tunnel's end.
	defer close(release)
	for _, c := range conns {
		c.Close()
	}
	for end := time.Now().Add(10 * time.Second); s.Stats.Tunnels.Load() > 0; {
		if time.Now().After(end) {
			t.Fatalf("%d tunnels still open while their checks wait", s.Stats.Tunnels.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// applyTestConfig starts a server on the configuration text, read as the
// file path (relative paths in it are the path's directory's).
func applyTestConfig(t testing.TB, path, text string) *Server {
	t.Helper()
	cfg, err := config.LoadBytes(path, []byte(text), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	log := errlog.Stderr()
	s := New(log)
	if err := s.Apply(cfg, log); err != nil {
		t.Fatal(err)
	}
	return s
}
