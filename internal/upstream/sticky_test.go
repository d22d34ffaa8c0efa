package upstream

import (
	"testing"
	"time"
)

func TestSticky(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	u := New(Config{Name: "u", Now: clk.Now, Peers: []PeerConfig{
		{Addr: "127.0.0.1:1", MaxFails: 1, FailTimeout: 10 * time.Second},
		{Addr: "127.0.0.1:2", MaxFails: 1, FailTimeout: 10 * time.Second},
		{Addr: "127.0.0.1:3", MaxConns: 1},
	}}, nil)
	defer u.Close()
	peers := u.Peers()
	id2 := peers[1].StickyID()
	if len(id2) != 32 || id2 == peers[0].StickyID() {
		t.Fatalf("ids %q %q", id2, peers[0].StickyID())
	}
	for i := 0; i < 20; i++ {
		a := u.NewAttempt(nil)
		p := a.Sticky(id2)
		if p != peers[1] {
			t.Fatalf("try %d: sticky gave %v", i, p)
		}
		// The sticky peer counts as tried: the fallback goes elsewhere.
		if q, err := a.Next(); err != nil || q == peers[1] {
			t.Fatalf("fallback after sticky: %v %v", q, err)
		} else {
			q.Done(false)
		}
		p.Done(false)
	}
	if p := u.NewAttempt(nil).Sticky("unknown"); p != nil {
		t.Errorf("unknown id picked %v", p.Addr())
	}
	// A failed sticky peer is not used until fail_timeout passes.
	a := u.NewAttempt(nil)
	p := a.Sticky(id2)
	p.Done(true)
	if p := u.NewAttempt(nil).Sticky(id2); p != nil {
		t.Errorf("failed peer picked")
	}
	clk.Advance(11 * time.Second)
	if p := u.NewAttempt(nil).Sticky(id2); p == nil {
		t.Errorf("recovered peer not picked")
	} else {
		p.Done(false)
	}
	// A full peer (max_conns) is not used.
	full := u.NewAttempt(nil).Sticky(peers[2].StickyID())
	if full == nil {
		t.Fatal("max_conns peer refused its first connection")
	}
	if p := u.NewAttempt(nil).Sticky(peers[2].StickyID()); p != nil {
		t.Errorf("peer over max_conns picked")
	}
	full.Done(false)
}

func TestDrainTakesOnlyBoundRequests(t *testing.T) {
	for _, m := range []Method{RoundRobin, LeastConn, LeastTime, Random, Hash, IPHash} {
		u := New(Config{Name: "u", Method: m, Peers: []PeerConfig{
			{Addr: "127.0.0.1:1"},
			{Addr: "127.0.0.1:2", Drain: true},
		}}, nil)
		drained := u.Peers()[1]
		for i := range 20 {
			p, err := u.NewAttempt([]byte{127, 0, 0, byte(i)}).Next()
			if err != nil || p == drained {
				t.Fatalf("%v: the balancer picked %v (%v)", m, p, err)
			}
			p.Done(false)
		}
		if p := u.NewAttempt(nil).Sticky(drained.StickyID()); p != drained {
			t.Fatalf("%v: a request bound to the draining peer got %v", m, p)
		} else {
			p.Done(false)
		}
		if !drained.State().Drain {
			t.Fatalf("%v: the state does not say draining", m)
		}
	}
}

func TestRoute(t *testing.T) {
	u := New(Config{Name: "u", Peers: []PeerConfig{
		{Addr: "127.0.0.1:1", Route: "a"},
		{Addr: "127.0.0.1:2", Route: "b", MaxConns: 1},
		{Addr: "127.0.0.1:3"},
	}}, nil)
	peers := u.Peers()
	for range 5 {
		p := u.NewAttempt(nil).Route("b")
		if p != peers[1] {
			t.Fatalf("route b gave %v", p)
		}
		p.Done(false)
	}
	if p := u.NewAttempt(nil).Route(peers[2].StickyID()); p != peers[2] {
		t.Fatalf("a server without route= is named by its StickyID: got %v", p)
	} else {
		p.Done(false)
	}
	held := u.NewAttempt(nil).Route("b")
	if p := u.NewAttempt(nil).Route("b"); p != nil {
		t.Fatalf("a full routed peer was picked: %v", p.Addr())
	}
	held.Done(false)
	if p := u.NewAttempt(nil).Route("zzz"); p != nil {
		t.Fatalf("an unknown route picked %v", p.Addr())
	}
}
