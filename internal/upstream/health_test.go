package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// backend is a loopback HTTP server whose /health status can be switched.
type backend struct {
	srv    *httptest.Server
	status atomic.Int32
	hits   atomic.Int64
}

func newBackend(t *testing.T) *backend {
	b := &backend{}
	b.status.Store(200)
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			b.hits.Add(1)
			w.WriteHeader(int(b.status.Load()))
			return
		}
		w.WriteHeader(404)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) addr() string { return b.srv.Listener.Addr().String() }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

func TestHealthCheckHTTP(t *testing.T) {
	good, flaky := newBackend(t), newBackend(t)
	u := New(Config{
		Name: "ws",
		Peers: []PeerConfig{
			{Addr: good.addr(), Weight: 1, MaxFails: 1},
			{Addr: flaky.addr(), Weight: 1, MaxFails: 1},
		},
		Health: &HealthCheck{Interval: 20 * time.Millisecond, Fails: 2, Passes: 2, URI: "/health"},
	}, nil)
	u.Start()
	defer u.Close()
	fp := u.Peers()[1]
	waitFor(t, "first checks", func() bool { return flaky.hits.Load() >= 2 && good.hits.Load() >= 2 })
	if !fp.State().Healthy {
		t.Fatal("healthy peer marked unhealthy")
	}

	flaky.status.Store(500)
	from := flaky.hits.Load()
	waitFor(t, "unhealthy", func() bool { return !fp.State().Healthy })
	if n := flaky.hits.Load() - from; n < 2 {
		t.Fatalf("unhealthy after %d failed checks, want fails=2", n)
	}
	for range 20 {
		if got := pick(t, u, nil); got != good.addr() {
			t.Fatalf("unhealthy peer picked")
		}
	}

	flaky.status.Store(302) // 3xx passes
	from = flaky.hits.Load()
	waitFor(t, "healthy again", func() bool { return fp.State().Healthy })
	if n := flaky.hits.Load() - from; n < 2 {
		t.Fatalf("healthy after %d passed checks, want passes=2", n)
	}
}

func TestRecordCheckCounts(t *testing.T) {
	slow := peer("a", 1)
	slow.SlowStart = time.Minute
	clk := newClock()
	u := New(Config{Name: "ws", Peers: []PeerConfig{slow, peer("b", 1)}, Now: clk.Now}, nil)
	hc := HealthCheck{Fails: 3, Passes: 2}.withDefaults("ws")
	u.health = &hc
	p := u.Peers()[0]
	p.st.owner = u
	bad := errors.New("status 500")
	steps := []struct {
		err     error
		healthy bool
	}{
		{bad, true}, {bad, true}, {nil, true}, // a pass resets the count
		{bad, true}, {bad, true}, {bad, false},
		{nil, false}, {bad, false}, {nil, false}, {nil, true},
	}
	for i, s := range steps {
		u.recordCheck(p, s.err)
		if got := p.State().Healthy; got != s.healthy {
			t.Fatalf("step %d: healthy = %v, want %v", i, got, s.healthy)
		}
	}
	if got := p.st.recovered.Load(); got != clk.Now().UnixNano() {
		t.Errorf("slow start not started on recovery: %d", got)
	}
	// Results from a checker that no longer owns the peer are ignored.
	p.st.owner = nil
	for range 5 {
		u.recordCheck(p, bad)
	}
	if !p.State().Healthy {
		t.Fatal("superseded checker changed health")
	}
}

func TestProbeWebSocket(t *testing.T) {
	closes := make(chan error, 1)
	upgrader := websocket.Upgrader{}
	ws := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		_, _, err = c.ReadMessage()
		closes <- err
	}))
	defer ws.Close()
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer plain.Close()
	badAccept := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Upgrade", "websocket")
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Sec-WebSocket-Accept", "bm90IHRoZSByaWdodCBvbmU=")
		w.WriteHeader(http.StatusSwitchingProtocols)
	}))
	defer badAccept.Close()
	addr := func(s *httptest.Server) string { return s.Listener.Addr().String() }

	hc := HealthCheck{WebSocket: true, URI: "/ws"}.withDefaults("ws")
	if err := hc.probe(context.Background(), addr(ws), "ws"); err != nil {
		t.Fatalf("real WebSocket server: %v", err)
	}
	select {
	case err := <-closes:
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseNormalClosure {
			t.Fatalf("server saw %v, want a close frame with 1000", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server never saw the close frame")
	}
	for name, s := range map[string]*httptest.Server{"200 to an upgrade": plain, "wrong accept": badAccept} {
		if err := hc.probe(context.Background(), addr(s), "ws"); !errors.Is(err, errNotSwitching) {
			t.Errorf("%s: err = %v, want a failed upgrade", name, err)
		}
	}
	// A plain check passes on the server that answers 200.
	hc.WebSocket = false
	if err := hc.probe(context.Background(), addr(plain), "ws"); err != nil {
		t.Errorf("plain check: %v", err)
	}
}

func TestProbeFailures(t *testing.T) {
	// A listener that accepts and never answers: the timeout ends the check.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	defer func() { ln.Close(); <-done }()
	go func() {
		defer close(done)
		var conns []net.Conn
		for {
			c, err := ln.Accept()
			if err != nil {
				break
			}
			conns = append(conns, c)
		}
		for _, c := range conns {
			c.Close()
		}
	}()
	hc := HealthCheck{Timeout: 50 * time.Millisecond}.withDefaults("u")
	if err := hc.probe(context.Background(), ln.Addr().String(), "u"); err == nil {
		t.Error("silent server passed")
	}
	// Cancelling (Close) ends a check at once.
	hc.Timeout = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- hc.probe(ctx, ln.Addr().String(), "u") }()
	cancel()
	select {
	case err := <-errc:
		if err == nil {
			t.Error("cancelled check passed")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancel did not end the check")
	}
	// Nothing listening.
	ln2, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := ln2.Addr().String()
	ln2.Close()
	if err := hc.probe(context.Background(), closed, "u"); err == nil {
		t.Error("closed port passed")
	}

	for _, line := range []string{"HTTP/1.1 200 OK", "HTTP/1.0 204", "HTTP/1.1 2000 x", "HTTP/2 200", "garbage"} {
		code, err := statusCode(line)
		t.Logf("%q -> %d %v", line, code, err)
		if ok := err == nil; ok != (line == "HTTP/1.1 200 OK" || line == "HTTP/1.0 204") {
			t.Errorf("%q: code %d err %v", line, code, err)
		}
	}
}

func TestHealthCheckWebSocketLoop(t *testing.T) {
	plain := newBackend(t) // answers 200 to everything on /health, upgrade or not
	u := New(Config{
		Name:   "ws",
		Peers:  []PeerConfig{{Addr: plain.addr(), MaxFails: 1}, peer("127.0.0.1:1", 1)},
		Health: &HealthCheck{Interval: 20 * time.Millisecond, URI: "/health", WebSocket: true},
	}, nil)
	u.Start()
	defer u.Close()
	waitFor(t, "websocket check to fail", func() bool { return !u.Peers()[0].State().Healthy })
}

func TestHealthHandoffOnReload(t *testing.T) {
	b := newBackend(t)
	b.status.Store(503)
	hc := &HealthCheck{Interval: 20 * time.Millisecond, URI: "/health"}
	var logs atomic.Int64
	cfg := Config{
		Name:  "ws",
		Peers: []PeerConfig{{Addr: b.addr(), MaxFails: 1}, peer("127.0.0.1:1", 1)},
		Logf: func(format string, args ...any) {
			if strings.Contains(fmt.Sprintf(format, args...), b.addr()) {
				logs.Add(1)
			}
		},
		Health: hc,
	}
	u1 := New(cfg, nil)
	u1.Start()
	waitFor(t, "unhealthy", func() bool { return !u1.Peers()[0].State().Healthy })

	// The new generation starts from the old one's verdict.
	u2 := New(cfg, u1)
	u2.Start()
	if u2.Peers()[0].State().Healthy {
		t.Fatal("health not carried over")
	}
	u1.Close()
	b.status.Store(200)
	waitFor(t, "healthy through the new checker", func() bool { return u2.Peers()[0].State().Healthy })
	if logs.Load() < 2 {
		t.Errorf("logged %d state changes, want unhealthy and healthy", logs.Load())
	}

	// Dropping health_check on reload makes every peer healthy again.
	b.status.Store(500)
	waitFor(t, "unhealthy again", func() bool { return !u2.Peers()[0].State().Healthy })
	cfg.Health = nil
	u3 := New(cfg, u2)
	if u3.Peers()[0].State().Healthy {
		t.Fatal("building a generation changed the running one's health")
	}
	u3.Start()
	if !u3.Peers()[0].State().Healthy {
		t.Fatal("peer still unhealthy without health checks")
	}
	u2.Close()
	u2.Close() // idempotent
	if !u3.Peers()[0].State().Healthy {
		t.Fatal("old checker changed health after handoff")
	}
}

func TestHealthCheckPort(t *testing.T) {
	b := newBackend(t)
	_, port, _ := net.SplitHostPort(b.addr())
	var p int
	fmt.Sscan(port, &p)
	// The peer's own port has nothing listening; the check port does.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	u := New(Config{
		Name:   "ws",
		Peers:  []PeerConfig{{Addr: dead, MaxFails: 1}, peer("127.0.0.1:1", 1)},
		Health: &HealthCheck{Interval: 20 * time.Millisecond, URI: "/health", Port: p},
	}, nil)
	u.Start()
	defer u.Close()
	waitFor(t, "checks on the health port", func() bool { return b.hits.Load() >= 3 })
	if !u.Peers()[0].State().Healthy {
		t.Fatal("peer unhealthy although its check port answers 200")
	}
}

// TestBuildHasNoSideEffect: a generation built and dropped without Start
// (a reload that failed later) starts no checker and leaves the running
// generation's peer state and checks as they were.
func TestBuildHasNoSideEffect(t *testing.T) {
	b := newBackend(t)
	b.status.Store(503)
	cfg := Config{
		Name:   "ws",
		Peers:  []PeerConfig{{Addr: b.addr(), MaxFails: 1}, peer("127.0.0.1:1", 1)},
		Health: &HealthCheck{Interval: 20 * time.Millisecond, URI: "/health"},
	}
	u1 := New(cfg, nil)
	u1.Start()
	defer u1.Close()
	p := u1.Peers()[0]
	waitFor(t, "unhealthy", func() bool { return !p.State().Healthy })

	for _, h := range []*HealthCheck{nil, cfg.Health} {
		next := cfg
		next.Health = h
		u2 := New(next, u1)
		if p.State().Healthy {
			t.Fatalf("building a generation (health %v) made the running one's peer healthy", h != nil)
		}
		u2.Close() // dropped, never started
		u2.Start() // after Close: does nothing
	}
	// The running checker still owns the peer: its results count.
	b.status.Store(200)
	waitFor(t, "healthy through the running checker", func() bool { return p.State().Healthy })
	b.status.Store(503)
	waitFor(t, "unhealthy through the running checker", func() bool { return !p.State().Healthy })
	// goleak (TestMain) finds any checker the dropped generations started.
}

// TestStartOnce: a second Start starts no second set of checkers.
func TestStartOnce(t *testing.T) {
	b := newBackend(t)
	u := New(Config{
		Name:   "ws",
		Peers:  []PeerConfig{{Addr: b.addr(), MaxFails: 1}},
		Health: &HealthCheck{Interval: time.Hour, URI: "/health"},
	}, nil)
	u.Start()
	u.Start()
	waitFor(t, "the first probe", func() bool { return b.hits.Load() >= 1 })
	u.Close()
	if n := b.hits.Load(); n != 1 {
		t.Fatalf("%d probes, want 1 from one checker", n)
	}
}
