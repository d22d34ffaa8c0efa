// Package memsettle gives the Go heap's spare room back to the operating
// system once the process has gone quiet.
//
// The garbage collector lets the heap grow to about twice what is live
// before it collects (GOGC=100), and the runtime keeps the pages it frees
// for the next burst, returning them only slowly and never below its next
// heap goal. A proxy that holds idle WebSockets allocates almost nothing
// between bursts of handshakes, so its resident memory would keep the last
// burst's garbage until the runtime's periodic collection minutes later.
// Run watches the allocation rate: once it has stayed low for a quiet
// period after the process allocated enough to be worth it (garbage, and
// objects that died since the last collection, cannot be told apart from
// live ones without collecting), Run collects and returns the free pages,
// so that an idle process's RSS follows what it really holds.
package memsettle

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Policy says when the heap is settled. The zero value is not usable;
// start from Default.
type Policy struct {
	// Interval is how often the heap's figures are sampled.
	Interval time.Duration
	// Quiet is how long allocation must stay below QuietRate before a
	// settle.
	Quiet time.Duration
	// QuietRate is the allocation rate, in bytes per second, below which
	// the process counts as quiet.
	QuietRate uint64
	// MinAlloc is the least the process must have allocated, in bytes,
	// since the last settle for the next to be worth a collection.
	MinAlloc uint64
	// LiveShare: it must also have allocated live/LiveShare, so that a
	// large heap is not collected for a small gain.
	LiveShare uint64
}

// Default settles one second after allocation falls below 1 MiB/s, once
// at least 1 MiB and an eighth of the live heap have been allocated since
// the last settle. A burst of 1,000 plain WebSocket handshakes allocates
// about 3.5 MiB; a process holding 9,000 tunnels has about 13 MiB live, so
// with a quarter of it the garbage of such a burst stayed resident, 0.2
// KiB per tunnel held.
var Default = Policy{
	Interval:  250 * time.Millisecond,
	Quiet:     time.Second,
	QuietRate: 1 << 20,
	MinAlloc:  1 << 20,
	LiveShare: 8,
}

// Settled describes one settle.
type Settled struct {
	Live     uint64 // live heap after the collection, bytes
	Returned uint64 // bytes returned to the operating system by it
}

// Enabled reports whether the collector runs at all (GOGC is not off);
// with it off there is nothing for Run to do.
func Enabled() bool {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	// Off reads as -1 stored in a uint64.
	return s[0].Value.Kind() == metrics.KindUint64 && int64(s[0].Value.Uint64()) > 0
}

// Run samples the heap every p.Interval until ctx ends, settling it as the
// package comment says; report, when not nil, is called after each settle.
func Run(ctx context.Context, p Policy, report func(Settled)) {
	if !Enabled() {
		return
	}
	t := time.NewTicker(p.Interval)
	defer t.Stop()
	w := newWatch(p)
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			before := readHeap()
			if !w.due(before, now) {
				continue
			}
			debug.FreeOSMemory()
			after := readHeap()
			w.settled(after, time.Now())
			if report != nil {
				report(Settled{Live: after.live, Returned: after.released - before.released})
			}
		}
	}
}

// heap holds the runtime's figures one sample needs.
type heap struct {
	allocs   uint64 // bytes allocated since the process started
	live     uint64 // bytes marked live by the last collection
	released uint64 // heap pages returned to the operating system
}

var heapMetrics = []string{
	"/gc/heap/allocs:bytes",
	"/gc/heap/live:bytes",
	"/memory/classes/heap/released:bytes",
}

func readHeap() heap {
	s := make([]metrics.Sample, len(heapMetrics))
	for i, n := range heapMetrics {
		s[i].Name = n
	}
	metrics.Read(s)
	v := func(i int) uint64 {
		if s[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return s[i].Value.Uint64()
	}
	return heap{allocs: v(0), live: v(1), released: v(2)}
}

// watch is Run's state between samples.
type watch struct {
	p           Policy
	last        heap
	lastAt      time.Time
	quietSince  time.Time // zero while allocating faster than QuietRate
	settledAt   uint64    // allocs at the last settle
	initialized bool
}

func newWatch(p Policy) *watch { return &watch{p: p} }

// due records sample h taken at now and reports whether to settle.
func (w *watch) due(h heap, now time.Time) bool {
	if !w.initialized {
		w.last, w.lastAt, w.initialized = h, now, true
		w.settledAt = h.allocs
		return false
	}
	elapsed := now.Sub(w.lastAt)
	rate := perSecond(h.allocs-w.last.allocs, elapsed)
	w.last, w.lastAt = h, now
	if rate >= w.p.QuietRate {
		w.quietSince = time.Time{}
		return false
	}
	if w.quietSince.IsZero() {
		w.quietSince = now.Add(-elapsed)
	}
	if now.Sub(w.quietSince) < w.p.Quiet {
		return false
	}
	grown := h.allocs - w.settledAt
	return grown >= w.p.MinAlloc && grown >= h.live/w.p.LiveShare
}

// settled records a settle whose result is h.
func (w *watch) settled(h heap, now time.Time) {
	w.last, w.lastAt = h, now
	w.settledAt = h.allocs
	w.quietSince = time.Time{}
}

func perSecond(n uint64, d time.Duration) uint64 {
	if d <= 0 {
		return n
	}
	return uint64(float64(n) / d.Seconds())
}
