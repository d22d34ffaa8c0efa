package cluster

import (
	"context"
	"sync"

	"github.com/redis/go-redis/v9"
)

// writer sends the writes nobody waits for (session registrations,
// unregistrations, connection releases) in pipelines: while one pipeline
// is in flight the next writes queue up, so under load many handshakes
// share one round trip.
type writer struct {
	mu   sync.Mutex
	ops  []func(ctx context.Context, p redis.Pipeliner)
	kick chan struct{}
}

func newWriter() *writer { return &writer{kick: make(chan struct{}, 1)} }

// later queues op for the next pipeline. While the store is down the
// write is dropped: recovery writes the live state back whole.
func (s *Store) later(op func(ctx context.Context, p redis.Pipeliner)) {
	if !s.Up() {
		return
	}
	w := s.w
	w.mu.Lock()
	w.ops = append(w.ops, op)
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// writeLoop flushes the queue until the store closes, then once more.
func (s *Store) writeLoop() {
	defer s.loops.Done()
	for {
		select {
		case <-s.stop:
			s.flush()
			return
		case <-s.w.kick:
			s.flush()
		}
	}
}

func (s *Store) flush() {
	w := s.w
	w.mu.Lock()
	ops := w.ops
	w.ops = nil
	w.mu.Unlock()
	if len(ops) == 0 || !s.Up() {
		return
	}
	ctx, cancel := s.ctx()
	defer cancel()
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, op := range ops {
			op(ctx, p)
		}
		return nil
	})
	s.fail(err)
}
