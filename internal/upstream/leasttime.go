package upstream

import "time"

// nginx Plus's least_time: least_conn with each peer's active connections
// weighed by its average response time.

// maxAvgMicros caps a peer's average so that the products compared in a
// pick cannot overflow.
const maxAvgMicros = 60e6

// Observe records one response time of p (for least_time: the time to the
// response head, a WebSocket handshake's included, or to its last byte).
// The average moves an eighth of the way to each new time, and is shared
// with the peers that replace p on reload.
func (p *Peer) Observe(d time.Duration) {
	v := min(max(d.Microseconds(), 0), maxAvgMicros)
	for {
		old := p.st.avg.Load()
		next := v
		if old > 0 {
			next = old + (v-old)/8
		}
		if p.st.avg.CompareAndSwap(old, max(next, 1)) {
			return
		}
	}
}

// AvgResponse returns the average that Observe keeps; 0 before any.
func (p *Peer) AvgResponse() time.Duration {
	return time.Duration(p.st.avg.Load()) * time.Microsecond
}

// load is what least_conn and least_time compare, per unit of weight: the
// active connections, for least_time times the average response time (a
// peer not yet measured counts as the fastest, so that it gets measured).
func (a *Attempt) load(p *Peer) int64 {
	c := p.st.conns.Load()
	if a.u.method != LeastTime {
		return c
	}
	return (c + 1) * (p.st.avg.Load() + 1)
}
