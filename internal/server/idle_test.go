package server

import (
	"net"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/wsgate/wsgate/internal/tunnel"
)

// TestTunnelEndSizeClass: every open tunnel holds its tunnelEnd, laid out
// for the runtime's 160-byte size class (the next is 176). A field that
// pushes it over costs 16 bytes on every tunnel: make room first, or put
// a rare field behind tunnelExtras.
func TestTunnelEndSizeClass(t *testing.T) {
	if n := unsafe.Sizeof(tunnelEnd{}); n > 160 {
		t.Fatalf("tunnelEnd is %d bytes, over the 160-byte size class", n)
	}
}

// TestExchangeSizeClass: an exchange is garbage once its request is
// answered, a Tunnel lives as long as its WebSocket. In one size class,
// a burst of handshakes would lay its Tunnels out in spans among its
// exchanges, and once those are collected the idle tunnels would keep
// the spans and their holes: with 9,000 idle tunnels, Tunnels sharing
// the 576-byte class with exchanges filled 84 to 86% of 740 to 750 spans
// of 8 KiB, and 98% of 645 alone (0.7 to 0.8 MiB less: 80 to 95 B per
// tunnel).
func TestExchangeSizeClass(t *testing.T) {
	// The runtime's classes around these sizes; an object of over 512
	// bytes that holds pointers has an 8-byte header in its allocation.
	classOf := func(n uintptr) uintptr {
		for _, c := range []uintptr{512, 576, 640, 704, 768, 896, 1024, 1152} {
			if n+8 <= c {
				return c
			}
		}
		return 0
	}
	x, tn := classOf(unsafe.Sizeof(exchange{})), classOf(unsafe.Sizeof(tunnel.Tunnel{}))
	if x == tn {
		t.Fatalf("exchange (%d bytes) and Tunnel (%d bytes) share the %d-byte size class", unsafe.Sizeof(exchange{}), unsafe.Sizeof(tunnel.Tunnel{}), x)
	}
}

// idleTunnelCeiling bounds the heap an idle plain tunnel holds, both sides
// of the loopback counted (the test's client and backend sockets too): its
// Tunnel, its tunnelEnd and registration, and Go's four connections. A
// buffer kept past the handshake (a bufio reader or writer, a relay
// buffer, the request) costs at least 1 KiB more.
const idleTunnelCeiling = 2560

// TestIdleTunnelMemory: an idle tunnel keeps no buffer, no request and no
// goroutine: right after its 101, before any sweep could park it, the
// tunnel runs no relay goroutine, and the heap per tunnel stays under
// idleTunnelCeiling. The figure is logged.
func TestIdleTunnelMemory(t *testing.T) {
	baseline := runtime.NumGoroutine()
	defer func() {
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
	auth := holdBackend(t) // unused: /plain asks nobody
	defer auth.Close()
	s := reauthServer(t, be.Addr().String(), auth.Addr().String(), "1h")
	defer s.Close()
	const n = 200
	per := int64(1 << 62)
	// The least of three rounds: the first grows the server's maps and
	// pools once for all.
	for range 3 {
		per = min(per, idleTunnelHeap(t, s, "/plain", n))
	}
	t.Logf("idle plain tunnel, both sides of the loopback: %d B of heap", per)
	if per > idleTunnelCeiling {
		t.Errorf("an idle tunnel holds %d B of heap, over %d B: something of its handshake is kept", per, idleTunnelCeiling)
	}

	// Goroutines: holdBackend runs one per connection; the tunnels none.
	g0 := runtime.NumGoroutine()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		conns = append(conns, upgrade(t, s, "/plain", ""))
	}
	// Serving goroutines end just after their 101: wait for those only,
	// and not long enough for relays to matter (a relay goroutine would
	// stay a sweep period, a second, before parking).
	var extra int
	for end := time.Now().Add(500 * time.Millisecond); ; time.Sleep(5 * time.Millisecond) {
		extra = runtime.NumGoroutine() - g0 - n
		if extra <= n/4 || time.Now().After(end) {
			break
		}
	}
	if extra > n/4 {
		t.Errorf("%d goroutines more than the backend's with %d new idle tunnels: tunnels start relay goroutines before their peers send anything", extra, n)
	}
}
