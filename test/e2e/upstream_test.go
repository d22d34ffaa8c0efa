package e2e

import (
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestUpstreamRoundRobinWeights: smooth weighted round robin gives nginx's
// exact sequence for 5:1:1, and 3:2:1 over 600 handshakes lands exactly
// 300/200/100.
func TestUpstreamRoundRobinWeights(t *testing.T) {
	t.Run("sequence 5:1:1", func(t *testing.T) {
		a, b, c := startBackend(t, "a"), startBackend(t, "b"), startBackend(t, "c")
		port := freePort(t)
		startGate(t, upConf(port, fmt.Sprintf("server %s weight=5;\nserver %s;\nserver %s;", a.addr, b.addr, c.addr), ""))
		g := newGetter("")
		var got []string
		for i := 0; i < 14; i++ {
			st, be, _ := g.get(t, fmt.Sprintf("http://127.0.0.1:%d/rr", port))
			if st != 200 {
				t.Fatalf("request %d: status %d", i, st)
			}
			got = append(got, be)
		}
		want := strings.Fields("a a b a c a a a a b a c a a")
		if !slices.Equal(got, want) {
			t.Fatalf("sequence %v, want nginx's %v", got, want)
		}
	})
	t.Run("600 handshakes 3:2:1", func(t *testing.T) {
		a, b, c := startBackend(t, "a"), startBackend(t, "b"), startBackend(t, "c")
		port := freePort(t)
		startGate(t, upConf(port, fmt.Sprintf("server %s weight=3;\nserver %s weight=2;\nserver %s;", a.addr, b.addr, c.addr), ""))
		url := fmt.Sprintf("ws://127.0.0.1:%d/ws", port)
		seen := map[string]int{}
		for i := 0; i < 600; i++ {
			conn, _, be := wsFrom(t, url, "", nil)
			seen[be]++
			conn.Close()
		}
		waitFor(t, 10*time.Second, "600 upgrades at the backends", func() bool {
			return a.upgrades.Load()+b.upgrades.Load()+c.upgrades.Load() == 600
		})
		if a.upgrades.Load() != 300 || b.upgrades.Load() != 200 || c.upgrades.Load() != 100 {
			t.Fatalf("upgrades a=%d b=%d c=%d, want 300/200/100 (clients saw %v)", a.upgrades.Load(), b.upgrades.Load(), c.upgrades.Load(), seen)
		}
	})
}

// ipHashIndex is nginx's ip_hash for a fresh attempt over n peers of
// weight 1: the first three octets, hash 89, (h*113+octet) mod 6271.
func ipHashIndex(o1, o2, o3 byte, n int) int {
	h := 89
	for _, o := range []byte{o1, o2, o3} {
		h = (h*113 + int(o)) % 6271
	}
	return h % n
}

// TestUpstreamIPHash: one client address always reaches one peer, any
// address of its /24 the same one, and /24s spread as nginx's hash says.
func TestUpstreamIPHash(t *testing.T) {
	bs := []*backend{startBackend(t, "a"), startBackend(t, "b"), startBackend(t, "c")}
	port := freePort(t)
	startGate(t, upConf(port, "ip_hash;\n"+servers("", bs[0].addr, bs[1].addr, bs[2].addr), ""))
	url := fmt.Sprintf("ws://127.0.0.1:%d/ws", port)

	first := ""
	for i := 0; i < 10; i++ {
		c, _, be := wsFrom(t, url, "127.0.1.5", nil)
		echo(t, c, "same client")
		c.Close()
		if first == "" {
			first = be
		} else if be != first {
			t.Fatalf("handshake %d from 127.0.1.5 reached %s, earlier ones %s", i, be, first)
		}
	}

	predicted := map[string]bool{}
	for x := 1; x <= 12; x++ {
		want := bs[ipHashIndex(127, 0, byte(x), 3)].name
		predicted[want] = true
		for _, host := range []int{5, 77} {
			src := fmt.Sprintf("127.0.%d.%d", x, host)
			c, _, be := wsFrom(t, url, src, nil)
			c.Close()
			if be != want {
				t.Errorf("client %s reached %s, nginx's ip_hash gives %s", src, be, want)
			}
		}
	}
	if len(predicted) < 2 {
		t.Fatalf("the chosen /24s all hash to one peer; the test shows no spread")
	}
}

// TestUpstreamConsistentHash: removing one of 4 peers from a consistent
// hash moves about a quarter of the keys, and only keys of that peer.
func TestUpstreamConsistentHash(t *testing.T) {
	bs := []*backend{startBackend(t, "a"), startBackend(t, "b"), startBackend(t, "c"), startBackend(t, "d")}
	port := freePort(t)
	conf := func(peers []*backend) string {
		var addrs []string
		for _, b := range peers {
			addrs = append(addrs, b.addr)
		}
		return upConf(port, "hash $arg_key consistent;\n"+servers("", addrs...), "")
	}
	g := startGate(t, conf(bs))
	const keys = 1000
	place := func() []string {
		cl := newGetter("")
		out := make([]string, keys)
		for k := range keys {
			st, be, _ := cl.get(t, fmt.Sprintf("http://127.0.0.1:%d/?key=%d", port, k))
			if st != 200 {
				t.Fatalf("key %d: status %d", k, st)
			}
			out[k] = be
		}
		return out
	}
	before := place()
	again := place()
	if !slices.Equal(before, again) {
		t.Fatal("the same keys reached different peers without any change")
	}
	if !g.reload(t, conf(bs[:3])) {
		t.Fatalf("reload failed:\n%s", g.errorLog())
	}
	after := place()
	moved, onRemoved := 0, 0
	for k := range keys {
		if before[k] == "d" {
			onRemoved++
		}
		if before[k] != after[k] {
			moved++
			if before[k] != "d" {
				t.Errorf("key %d moved from %s to %s, though only d was removed", k, before[k], after[k])
			}
		}
		if after[k] == "d" {
			t.Errorf("key %d still reaches the removed peer", k)
		}
	}
	t.Logf("%d of %d keys moved when d was removed", moved, keys)
	if moved != onRemoved {
		t.Errorf("%d keys moved, %d were on the removed peer", moved, onRemoved)
	}
	if moved < keys*15/100 || moved > keys*35/100 {
		t.Errorf("%d of %d keys moved, want about a quarter (15%%..35%%)", moved, keys)
	}
}

// TestUpstreamLeastConnRestart: 30 long-lived WebSockets spread 10/10/10;
// a peer that restarts loses its tunnels and takes the next 10.
func TestUpstreamLeastConnRestart(t *testing.T) {
	bs := []*ubackend{startUBackend(t, "a", "", false), startUBackend(t, "b", "", false), startUBackend(t, "c", "", false)}
	port := freePort(t)
	g := startGate(t, upConf(port, "least_conn;\n"+servers("", bs[0].addr, bs[1].addr, bs[2].addr), ""))
	base := g.fdCount(t)
	url := fmt.Sprintf("ws://127.0.0.1:%d/ws", port)
	conns := map[string][]*websocket.Conn{}
	for i := 0; i < 30; i++ {
		c, _, be := wsFrom(t, url, "", nil)
		echo(t, c, "hold")
		conns[be] = append(conns[be], c)
	}
	for _, b := range bs {
		if n := len(conns[b.name]); n != 10 {
			t.Fatalf("after 30 handshakes %s holds %d tunnels, want 10 each", b.name, n)
		}
	}

	// c's process dies: its tunnels drop; it comes back on the same port.
	bs[2].stop()
	for i, c := range conns["c"] {
		if !closedByPeer(c, slow(5*time.Second)) {
			t.Fatalf("tunnel %d to the stopped peer is still open", i)
		}
		c.Close()
	}
	conns["c"] = nil
	// wsgate mirrors the backend's end to each client and ends the tunnel
	// when the client ends its side: wait until it has let go of all ten
	// (two descriptors per tunnel, and the epoll set that holds parked
	// tunnels), so that least_conn sees c at zero.
	waitFor(t, 10*time.Second, "wsgate to end the stopped peer's tunnels", func() bool { return g.fdCount(t) <= base+2*20+1 })
	bs[2].start(t)

	for i := 0; i < 10; i++ {
		c, _, be := wsFrom(t, url, "", nil)
		echo(t, c, "after restart")
		if be != "c" {
			t.Errorf("connection %d after the restart went to %s, want c (0 tunnels against 10)", i, be)
		}
		conns[be] = append(conns[be], c)
	}
	for _, c := range conns["a"] {
		echo(t, c, "survivor")
	}
	for _, list := range conns {
		for _, c := range list {
			c.Close()
		}
	}
	g.waitFDs(t, base)
}

// TestUpstreamPassiveHealth: max_fails=3 fail_timeout=2s (stretched by
// slow on a loaded machine): the dead peer gets exactly 3 tries, none until
// fail_timeout passes, then one more; every client request still succeeds
// on the live peer.
func TestUpstreamPassiveHealth(t *testing.T) {
	dead := deadAddr(t)
	live := startBackend(t, "live")
	port := freePort(t)
	failTimeout := slow(2 * time.Second).Round(time.Millisecond)
	g := startGate(t, upConf(port, servers(fmt.Sprintf("max_fails=3 fail_timeout=%dms", failTimeout.Milliseconds()), dead, live.addr), ""))
	cl := newGetter("")
	wsURL := fmt.Sprintf("ws://127.0.0.1:%d/ws", port)
	request := func(i int) {
		t.Helper()
		if i%3 == 0 {
			c, _, be := wsFrom(t, wsURL, "", nil)
			echo(t, c, "ok")
			c.Close()
			if be != "live" {
				t.Fatalf("handshake %d answered by %q", i, be)
			}
			return
		}
		st, be, _ := cl.get(t, fmt.Sprintf("http://127.0.0.1:%d/p%d", port, i))
		if st != 200 || be != "live" {
			t.Fatalf("request %d: status %d from %q", i, st, be)
		}
	}

	// Up to 30 requests, all well inside fail_timeout: round robin
	// reaches the dead peer's 3 failures within the first 6.
	start := time.Now()
	i := 0
	for ; i < 30 && time.Since(start) < failTimeout/2; i++ {
		request(i)
	}
	if i < 10 {
		t.Fatalf("only %d requests in %v: the test needs 10 inside fail_timeout", i, failTimeout/2)
	}
	if n := connectFailures(g.errorLog(), dead); n != 3 {
		t.Fatalf("%d connect() failures at the dead peer over 30 requests, want exactly max_fails=3:\n%s", n, g.errorLog())
	}
	if !strings.Contains(g.errorLog(), "temporarily disabled after 3 failures") {
		t.Errorf("no 'temporarily disabled' warning:\n%s", g.errorLog())
	}

	waitFor(t, 10*time.Second, "one more try at the dead peer after fail_timeout", func() bool {
		request(i)
		i++
		return connectFailures(g.errorLog(), dead) >= 4
	})
	if el := time.Since(start); el < failTimeout {
		t.Errorf("the dead peer was tried again %v after the failures began, before fail_timeout=%v", el, failTimeout)
	}
	// The failed trial disables it again for fail_timeout.
	for again := time.Now(); time.Since(again) < failTimeout/2 && i < 100; i++ {
		request(i)
	}
	if n := connectFailures(g.errorLog(), dead); n != 4 {
		t.Errorf("%d connect() failures at the dead peer, want 4: one trial after fail_timeout, then disabled again", n)
	}
}

// TestUpstreamActiveHealth: a peer whose /health fails stops receiving new
// connections and receives again once it passes; the check can sit in the
// upstream (as the guide writes it) or in the location (as nginx Plus does).
func TestUpstreamActiveHealth(t *testing.T) {
	const hc = "health_check interval=100ms fails=2 passes=2 uri=/health;"
	for _, where := range []string{"upstream", "location"} {
		t.Run(where, func(t *testing.T) {
			a, b := startUBackend(t, "a", "", false), startUBackend(t, "b", "", false)
			port := freePort(t)
			body := servers("", a.addr, b.addr)
			conf := upConf(port, body, "")
			if where == "upstream" {
				conf = upConf(port, body+hc, "")
			} else {
				// Only the /ws location carries it.
				conf = strings.Replace(conf, "proxy_connect_timeout 2s;\n", "proxy_connect_timeout 2s;\n            "+hc+"\n", 1)
			}
			g := startGate(t, conf)
			url := fmt.Sprintf("ws://127.0.0.1:%d/ws", port)
			waitFor(t, 5*time.Second, "health checks of both peers", func() bool {
				return a.healthHits.Load() >= 2 && b.healthHits.Load() >= 2
			})

			a.health.Store(500)
			waitFor(t, 5*time.Second, "a to be marked unhealthy", func() bool {
				return strings.Contains(g.errorLog(), "("+a.addr+") is unhealthy")
			})
			for i := 0; i < 20; i++ {
				c, _, be := wsFrom(t, url, "", nil)
				c.Close()
				if be != "b" {
					t.Fatalf("handshake %d reached %s, which fails its health check", i, be)
				}
			}
			if n := a.upgrades.Load(); n != 0 {
				t.Fatalf("the unhealthy peer got %d upgrades", n)
			}

			a.health.Store(0)
			waitFor(t, 5*time.Second, "a to be healthy again", func() bool {
				return strings.Contains(g.errorLog(), "("+a.addr+") is healthy again")
			})
			seen := map[string]int{}
			for i := 0; i < 20; i++ {
				c, _, be := wsFrom(t, url, "", nil)
				c.Close()
				seen[be]++
			}
			if seen["a"] == 0 {
				t.Fatalf("the recovered peer got no handshake: %v", seen)
			}
			if strings.Contains(g.errorLog(), "("+b.addr+") is unhealthy") {
				t.Errorf("the healthy peer was marked unhealthy:\n%s", g.errorLog())
			}
		})
	}
}

// TestUpstreamHealthCheckWebSocket: type=websocket catches a peer that
// answers 200 to everything but never upgrades.
func TestUpstreamHealthCheckWebSocket(t *testing.T) {
	plain := startUBackend(t, "plain", "", true)
	ws := startUBackend(t, "ws", "", false)
	port := freePort(t)
	g := startGate(t, upConf(port, servers("", plain.addr, ws.addr)+"health_check interval=100ms type=websocket;", ""))
	waitFor(t, 5*time.Second, "the plain peer to be marked unhealthy", func() bool {
		return strings.Contains(g.errorLog(), "("+plain.addr+") is unhealthy")
	})
	waitFor(t, 5*time.Second, "WebSocket probes of the good peer", func() bool { return ws.healthHits.Load() >= 2 })
	url := fmt.Sprintf("ws://127.0.0.1:%d/ws", port)
	for i := 0; i < 20; i++ {
		c, resp, be := wsFrom(t, url, "", nil)
		if resp.StatusCode != 101 || be != "ws" {
			t.Fatalf("handshake %d: %d from %q", i, resp.StatusCode, be)
		}
		echo(t, c, "x")
		c.Close()
	}
	if n := plain.requests.Load(); n != 0 {
		t.Errorf("the peer that refuses upgrades got %d client requests", n)
	}
	waitFor(t, 5*time.Second, "20 upgrades at the good peer", func() bool { return ws.upgrades.Load() == 20 })
	if strings.Contains(g.errorLog(), "("+ws.addr+") is unhealthy") {
		t.Errorf("the WebSocket peer was marked unhealthy:\n%s", g.errorLog())
	}
}

// TestUpstreamBackup: the backup serves only while every primary is down.
func TestUpstreamBackup(t *testing.T) {
	t.Run("primary down", func(t *testing.T) {
		bk := startBackend(t, "backup")
		port := freePort(t)
		dead := deadAddr(t)
		startGate(t, upConf(port, fmt.Sprintf("server %s;\nserver %s backup;", dead, bk.addr), ""))
		for i := 0; i < 5; i++ {
			c, _, be := wsFrom(t, fmt.Sprintf("ws://127.0.0.1:%d/ws", port), "", nil)
			echo(t, c, "via backup")
			c.Close()
			if be != "backup" {
				t.Fatalf("handshake %d reached %q", i, be)
			}
		}
	})
	t.Run("primary live", func(t *testing.T) {
		p1, p2, bk := startBackend(t, "p1"), startBackend(t, "p2"), startBackend(t, "backup")
		port := freePort(t)
		startGate(t, upConf(port, fmt.Sprintf("server %s;\nserver %s;\nserver %s backup;", p1.addr, p2.addr, bk.addr), ""))
		cl := newGetter("")
		for i := 0; i < 20; i++ {
			c, _, be := wsFrom(t, fmt.Sprintf("ws://127.0.0.1:%d/ws", port), "", nil)
			c.Close()
			if be == "backup" {
				t.Fatalf("handshake %d went to the backup while the primaries are live", i)
			}
			if _, be, _ := cl.get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); be == "backup" {
				t.Fatalf("GET %d went to the backup while the primaries are live", i)
			}
		}
		if bk.upgrades.Load() != 0 || bk.lastPlain() != nil {
			t.Fatal("the backup saw traffic")
		}
	})
}

// TestUpstreamStickyCookie: the first 101 sets the cookie; handshakes that
// carry it reach that peer from any address; when it dies they fall back
// and get a new cookie.
func TestUpstreamStickyCookie(t *testing.T) {
	bs := []*ubackend{startUBackend(t, "a", "", false), startUBackend(t, "b", "", false), startUBackend(t, "c", "", false)}
	port := freePort(t)
	startGate(t, upConf(port, servers("", bs[0].addr, bs[1].addr, bs[2].addr)+"sticky cookie srv_id expires=1h path=/;", ""))
	url := fmt.Sprintf("ws://127.0.0.1:%d/ws", port)
	cookieOf := func(resp *http.Response) string {
		for _, c := range resp.Cookies() {
			if c.Name == "srv_id" {
				return c.Value
			}
		}
		return ""
	}

	c, resp, home := wsFrom(t, url, "127.0.0.1", nil)
	echo(t, c, "first")
	c.Close()
	route := cookieOf(resp)
	if route == "" {
		t.Fatalf("the first 101 sets no srv_id cookie: %v", resp.Header)
	}
	if sc := resp.Header.Get("Set-Cookie"); !strings.Contains(sc, "path=/") || !strings.Contains(sc, "max-age=3600") {
		t.Errorf("Set-Cookie %q lacks path=/ or max-age=3600", sc)
	}
	hdr := http.Header{"Cookie": {"srv_id=" + route}}
	for i := 0; i < 20; i++ {
		src := fmt.Sprintf("127.0.0.%d", 10+i)
		c, resp, be := wsFrom(t, url, src, hdr)
		c.Close()
		if be != home {
			t.Fatalf("handshake with the cookie from %s reached %s, want %s", src, be, home)
		}
		if sc := resp.Header.Get("Set-Cookie"); sc != "" {
			t.Errorf("a client that carries its route got Set-Cookie %q", sc)
		}
	}

	var dead *ubackend
	for _, b := range bs {
		if b.name == home {
			dead = b
		}
	}
	dead.stop()
	c, resp, fallback := wsFrom(t, url, "127.0.0.40", hdr)
	echo(t, c, "fallback")
	c.Close()
	if fallback == home {
		t.Fatalf("the handshake reached the stopped peer %s", home)
	}
	newRoute := cookieOf(resp)
	if newRoute == "" || newRoute == route {
		t.Fatalf("after the fallback the cookie is %q (old %q), want a new route", newRoute, route)
	}
	hdr = http.Header{"Cookie": {"srv_id=" + newRoute}}
	for i := 0; i < 5; i++ {
		c, _, be := wsFrom(t, url, fmt.Sprintf("127.0.0.%d", 50+i), hdr)
		c.Close()
		if be != fallback {
			t.Fatalf("with the new cookie the handshake reached %s, want %s", be, fallback)
		}
	}
}

// TestUpstreamFailover: a refusing peer is skipped for the next one; when
// every peer refuses the client gets 502 and each peer one error line.
func TestUpstreamFailover(t *testing.T) {
	t.Run("first refuses", func(t *testing.T) {
		dead := deadAddr(t)
		live := startBackend(t, "live")
		port := freePort(t)
		g := startGate(t, upConf(port, servers("", dead, live.addr), ""))
		c, resp, be := wsFrom(t, fmt.Sprintf("ws://127.0.0.1:%d/ws", port), "", nil)
		echo(t, c, "after failover")
		if resp.StatusCode != 101 || be != "live" {
			t.Fatalf("handshake %d from %q", resp.StatusCode, be)
		}
		waitFor(t, 5*time.Second, "the dead peer's connect() failure", func() bool { return connectFailures(g.errorLog(), dead) == 1 })
	})
	t.Run("all refuse", func(t *testing.T) {
		dead := []string{deadAddr(t), deadAddr(t), deadAddr(t)}
		port := freePort(t)
		g := startGate(t, upConf(port, servers("", dead...), ""))
		_, resp, err := tryDial(t, fmt.Sprintf("ws://127.0.0.1:%d/ws", port), "", nil)
		if err == nil || resp == nil || resp.StatusCode != 502 {
			t.Fatalf("want 502, got %v %v", err, resp)
		}
		waitFor(t, 5*time.Second, "a connect() failure per peer", func() bool {
			for _, d := range dead {
				if connectFailures(g.errorLog(), d) == 0 {
					return false
				}
			}
			return true
		})
		for _, d := range dead {
			if n := connectFailures(g.errorLog(), d); n != 1 {
				t.Errorf("%d connect() failures for %s, want 1:\n%s", n, d, g.errorLog())
			}
		}
	})
}

// TestUpstreamNextUpstreamStatus: with proxy_next_upstream http_500 a peer
// answering 500 is skipped; when every peer answers 500 the client gets the
// last one's answer.
func TestUpstreamNextUpstreamStatus(t *testing.T) {
	a, b := startUBackend(t, "a", "", false), startUBackend(t, "b", "", false)
	a.status.Store(500)
	port := freePort(t)
	// max_fails=0: the 500s must not disable a, so every request tries it.
	startGate(t, upConf(port, servers("max_fails=0", a.addr, b.addr), "proxy_next_upstream error timeout http_500;"))
	cl := newGetter("")
	for i := 0; i < 6; i++ {
		st, be, body := cl.get(t, fmt.Sprintf("http://127.0.0.1:%d/n%d", port, i))
		if st != 200 || be != "b" || body != fmt.Sprintf("b GET /n%d", i) {
			t.Fatalf("GET %d: %d from %q: %q", i, st, be, body)
		}
	}
	if a.requests.Load() == 0 {
		t.Fatal("the 500 peer was never tried: the test shows nothing")
	}
	for i := 0; i < 4; i++ {
		c, resp, be := wsFrom(t, fmt.Sprintf("ws://127.0.0.1:%d/ws", port), "", nil)
		echo(t, c, "past the 500")
		c.Close()
		if resp.StatusCode != 101 || be != "b" {
			t.Fatalf("handshake %d: %d from %q", i, resp.StatusCode, be)
		}
	}

	b.status.Store(500)
	ra, rb := a.requests.Load(), b.requests.Load()
	st, be, body := cl.get(t, fmt.Sprintf("http://127.0.0.1:%d/all", port))
	if a.requests.Load() != ra+1 || b.requests.Load() != rb+1 {
		t.Fatalf("each peer should be tried once: a %d, b %d more requests", a.requests.Load()-ra, b.requests.Load()-rb)
	}
	last := "a"
	if b.lastSeq.Load() > a.lastSeq.Load() {
		last = "b"
	}
	if st != 500 || be != last || body != last+" 500" {
		t.Fatalf("all peers 500: got %d from %q %q, want the last (%s) 500", st, be, body, last)
	}
}

// TestUpstreamMaxConns: 2 peers with max_conns=3 take 6 WebSockets out of
// 20 concurrent handshakes; the rest get 502 with Retry-After; a closed
// tunnel frees a slot.
func TestUpstreamMaxConns(t *testing.T) {
	a, b := startUBackend(t, "a", "", false), startUBackend(t, "b", "", false)
	port := freePort(t)
	g := startGate(t, upConf(port, servers("max_conns=3", a.addr, b.addr), ""))
	base := g.fdCount(t)
	url := fmt.Sprintf("ws://127.0.0.1:%d/ws", port)

	type result struct {
		c    *websocket.Conn
		code int
		ra   string
	}
	results := make([]result, 20)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := websocket.Dialer{HandshakeTimeout: slow(5 * time.Second)}
			c, resp, _ := d.Dial(url, nil)
			if resp != nil {
				results[i] = result{c: c, code: resp.StatusCode, ra: resp.Header.Get("Retry-After")}
			}
		}()
	}
	wg.Wait()
	var open []*websocket.Conn
	for i, r := range results {
		switch {
		case r.c != nil:
			open = append(open, r.c)
		case r.code != 502 || r.ra == "":
			t.Errorf("handshake %d: status %d, Retry-After %q; want 101 or 502 with Retry-After", i, r.code, r.ra)
		}
	}
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	if len(open) != 6 {
		t.Fatalf("%d of 20 concurrent handshakes succeeded, want 6 (2 peers x max_conns=3)", len(open))
	}
	waitFor(t, 5*time.Second, "3 tunnels on each peer", func() bool { return a.open.Load() == 3 && b.open.Load() == 3 })

	_, resp, err := tryDial(t, url, "", nil)
	if err == nil || resp == nil || resp.StatusCode != 502 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("the 7th handshake: %v %v, want 502 with Retry-After", err, resp)
	}

	open[0].Close()
	open = open[1:]
	var next *websocket.Conn
	waitFor(t, 5*time.Second, "a freed slot to take a new handshake", func() bool {
		c, _, err := tryDial(t, url, "", nil)
		next = c
		return err == nil
	})
	echo(t, next, "in the freed slot")
	open = append(open, next)
	if _, resp, err := tryDial(t, url, "", nil); err == nil || resp == nil || resp.StatusCode != 502 {
		t.Fatalf("full again, a handshake got %v %v, want 502", err, resp)
	}
	for _, c := range open {
		c.Close()
	}
	open = nil
	g.waitFDs(t, base)
}

// TestUpstreamFDsReturnToBaseline runs tunnels, plain requests and failed
// tries, closes everything and waits for wsgate's descriptors to come back
// to where they started.
func TestUpstreamFDsReturnToBaseline(t *testing.T) {
	a, b := startUBackend(t, "a", "", false), startUBackend(t, "b", "", false)
	dead := deadAddr(t)
	port := freePort(t)
	g := startGate(t, upConf(port, servers("max_fails=0", dead, a.addr, b.addr), ""))
	base := g.fdCount(t)
	url := fmt.Sprintf("ws://127.0.0.1:%d/ws", port)
	var conns []*websocket.Conn
	for i := 0; i < 60; i++ {
		c, _, _ := wsFrom(t, url, "", nil)
		echo(t, c, "fd")
		conns = append(conns, c)
	}
	cl := newGetter("")
	for i := 0; i < 30; i++ {
		if st, _, _ := cl.get(t, fmt.Sprintf("http://127.0.0.1:%d/x", port)); st != 200 {
			t.Fatalf("GET %d: %d", i, st)
		}
	}
	if n := g.fdCount(t); n < base+2*60 {
		t.Fatalf("with 60 tunnels open wsgate holds %d descriptors, baseline %d: the count shows nothing", n, base)
	}
	// Half close from the client, half from the backend.
	for _, c := range conns[:30] {
		c.Close()
	}
	a.stop()
	b.stop()
	for i, c := range conns[30:] {
		if !closedByPeer(c, slow(5*time.Second)) {
			t.Errorf("tunnel %d is still open after its backend stopped", 30+i)
		}
		c.Close()
	}
	g.waitFDs(t, base)
	if connectFailures(g.errorLog(), dead) == 0 {
		t.Error("the dead peer was never tried")
	}
}

// seedWithServer adds to an upstream-only seed fragment (05, 06, 07) the
// server block the guide pairs it with: /ws proxied to websocket_backend
// with the usual upgrade headers. The fragments themselves carry no server.
func seedWithServer(t *testing.T, name string, backends []string, port int) string {
	s := seed(t, name, backends, fmt.Sprintf("127.0.0.1:%d", port), "")
	i := strings.LastIndex(s, "}")
	return s[:i] + fmt.Sprintf(`    server {
        listen 127.0.0.1:%d;
        location /ws {
            proxy_pass http://websocket_backend;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }
    }
`, port) + s[i:]
}

// TestUpstreamSeedConfigs loads the guide's upstream configs and carries a
// WebSocket session through each.
func TestUpstreamSeedConfigs(t *testing.T) {
	t.Run("05 ip_hash", func(t *testing.T) {
		bs := []*ubackend{startUBackend(t, "b1", "", false), startUBackend(t, "b2", "", false), startUBackend(t, "b3", "", false)}
		port := freePort(t)
		startGate(t, seedWithServer(t, "05-sticky-ip-hash.conf", []string{bs[0].addr, bs[1].addr, bs[2].addr}, port))
		url := fmt.Sprintf("ws://127.0.0.1:%d/ws", port)
		first := ""
		for i := 0; i < 5; i++ {
			c, _, be := wsFrom(t, url, "", nil)
			echo(t, c, "config 05")
			c.Close()
			if first == "" {
				first = be
			} else if be != first {
				t.Fatalf("ip_hash sent one client to %s and %s", first, be)
			}
		}
	})
	t.Run("06 least_conn", func(t *testing.T) {
		bs := []*ubackend{startUBackend(t, "b1", "", false), startUBackend(t, "b2", "", false), startUBackend(t, "b3", "", false), startUBackend(t, "backup", "", false)}
		port := freePort(t)
		startGate(t, seedWithServer(t, "06-least-conn.conf", []string{bs[0].addr, bs[1].addr, bs[2].addr, bs[3].addr}, port))
		url := fmt.Sprintf("ws://127.0.0.1:%d/ws", port)
		seen := map[string]int{}
		for i := 0; i < 12; i++ {
			c, _, be := wsFrom(t, url, "", nil)
			echo(t, c, "config 06")
			seen[be]++
		}
		// Weights 3:2:1, least connections per weight: 6/4/2, backup idle.
		if seen["b1"] != 6 || seen["b2"] != 4 || seen["b3"] != 2 || seen["backup"] != 0 {
			t.Fatalf("12 open tunnels spread %v, want b1:6 b2:4 b3:2", seen)
		}
	})
	t.Run("07 health checks", func(t *testing.T) {
		b1, b2 := startUBackend(t, "b1", "", false), startUBackend(t, "b2", "", false)
		port := freePort(t)
		startGate(t, seedWithServer(t, "07-health-checks.conf", []string{b1.addr, b2.addr}, port))
		url := fmt.Sprintf("ws://127.0.0.1:%d/ws", port)
		seen := map[string]int{}
		for i := 0; i < 4; i++ {
			c, _, be := wsFrom(t, url, "", nil)
			echo(t, c, "config 07")
			c.Close()
			seen[be]++
		}
		if seen["b1"] != 2 || seen["b2"] != 2 {
			t.Errorf("4 handshakes over the passive upstream spread %v, want 2/2", seen)
		}
		waitFor(t, 5*time.Second, "websocket_backend_active's GET /health at its backend", func() bool { return b1.healthHits.Load() >= 1 })
		if n := b2.healthHits.Load(); n != 0 {
			t.Errorf("b2, outside the active upstream, got %d health checks", n)
		}
	})
}

// TestUpstreamNextUpstreamRules: proxy_next_upstream_tries, off, and the
// rule that a non-idempotent request is not repeated once a peer got it
// (but is after a connect error, which sent nothing).
func TestUpstreamNextUpstreamRules(t *testing.T) {
	t.Run("tries 2", func(t *testing.T) {
		dead := []string{deadAddr(t), deadAddr(t), deadAddr(t)}
		port := freePort(t)
		g := startGate(t, upConf(port, servers("", dead...), "proxy_next_upstream_tries 2;"))
		if st, _, _ := newGetter("").get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); st != 502 {
			t.Fatalf("status %d, want 502", st)
		}
		total := 0
		for _, d := range dead {
			total += connectFailures(g.errorLog(), d)
		}
		if total != 2 {
			t.Fatalf("%d tries, want proxy_next_upstream_tries=2:\n%s", total, g.errorLog())
		}
	})
	t.Run("off", func(t *testing.T) {
		dead := deadAddr(t)
		live := startBackend(t, "live")
		port := freePort(t)
		g := startGate(t, upConf(port, servers("", dead, live.addr), "proxy_next_upstream off;"))
		_, resp, err := tryDial(t, fmt.Sprintf("ws://127.0.0.1:%d/ws", port), "", nil)
		if err == nil || resp == nil || resp.StatusCode != 502 {
			t.Fatalf("want 502 without a next try, got %v %v", err, resp)
		}
		if live.upgrades.Load() != 0 || connectFailures(g.errorLog(), dead) != 1 {
			t.Fatalf("live upgrades %d, dead tries %d; want 0 and 1", live.upgrades.Load(), connectFailures(g.errorLog(), dead))
		}
	})
	t.Run("POST after a connect error", func(t *testing.T) {
		dead := deadAddr(t)
		live := startBackend(t, "live")
		port := freePort(t)
		startGate(t, upConf(port, servers("", dead, live.addr), ""))
		resp, err := newGetter("").c.Post(fmt.Sprintf("http://127.0.0.1:%d/form", port), "text/plain", strings.NewReader("hello"))
		if err != nil {
			t.Fatal(err)
		}
		body := new(strings.Builder)
		io.Copy(body, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || body.String() != "live POST /form body=5" {
			t.Fatalf("POST: %d %q", resp.StatusCode, body)
		}
	})
	for _, nonIdem := range []bool{false, true} {
		t.Run(fmt.Sprintf("POST after a 500, non_idempotent %v", nonIdem), func(t *testing.T) {
			a, b := startUBackend(t, "a", "", false), startUBackend(t, "b", "", false)
			a.status.Store(500)
			port := freePort(t)
			nu := "proxy_next_upstream error timeout http_500;"
			if nonIdem {
				nu = "proxy_next_upstream error timeout http_500 non_idempotent;"
			}
			startGate(t, upConf(port, servers("max_fails=0", a.addr, b.addr), nu))
			// A fresh round robin tries a first.
			resp, err := newGetter("").c.Post(fmt.Sprintf("http://127.0.0.1:%d/form", port), "text/plain", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want, wantB := 500, int64(0)
			if nonIdem {
				want, wantB = 200, 1
			}
			if resp.StatusCode != want || a.requests.Load() != 1 || b.requests.Load() != wantB {
				t.Fatalf("POST: %d, a saw %d, b saw %d; want %d, 1, %d", resp.StatusCode, a.requests.Load(), b.requests.Load(), want, wantB)
			}
		})
	}
}

// TestUpstreamReloadKeepsPeerState: open tunnels keep counting toward
// least_conn and max_conns across a reload, as nginx's shared zone does.
func TestUpstreamReloadKeepsPeerState(t *testing.T) {
	t.Run("least_conn", func(t *testing.T) {
		bs := []*ubackend{startUBackend(t, "a", "", false), startUBackend(t, "b", "", false), startUBackend(t, "c", "", false)}
		port := freePort(t)
		conf := upConf(port, "least_conn;\n"+servers("", bs[0].addr, bs[1].addr, bs[2].addr), "")
		g := startGate(t, conf)
		url := fmt.Sprintf("ws://127.0.0.1:%d/ws", port)
		conns := map[string][]*websocket.Conn{}
		for i := 0; i < 9; i++ {
			c, _, be := wsFrom(t, url, "", nil)
			conns[be] = append(conns[be], c)
		}
		for _, c := range conns["a"] {
			c.Close()
		}
		waitFor(t, 5*time.Second, "a's tunnels to close", func() bool { return bs[0].open.Load() == 0 })
		if !g.reload(t, strings.Replace(conf, "proxy_connect_timeout 2s;", "proxy_connect_timeout 3s;", 1)) {
			t.Fatalf("reload failed:\n%s", g.errorLog())
		}
		for i := 0; i < 3; i++ {
			c, _, be := wsFrom(t, url, "", nil)
			c.Close()
			if be != "a" {
				t.Fatalf("after the reload handshake %d went to %s; a has 0 tunnels, b and c 3 each", i, be)
			}
		}
	})
	t.Run("max_conns", func(t *testing.T) {
		a := startUBackend(t, "a", "", false)
		port := freePort(t)
		// A second, down peer keeps the upstream from being a lone peer.
		conf := upConf(port, fmt.Sprintf("server %s max_conns=2;\nserver %s down;", a.addr, deadAddr(t)), "")
		g := startGate(t, conf)
		url := fmt.Sprintf("ws://127.0.0.1:%d/ws", port)
		wsFrom(t, url, "", nil)
		wsFrom(t, url, "", nil)
		if !g.reload(t, strings.Replace(conf, "proxy_connect_timeout 2s;", "proxy_connect_timeout 3s;", 1)) {
			t.Fatalf("reload failed:\n%s", g.errorLog())
		}
		_, resp, err := tryDial(t, url, "", nil)
		if err == nil || resp == nil || resp.StatusCode != 502 {
			t.Fatalf("a third tunnel after the reload: %v %v, want 502 (max_conns=2 with 2 open)", err, resp)
		}
	})
}

// TestUpstreamLonePeer: like nginx, a lone peer is never marked failed:
// every request tries it again.
func TestUpstreamLonePeer(t *testing.T) {
	dead := deadAddr(t)
	port := freePort(t)
	g := startGate(t, upConf(port, servers("max_fails=1 fail_timeout=30s", dead), ""))
	cl := newGetter("")
	for i := 0; i < 5; i++ {
		if st, _, _ := cl.get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); st != 502 {
			t.Fatalf("request %d: %d, want 502", i, st)
		}
	}
	if n := connectFailures(g.errorLog(), dead); n != 5 {
		t.Fatalf("%d tries at the lone peer over 5 requests, want 5", n)
	}
}

// TestUpstreamBackupRecovery: traffic leaves the backup once the primary
// is back and its fail_timeout (1 s, stretched by slow) has passed.
func TestUpstreamBackupRecovery(t *testing.T) {
	p := startUBackend(t, "primary", "", false)
	bk := startUBackend(t, "backup", "", false)
	port := freePort(t)
	failTimeout := slow(time.Second).Round(time.Millisecond)
	g := startGate(t, upConf(port, fmt.Sprintf("server %s fail_timeout=%dms;\nserver %s backup;", p.addr, failTimeout.Milliseconds(), bk.addr), ""))
	url := fmt.Sprintf("ws://127.0.0.1:%d/ws", port)
	p.stop()
	start := time.Now()
	for i := 0; i < 3; i++ {
		c, _, be := wsFrom(t, url, "", nil)
		c.Close()
		if be != "backup" {
			t.Fatalf("with the primary down handshake %d reached %s", i, be)
		}
	}
	if el := time.Since(start); el >= failTimeout {
		t.Fatalf("3 handshakes took %v, not inside fail_timeout=%v: set WSGATE_TEST_TIME_FACTOR higher", el, failTimeout)
	}
	if connectFailures(g.errorLog(), p.addr) != 1 {
		t.Errorf("%d tries at the failed primary within fail_timeout, want 1", connectFailures(g.errorLog(), p.addr))
	}
	p.start(t)
	waitFor(t, 10*time.Second, "the primary to take traffic again", func() bool {
		c, _, be := wsFrom(t, url, "", nil)
		c.Close()
		return be == "primary"
	})
	before := bk.upgrades.Load()
	for i := 0; i < 10; i++ {
		c, _, be := wsFrom(t, url, "", nil)
		c.Close()
		if be != "primary" {
			t.Fatalf("after recovery handshake %d reached %s", i, be)
		}
	}
	if bk.upgrades.Load() != before {
		t.Fatal("the backup took traffic while the primary is live")
	}
}

// TestUpstreamIPHashFallback: a client whose peer is dead lands on one
// other peer, always the same.
func TestUpstreamIPHashFallback(t *testing.T) {
	bs := []*ubackend{startUBackend(t, "a", "", false), startUBackend(t, "b", "", false), startUBackend(t, "c", "", false)}
	port := freePort(t)
	g := startGate(t, upConf(port, "ip_hash;\n"+servers("", bs[0].addr, bs[1].addr, bs[2].addr), ""))
	url := fmt.Sprintf("ws://127.0.0.1:%d/ws", port)
	const src = "127.0.7.9"
	home := bs[ipHashIndex(127, 0, 7, 3)]
	home.stop()
	fallback := ""
	for i := 0; i < 10; i++ {
		c, _, be := wsFrom(t, url, src, nil)
		c.Close()
		if be == home.name {
			t.Fatalf("reached the stopped peer")
		}
		if fallback == "" {
			fallback = be
		} else if be != fallback {
			t.Fatalf("the client's fallback moved from %s to %s", fallback, be)
		}
	}
	if n := connectFailures(g.errorLog(), home.addr); n != 1 {
		t.Errorf("%d tries at the dead peer, want 1 (then disabled for fail_timeout)", n)
	}
}

// TestUpstreamPlainHash: `hash $arg_key` without consistent maps keys as
// nginx does: ((crc32(key) >> 16) & 0x7fff) mod total weight.
func TestUpstreamPlainHash(t *testing.T) {
	bs := []*backend{startBackend(t, "a"), startBackend(t, "b"), startBackend(t, "c"), startBackend(t, "d")}
	port := freePort(t)
	startGate(t, upConf(port, "hash $arg_key;\n"+servers("", bs[0].addr, bs[1].addr, bs[2].addr, bs[3].addr), ""))
	cl := newGetter("")
	for k := 0; k < 100; k++ {
		key := fmt.Sprintf("user%d", k)
		want := bs[((crc32.ChecksumIEEE([]byte(key))>>16)&0x7fff)%4].name
		if _, be, _ := cl.get(t, fmt.Sprintf("http://127.0.0.1:%d/?key=%s", port, key)); be != want {
			t.Errorf("key %s reached %s, nginx's hash gives %s", key, be, want)
		}
	}
}

// TestUpstreamAllUnhealthy: when the health check fails every peer the
// client gets 502 with Retry-After and no connection is attempted.
func TestUpstreamAllUnhealthy(t *testing.T) {
	a := startUBackend(t, "a", "", false)
	a.health.Store(503)
	port := freePort(t)
	g := startGate(t, upConf(port, servers("", a.addr)+"health_check interval=100ms uri=/health;", ""))
	waitFor(t, 5*time.Second, "a to be marked unhealthy", func() bool {
		return strings.Contains(g.errorLog(), "("+a.addr+") is unhealthy")
	})
	_, resp, err := tryDial(t, fmt.Sprintf("ws://127.0.0.1:%d/ws", port), "", nil)
	if err == nil || resp == nil || resp.StatusCode != 502 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("want 502 with Retry-After, got %v %v", err, resp)
	}
	if a.requests.Load() != 0 || !strings.Contains(g.errorLog(), "no live upstreams") {
		t.Fatalf("the unhealthy peer saw %d requests; error log:\n%s", a.requests.Load(), g.errorLog())
	}
}

// TestUpstreamAddrListsEveryTry: the access log's $upstream_addr and
// $upstream_status list every peer tried, comma-separated, as nginx does.
func TestUpstreamAddrListsEveryTry(t *testing.T) {
	be := startBackend(t, "b1")
	dead1, dead2 := deadAddr(t), deadAddr(t)
	port := freePort(t)
	g := startGate(t, fmt.Sprintf(`
http {
    log_format tries '$status $upstream_addr $upstream_status';
    upstream u { server %s; server %s; server %s; }
    server {
        listen 127.0.0.1:%d;
        access_log {{DIR}}/tries.log tries;
        location / {
            proxy_pass http://u;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }
    }
}`, dead1, dead2, be.addr, port))
	c, _ := dial(t, fmt.Sprintf("ws://127.0.0.1:%d/", port), nil)
	echo(t, c, "x")
	c.Close()
	want := fmt.Sprintf("101 %s, %s, %s 502, 502, 101", dead1, dead2, be.addr)
	waitFor(t, 5*time.Second, "the session's log line", func() bool {
		b, _ := os.ReadFile(filepath.Join(g.dir, "tries.log"))
		return strings.Contains(string(b), want)
	})
}

// TestUpstreamKeepalive: with `keepalive`, HTTP/1.1 and Connection "",
// plain requests reuse backend connections; a backend that closes an idle
// connection costs no failed request.
func TestUpstreamKeepalive(t *testing.T) {
	var conns atomic.Int64
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "ok")
	}))
	be.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	be.Start()
	t.Cleanup(be.Close)
	beAddr := be.Listener.Addr().String()
	port := freePort(t)
	startGate(t, fmt.Sprintf(`
http {
    upstream pool { server %s; keepalive 4; keepalive_timeout 30s; keepalive_requests 50; }
    server {
        listen 127.0.0.1:%d;
        location / {
            proxy_pass http://pool;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}`, beAddr, port))
	get := newGetter("127.0.0.1")
	for i := 0; i < 40; i++ {
		if st, _, _ := get.get(t, fmt.Sprintf("http://127.0.0.1:%d/k%d", port, i)); st != 200 {
			t.Fatalf("request %d: %d", i, st)
		}
	}
	if n := conns.Load(); n > 2 {
		t.Errorf("40 sequential requests opened %d backend connections, want them reused", n)
	}
	// The backend drops its idle connections: the next request still works.
	be.CloseClientConnections()
	if st, _, _ := get.get(t, fmt.Sprintf("http://127.0.0.1:%d/after", port)); st != 200 {
		t.Fatalf("after the backend closed idle connections: %d", st)
	}
	// keepalive_requests 50: after 50 uses a connection is replaced.
	for i := 0; i < 60; i++ {
		get.get(t, fmt.Sprintf("http://127.0.0.1:%d/r%d", port, i))
	}
	if n := conns.Load(); n < 3 {
		t.Errorf("keepalive_requests 50 never replaced a connection (%d opened)", n)
	}
}
