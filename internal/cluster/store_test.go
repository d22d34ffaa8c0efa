package cluster

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/limit"
)

func openStore(t *testing.T, url string, l *logs) *Store {
	t.Helper()
	if l == nil {
		l = &logs{}
	}
	s, err := Open(Config{URL: url, Timeout: 500 * time.Millisecond}, l.logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// The shared bucket decides exactly as the local zone does, request by
// request, for the same arrival times: nginx's leaky bucket with burst and
// the first request of a key always passing.
func TestReqScriptMatchesLocalZone(t *testing.T) {
	r := startRedis(t)
	s := openStore(t, r.url(), nil)
	base := time.Unix(1_700_000_000, 0)
	now := base
	local := limit.NewReqZone("z", 1<<20, 10000, func() time.Time { return now })
	rule := []limit.ReqRule{{Zone: local, Burst: 5, NoDelay: true}}
	// Arrivals: a burst of 12, then one every 50 ms, then a pause.
	var at []time.Duration
	for range 12 {
		at = append(at, 0)
	}
	for i := range 20 {
		at = append(at, time.Duration(i+1)*50*time.Millisecond)
	}
	at = append(at, 3*time.Second, 3*time.Second, 3*time.Second)
	passedShared, passedLocal := 0, 0
	for i, d := range at {
		now = base.Add(d)
		ld := limit.CheckReq(rule, [][]byte{[]byte("k")}, false)
		res, err := s.CheckReq([]string{ReqKey("z", []byte("k"))}, []int64{10000}, []int64{5000}, now.UnixMilli())
		if err != nil {
			t.Fatal(err)
		}
		lp, sp := ld.Status == limit.ReqPassed, res.Rejected < 0
		if lp != sp {
			t.Fatalf("request %d at %v: local passed=%v, shared passed=%v (excess %v)", i, d, lp, sp, res.Excess)
		}
		if lp {
			passedLocal++
		}
		if sp {
			passedShared++
		}
	}
	// 6 at once (1 + burst 5), then 1 per 100 ms over 1 s (10), then 3.
	if passedShared != 19 || passedLocal != 19 {
		t.Fatalf("passed: shared %d, local %d; want 19 each", passedShared, passedLocal)
	}
}

// A request rejected by its second rule charges neither bucket.
func TestReqScriptAllOrNone(t *testing.T) {
	r := startRedis(t)
	s := openStore(t, r.url(), nil)
	ms := int64(1_700_000_000_000)
	a, b := ReqKey("a", []byte("x")), ReqKey("b", []byte("x"))
	// Fill b (burst 0): its first request passes, the next is over.
	if res, err := s.CheckReq([]string{b}, []int64{1000}, []int64{0}, ms); err != nil || res.Rejected != -1 {
		t.Fatalf("first b: %+v %v", res, err)
	}
	res, err := s.CheckReq([]string{a, b}, []int64{1000, 1000}, []int64{0, 0}, ms)
	if err != nil || res.Rejected != 1 || res.Excess[1] != 1000 {
		t.Fatalf("a+b: %+v %v; want rejected by b with excess 1000", res, err)
	}
	// a was not charged: alone, at the same instant, it still passes once.
	if res, err := s.CheckReq([]string{a}, []int64{1000}, []int64{0}, ms); err != nil || res.Rejected != -1 {
		t.Fatalf("a after the rejection: %+v %v; want passed", res, err)
	}
	// Delayed requests report their excess: with burst 2, the third
	// request at one instant stands at 2000.
	c := ReqKey("c", []byte("x"))
	var last ReqResult
	for range 3 {
		if last, err = s.CheckReq([]string{c}, []int64{1000}, []int64{2000}, ms); err != nil {
			t.Fatal(err)
		}
	}
	if last.Rejected != -1 || last.Excess[0] != 2000 {
		t.Fatalf("third request: %+v, want passed at 2000", last)
	}
}

// Connections are counted across instances, released, and the counts of an
// instance that stops renewing its lease expire.
func TestConnLeasesAcrossInstances(t *testing.T) {
	r := startRedis(t)
	a := openStore(t, r.url(), nil)
	b := openStore(t, r.url(), nil)
	f := ConnField("perip", []byte("10.0.0.1"))
	got := []bool{}
	for _, s := range []*Store{a, b, a, b} {
		ok, err := s.AcquireConn(f, 3)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ok)
	}
	if fmt.Sprint(got) != "[true true true false]" {
		t.Fatalf("acquired %v, want the fourth refused at limit 3", got)
	}
	b.ReleaseConn(f) // sent with the next pipeline of writes
	waitFor(t, "the released slot to be given again", func() bool {
		ok, _ := b.AcquireConn(f, 3)
		return ok
	})
	if n, err := a.ConnCount(f); err != nil || n != 3 {
		t.Fatalf("count %d %v, want 3", n, err)
	}
	// b dies without cleaning up: its heartbeat stops, its key is left.
	close(b.stop)
	b.loops.Wait()
	b.stop = make(chan struct{})
	start := time.Now()
	waitFor(t, "the dead instance's counts to expire", func() bool {
		n, _ := a.ConnCount(f)
		return n == 2
	})
	if d := time.Since(start); d > LeaseTTL+5*time.Second {
		t.Errorf("counts expired after %v, want within about %v", d, LeaseTTL)
	}
	if ok, _ := a.AcquireConn(f, 3); !ok {
		t.Fatal("the dead instance's slot was not freed")
	}
}

// When the store goes away the instance says so once and counts locally;
// when it returns, the live counts are written back and the store is used
// again.
func TestStoreDownAndBack(t *testing.T) {
	r := startRedis(t)
	l := &logs{}
	s := openStore(t, r.url(), l)
	f := ConnField("z", []byte("k"))
	local := map[string]int{f: 2}
	s.SetLeases(func(yield func(string, int) bool) {
		for k, n := range local {
			if !yield(k, n) {
				return
			}
		}
	})
	if ok, err := s.AcquireConn(f, 10); !ok || err != nil {
		t.Fatalf("acquire: %v %v", ok, err)
	}
	r.stop()
	if _, err := s.AcquireConn(f, 10); err == nil {
		t.Fatal("a call to a stopped store succeeded")
	}
	if s.Up() {
		t.Fatal("the store is still up after a failed call")
	}
	s.CheckReq([]string{ReqKey("z", []byte("k"))}, []int64{1000}, []int64{0}, 0)
	r.start()
	waitFor(t, "the store to come back", s.Up)
	n, err := s.ConnCount(f)
	if err != nil || n != 2 {
		t.Fatalf("count after recovery %d %v, want the 2 live local connections", n, err)
	}
	var down, back int
	for _, line := range l.all() {
		switch {
		case strings.Contains(line, "fall back to local zones"):
			down++
		case strings.Contains(line, "is back"):
			back++
		}
	}
	if down != 1 || back != 1 || s.Fallbacks() != 1 {
		t.Fatalf("logged %d fallbacks and %d recoveries (counter %d), want 1 each: %q", down, back, s.Fallbacks(), l.all())
	}
}

// Passwords appear neither in the configuration's text nor in errors.
func TestSecretsRedacted(t *testing.T) {
	c := Config{URL: "redis://user:s3cret@127.0.0.1:1/0", Password: "hunter2", Timeout: 20 * time.Millisecond}
	if s := c.String(); strings.Contains(s, "s3cret") || strings.Contains(s, "hunter2") || !strings.Contains(s, "127.0.0.1:1") {
		t.Fatalf("String() = %q", s)
	}
	bad := Config{URL: "ftp://user:s3cret@127.0.0.1:1"}
	if err := bad.Check(); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("Check() = %v", err)
	}
	l := &logs{}
	s, err := Open(c, l.logf) // nothing listens on port 1
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Up() {
		t.Fatal("a store on a closed port is up")
	}
	for _, line := range l.all() {
		if strings.Contains(line, "s3cret") || strings.Contains(line, "hunter2") {
			t.Fatalf("a log line shows a password: %q", line)
		}
	}
	if len(l.all()) != 1 {
		t.Fatalf("logged %q, want one line", l.all())
	}
}

func TestConfigAddresses(t *testing.T) {
	for _, tc := range []struct {
		url, err string
	}{
		{"redis://127.0.0.1:6379", ""},
		{"redis://127.0.0.1:6379/3", ""},
		{"rediss://cache.example:6380", ""},
		{"redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster", ""},
		{"redis+cluster://127.0.0.1:7000,127.0.0.1:7001", ""},
		{"redis+sentinel://127.0.0.1:26379", "names its master"},
		{"redis://127.0.0.1", "has no port"},
		{"redis://127.0.0.1:6379/x", "invalid database"},
		{"redis://a:1,b:2", "several hosts"},
		{"http://127.0.0.1:6379", "scheme"},
	} {
		err := Config{URL: tc.url}.Check()
		if (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: %v, want %q", tc.url, err, tc.err)
		}
	}
}
