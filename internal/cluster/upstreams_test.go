package cluster

import (
	"sync"
	"testing"
	"time"
)

// TestUpstreamVersions: a write names the version it changes; one that
// another instance beat fails and returns the newer document, and every
// watcher gets each new version once.
func TestUpstreamVersions(t *testing.T) {
	r := startRedis(t)
	a, b := openStore(t, r.url(), &logs{}), openStore(t, r.url(), &logs{})
	var mu sync.Mutex
	seen := map[int64]string{}
	a.WatchUpstreams(func(name string, version int64, doc []byte) {
		mu.Lock()
		seen[version] = name + "=" + string(doc)
		mu.Unlock()
	})
	if v, doc, err := a.Upstream("app"); err != nil || v != 0 || len(doc) != 0 {
		t.Fatalf("an upstream never written: %d %q %v", v, doc, err)
	}
	ok, v, _, err := a.SetUpstream("app", 0, []byte("one"))
	if !ok || v != 1 || err != nil {
		t.Fatalf("first write: %v %d %v", ok, v, err)
	}
	ok, v, cur, err := b.SetUpstream("app", 0, []byte("stale"))
	if ok || v != 1 || string(cur) != "one" || err != nil {
		t.Fatalf("a write on an old version: %v %d %q %v", ok, v, cur, err)
	}
	if ok, v, _, _ := b.SetUpstream("app", 1, []byte("two")); !ok || v != 2 {
		t.Fatalf("a write on the current version: %v %d", ok, v)
	}
	waitFor(t, "the watcher to get version 2", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return seen[2] != ""
	})
	mu.Lock()
	defer mu.Unlock()
	// a wrote version 1 itself (it is told of it only if its first poll
	// came between the write and its note of it) and hears of b's version
	// 2: never a stale document.
	if seen[2] != "app=two" || (seen[1] != "" && seen[1] != "app=one") {
		t.Fatalf("watcher saw %v", seen)
	}
}

// TestClusterLoad: each instance publishes its open WebSockets with its
// heartbeat; the load sums the live instances' counts and keeps the
// smallest, and an instance that closes takes its count away.
func TestClusterLoad(t *testing.T) {
	r := startRedis(t)
	a := openStore(t, r.url(), &logs{})
	b, err := Open(Config{URL: r.url(), Timeout: 500 * time.Millisecond}, (&logs{}).logf)
	if err != nil {
		t.Fatal(err)
	}
	a.SetOpenCount(func() int { return 30 })
	b.SetOpenCount(func() int { return 10 })
	waitFor(t, "both counts in the load", func() bool {
		l := a.ClusterLoad()
		return l.Open == 40 && l.Instances == 2 && l.Lowest == 10
	})
	b.Close()
	waitFor(t, "the closed instance's count to leave", func() bool {
		l := a.ClusterLoad()
		return l.Open == 30 && l.Instances == 1 && l.Lowest == 30
	})
}
