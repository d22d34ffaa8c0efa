package upstream

import (
	"testing"
	"time"
)

func TestQueueWaitsForAFreedSlot(t *testing.T) {
	u := New(Config{Name: "q", Peers: []PeerConfig{{Addr: "10.0.0.1:80", MaxConns: 1, MaxFails: 1}}, Queue: 1, QueueTimeout: time.Minute}, nil)
	held, err := u.NewAttempt(nil).Next()
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		p   *Peer
		err error
	}
	got := make(chan result)
	go func() {
		p, _, err := u.NewAttempt(nil).NextQueued()
		got <- result{p, err}
	}()
	for deadline := time.Now().Add(10 * time.Second); u.q.waiting.Load() != 1; {
		if time.Now().After(deadline) {
			t.Fatal("the request never queued")
		}
		time.Sleep(time.Millisecond)
	}
	if _, _, err := u.NewAttempt(nil).NextQueued(); err != ErrQueueFull {
		t.Fatalf("second waiter: %v, want ErrQueueFull", err)
	}
	held.Done(false)
	r := <-got
	if r.err != nil || r.p.Addr() != "10.0.0.1:80" {
		t.Fatalf("queued request: %v %v", r.p, r.err)
	}
	r.p.Done(false)
	if n := u.q.waiting.Load(); n != 0 {
		t.Fatalf("%d still waiting", n)
	}
}

func TestQueueTimesOut(t *testing.T) {
	u := New(Config{Name: "q", Peers: []PeerConfig{{Addr: "10.0.0.1:80", MaxConns: 1}}, Queue: 5, QueueTimeout: 50 * time.Millisecond}, nil)
	held, _ := u.NewAttempt(nil).Next()
	defer held.Done(false)
	p, waited, err := u.NewAttempt(nil).NextQueued()
	if err != ErrQueueTimeout || p != nil || waited < 50*time.Millisecond {
		t.Fatalf("got %v after %v: %v", p, waited, err)
	}
}

func TestNoQueueFailsAtOnce(t *testing.T) {
	u := New(Config{Name: "q", Peers: []PeerConfig{{Addr: "10.0.0.1:80", MaxConns: 1}}}, nil)
	held, _ := u.NewAttempt(nil).Next()
	defer held.Done(false)
	if _, waited, err := u.NewAttempt(nil).NextQueued(); err != ErrNoLivePeers || waited != 0 {
		t.Fatalf("without a queue: %v after %v", err, waited)
	}
}

func TestQueueSharedAcrossReload(t *testing.T) {
	cfg := Config{Name: "q", Peers: []PeerConfig{{Addr: "10.0.0.1:80", MaxConns: 1}}, Queue: 1, QueueTimeout: time.Minute}
	old := New(cfg, nil)
	held, _ := old.NewAttempt(nil).Next()
	next := New(cfg, old)
	got := make(chan error)
	go func() {
		p, _, err := next.NewAttempt(nil).NextQueued()
		if err == nil {
			p.Done(false)
		}
		got <- err
	}()
	for next.q.waiting.Load() != 1 {
		time.Sleep(time.Millisecond)
	}
	held.Done(false) // a slot freed on the old generation's peer
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}
