package backend

import (
	"testing"
	"time"
)

// TestKeepaliveTime: a connection older than keepalive_time is not kept
// after its request, and one that grew too old while idle is not reused:
// a fresh connection is dialled.
func TestKeepaliveTime(t *testing.T) {
	s := startServer(t, answer(0))
	slots := &counter{limit: 10}
	pool := NewPool(slots, 4, time.Minute, 100)
	pool.SetMaxAge(time.Hour)
	tr := Transport{Idle: pool, Slots: slots, ConnectTimeout: 5 * time.Second, NoDelay: true}
	p := &peer{addr: s.addr()}
	roundTrip(t, tr, p, request(true))
	roundTrip(t, tr, p, request(true))
	if n := s.accepts.Load(); n != 1 || pool.Idle() != 1 {
		t.Fatalf("within keepalive_time: %d connections, %d idle; want 1 and 1", n, pool.Idle())
	}
	// The idle connection ages past the limit: the next request dials.
	pool.mu.Lock()
	pool.conns[0].born = time.Now().Add(-2 * time.Hour)
	pool.mu.Unlock()
	roundTrip(t, tr, p, request(true))
	if n := s.accepts.Load(); n != 2 {
		t.Fatalf("after keepalive_time: %d connections, want 2", n)
	}
	// A connection that passes the limit during its request is not kept.
	pool.SetMaxAge(time.Nanosecond)
	roundTrip(t, tr, p, request(true))
	if pool.Idle() != 0 || slots.used.Load() != 0 {
		t.Fatalf("past keepalive_time: %d idle, %d slots; want 0 and 0", pool.Idle(), slots.used.Load())
	}
}
