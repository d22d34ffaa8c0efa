package server

import (
	"sync/atomic"
	"time"
)

// keepMin is a connection's keepalive_min_timeout: when it last became
// idle between requests, and how long from then a graceful stop must
// leave it open (nginx's "not closed ... on graceful worker shutdown";
// wsgate never closes idle connections to make room for new ones).
type keepMin struct {
	since atomic.Int64 // unix nanoseconds
	min   atomic.Int64 // nanoseconds; 0: none
}

// idleFrom records that the connection becomes idle now, to be kept at
// least d. It must come before the connection is marked idle.
func (k *keepMin) idleFrom(d time.Duration) {
	if d > 0 {
		k.since.Store(time.Now().UnixNano())
	}
	k.min.Store(int64(d))
}

// over reports whether the idle connection's minimum has passed.
func (k *keepMin) over() bool {
	m := k.min.Load()
	return m <= 0 || time.Now().UnixNano()-k.since.Load() >= m
}
