package memsettle

import (
	"context"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

var testPolicy = Policy{
	Interval:  20 * time.Millisecond,
	Quiet:     100 * time.Millisecond,
	QuietRate: 1 << 20,
	MinAlloc:  4 << 20,
	LiveShare: 4,
}

// sink keeps allocations from being optimised away.
var sink [][]byte

// burst allocates n bytes of garbage in 32 KiB pieces.
func burst(n int) {
	for i := 0; i < n/(32<<10); i++ {
		sink = append(sink, make([]byte, 32<<10))
		if len(sink) == 64 {
			sink = sink[:0]
		}
	}
	sink = nil
}

// TestSettlesAfterBurst: garbage left by a burst is collected and its pages
// returned once the process is quiet, well before the runtime's own
// periodic collection.
func TestSettlesAfterBurst(t *testing.T) {
	// 48 MiB live puts the runtime's next collection near 96 MiB, so the
	// burst's 32 MiB stay uncollected until a settle.
	live := make([][]byte, 48)
	for i := range live {
		live[i] = make([]byte, 1<<20)
	}
	runtime.GC()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan Settled, 4)
	go Run(ctx, testPolicy, func(s Settled) { got <- s })
	time.Sleep(3 * testPolicy.Interval) // the watch's first sample
	before := readHeap()
	burst(32 << 20)
	select {
	case s := <-got:
		after := readHeap()
		if after.released < before.released+16<<20 {
			t.Errorf("released %d B before the burst, %d after the settle: less than 16 MiB returned", before.released, after.released)
		}
		if s.Live > 56<<20 {
			t.Errorf("%d B live after the settle, the burst's garbage included (report %+v)", s.Live, s)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no settle within 10 s of a 32 MiB burst; heap before %+v, now %+v", before, readHeap())
	}
	runtime.KeepAlive(live)
}

// TestNoSettleWhileBusy: a process that keeps allocating is left to the
// runtime's collector.
func TestNoSettleWhileBusy(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan Settled, 4)
	p := testPolicy
	p.Quiet = 250 * time.Millisecond // longer than a loaded machine's scheduling hiccups
	go Run(ctx, p, func(s Settled) { got <- s })
	end := time.Now().Add(8 * p.Quiet)
	for time.Now().Before(end) {
		burst(1 << 20) // about 1 MiB per millisecond or two: far above QuietRate
		select {
		case s := <-got:
			t.Fatalf("settled while allocating: %+v", s)
		default:
		}
	}
}

// TestEnabled: with the collector off (GOGC=off) there is nothing to
// settle.
func TestEnabled(t *testing.T) {
	if !Enabled() {
		t.Fatal("not enabled with the collector on")
	}
	old := debug.SetGCPercent(-1)
	defer debug.SetGCPercent(old)
	if Enabled() {
		t.Fatal("enabled with the collector off")
	}
}

// TestDue covers the decision on given samples.
func TestDue(t *testing.T) {
	t0 := time.Unix(1000, 0)
	const mib = 1 << 20
	tick := func(w *watch, at time.Duration, h heap) bool { return w.due(h, t0.Add(at)) }
	ms := time.Millisecond

	w := newWatch(testPolicy)
	tick(w, 0, heap{allocs: 100 * mib, live: 10 * mib})
	// A burst: 50 MiB allocated in 20 ms, then nothing.
	if tick(w, 20*ms, heap{allocs: 150 * mib, live: 10 * mib}) {
		t.Fatal("due while allocating")
	}
	if tick(w, 60*ms, heap{allocs: 150 * mib, live: 10 * mib}) {
		t.Fatal("due before the quiet period")
	}
	if !tick(w, 140*ms, heap{allocs: 150 * mib, live: 10 * mib}) {
		t.Fatal("not due after a quiet period following 50 MiB of allocation")
	}
	w.settled(heap{allocs: 150 * mib, live: 10 * mib}, t0.Add(150*ms))
	if tick(w, 400*ms, heap{allocs: 150 * mib, live: 10 * mib}) {
		t.Fatal("due again with nothing allocated since the settle")
	}
	// A trickle under QuietRate adds up to MinAlloc.
	if tick(w, 1400*ms, heap{allocs: 150*mib + mib/2, live: 10 * mib}) {
		t.Fatal("due after 0.5 MiB allocated since the settle")
	}
	if !tick(w, 10400*ms, heap{allocs: 155 * mib, live: 10 * mib}) {
		t.Fatal("not due after 5 MiB allocated slowly since the settle")
	}

	// A large live heap: a quarter of it must have been allocated.
	w = newWatch(testPolicy)
	tick(w, 0, heap{allocs: 0, live: 400 * mib})
	tick(w, 20*ms, heap{allocs: 50 * mib, live: 400 * mib})
	if tick(w, 200*ms, heap{allocs: 50 * mib, live: 400 * mib}) {
		t.Fatal("due after 50 MiB allocated over 400 MiB live")
	}
	tick(w, 220*ms, heap{allocs: 110 * mib, live: 400 * mib})
	if !tick(w, 400*ms, heap{allocs: 110 * mib, live: 400 * mib}) {
		t.Fatal("not due after 110 MiB allocated over 400 MiB live")
	}
}

// TestDefaultSettlesSmallBurst: with the default policy, the garbage of a
// burst of 1,000 handshakes (about 3.5 MiB) on a process holding 9,000
// idle tunnels (about 13 MiB live) is collected once the process is quiet.
func TestDefaultSettlesSmallBurst(t *testing.T) {
	t0 := time.Unix(1000, 0)
	const mib = 1 << 20
	w := newWatch(Default)
	w.due(heap{allocs: 200 * mib, live: 13 * mib}, t0)
	w.settled(heap{allocs: 200 * mib, live: 13 * mib}, t0)
	w.due(heap{allocs: 203*mib + mib/2, live: 13 * mib}, t0.Add(500*time.Millisecond))
	due := false
	for at := time.Second; at <= 3*time.Second && !due; at += Default.Interval {
		due = w.due(heap{allocs: 203*mib + mib/2, live: 13 * mib}, t0.Add(at))
	}
	if !due {
		t.Fatal("3.5 MiB allocated over 13 MiB live: not settled")
	}
}
