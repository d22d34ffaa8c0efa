package upstream

import (
	"strconv"
	"sync"
	"testing"
	"time"
)

func dynPeers(addrs ...string) []PeerConfig {
	var out []PeerConfig
	for _, a := range addrs {
		out = append(out, PeerConfig{Addr: a, Name: "app.internal:80", MaxFails: 1})
	}
	return out
}

func pickAll(t *testing.T, u *Upstream, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		p, err := u.NewAttempt(nil).Next()
		if err != nil {
			t.Fatal(err)
		}
		got[p.Addr()]++
		p.Done(false)
	}
	return got
}

func TestSetPeersMovesTraffic(t *testing.T) {
	u := New(Config{Name: "dyn", Dynamic: true}, nil)
	if _, err := u.NewAttempt(nil).Next(); err != ErrNoLivePeers {
		t.Fatalf("empty upstream: %v", err)
	}
	u.SetPeers(dynPeers("10.0.0.1:80", "10.0.0.2:80"))
	if got := pickAll(t, u, 4); got["10.0.0.1:80"] != 2 || got["10.0.0.2:80"] != 2 {
		t.Fatalf("got %v", got)
	}
	held, _ := u.NewAttempt(nil).Next() // a tunnel on one of them
	u.SetPeers(dynPeers("10.0.0.3:80"))
	if got := pickAll(t, u, 3); got["10.0.0.3:80"] != 3 {
		t.Fatalf("after the change: %v", got)
	}
	if !u.Contains(held) {
		t.Fatal("a departed peer with a tunnel on it is not contained")
	}
	if held.Active() != 1 {
		t.Fatalf("departed peer active %d", held.Active())
	}

	// A reload keeps it while the server is configured...
	next := New(Config{Name: "dyn", Dynamic: true, Peers: dynPeers("10.0.0.3:80")}, u)
	if !next.Contains(held) {
		t.Fatal("the reload forgot the departed peer")
	}
	// ...not when the server line is gone.
	other := New(Config{Name: "dyn", Dynamic: true, Peers: []PeerConfig{{Addr: "10.0.0.3:80", Name: "other:80"}}}, u)
	if other.Contains(held) {
		t.Fatal("a departed peer of a removed server is still contained")
	}
	held.Done(false)
	u.SetPeers(dynPeers("10.0.0.3:80"))
	if u.Contains(held) {
		t.Fatal("a departed peer with nothing on it is still contained")
	}
}

func TestSetPeersKeepsState(t *testing.T) {
	u := New(Config{Name: "dyn", Dynamic: true}, nil)
	u.SetPeers(dynPeers("10.0.0.1:80", "10.0.0.2:80"))
	p, _ := u.NewAttempt(nil).Next()
	u.SetPeers(dynPeers("10.0.0.1:80", "10.0.0.2:80", "10.0.0.4:80"))
	for _, q := range u.Peers() {
		if q.Addr() == p.Addr() && q.Active() != 1 {
			t.Fatalf("%s lost its connection count", q.Addr())
		}
	}
	p.Done(false)
}

func TestSetPeersConcurrentWithSelection(t *testing.T) {
	u := New(Config{Name: "dyn", Dynamic: true, Method: LeastConn}, nil)
	u.SetPeers(dynPeers("10.0.0.1:80"))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				a := u.NewAttempt(nil)
				for {
					p, err := a.Next()
					if err != nil {
						break
					}
					p.Done(true)
				}
			}
		})
	}
	for i := range 200 {
		var addrs []string
		for j := range i%150 + 1 {
			addrs = append(addrs, "10.0."+strconv.Itoa(j/250)+"."+strconv.Itoa(j%250+1)+":80")
		}
		u.SetPeers(dynPeers(addrs...))
	}
	close(stop)
	wg.Wait()
}

func TestSetPeersHealthChecked(t *testing.T) {
	good := newBackend(t)
	bad := newBackend(t)
	bad.status.Store(500)
	u := New(Config{Name: "dyn", Dynamic: true, Health: &HealthCheck{Interval: 20 * time.Millisecond, URI: "/health"}}, nil)
	u.Start()
	defer u.Close()
	u.SetPeers(dynPeers(good.addr(), bad.addr()))
	var badPeer *Peer
	for _, p := range u.Peers() {
		if p.Addr() == bad.addr() {
			badPeer = p
		}
	}
	waitFor(t, "the new failing peer to turn unhealthy", func() bool { return !badPeer.State().Healthy })
	for range 4 {
		p, err := u.NewAttempt(nil).Next()
		if err != nil || p.Addr() != good.addr() {
			t.Fatalf("picked %v (%v), want the healthy peer", p, err)
		}
		p.Done(false)
	}
	u.SetPeers(dynPeers(good.addr()))
	u.life.Lock()
	checked := len(u.checks)
	u.life.Unlock()
	if checked != 1 {
		t.Fatalf("%d peers checked after one left, want 1", checked)
	}
}
