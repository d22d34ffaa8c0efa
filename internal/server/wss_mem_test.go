package server

import (
	"crypto/tls"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/wsframe"
)

// wssExtraCeiling bounds what an idle wss tunnel holds for its TLS beyond
// crypto/tls's own connection (its record buffers, AES-GCM states and
// secrets, which a bare tls.Conn holds as well), both sides of the
// loopback counted: the tunnel keeps its tls.Conn and nothing else of the
// handshake (0 to 100 B here): not the connection's copy of its state,
// nor connSSL, nor the client's offer. With an access log too: the
// session's line keeps the values of its variables, not the connection's
// $ssl_* state.
const wssExtraCeiling = 256

// TestIdleWSSTunnelMemory: an idle wss tunnel holds no more for its TLS
// than crypto/tls's connection itself, measured as the heap a tunnel
// costs over TLS less what it costs in plain, less the same difference
// between a bare tls.Conn and a bare TCP connection through the same
// exchange (handshake, request, 101). The figures are logged.
func TestIdleWSSTunnelMemory(t *testing.T) {
	for _, logged := range []bool{false, true} {
		name, ceiling := "no_access_log", int64(wssExtraCeiling)
		if logged {
			name = "access_log"
		}
		t.Run(name, func(t *testing.T) {
			s, tlsAddr, plainAddr, be, certDir := wssMemServer(t, logged)
			defer s.Close()
			cert, err := tls.LoadX509KeyPair(filepath.Join(certDir, "c.pem"), filepath.Join(certDir, "k.pem"))
			if err != nil {
				t.Fatal(err)
			}
			bareTLS := bareWSServer(t, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13, NextProtos: []string{"http/1.1"}})
			barePlain := bareWSServer(t, nil)
			tunnels := func() bool { return s.Stats.Tunnels.Load() >= wssMemTunnels && be.count() >= wssMemTunnels }
			closed := func() { s.waitNoTunnels(t); be.closeAll() }
			wss, ws, bare, bareTCP := int64(1<<62), int64(1<<62), int64(1<<62), int64(1<<62)
			// The lesser of two rounds: the first grows maps and pools once
			// for all.
			for range 2 {
				wss = min(wss, wsPairHeap(t, tlsAddr, true, tunnels, closed))
				ws = min(ws, wsPairHeap(t, plainAddr, false, tunnels, closed))
				bare = min(bare, wsPairHeap(t, bareTLS.addr(), true, bareTLS.holding, bareTLS.closeAll))
				bareTCP = min(bareTCP, wsPairHeap(t, barePlain.addr(), false, barePlain.holding, barePlain.closeAll))
			}
			extra := (wss - ws) - (bare - bareTCP)
			t.Logf("idle tunnel, both sides of the loopback: wss %d B, ws %d B; bare connection: TLS %d B, TCP %d B; wsgate's own for TLS: %d B", wss, ws, bare, bareTCP, extra)
			if extra > ceiling {
				t.Errorf("an idle wss tunnel holds %d B for its TLS beyond crypto/tls's connection, over %d B: something of its handshake is kept", extra, ceiling)
			}
		})
	}
}

// wssMemTunnels is how many tunnels each measurement opens.
const wssMemTunnels = 200

// wssMemServer runs a server listening with ssl and in plain, proxying to
// an idleBackend; logged gives it an access log.
func wssMemServer(t *testing.T, logged bool) (s *Server, tlsAddr, plainAddr string, be *idleBackend, dir string) {
	t.Helper()
	dir = t.TempDir()
	writeTestCert(t, dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	be = &idleBackend{ln: ln}
	go be.serve()
	t.Cleanup(func() { ln.Close(); be.closeAll() })
	alog := "access_log off;"
	if logged {
		alog = "access_log " + filepath.Join(dir, "access.log") + ";"
	}
	tp, pp := freeTCPPort(t), freeTCPPort(t)
	s = applyTestConfig(t, filepath.Join(dir, "t.conf"), fmt.Sprintf(`
error_log stderr crit;
events { worker_connections 4096; }
http {
    %[4]s
    server {
        listen 127.0.0.1:%[1]d ssl;
        listen 127.0.0.1:%[2]d;
        ssl_certificate c.pem;
        ssl_certificate_key k.pem;
        ssl_protocols TLSv1.3;
        location / {
            proxy_pass http://%[3]s;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }
    }
}`, tp, pp, ln.Addr(), alog))
	return s, fmt.Sprintf("127.0.0.1:%d", tp), fmt.Sprintf("127.0.0.1:%d", pp), be, dir
}

func (b *idleBackend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.conns)
}

func (s *Server) waitNoTunnels(t *testing.T) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); s.Stats.Tunnels.Load() > 0; time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%d tunnels still open", s.Stats.Tunnels.Load())
		}
	}
}

// wsPairHeap opens wssMemTunnels WebSockets to addr, waits for held to
// report the far side holding them all and for the goroutines serving
// their handshakes to end, and returns the heap each holds; then it
// closes them and calls done.
func wsPairHeap(t *testing.T, addr string, useTLS bool, held func() bool, done func()) int64 {
	t.Helper()
	g0 := runtime.NumGoroutine()
	before := heapInUse()
	conns := make([]net.Conn, 0, wssMemTunnels)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
		done()
	}()
	for range wssMemTunnels {
		conns = append(conns, dialWS(t, addr, useTLS))
	}
	// Tunnels start the sweeper and a dispatcher per P.
	shared := 1 + runtime.GOMAXPROCS(0)
	for end := time.Now().Add(10 * time.Second); !held() || runtime.NumGoroutine() > g0+shared; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the connections to %s are not all held, or still served: %d goroutines, %d before", addr, runtime.NumGoroutine(), g0)
		}
	}
	return (heapInUse() - before) / wssMemTunnels
}

// dialWS opens a WebSocket to addr, over TLS with Go's default client
// settings (its ClientHello offers X25519MLKEM768, as browsers do) but no
// session cache, and returns the connection once its 101 has arrived.
func dialWS(t *testing.T, addr string, useTLS bool) net.Conn {
	t.Helper()
	var c net.Conn
	var err error
	if useTLS {
		c, err = tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: "x", NextProtos: []string{"http/1.1"}})
	} else {
		c, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	head := make([]byte, 0, 256)
	var b [1]byte
	for !strings.HasSuffix(string(head), "\r\n\r\n") {
		if _, err := c.Read(b[:]); err != nil {
			c.Close()
			t.Fatalf("handshake: %v after %q", err, head)
		}
		head = append(head, b[0])
	}
	if !strings.HasPrefix(string(head), "HTTP/1.1 101 ") {
		c.Close()
		t.Fatalf("handshake: %q", head)
	}
	c.SetDeadline(time.Time{})
	return c
}

// bareWS answers WebSocket handshakes, over TLS when it has a config, on
// one goroutine, and keeps the connections without reading them: the
// baseline of what a connection costs.
type bareWS struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func bareWSServer(t *testing.T, cfg *tls.Config) *bareWS {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &bareWS{ln: ln}
	t.Cleanup(func() { ln.Close(); b.closeAll() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if cfg != nil {
				c = tls.Server(c, cfg)
			}
			if b.answer(c) {
				b.mu.Lock()
				b.conns = append(b.conns, c)
				b.mu.Unlock()
			} else {
				c.Close()
			}
		}
	}()
	return b
}

// answer reads a request head as the server reads one, through a 4 KiB
// buffer, and sends the 101.
func (b *bareWS) answer(c net.Conn) bool {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	buf := make([]byte, 4096)
	n := 0
	for !strings.Contains(string(buf[:n]), "\r\n\r\n") {
		m, err := c.Read(buf[n:])
		if err != nil {
			return false
		}
		n += m
	}
	_, err := fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", wsframe.AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="))
	return err == nil
}

func (b *bareWS) addr() string { return b.ln.Addr().String() }

func (b *bareWS) holding() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.conns) >= wssMemTunnels
}

func (b *bareWS) closeAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.conns {
		c.Close()
	}
	b.conns = nil
}
