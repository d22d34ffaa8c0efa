package e2e

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestUpstreamQueue: nginx Plus's `queue`: with the only peer at
// max_conns (a WebSocket holds it), a request waits in the queue and is
// served once the WebSocket closes; a request beyond the queue's size
// gets 502 at once, and one that waits longer than timeout= gets 502;
// both are logged.
func TestUpstreamQueue(t *testing.T) {
	be := startBackend(t, "a")
	port := freePort(t)
	g := startGate(t, upConf(port, fmt.Sprintf("server %s max_conns=1;\nqueue 1 timeout=30s;", be.addr), "add_header X-Queue-Time $upstream_queue_time;"))
	ws, _ := dial(t, fmt.Sprintf("ws://127.0.0.1:%d/ws", port), nil)
	echo(t, ws, "holds the only slot")

	// Two requests: one takes the queue's only place, the other finds it
	// full and gets 502 at once.
	url := fmt.Sprintf("http://127.0.0.1:%d/q", port)
	answers := make(chan string, 2)
	for range 2 {
		go func() {
			resp, err := http.Get(url)
			if err != nil || resp.StatusCode != 200 {
				answers <- ""
				return
			}
			resp.Body.Close()
			answers <- resp.Header.Get("X-Backend") + " " + resp.Header.Get("X-Queue-Time")
		}()
	}
	select {
	case got := <-answers:
		if got != "" || !strings.Contains(g.errorLog(), "upstream queue is full while connecting to upstream") {
			t.Fatalf("first answer %q (want a 502 for a full queue); error log:\n%s", got, g.errorLog())
		}
	case <-time.After(slow(10 * time.Second)):
		t.Fatal("no request was refused by the full queue")
	}
	select {
	case got := <-answers:
		t.Fatalf("the queued request was answered (%q) while the slot was held", got)
	default:
	}
	ws.Close()
	select {
	case got := <-answers:
		if be, qt, _ := strings.Cut(got, " "); be != "a" || !regexp.MustCompile(`^\d+\.\d{3}$`).MatchString(qt) {
			t.Fatalf("the queued request got %q, want a 200 from a with its time in the queue", got)
		}
	case <-time.After(slow(10 * time.Second)):
		t.Fatal("the queued request was not served after the slot was freed")
	}

	port2 := freePort(t)
	g2 := startGate(t, upConf(port2, fmt.Sprintf("server %s max_conns=1;\nqueue 5 timeout=300ms;", be.addr), ""))
	ws2, _ := dial(t, fmt.Sprintf("ws://127.0.0.1:%d/ws", port2), nil)
	echo(t, ws2, "holds the only slot")
	start := time.Now()
	st, _, _ := newGetter("").get(t, fmt.Sprintf("http://127.0.0.1:%d/q", port2))
	if st != 502 || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("timed out in queue: %d after %v, want 502 after 300ms", st, time.Since(start))
	}
	if !strings.Contains(g2.errorLog(), "upstream queue timed out while connecting to upstream") {
		t.Fatalf("error log:\n%s", g2.errorLog())
	}
}

// TestUpstreamLeastTime: nginx Plus's least_time counts WebSocket
// handshake time: once each peer was measured, new WebSockets go to the
// peer that answers its handshakes sooner.
func TestUpstreamLeastTime(t *testing.T) {
	start := func(name string, delay time.Duration) string {
		up := websocket.Upgrader{}
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(delay) // the backend's own handshake time
			c, err := up.Upgrade(w, r, http.Header{"X-Backend": {name}})
			if err != nil {
				return
			}
			defer c.Close()
			c.ReadMessage()
		}))
		t.Cleanup(s.Close)
		return s.Listener.Addr().String()
	}
	slowBe, fastBe := start("slow", slow(time.Second)), start("fast", 0)
	port := freePort(t)
	startGate(t, upConf(port, fmt.Sprintf("least_time header;\nserver %s;\nserver %s;", slowBe, fastBe), ""))
	url := fmt.Sprintf("ws://127.0.0.1:%d/ws", port)
	seen := map[string]int{}
	for range 12 {
		c, resp := dial(t, url, nil)
		seen[resp.Header.Get("X-Backend")]++
		c.Close()
	}
	// The first two handshakes measure both peers; every later one goes
	// to the fast peer.
	if seen["slow"] != 1 || seen["fast"] != 11 {
		t.Fatalf("handshakes went %v, want slow=1 fast=11", seen)
	}
}

// TestUpstreamDrain: nginx Plus's drain: a draining server takes only the
// requests bound to it by the sticky cookie, WebSockets included; new
// clients go elsewhere.
func TestUpstreamDrain(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	port := freePort(t)
	startGate(t, upConf(port, fmt.Sprintf("sticky cookie srv;\nserver %s;\nserver %s drain;", a.addr, b.addr), ""))
	url := fmt.Sprintf("http://127.0.0.1:%d/d", port)
	allFrom(t, url, "a", 6)
	sum := md5.Sum([]byte(b.addr))
	bound := http.Header{"Cookie": {"srv=" + hex.EncodeToString(sum[:])}}
	req, _ := http.NewRequest("GET", url, nil)
	req.Header = bound
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Backend"); got != "b" {
		t.Fatalf("a request bound to the draining server went to %q", got)
	}
	ws, wresp := dial(t, fmt.Sprintf("ws://127.0.0.1:%d/ws", port), bound)
	if got := wresp.Header.Get("X-Backend"); got != "b" {
		t.Fatalf("a WebSocket bound to the draining server went to %q", got)
	}
	echo(t, ws, "bound")
}

// TestUpstreamStickyRoute: nginx Plus's `sticky route`: the first
// non-empty variable names the server by its route=; WebSockets follow
// it; without a route, or with one whose server is down, the balancer
// chooses.
func TestUpstreamStickyRoute(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	dead := deadAddr(t)
	port := freePort(t)
	startGate(t, upConf(port, fmt.Sprintf("sticky route $cookie_route $arg_route;\nserver %s route=a;\nserver %s route=b;\nserver %s route=c down;", a.addr, b.addr, dead), ""))
	base := fmt.Sprintf("http://127.0.0.1:%d/r", port)
	allFrom(t, base+"?route=b", "b", 4)
	allFrom(t, base+"?route=a", "a", 4)
	seen := map[string]bool{}
	for range 4 {
		seen[backendOf(base+"?route=c")] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Fatalf("a route to a down server: %v, want the balancer's choice", seen)
	}
	ws, resp := dial(t, fmt.Sprintf("ws://127.0.0.1:%d/ws", port), http.Header{"Cookie": {"route=b"}})
	if got := resp.Header.Get("X-Backend"); got != "b" {
		t.Fatalf("a WebSocket with route b went to %q", got)
	}
	echo(t, ws, "routed")
}
