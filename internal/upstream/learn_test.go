package upstream

import (
	"fmt"
	"testing"
	"time"
)

func TestLearnedRouting(t *testing.T) {
	clk := newClock()
	cfg := Config{Name: "u", Now: clk.Now, Learn: &Learn{Zone: "z", Entries: 8, Timeout: time.Minute}, Peers: []PeerConfig{
		{Addr: "127.0.0.1:1", MaxFails: 1},
		{Addr: "127.0.0.1:2", MaxFails: 1},
	}}
	u := New(cfg, nil)
	defer u.Close()
	peers := u.Peers()
	if p := u.NewAttempt(nil).Learned("s1"); p != nil {
		t.Fatalf("unknown session picked %v", p.Addr())
	}
	u.Learn("s1", peers[1])
	for i := 0; i < 5; i++ {
		a := u.NewAttempt(nil)
		p := a.Learned("s1")
		if p != peers[1] {
			t.Fatalf("try %d: learned session went to %v", i, p)
		}
		if q, err := a.Next(); err != nil || q == peers[1] {
			t.Fatalf("fallback after learned peer: %v %v", q, err)
		} else {
			q.Done(false)
		}
		p.Done(false)
	}
	// A failed peer is not used; the caller balances instead.
	u.NewAttempt(nil).Learned("s1").Done(true)
	if p := u.NewAttempt(nil).Learned("s1"); p != nil {
		t.Fatalf("failed peer picked")
	}
	clk.Advance(11 * time.Second)
	p := u.NewAttempt(nil).Learned("s1")
	if p != peers[1] {
		t.Fatalf("recovered peer not picked: %v", p)
	}
	p.Done(false)
	// Each use renews the session; a minute unused forgets it.
	clk.Advance(59 * time.Second)
	if p := u.NewAttempt(nil).Learned("s1"); p == nil {
		t.Fatal("session used 59s ago forgotten")
	} else {
		p.Done(false)
	}
	clk.Advance(time.Minute)
	if p := u.NewAttempt(nil).Learned("s1"); p != nil {
		t.Fatal("expired session still routes")
	}
	// A reload with the same zone keeps the sessions; another zone does not.
	u.Learn("s2", peers[0])
	same := New(cfg, u)
	if p := same.NewAttempt(nil).Learned("s2"); p == nil || p.Addr() != "127.0.0.1:1" {
		t.Fatalf("reload lost the session: %v", p)
	} else {
		p.Done(false)
	}
	// A new generation's timeout is its own: building it changes nothing
	// for the one that serves.
	short := cfg
	short.Learn = &Learn{Zone: "z", Entries: 8, Timeout: time.Second}
	shortU := New(short, u)
	clk.Advance(2 * time.Second)
	if p := u.NewAttempt(nil).Learned("s2"); p == nil {
		t.Fatal("building a generation with a shorter timeout expired the session")
	} else {
		p.Done(false)
	}
	clk.Advance(2 * time.Second)
	if p := shortU.NewAttempt(nil).Learned("s2"); p != nil {
		t.Fatal("the new generation's timeout was not applied")
	}
	other := cfg
	other.Learn = &Learn{Zone: "y", Entries: 8}
	if p := New(other, u).NewAttempt(nil).Learned("s2"); p != nil {
		t.Fatal("a new zone knew the session")
	}
	// Without learn nothing is remembered.
	plain := New(Config{Name: "p", Peers: cfg.Peers}, nil)
	plain.Learn("s", plain.Peers()[0])
	if plain.Learns() || plain.NewAttempt(nil).Learned("s") != nil {
		t.Fatal("upstream without learn remembered a session")
	}
}

func TestLearnedZoneBound(t *testing.T) {
	clk := newClock()
	u := New(Config{Name: "u", Now: clk.Now, Learn: &Learn{Zone: "z", Entries: 3},
		Peers: []PeerConfig{{Addr: "127.0.0.1:1"}, {Addr: "127.0.0.1:2"}}}, nil)
	p := u.Peers()[0]
	for i := 0; i < 3; i++ {
		u.Learn(fmt.Sprint("s", i), p)
		clk.Advance(time.Second)
	}
	// s0 used last: s1 is now the least recently used and goes first.
	u.NewAttempt(nil).Learned("s0").Done(false)
	u.Learn("s3", p)
	if n := u.learned.len(); n != 3 {
		t.Fatalf("zone holds %d sessions, want 3", n)
	}
	for id, want := range map[string]bool{"s0": true, "s1": false, "s2": true, "s3": true} {
		got := u.NewAttempt(nil).Learned(id)
		if (got != nil) != want {
			t.Errorf("session %s kept=%v, want %v", id, got != nil, want)
		}
		if got != nil {
			got.Done(false)
		}
	}
}
