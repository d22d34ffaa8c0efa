package upstream

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// open takes n peers without releasing them, as n long-lived tunnels.
func open(t *testing.T, u *Upstream, n int) (names string, held []*Peer) {
	t.Helper()
	for range n {
		p, err := u.NewAttempt(nil).Next()
		if err != nil {
			t.Fatal(err)
		}
		names += p.Name()
		held = append(held, p)
	}
	return names, held
}

func release(held []*Peer) {
	for _, p := range held {
		p.Done(false)
	}
}

func TestLeastConn(t *testing.T) {
	cfg := Config{Name: "ws", Method: LeastConn, Peers: threePeers()}
	u := New(cfg, nil)
	names, held := open(t, u, 30)
	// Ties go smooth round robin among the tied peers only, so nginx's
	// order is exact: after a, b, c all hold one, c has the highest
	// current weight.
	if want := strings.Repeat("abccba", 5); names != want {
		t.Fatalf("got %s, want %s", names, want)
	}
	// A fresh peer (as after a restart, or added on reload) takes the
	// next ten while the others hold theirs.
	cfg.Peers = append(cfg.Peers, peer("d", 1))
	u2 := New(cfg, u)
	for _, p := range u2.Peers()[:3] {
		if p.Active() != 10 {
			t.Fatalf("%s: active %d after reload, want 10", p.Name(), p.Active())
		}
	}
	names2, held2 := open(t, u2, 10)
	if names2 != strings.Repeat("d", 10) {
		t.Fatalf("after adding d: %s", names2)
	}
	if names3, held3 := open(t, u2, 4); counts(names3) == nil || len(counts(names3)) != 4 {
		t.Fatalf("with all at 11: %s", names3)
	} else {
		release(held3)
	}
	// Closing b's tunnels makes b the choice for the next ten.
	for _, p := range held {
		if p.Name() == "b" {
			p.Done(false)
		}
	}
	if names4, held4 := open(t, u2, 10); names4 != strings.Repeat("b", 10) {
		t.Fatalf("after b drained: %s", names4)
	} else {
		release(held4)
	}
	for _, p := range held {
		if p.Name() != "b" {
			p.Done(false)
		}
	}
	release(held2)
	for _, p := range u2.Peers() {
		if p.Active() != 0 {
			t.Errorf("%s: active %d at the end", p.Name(), p.Active())
		}
	}
}

func TestLeastConnWeighted(t *testing.T) {
	u := New(Config{Method: LeastConn, Peers: []PeerConfig{peer("a", 2), peer("b", 1)}}, nil)
	names, held := open(t, u, 30)
	defer release(held)
	if c := counts(names); c['a'] != 20 || c['b'] != 10 {
		t.Fatalf("weights 2:1 gave %v (%s)", c, names)
	}
}

func TestRandom(t *testing.T) {
	u := New(Config{Method: Random, Peers: []PeerConfig{peer("a", 3), peer("b", 1)}}, nil)
	if c := counts(picks(t, u, 4000)); c['a'] < 2800 || c['a'] > 3200 {
		t.Errorf("weights 3:1 gave %v", c)
	}

	// random two: draws are injected, so the comparison is exact. On a tie
	// nginx keeps the second draw.
	u = New(Config{Method: Random, RandomTwo: true, Peers: threePeers()}, nil)
	var seq []uint64
	u.randn = func(n uint64) uint64 { d := seq[0]; seq = seq[1:]; return d % n }
	next := func(draws ...uint64) *Peer {
		t.Helper()
		seq = draws
		p, err := u.NewAttempt(nil).Next()
		if err != nil || len(seq) != 0 {
			t.Fatalf("err %v, %d draws unused", err, len(seq))
		}
		return p
	}
	p1 := next(0, 1)    // a, b both idle: b
	p2 := next(1, 0)    // b busy, a idle: a
	p3 := next(2, 0)    // c idle, a busy: c
	p4 := next(0, 0, 1) // a drawn twice counts once: a, b
	if got := p1.Name() + p2.Name() + p3.Name() + p4.Name(); got != "bacb" {
		t.Fatalf("random two picked %s, want bacb", got)
	}
	release([]*Peer{p4})
	release([]*Peer{p1, p2, p3})
}

func TestMaxConnsConcurrent(t *testing.T) {
	for _, m := range []Method{RoundRobin, LeastConn, IPHash, Hash, Random} {
		t.Run(m.String(), func(t *testing.T) {
			var ps []PeerConfig
			for _, name := range []string{"a", "b", "c"} {
				p := peer(name, 1)
				p.MaxConns = 3
				ps = append(ps, p)
			}
			u := New(Config{Method: m, RandomTwo: true, Peers: ps}, nil)
			var inUse [3]atomic.Int64
			var over, served, refused atomic.Int64
			var wg sync.WaitGroup
			for g := range 32 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					key := []byte{byte(g), 1, 2, 3}
					for range 500 {
						p, err := u.NewAttempt(key).Next()
						if err != nil {
							refused.Add(1)
							continue
						}
						i := p.Name()[0] - 'a'
						if inUse[i].Add(1) > 3 {
							over.Add(1)
						}
						served.Add(1)
						inUse[i].Add(-1)
						p.Done(false)
					}
				}()
			}
			wg.Wait()
			if over.Load() != 0 {
				t.Errorf("max_conns exceeded %d times", over.Load())
			}
			if served.Load() == 0 {
				t.Error("nothing served")
			}
			for _, p := range u.Peers() {
				if p.Active() != 0 {
					t.Errorf("%s: active %d after all Done", p.Name(), p.Active())
				}
			}
		})
	}
}

func TestMaxConnsAllFull(t *testing.T) {
	a, b := peer("a", 1), peer("b", 1)
	a.MaxConns, b.MaxConns = 2, 2
	u := New(Config{Method: LeastConn, Peers: []PeerConfig{a, b}}, nil)
	names, held := open(t, u, 4)
	if c := counts(names); c['a'] != 2 || c['b'] != 2 {
		t.Fatalf("got %s", names)
	}
	if _, err := u.NewAttempt(nil).Next(); !isNoLive(err) {
		t.Fatalf("all at max_conns: err = %v", err)
	}
	held[0].Done(false)
	if got := pick(t, u, nil); got != held[0].Name() {
		t.Fatalf("freed %s but got %s", held[0].Name(), got)
	}
	release(held[1:])
}
