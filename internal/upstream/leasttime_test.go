package upstream

import (
	"testing"
	"time"
)

func TestLeastTimePrefersFasterPeer(t *testing.T) {
	u := New(Config{Name: "lt", Method: LeastTime, Peers: []PeerConfig{{Addr: "10.0.0.1:80"}, {Addr: "10.0.0.2:80"}}}, nil)
	peers := u.Peers()
	slow, fast := peers[0], peers[1]
	slow.Observe(10 * time.Millisecond)
	fast.Observe(time.Millisecond)
	for range 5 {
		p, err := u.NewAttempt(nil).Next()
		if err != nil || p != fast {
			t.Fatalf("picked %v (%v), want the faster peer", p, err)
		}
		p.Done(false)
	}
	// Nine open connections on the fast peer outweigh its speed.
	var held []*Peer
	for range 9 {
		p, _ := u.NewAttempt(nil).Next()
		held = append(held, p)
	}
	if p, _ := u.NewAttempt(nil).Next(); p != slow {
		t.Fatalf("with the fast peer busy, picked %s", p.Addr())
	} else {
		p.Done(false)
	}
	for _, p := range held {
		p.Done(false)
	}
}

func TestLeastTimeMeasuresNewPeersFirst(t *testing.T) {
	u := New(Config{Name: "lt", Method: LeastTime, Peers: []PeerConfig{{Addr: "10.0.0.1:80"}, {Addr: "10.0.0.2:80"}}}, nil)
	u.Peers()[0].Observe(time.Millisecond)
	if p, _ := u.NewAttempt(nil).Next(); p.Addr() != "10.0.0.2:80" {
		t.Fatalf("picked %s, want the peer not yet measured", p.Addr())
	}
}

func TestObserveAverages(t *testing.T) {
	u := New(Config{Name: "lt", Method: LeastTime, Peers: []PeerConfig{{Addr: "10.0.0.1:80"}}}, nil)
	p := u.Peers()[0]
	p.Observe(8 * time.Millisecond)
	p.Observe(16 * time.Millisecond)
	if got := p.AvgResponse(); got != 9*time.Millisecond {
		t.Fatalf("average %v, want 9ms (an eighth of the way)", got)
	}
	next := New(Config{Name: "lt", Method: LeastTime, Peers: []PeerConfig{{Addr: "10.0.0.1:80"}}}, u)
	if got := next.Peers()[0].AvgResponse(); got != 9*time.Millisecond {
		t.Fatalf("after a reload: %v", got)
	}
}
