package cluster

import (
	"context"
	"net"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// tripCounter counts round trips to the store: a command, or a pipeline,
// is one.
type tripCounter struct{ n *atomic.Int64 }

func (h tripCounter) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (h tripCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h tripCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// RoundTrips counts the calls made to the store since it was opened,
// heartbeats and the command stream's reads included; a pipeline is one.
func (s *Store) RoundTrips() int64 { return s.trips.Load() }

// quietLogger drops the client library's own log lines (sentinel and pool
// chatter written to stderr); the store reports what matters through its
// logf, without addresses' secrets.
type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

var quietOnce sync.Once

func quietLibrary() { quietOnce.Do(func() { redis.SetLogger(quietLogger{}) }) }
