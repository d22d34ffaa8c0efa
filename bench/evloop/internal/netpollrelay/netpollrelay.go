// Package netpollrelay is the relay on github.com/cloudwego/netpoll:
// GOMAXPROCS pollers read sockets into each connection's buffer and run
// OnRequest on a goroutine from a pool when input waits. The backend is
// connected with netpoll.DialConnection (a non-blocking connect that the
// calling goroutine waits out on netpoll's poller) from that goroutine.
package netpollrelay

import (
	"context"
	"log"
	"runtime"
	"sync"
	"time"

	"github.com/cloudwego/netpoll"
	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/bench/evloop/internal/head"
)

type ctxKey struct{}

// tunnel is one client and its backend; OnRequest runs one at a time per
// connection, and mu guards what the two sides share.
type tunnel struct {
	hd   head.Accumulator
	mu   sync.Mutex
	back netpoll.Connection
}

// Run serves listen until netpoll fails.
func Run(listen, backend string) error {
	if err := netpoll.Configure(netpoll.Config{PollerNum: runtime.GOMAXPROCS(0)}); err != nil {
		return err
	}
	ln, err := netpoll.CreateListener("tcp", listen)
	if err != nil {
		return err
	}
	el, err := netpoll.NewEventLoop(
		func(ctx context.Context, c netpoll.Connection) error { return onClient(ctx, c, backend) },
		netpoll.WithOnPrepare(func(c netpoll.Connection) context.Context {
			return context.WithValue(context.Background(), ctxKey{}, &tunnel{})
		}))
	if err != nil {
		return err
	}
	return el.Serve(ln)
}

// onClient forwards the client's input: the head until it is complete,
// then everything to the backend.
func onClient(ctx context.Context, c netpoll.Connection, backend string) error {
	t := ctx.Value(ctxKey{}).(*tunnel)
	r := c.Reader()
	data, err := r.Next(r.Len())
	if err != nil {
		return c.Close()
	}
	t.mu.Lock()
	b := t.back
	t.mu.Unlock()
	if b != nil {
		err = forward(b, data)
		r.Release()
		if err != nil {
			c.Close()
		}
		return nil
	}
	all, done, tooLong := t.hd.Add(data)
	r.Release()
	if tooLong {
		c.Writer().WriteBinary(head.BadRequest)
		c.Writer().Flush()
		return c.Close()
	}
	if done {
		return t.dial(c, backend, all)
	}
	return nil
}

// dial connects the backend from the OnRequest goroutine, writes the head,
// and links the two connections' input and closing.
func (t *tunnel) dial(c netpoll.Connection, backend string, first []byte) error {
	b, err := netpoll.DialConnection("tcp", backend, 5*time.Second)
	if err != nil {
		log.Printf("netpoll: dial: %v", err)
		return c.Close()
	}
	b.SetOnRequest(func(_ context.Context, b netpoll.Connection) error {
		r := b.Reader()
		data, err := r.Next(r.Len())
		if err == nil {
			err = forward(c, data)
		}
		r.Release()
		if err != nil {
			b.Close()
		}
		return nil
	})
	b.AddCloseCallback(func(netpoll.Connection) error { return shutWrite(c) })
	c.AddCloseCallback(func(netpoll.Connection) error { return shutWrite(b) })
	t.mu.Lock()
	t.back = b
	t.mu.Unlock()
	if err := forward(b, first); err != nil {
		b.Close()
		c.Close()
	}
	return nil
}

// forward copies p into dst's output buffer (p belongs to a reader that is
// released next) and flushes it.
func forward(dst netpoll.Connection, p []byte) error {
	w := dst.Writer()
	buf, err := w.Malloc(len(p))
	if err != nil {
		return err
	}
	copy(buf, p)
	return w.Flush()
}

// shutWrite runs when netpoll closed the other side, which it does on that
// side's end of input too: c's output is shut, passing the end on. netpoll
// tells a clean end from an error to neither, so errors half-close too.
func shutWrite(c netpoll.Connection) error {
	if !c.IsActive() {
		return nil
	}
	if f, ok := c.(interface{ Fd() int }); ok {
		if unix.Shutdown(f.Fd(), unix.SHUT_WR) == nil {
			return nil
		}
	}
	return c.Close()
}
