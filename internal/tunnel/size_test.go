package tunnel

import (
	"testing"
	"time"
	"unsafe"
)

// An idle tunnel's memory is mostly its Tunnel: the struct is laid out to
// fit the runtime's 576-byte size class (the next is 640). An object of
// over 512 bytes that holds pointers carries an 8-byte header in its
// allocation, so the struct itself must stay within 568 bytes. A field
// that pushes it over costs 64 bytes on every tunnel; make room first
// (padding between small fields counts), or put what only a relaying
// direction needs in relayState, or a setting most tunnels leave off in
// limits.
func TestTunnelSizeClass(t *testing.T) {
	const class, header = 576, 8
	if n := unsafe.Sizeof(Tunnel{}); n+header > class {
		t.Fatalf("Tunnel is %d bytes, %d with its allocation header: over the %d-byte size class", n, n+header, class)
	}
}

// TestConfLimits: a Config without pings, limits or a session lifetime
// shares the zero limits, allocating nothing, whatever the settings that
// only qualify those (a location's default ping timeout); one with
// any of them gets its own, with every setting carried over.
func TestConfLimits(t *testing.T) {
	plain := confOf(&Config{Frames: true, IdleTimeout: time.Minute, PingTimeout: 10 * time.Second,
		SessionCode: 1001, MessageBurst: 5, RateLimitBackend: true})
	if plain.limits != noLimits || !plain.Frames || plain.IdleTimeout != time.Minute {
		t.Fatalf("plain: %+v", plain)
	}
	c := Config{PingInterval: 1, PingTimeout: 2, MaxFrameSize: 3, MaxMessageSize: 4, MessageRate: 5,
		MessageBurst: 6, MaxSession: 7, SessionCode: 8, RateLimitBackend: true}
	k := confOf(&c)
	want := limits{PingInterval: 1, PingTimeout: 2, MaxFrameSize: 3, MaxMessageSize: 4, MessageRate: 5,
		MessageBurst: 6, MaxSession: 7, SessionCode: 8, RateLimitBackend: true}
	if k.limits == noLimits || *k.limits != want {
		t.Fatalf("limits: %+v, want %+v", *k.limits, want)
	}
	if *noLimits != (limits{}) {
		t.Fatal("the shared zero limits were written")
	}
	var sink conf
	if n := testing.AllocsPerRun(100, func() { sink = confOf(&Config{Frames: true, PingTimeout: time.Second}) }); n != 0 || sink.limits != noLimits {
		t.Errorf("a Config without limits: %v allocations, want none", n)
	}
}
