package cluster

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// Sessions registered on two instances are listed together; a close
// command from either reaches both with its code and reason, and the ban
// it carries is known to both until it ends.
func TestSessionsCloseAndBan(t *testing.T) {
	r := startRedis(t)
	a := openStore(t, r.url(), nil)
	b := openStore(t, r.url(), nil)
	var mu sync.Mutex
	closed := map[string]string{}
	closer := func(name string) Closer {
		return func(code uint16, reason string) {
			mu.Lock()
			closed[name] = fmt.Sprintf("%d %s", code, reason)
			mu.Unlock()
		}
	}
	unA := a.Register("alice", "127.0.0.1", "/ws", closer("a"))
	b.Register("alice", "127.0.0.2", "/ws", closer("b"))
	b.Register("bob", "127.0.0.3", "/ws", closer("bob"))
	waitFor(t, "two sessions of alice", func() bool {
		l, err := a.Sessions("alice")
		return err == nil && len(l) == 2
	})
	// The key's hash expires unless renewed; renewing puts it back to
	// the full time.
	ctx, cancel := a.ctx()
	a.c.PExpire(ctx, sessPrefix+"alice", time.Minute)
	cancel()
	a.refreshSessions()
	waitFor(t, "the session hash's expiry to be renewed", func() bool {
		ctx, cancel := a.ctx()
		defer cancel()
		d, err := a.c.PTTL(ctx, sessPrefix+"alice").Result()
		return err == nil && d > 50*time.Minute
	})
	unA()
	waitFor(t, "alice's session on a to go", func() bool {
		l, err := b.Sessions("alice")
		return err == nil && len(l) == 1 && l[0].Instance == b.ID()
	})
	a.Register("alice", "127.0.0.1", "/ws", closer("a"))
	waitFor(t, "two sessions of alice again", func() bool {
		l, _ := a.Sessions("alice")
		return len(l) == 2
	})
	n, err := a.CloseSessions("alice", 4001, "logged out", 1500*time.Millisecond)
	if err != nil || n != 2 {
		t.Fatalf("CloseSessions: %d %v, want 2", n, err)
	}
	waitFor(t, "both instances to close alice's sessions", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return closed["a"] == "4001 logged out" && closed["b"] == "4001 logged out"
	})
	waitFor(t, "both instances to know the ban", func() bool { return a.Banned("alice") && b.Banned("alice") })
	mu.Lock()
	if _, ok := closed["bob"]; ok {
		t.Error("bob's session was closed too")
	}
	mu.Unlock()
	if b.Banned("bob") {
		t.Error("bob is banned")
	}
	// An instance that starts later loads the ban from the store.
	c := openStore(t, r.url(), nil)
	waitFor(t, "a new instance to load the ban", func() bool { return c.Banned("alice") })
	waitFor(t, "the ban to end", func() bool { return !a.Banned("alice") && !b.Banned("alice") && !c.Banned("alice") })
}
