package upstream

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestRoundRobinSequence(t *testing.T) {
	down := func(p PeerConfig) PeerConfig { p.Down = true; return p }
	tests := []struct {
		name  string
		peers []PeerConfig
		n     int
		want  string
	}{
		{"equal", []PeerConfig{peer("a", 1), peer("b", 1), peer("c", 1)}, 7, "abcabca"},
		{"nginx 5,1,1", []PeerConfig{peer("a", 5), peer("b", 1), peer("c", 1)}, 14, "aabacaaaabacaa"},
		{"3,2,1", []PeerConfig{peer("a", 3), peer("b", 2), peer("c", 1)}, 12, "abacbaabacba"},
		{"down skipped", []PeerConfig{peer("a", 1), down(peer("b", 1)), peer("c", 1)}, 5, "acaca"},
		{"single", []PeerConfig{peer("a", 4)}, 3, "aaa"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := New(Config{Name: "u", Peers: tt.peers}, nil)
			if got := picks(t, u, tt.n); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestRoundRobinExactShares(t *testing.T) {
	tests := []struct {
		weights []int
		n       int
		want    []int
	}{
		{[]int{3, 2, 1}, 600, []int{300, 200, 100}},
		{[]int{1, 1, 1, 1}, 400, []int{100, 100, 100, 100}},
		{[]int{10, 1}, 1100, []int{1000, 100}},
	}
	for _, tt := range tests {
		var ps []PeerConfig
		for i, w := range tt.weights {
			ps = append(ps, peer(string(rune('a'+i)), w))
		}
		u := New(Config{Peers: ps}, nil)
		got := counts(picks(t, u, tt.n))
		for i, w := range tt.want {
			if got[rune('a'+i)] != w {
				t.Errorf("weights %v over %d: peer %c got %d, want %d", tt.weights, tt.n, 'a'+i, got[rune('a'+i)], w)
			}
		}
	}
}

func TestBackupOnlyWhenPrimariesUnavailable(t *testing.T) {
	clk := newClock()
	backup := peer("z", 1)
	backup.Backup = true
	mc := func(p PeerConfig) PeerConfig { p.MaxConns = 1; return p }

	t.Run("primaries live", func(t *testing.T) {
		u := New(Config{Peers: []PeerConfig{peer("a", 1), peer("b", 1), backup}, Now: clk.Now}, nil)
		if got := picks(t, u, 100); strings.Contains(got, "z") {
			t.Fatalf("backup used while primaries live: %s", got)
		}
	})
	t.Run("primaries down", func(t *testing.T) {
		a, b := peer("a", 1), peer("b", 1)
		a.Down, b.Down = true, true
		u := New(Config{Peers: []PeerConfig{a, b, backup}, Now: clk.Now}, nil)
		if got := picks(t, u, 3); got != "zzz" {
			t.Fatalf("got %s, want zzz", got)
		}
	})
	t.Run("primaries failed then back", func(t *testing.T) {
		u := New(Config{Peers: []PeerConfig{peer("a", 1), peer("b", 1), backup}, Now: clk.Now}, nil)
		tried, err := request(u, nil, map[string]bool{"a": true, "b": true})
		if err != nil || strings.Join(tried, "") != "abz" {
			t.Fatalf("tried %v, err %v; want a b z", tried, err)
		}
		if got := picks(t, u, 4); got != "zzzz" {
			t.Fatalf("while primaries fail: got %s, want zzzz", got)
		}
		clk.Advance(10*time.Second + 1)
		if got := picks(t, u, 4); strings.Contains(got, "z") {
			t.Fatalf("after fail_timeout: got %s, want primaries only", got)
		}
	})
	t.Run("primaries at max_conns", func(t *testing.T) {
		u := New(Config{Peers: []PeerConfig{mc(peer("a", 1)), mc(peer("b", 1)), backup}, Now: clk.Now}, nil)
		var held []*Peer
		var names string
		for range 3 {
			p, err := u.NewAttempt(nil).Next()
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, p)
			names += p.Name()
		}
		if names != "abz" {
			t.Fatalf("got %s, want abz", names)
		}
		held[0].Done(false)
		if got := pick(t, u, nil); got != "a" {
			t.Fatalf("after a freed a slot: got %s, want a", got)
		}
		for _, p := range held[1:] {
			p.Done(false)
		}
	})
	t.Run("least_conn backups", func(t *testing.T) {
		a := peer("a", 1)
		a.Down = true
		u := New(Config{Method: LeastConn, Peers: []PeerConfig{a, backup}, Now: clk.Now}, nil)
		if got := picks(t, u, 2); got != "zz" {
			t.Fatalf("got %s, want zz", got)
		}
	})
}

func TestRetriesTryEachPeerOnce(t *testing.T) {
	for _, m := range []Method{RoundRobin, LeastConn, IPHash, Hash, Random} {
		t.Run(m.String(), func(t *testing.T) {
			u := New(Config{Method: m, Peers: []PeerConfig{peer("a", 1), peer("b", 2), peer("c", 1)}, Now: newClock().Now}, nil)
			tried, err := request(u, []byte{10, 0, 0, 1}, map[string]bool{"a": true, "b": true, "c": true})
			if !isNoLive(err) {
				t.Fatalf("err = %v, want ErrNoLivePeers", err)
			}
			if len(tried) != 3 || counts(strings.Join(tried, ""))['a'] != 1 || counts(strings.Join(tried, ""))['b'] != 1 {
				t.Fatalf("tried %v, want each peer once", tried)
			}
			// All three are now disabled for fail_timeout.
			if _, err := u.NewAttempt(nil).Next(); !isNoLive(err) {
				t.Fatalf("after all failed: err = %v, want ErrNoLivePeers", err)
			}
		})
	}
}

func TestPassiveHealth(t *testing.T) {
	clk := newClock()
	dead := peer("d", 1)
	dead.MaxFails = 3
	dead.FailTimeout = 30 * time.Second
	u := New(Config{Peers: []PeerConfig{dead, peer("b", 1)}, Now: clk.Now}, nil)
	deadSet := map[string]bool{"d": true}

	run := func(n int) (dTries int) {
		t.Helper()
		for range n {
			tried, err := request(u, nil, deadSet)
			if err != nil {
				t.Fatalf("request failed: %v (tried %v)", err, tried)
			}
			for _, name := range tried {
				if name == "d" {
					dTries++
				}
			}
		}
		return dTries
	}

	if got := run(50); got != 3 {
		t.Fatalf("dead peer got %d tries, want exactly max_fails=3", got)
	}
	st := u.Peers()[0].State()
	if st.Fails != 3 || st.UnavailableUntil.IsZero() {
		t.Fatalf("state after 3 failures: %+v", st)
	}
	clk.Advance(30 * time.Second) // not yet: nginx waits more than fail_timeout
	if got := run(20); got != 0 {
		t.Fatalf("at exactly fail_timeout: %d tries, want 0", got)
	}
	clk.Advance(time.Second)
	if got := run(20); got != 1 {
		t.Fatalf("after fail_timeout: %d tries, want 1 trial", got)
	}
	clk.Advance(31 * time.Second)
	delete(deadSet, "d") // the peer came back
	if got := run(20); got != 10 {
		t.Fatalf("recovered peer got %d of 20, want 10", got)
	}
	if st := u.Peers()[0].State(); st.Fails != 0 || !st.UnavailableUntil.IsZero() || st.Failures != 4 {
		t.Fatalf("state after recovery: %+v", st)
	}
}

func TestPassiveHealthSuccessWithinTimeoutKeepsCount(t *testing.T) {
	// nginx clears failures only on a success picked after the last
	// failure's fail_timeout, so failures spread over less than
	// fail_timeout add up even with successes between them.
	clk := newClock()
	p := peer("a", 1)
	p.MaxFails = 2
	u := New(Config{Peers: []PeerConfig{p, peer("b", 1)}, Now: clk.Now}, nil)
	a := u.Peers()[0]
	hit := func(failed bool) {
		t.Helper()
		for {
			q, err := u.NewAttempt(nil).Next()
			if err != nil {
				t.Fatal(err)
			}
			if q == a {
				q.Done(failed)
				return
			}
			q.Done(false)
		}
	}
	hit(true)
	clk.Advance(time.Second)
	hit(false)
	if got := a.State().Fails; got != 1 {
		t.Fatalf("fails = %d after failure then success within fail_timeout, want 1", got)
	}
	hit(true)
	if !a.State().UnavailableUntil.After(clk.Now()) {
		t.Fatalf("peer not disabled after 2 failures within fail_timeout: %+v", a.State())
	}
}

func TestSinglePeerIgnoresMaxFails(t *testing.T) {
	clk := newClock()
	u := New(Config{Peers: []PeerConfig{peer("a", 1)}, Now: clk.Now}, nil)
	for i := range 5 {
		tried, err := request(u, nil, map[string]bool{"a": true})
		if len(tried) != 1 || !isNoLive(err) {
			t.Fatalf("request %d: tried %v err %v; want one try then ErrNoLivePeers", i, tried, err)
		}
	}
	if got := pick(t, u, nil); got != "a" {
		t.Fatalf("got %s", got)
	}
	if st := u.Peers()[0].State(); st.Fails != 0 || !st.UnavailableUntil.IsZero() {
		t.Fatalf("single peer marked failed: %+v", st)
	}

	// With a backup the peer is no longer alone, and max_fails applies.
	b := peer("z", 1)
	b.Backup = true
	u = New(Config{Peers: []PeerConfig{peer("a", 1), b}, Now: clk.Now}, nil)
	if tried, err := request(u, nil, map[string]bool{"a": true}); err != nil || strings.Join(tried, "") != "az" {
		t.Fatalf("tried %v err %v, want a z", tried, err)
	}
	if got := pick(t, u, nil); got != "z" {
		t.Fatalf("got %s, want z", got)
	}
}

func TestNoPeers(t *testing.T) {
	a, b := peer("a", 1), peer("b", 1)
	a.Down, b.Down = true, true
	for _, cfg := range []Config{{}, {Peers: []PeerConfig{a}}, {Peers: []PeerConfig{a, b}}, {Method: LeastConn, Peers: []PeerConfig{a, b}}} {
		at := New(cfg, nil).NewAttempt(nil)
		if _, err := at.Next(); !isNoLive(err) {
			t.Errorf("%+v: err = %v, want ErrNoLivePeers", cfg, err)
		}
		if at.Tried() != 0 {
			t.Errorf("Tried = %d", at.Tried())
		}
	}
	var zero Attempt
	if _, err := zero.Next(); !isNoLive(err) {
		t.Errorf("zero Attempt: err = %v", err)
	}
}

func TestSlowStart(t *testing.T) {
	clk := newClock()
	a := peer("a", 1)
	a.SlowStart = 10 * time.Second
	u := New(Config{Peers: []PeerConfig{a, peer("b", 1)}, Now: clk.Now}, nil)
	if _, err := request(u, nil, map[string]bool{"a": true}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(11 * time.Second) // trial after fail_timeout succeeds: recovery starts now
	for tried := ""; !strings.Contains(tried, "a"); {
		tried += pick(t, u, nil)
	}
	// Just recovered: a's weight is one thousandth of b's.
	if got := counts(picks(t, u, 1001))['a']; got > 2 {
		t.Errorf("at the start of slow_start a got %d of 1001", got)
	}
	clk.Advance(5 * time.Second) // half way: weight 1/2 against 1
	if got := counts(picks(t, u, 300))['a']; got < 99 || got > 101 {
		t.Errorf("half way through slow_start a got %d of 300, want 100", got)
	}
	clk.Advance(5 * time.Second)
	if got := counts(picks(t, u, 300))['a']; got < 149 || got > 151 {
		t.Errorf("after slow_start a got %d of 300, want 150", got)
	}
}

func TestMethodString(t *testing.T) {
	for m, want := range map[Method]string{RoundRobin: "round_robin", LeastConn: "least_conn", IPHash: "ip_hash", Hash: "hash", Random: "random", 99: "unknown"} {
		if m.String() != want {
			t.Errorf("%d: %s", m, m.String())
		}
	}
}

func TestManyPeersAndReset(t *testing.T) {
	var ps []PeerConfig
	dead := map[string]bool{}
	for i := range 200 {
		name := fmt.Sprintf("p%03d", i)
		ps = append(ps, peer(name, 1+i%3))
		dead[name] = true
	}
	for _, m := range []Method{RoundRobin, LeastConn, IPHash, Hash, Random} {
		u := New(Config{Name: "big", Method: m, Peers: ps, Now: newClock().Now}, nil)
		if u.Name() != "big" || len(u.Peers()) != 200 {
			t.Fatal("Name or Peers wrong")
		}
		var a Attempt
		seen := map[string]bool{}
		a.Reset(u, []byte("key"))
		for {
			p, err := a.Next()
			if err != nil {
				break
			}
			if seen[p.Name()] {
				t.Fatalf("%s: %s tried twice", m, p.Name())
			}
			seen[p.Name()] = true
			p.Done(true)
		}
		if len(seen) != 200 || a.Tried() != 200 {
			t.Fatalf("%s: tried %d peers (Tried %d), want 200", m, len(seen), a.Tried())
		}
		// Reset reuses the attempt: everything is disabled now.
		a.Reset(u, []byte("key"))
		if _, err := a.Next(); !isNoLive(err) || a.Tried() != 0 {
			t.Fatalf("%s: after all failed: %v", m, err)
		}
	}
}

func TestConnectedClearsFailuresEarly(t *testing.T) {
	// A tunnel's upgrade success marks a recovering peer live at once; the
	// tunnel itself may stay open for hours.
	clk := newClock()
	u := New(Config{Peers: []PeerConfig{peer("a", 1), peer("b", 1)}, Now: clk.Now}, nil)
	if _, err := request(u, nil, map[string]bool{"a": true}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(11 * time.Second)
	var tunnel *Peer
	for tunnel == nil {
		p, err := u.NewAttempt(nil).Next()
		if err != nil {
			t.Fatal(err)
		}
		if p.Name() == "a" {
			tunnel = p
		} else {
			p.Done(false)
		}
	}
	if got := picks(t, u, 4); got != "bbbb" {
		t.Fatalf("during the trial: %s, want bbbb", got)
	}
	tunnel.Connected()
	if got := counts(picks(t, u, 4)); got['a'] != 2 {
		t.Fatalf("after Connected: %v, want a back in rotation", got)
	}
	if tunnel.Backup() || tunnel.Addr() != "a" {
		t.Fatal("accessors")
	}
	tunnel.Done(false)
	if st := tunnel.State(); st.Active != 0 || st.Fails != 0 || st.Picks == 0 {
		t.Fatalf("state %+v", st)
	}
}
