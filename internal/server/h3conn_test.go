package server

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestH3ConnectionAccounting: an HTTP/3 connection counts as active while
// it is open and stops counting when it ends, and no goroutine of
// wsgate's waits for its end meanwhile (a QUIC connection already holds
// quic-go's several).
func TestH3ConnectionAccounting(t *testing.T) {
	s, addr, _ := streamWSServer(t)
	defer s.Close()
	base := s.Stats.Active.Load()
	closeConn := dialH3Streams(addr)(t, 0)
	if n := s.Stats.Active.Load(); n != base+1 {
		t.Errorf("%d active connections with one QUIC connection open, want %d", n, base+1)
	}
	buf := make([]byte, 1<<20)
	if dump := string(buf[:runtime.Stack(buf, true)]); strings.Contains(dump, "(*countingListener).Accept.func") {
		t.Error("a goroutine of countingListener's waits for the QUIC connection's end")
	}
	closeConn()
	for end := time.Now().Add(15 * time.Second); s.Stats.Active.Load() != base; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%d active connections after the QUIC connection closed, want %d", s.Stats.Active.Load(), base)
		}
	}
}
