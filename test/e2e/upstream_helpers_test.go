package e2e

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// seq orders requests across every ubackend of a test run, so a test can
// tell which peer saw a request last.
var seq atomic.Int64

// ubackend is a backend for the upstream tests that, unlike startBackend's,
// listens on an address the test chooses (so it can "restart" on the same
// port), can answer its health URI or every request with a chosen status,
// can refuse upgrades, and can drop its open WebSockets.
type ubackend struct {
	name string
	addr string
	// status, when not 0, is the answer to every request but /health,
	// upgrades included.
	status atomic.Int32
	// health, when not 0, is the answer to GET /health.
	health atomic.Int32
	// noUpgrade makes it a plain HTTP server that answers 200 to an
	// upgrade request too.
	noUpgrade bool
	// hold, when not 0, is how long a WebSocket handshake waits before
	// its 101.
	hold atomic.Int64

	upgrades   atomic.Int64
	open       atomic.Int64
	requests   atomic.Int64 // requests other than /health
	healthHits atomic.Int64
	lastSeq    atomic.Int64

	mu    sync.Mutex
	srv   *http.Server
	done  chan struct{}
	conns map[*websocket.Conn]bool
	wg    sync.WaitGroup // WebSocket handlers
}

// startUBackend starts a ubackend on addr ("" picks a free loopback port).
func startUBackend(t testing.TB, name, addr string, noUpgrade bool) *ubackend {
	t.Helper()
	b := &ubackend{name: name, addr: addr, noUpgrade: noUpgrade, conns: map[*websocket.Conn]bool{}}
	if b.addr == "" {
		b.addr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	}
	b.start(t)
	t.Cleanup(b.stop)
	return b
}

func (b *ubackend) handler() http.Handler {
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// wsgate's checker sends this User-Agent: its probes are counted
		// apart from client traffic.
		probe := r.UserAgent() == "wsgate-health-check"
		if r.URL.Path == "/health" {
			b.healthHits.Add(1)
			if st := b.health.Load(); st != 0 {
				w.WriteHeader(int(st))
			}
			fmt.Fprint(w, "health")
			return
		}
		if probe {
			b.healthHits.Add(1)
		} else {
			b.requests.Add(1)
		}
		b.lastSeq.Store(seq.Add(1))
		w.Header().Set("X-Backend", b.name)
		if st := b.status.Load(); st != 0 {
			w.WriteHeader(int(st))
			fmt.Fprintf(w, "%s %d", b.name, st)
			return
		}
		if b.noUpgrade || !websocket.IsWebSocketUpgrade(r) {
			fmt.Fprintf(w, "%s %s %s", b.name, r.Method, r.URL.RequestURI())
			return
		}
		time.Sleep(time.Duration(b.hold.Load()))
		c, err := up.Upgrade(w, r, http.Header{"X-Backend": {b.name}})
		if err != nil {
			return
		}
		b.mu.Lock()
		if b.conns == nil {
			b.mu.Unlock()
			c.Close()
			return
		}
		b.conns[c] = true
		b.wg.Add(1)
		b.mu.Unlock()
		if probe {
			defer func() {
				c.Close()
				b.mu.Lock()
				delete(b.conns, c)
				b.mu.Unlock()
				b.wg.Done()
			}()
			c.SetReadDeadline(time.Now().Add(slow(5 * time.Second)))
			c.ReadMessage() // the checker's close frame
			return
		}
		b.upgrades.Add(1)
		b.open.Add(1)
		defer func() {
			b.open.Add(-1)
			c.Close()
			b.mu.Lock()
			delete(b.conns, c)
			b.mu.Unlock()
			b.wg.Done()
		}()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, msg); err != nil {
				return
			}
		}
	})
}

// start listens on b.addr; SO_REUSEADDR (Go's default) lets a restart
// take the port back at once.
func (b *ubackend) start(t testing.TB) {
	t.Helper()
	var ln net.Listener
	var err error
	deadline := time.Now().Add(slow(5 * time.Second))
	for {
		if ln, err = net.Listen("tcp", b.addr); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("backend %s: %v", b.name, err)
	}
	srv := &http.Server{Handler: b.handler(), ErrorLog: nil}
	done := make(chan struct{})
	b.mu.Lock()
	b.srv, b.done = srv, done
	if b.conns == nil {
		b.conns = map[*websocket.Conn]bool{}
	}
	b.mu.Unlock()
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
}

// stop closes the listener, every plain connection and every WebSocket
// (hijacked connections are not closed by http.Server.Close), as a backend
// process that dies would; it waits until the handlers have returned.
func (b *ubackend) stop() {
	b.mu.Lock()
	srv, done := b.srv, b.done
	b.srv = nil
	conns := b.conns
	b.conns = nil
	b.mu.Unlock()
	if srv == nil {
		return
	}
	srv.Close()
	<-done
	for c := range conns {
		c.NetConn().Close()
	}
	b.wg.Wait()
}

// upConf is a gate with one upstream block (its body given) that /ws
// proxies with the upgrade headers and / proxies as plain HTTP; loc is
// added to both locations.
func upConf(port int, upstreamBody, loc string) string {
	return fmt.Sprintf(`error_log {{DIR}}/error.log info;
events { worker_connections 1024; }
http {
    upstream pool {
%s
    }
    server {
        listen 127.0.0.1:%d;
        location /ws {
            proxy_pass http://pool;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_connect_timeout 2s;
%s
        }
        location / {
            proxy_pass http://pool;
            proxy_connect_timeout 2s;
%s
        }
    }
}
`, upstreamBody, port, loc, loc)
}

// servers renders "server ADDR PARAMS;" lines.
func servers(params string, addrs ...string) string {
	var b strings.Builder
	for _, a := range addrs {
		fmt.Fprintf(&b, "        server %s %s;\n", a, params)
	}
	return b.String()
}

// deadAddr is a loopback address that refuses connections.
func deadAddr(t testing.TB) string {
	return fmt.Sprintf("127.0.0.1:%d", freePort(t))
}

// localDialer binds the client side of connections to src (any address of
// 127.0.0.0/8, all local on Linux), so that wsgate sees distinct clients.
func localDialer(src string) *net.Dialer {
	d := &net.Dialer{Timeout: slow(5 * time.Second)}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	return d
}

// tryDial opens a WebSocket from source address src ("" = any) and leaves
// failures to the caller. A successful connection is closed at cleanup.
func tryDial(t testing.TB, url, src string, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	nd := localDialer(src)
	d := websocket.Dialer{HandshakeTimeout: slow(5 * time.Second), NetDialContext: nd.DialContext}
	c, resp, err := d.Dial(url, hdr)
	if resp != nil && resp.Body != nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, resp, err
}

// wsFrom is tryDial that fails the test unless the handshake succeeds; it
// returns the backend that answered.
func wsFrom(t testing.TB, url, src string, hdr http.Header) (*websocket.Conn, *http.Response, string) {
	t.Helper()
	c, resp, err := tryDial(t, url, src, hdr)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s from %q: %v (status %d)", url, src, err, status)
	}
	return c, resp, resp.Header.Get("X-Backend")
}

// getter sends plain GETs from one source address, one connection each,
// so that no connection outlives the request.
type getter struct {
	c *http.Client
}

func newGetter(src string) *getter {
	tr := &http.Transport{DialContext: localDialer(src).DialContext, DisableKeepAlives: true}
	return &getter{c: &http.Client{Transport: tr, Timeout: slow(10 * time.Second)}}
}

// get returns the status, the X-Backend header and the body.
func (g *getter) get(t testing.TB, url string) (int, string, string) {
	t.Helper()
	resp, err := g.c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Backend"), string(body)
}

// connectFailures counts the error log's connect() failed lines for addr:
// one per failed try at that peer.
func connectFailures(log, addr string) int {
	re := regexp.MustCompile(`connect\(\) failed \(111: Connection refused\) while connecting to upstream.*upstream: "http://` + regexp.QuoteMeta(addr) + `[/"]`)
	return len(re.FindAllString(log, -1))
}

// fdCount counts the open file descriptors of the wsgate process.
func (g *gate) fdCount(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", g.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// waitFDs waits until the gate holds no more descriptors than base: every
// client and backend connection of the test is closed by then.
func (g *gate) waitFDs(t testing.TB, base int) {
	t.Helper()
	d := slow(10 * time.Second)
	deadline := time.Now().Add(d)
	for {
		n := g.fdCount(t)
		if n <= base {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("wsgate holds %d file descriptors %v after every connection closed, baseline %d", n, d, base)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// closedByPeer reports whether reading c ends in an error within d: the
// tunnel behind it is gone.
func closedByPeer(c *websocket.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, _, err := c.ReadMessage()
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}
