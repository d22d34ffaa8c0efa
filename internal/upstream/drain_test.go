package upstream

import (
	"errors"
	"testing"
)

// TestDrainAndEmpty: a draining peer takes no new request but a sticky
// client's, and keeps its state across a rebuild; an upstream without
// peers (a state file not written yet) has no live peer.
func TestDrainAndEmpty(t *testing.T) {
	a, b := peer("a", 1), peer("b", 1)
	b.Drain = true
	u := New(Config{Name: "u", Peers: []PeerConfig{a, b}}, nil)
	if got := picks(t, u, 6); got != "aaaaaa" {
		t.Fatalf("picks with b draining: %q", got)
	}
	var sb *Peer
	for _, p := range u.Peers() {
		if p.Name() == "b" {
			sb = p
		}
	}
	if p := u.NewAttempt(nil).Sticky(sb.StickyID()); p != sb {
		t.Fatalf("a sticky client of a draining peer got %v", p)
	} else {
		defer p.Done(false)
	}
	if !sb.State().Drain {
		t.Fatal("State does not say draining")
	}
	b.Drain = false
	v := New(Config{Name: "u", Peers: []PeerConfig{a, b}}, u)
	if n := v.Peers()[1].Active(); n != 1 {
		t.Fatalf("the rebuilt peer counts %d open connections, want the sticky one", n)
	}
	empty := New(Config{Name: "e"}, nil)
	if _, err := empty.NewAttempt(nil).Next(); !errors.Is(err, ErrNoLivePeers) {
		t.Fatalf("an upstream without peers: %v", err)
	}
}
