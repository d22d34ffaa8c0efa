package server

import (
	"runtime"
	"runtime/metrics"
	"testing"
)

// Stack ceilings for idle WebSockets over HTTP/2, in bytes, after one
// collection (which shrinks stacks that use under a quarter of their
// size). A connection holds three goroutines: x/net's frame reader, its
// serve loop and the handler of each stream, which reads the client.
// None of them should keep the stack that the TLS handshake or the
// request pipeline grew: the connection's serve loop runs on a goroutine
// of its own, not on the one that shook hands, and a WebSocket stream's
// pipeline runs on a goroutine that ends at the 101. Measured: 15 to 17
// KiB per connection and 4 to 6 KiB per further stream, where the
// goroutines that had grown held 27 KiB and 8 to 9 KiB. The race
// detector's instrumentation grows every stack, so a -race build has
// ceilings of its own (measured 25 to 26 KiB per connection, where the
// grown goroutines held 34 KiB; per stream it does not tell the two
// apart); CI also runs these tests without -race.
var h2ConnStackCeiling, h2StreamStackCeiling = int64(20 << 10), int64(7 << 10)

func init() {
	if raceBuild {
		h2ConnStackCeiling, h2StreamStackCeiling = 30<<10, 16<<10
	}
}

// TestH2WebSocketConnStacks measures the goroutine stacks that
// connections with one idle WebSocket over HTTP/2 each hold on the
// server. The client (a bare framer on this goroutine) and the backend
// hold no goroutine per tunnel, so the growth is the server's. Each
// measurement runs in a process of its own: stacks freed earlier would
// be reused without showing.
func TestH2WebSocketConnStacks(t *testing.T) {
	if rerunWithExtendedConnect(t) {
		return
	}
	const conns = 40
	s, open, be, g0 := stackTestServer(t)
	defer s.Close()
	// Two goroutines of slack: the server's lazily started ones.
	per := stacksPer(t, conns, g0+3*conns+2, func() func() {
		var closers []func()
		for range conns {
			closers = append(closers, open(t, 1))
		}
		be.waitFor(t, 1+conns)
		return func() {
			for _, c := range closers {
				c()
			}
		}
	})
	t.Logf("stacks of a connection with one idle WebSocket over HTTP/2: %d B", per)
	if per > h2ConnStackCeiling {
		t.Errorf("a connection with one idle WebSocket holds %d B of stacks, over %d B", per, h2ConnStackCeiling)
	}
}

// TestH2WebSocketStreamStacks: the same for each further WebSocket on one
// connection.
func TestH2WebSocketStreamStacks(t *testing.T) {
	if rerunWithExtendedConnect(t) {
		return
	}
	const streams = 40
	s, open, be, g0 := stackTestServer(t)
	defer s.Close()
	per := stacksPer(t, streams, g0+3+streams+2, func() func() {
		c := open(t, 1+streams)
		be.waitFor(t, 2+streams)
		return c
	})
	t.Logf("stacks of each idle WebSocket over HTTP/2 beyond its connection's: %d B", per)
	if per > h2StreamStackCeiling {
		t.Errorf("each further idle WebSocket on a connection holds %d B of stacks, over %d B", per, h2StreamStackCeiling)
	}
}

// stackTestServer starts streamWSServer with one WebSocket open (pools,
// maps and the tunnels' shared goroutines, once), and returns the
// goroutine count once that WebSocket is idle: its connection's three,
// and the tunnels' parking sweeper and dispatchers (one per P).
func stackTestServer(t *testing.T) (*Server, func(*testing.T, int) func(), *idleBackend, int) {
	s, addr, be := streamWSServer(t)
	open := dialH2Streams(addr)
	g := runtime.NumGoroutine() + 3 + 1 + min(runtime.GOMAXPROCS(0), 64)
	t.Cleanup(open(t, 1))
	be.waitFor(t, 1)
	if !pollGoroutines(func(n int) bool { return n == g }) {
		t.Fatalf("%d goroutines with one idle WebSocket, want %d", runtime.NumGoroutine(), g)
	}
	return s, open, be, g
}

// stacksPer opens n things with open, waits until at most goroutines are
// left (the goroutines that only served handshakes have ended), and
// returns the stack memory that each holds; it closes them before
// returning and waits for their goroutines to end.
func stacksPer(t *testing.T, n, goroutines int, open func() func()) int64 {
	t.Helper()
	before := runtime.NumGoroutine()
	base := settledStacks()
	closeAll := open()
	waitGoroutines(t, "the handshakes' goroutines to end", goroutines)
	// The lower of two readings: a stack that a collection frees or
	// shrinks is counted by its span, 32 KiB on 40 things, until the span
	// is empty.
	per := (min(settledStacks(), settledStacks()) - base) / int64(n)
	closeAll()
	waitGoroutines(t, "the connections to end", before)
	return per
}

// settledStacks is the stack memory in use after one collection.
func settledStacks() int64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/stacks:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

// TestOnOwnGoroutine: f runs on another goroutine, and its panic reaches
// the caller, where x/net recovers a handler's.
func TestOnOwnGoroutine(t *testing.T) {
	var ran bool
	onOwnGoroutine(func() { ran = true })
	if !ran {
		t.Fatal("f did not run")
	}
	defer func() {
		if p := recover(); p != "boom" {
			t.Fatalf("recovered %v, want the panic of f", p)
		}
	}()
	onOwnGoroutine(func() { panic("boom") })
	t.Fatal("no panic reached the caller")
}
