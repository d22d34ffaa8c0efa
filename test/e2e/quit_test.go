package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// QUIT stops as nginx 1.22 stops (measured): requests in flight are
// answered, a request delayed by limit_req when its delay ends, a proxied
// one when its backend answers; a client that gives up ends its request
// at once (499); worker_shutdown_timeout closes whatever is left.

// delayConf serves {{DIR}}/index.html under limit_req at rate (one request
// passes, the next waits 60/rate minutes' worth); main is added to the
// main context.
func delayConf(port int, rate, main string) string {
	return fmt.Sprintf(`error_log {{DIR}}/error.log info;
%s
http {
    access_log {{DIR}}/access.log;
    limit_req_zone $binary_remote_addr zone=z:1m rate=%s;
    server {
        listen 127.0.0.1:%d;
        location / {
            limit_req zone=z burst=5;
            root {{DIR}};
        }
    }
}`, main, rate, port)
}

// startDelayed starts a gate with delayConf, spends the zone's one
// request, and sends a second one that limit_req holds; it returns the
// held request's connection.
func startDelayed(t *testing.T, rate, main string) (*gate, net.Conn) {
	t.Helper()
	port := freePort(t)
	g := startGate(t, delayConf(port, rate, main))
	if err := os.WriteFile(filepath.Join(g.dir, "index.html"), []byte("static ok"), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if st, _, _ := rawRequest(t, addr, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); st != 200 {
		t.Fatalf("first request: %d", st)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the request to be delayed", func() bool {
		return strings.Contains(g.errorLog(), "delaying request")
	})
	return g, c
}

func (g *gate) accessLog() string {
	b, _ := os.ReadFile(filepath.Join(g.dir, "access.log"))
	return string(b)
}

// quitting sends QUIT and waits until the listeners are closed.
func (g *gate) quitting(t *testing.T, addr string) {
	t.Helper()
	g.signal(syscall.SIGQUIT)
	waitFor(t, 10*time.Second, "the listener to close", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
}

func (g *gate) running() bool {
	select {
	case <-g.done:
		return false
	default:
		return true
	}
}

// TestQuitDelayedRequest: a request held by limit_req.
func TestQuitDelayedRequest(t *testing.T) {
	t.Run("answered when its delay ends", func(t *testing.T) {
		g, c := startDelayed(t, "20r/m", "") // a 3 s delay
		g.signal(syscall.SIGQUIT)
		c.SetReadDeadline(time.Now().Add(15 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("the delayed request got no answer after QUIT: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != "static ok" {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
		if err := g.wait(10 * time.Second); err != nil {
			t.Fatalf("exit: %v", err)
		}
	})
	t.Run("client leaves", func(t *testing.T) {
		g, c := startDelayed(t, "1r/m", "") // a 60 s delay
		g.signal(syscall.SIGQUIT)
		waitFor(t, 10*time.Second, "QUIT to be handled", func() bool {
			return strings.Contains(g.errorLog(), "SIGQUIT")
		})
		c.Close()
		if err := g.wait(15 * time.Second); err != nil {
			t.Fatalf("exit: %v", err)
		}
		if !strings.Contains(g.accessLog(), `"GET / HTTP/1.1" 499 `) {
			t.Errorf("the abandoned request is not logged with 499:\n%s", g.accessLog())
		}
		if !strings.Contains(g.errorLog(), "client prematurely closed connection") {
			t.Errorf("error log:\n%s", g.errorLog())
		}
	})
	t.Run("worker_shutdown_timeout", func(t *testing.T) {
		g, c := startDelayed(t, "1r/m", "worker_shutdown_timeout 1s;")
		g.signal(syscall.SIGQUIT)
		c.SetReadDeadline(time.Now().Add(15 * time.Second))
		n, err := io.Copy(io.Discard, c)
		if err != nil || n != 0 {
			t.Fatalf("read %d bytes, %v; want the connection closed without an answer", n, err)
		}
		if err := g.wait(10 * time.Second); err != nil {
			t.Fatalf("exit: %v", err)
		}
		if !strings.Contains(g.accessLog(), `"GET / HTTP/1.1" 000 `) {
			t.Errorf("the closed request is not logged with status 000:\n%s", g.accessLog())
		}
	})
}

// heldBackend answers each request only when release is closed; got
// receives each request's first line.
func heldBackend(t *testing.T) (addr string, got chan string, release chan struct{}) {
	got, release = make(chan string, 4), make(chan struct{})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	addr = rawBackend(t, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		got <- strings.TrimSpace(line)
		<-release
		fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Length: 15\r\nConnection: close\r\n\r\nbackend at last")
	})
	return addr, got, release
}

// TestQuitInFlightProxied: QUIT waits for a proxied request whose backend
// is slow and delivers its answer; worker_shutdown_timeout bounds the wait.
func TestQuitInFlightProxied(t *testing.T) {
	for _, tc := range []struct {
		name, main string
		answered   bool
	}{{"waits for the backend", "", true}, {"worker_shutdown_timeout", "worker_shutdown_timeout 1s;", false}} {
		t.Run(tc.name, func(t *testing.T) {
			be, got, release := heldBackend(t)
			port := freePort(t)
			addr := fmt.Sprintf("127.0.0.1:%d", port)
			g := startGate(t, tc.main+"\n"+faultConf(port, be, ""))
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fmt.Fprint(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
			select {
			case <-got:
			case <-time.After(10 * time.Second):
				t.Fatal("the request did not reach the backend")
			}
			g.quitting(t, addr)
			c.SetReadDeadline(time.Now().Add(15 * time.Second))
			if !tc.answered {
				n, err := io.Copy(io.Discard, c)
				if err != nil || n != 0 {
					t.Fatalf("read %d bytes, %v; want the connection closed without an answer", n, err)
				}
				if err := g.wait(10 * time.Second); err != nil {
					t.Fatalf("exit: %v", err)
				}
				return
			}
			if !g.running() {
				t.Fatal("wsgate exited with a request in flight")
			}
			close(release)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("no answer after QUIT: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || string(body) != "backend at last" {
				t.Fatalf("%d %q", resp.StatusCode, body)
			}
			if err := g.wait(10 * time.Second); err != nil {
				t.Fatalf("exit: %v", err)
			}
		})
	}
}

// TestQuitShutdownTimeoutClosesTunnels: worker_shutdown_timeout cuts a
// long websocket_drain_period short; tunnels still get close 1001.
func TestQuitShutdownTimeoutClosesTunnels(t *testing.T) {
	be := startBackend(t, "b1")
	port := freePort(t)
	g := startGate(t, "worker_shutdown_timeout 1s;\n"+faultConf(port, be.addr, "websocket_drain_period 1h;"))
	var conns []*websocket.Conn
	for i := 0; i < 5; i++ {
		c, _ := dial(t, fmt.Sprintf("ws://127.0.0.1:%d/", port), nil)
		echo(t, c, "x")
		conns = append(conns, c)
	}
	g.signal(syscall.SIGQUIT)
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(15 * time.Second))
		_, _, err := c.ReadMessage()
		if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
			t.Errorf("conn %d: %v, want close 1001", i, err)
		}
	}
	if err := g.wait(10 * time.Second); err != nil {
		t.Errorf("exit: %v", err)
	}
}

// TestTermWaitsForNothing: TERM exits at once, as nginx does, though a
// request is held by limit_req or waits on a backend that never answers;
// the clients' connections are closed without an answer.
func TestTermWaitsForNothing(t *testing.T) {
	check := func(t *testing.T, g *gate, c net.Conn) {
		t.Helper()
		g.signal(syscall.SIGTERM)
		c.SetReadDeadline(time.Now().Add(15 * time.Second))
		if n, err := io.Copy(io.Discard, c); err != nil || n != 0 {
			t.Fatalf("read %d bytes, %v; want the connection closed without an answer", n, err)
		}
		if err := g.wait(10 * time.Second); err != nil {
			t.Fatalf("exit: %v", err)
		}
	}
	t.Run("limit_req", func(t *testing.T) {
		g, c := startDelayed(t, "1r/m", "")
		check(t, g, c)
	})
	t.Run("proxied", func(t *testing.T) {
		be, got, _ := heldBackend(t)
		port := freePort(t)
		g := startGate(t, faultConf(port, be, ""))
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprint(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			t.Fatal("the request did not reach the backend")
		}
		check(t, g, c)
	})
}
