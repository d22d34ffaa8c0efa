package upstream

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// nginx Plus's `queue number [timeout=time]`: a request that finds no peer
// able to take it (every peer at max_conns, down, failed or unhealthy)
// waits for one, up to number requests at a time and for at most timeout.

// ErrQueueFull is returned by Attempt.NextQueued when the queue already
// holds its number of requests.
var ErrQueueFull = errors.New("upstream: queue is full")

// ErrQueueTimeout is returned by Attempt.NextQueued when no peer could
// take the request within the queue's timeout.
var ErrQueueTimeout = errors.New("upstream: timed out in queue")

// queue is shared by the generations of one upstream (New carries it), so
// that a slot freed on a peer of an older generation wakes the waiters of
// the current one.
type queue struct {
	waiting atomic.Int64
	mu      sync.Mutex
	freed   chan struct{} // closed and replaced when a slot is freed
}

func newQueue() *queue { return &queue{freed: make(chan struct{})} }

// notify wakes the waiters, if any, after a slot was freed.
func (q *queue) notify() {
	if q == nil || q.waiting.Load() == 0 {
		return
	}
	q.mu.Lock()
	close(q.freed)
	q.freed = make(chan struct{})
	q.mu.Unlock()
}

func (q *queue) changed() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.freed
}

// queuePoll bounds a wait for a change that frees no slot: a failed peer's
// fail_timeout ending, a health check passing, a new address from DNS.
const queuePoll = 100 * time.Millisecond

// NextQueued is Next that, on the first pick of an attempt of an upstream
// with a queue, waits for a peer instead of failing at once. It returns
// the time spent waiting, and ErrQueueFull or ErrQueueTimeout when the
// request got no place in the queue or no peer in time.
func (a *Attempt) NextQueued() (*Peer, time.Duration, error) {
	p, err := a.Next()
	u := a.u
	if err == nil || u == nil || u.queueMax == 0 || a.Tried() > 0 || a.tries <= 0 {
		return p, 0, err
	}
	q := u.q
	if q.waiting.Add(1) > int64(u.queueMax) {
		q.waiting.Add(-1)
		return nil, 0, ErrQueueFull
	}
	defer q.waiting.Add(-1)
	start := time.Now()
	deadline := time.NewTimer(u.queueTimeout)
	defer deadline.Stop()
	poll := time.NewTicker(queuePoll)
	defer poll.Stop()
	for {
		freed := q.changed()
		if p, err = a.Next(); err == nil {
			return p, time.Since(start), nil
		}
		select {
		case <-freed:
		case <-poll.C:
		case <-deadline.C:
			return nil, time.Since(start), ErrQueueTimeout
		}
	}
}
