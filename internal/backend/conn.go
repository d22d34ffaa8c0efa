package backend

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/wsgate/wsgate/internal/http1"
)

// Peer is the balancer's side of one backend server.
type Peer interface {
	Addr() string
	// Done ends one use of the peer; failed counts it against max_fails.
	Done(failed bool)
}

// Transport is how a location reaches its upstream. It is a small value,
// built per request and copied into each Conn.
type Transport struct {
	Idle           *Pool // the upstream's keepalive cache; nil keeps nothing
	Slots          Slots
	ConnectTimeout time.Duration // proxy_connect_timeout; 0 waits for the kernel
	NoDelay        bool          // tcp_nodelay
	Local          *net.TCPAddr  // proxy_bind: the local address; nil lets the kernel choose
	Transparent    bool          // proxy_bind transparent: IP_TRANSPARENT (needs CAP_NET_ADMIN)
}

// ErrNoSlot is Connect's error when worker_connections are all in use.
var ErrNoSlot = errors.New("worker_connections are not enough")

// Conn is one backend connection in use by one request. Its zero value
// holds nothing; Release on it does nothing.
type Conn struct {
	t    Transport
	peer Peer
	tc   *net.TCPConn // nil after a failed dial
	br   *bufio.Reader
	uses int       // requests served before this one; 0 for a fresh connection
	born time.Time // when the connection was dialled (keepalive_time)

	keepAlive bool // the request lets the connection be kept (see Send)
	reuse     bool // Drained found it fit for the Pool
}

// readers holds the buffers that response heads are read into.
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, http1.ReaderSize) }}

// Connect binds c to peer over an idle connection from the pool or, under a
// new worker_connections slot, a fresh one. On an error c holds nothing and
// the peer's use has ended: ErrNoSlot does not count against the peer, a
// failed dial (an *Error) does.
func (t Transport) Connect(c *Conn, peer Peer) error {
	*c = Conn{t: t, peer: peer}
	if tc, uses, born := t.Idle.get(peer.Addr()); tc != nil {
		c.tc, c.uses, c.born = tc, uses, born
	} else {
		if !t.Slots.Reserve() {
			c.peer = nil
			peer.Done(false)
			return ErrNoSlot
		}
		tc, err := t.dial(peer.Addr())
		if err != nil {
			c.Release(true)
			return &Error{Phase: Connecting, Err: err}
		}
		c.tc, c.born = tc, time.Now()
	}
	c.br = readers.Get().(*bufio.Reader)
	c.br.Reset(c.tc)
	return nil
}

// dial connects to addr under proxy_connect_timeout.
func (t Transport) dial(addr string) (*net.TCPConn, error) {
	var ctx context.Context = context.Background()
	if t.ConnectTimeout > 0 {
		ctx = connectDeadline{time.Now().Add(t.ConnectTimeout)}
	}
	d := net.Dialer{KeepAlive: -1}
	if t.Local != nil {
		d.LocalAddr = t.Local
		if t.Transparent {
			d.Control = transparent
		}
	}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	tc := c.(*net.TCPConn)
	if !t.NoDelay {
		tc.SetNoDelay(false) // Go's dialer has already turned Nagle off
	}
	return tc, nil
}

// redial replaces c's connection, which the peer closed while it was idle,
// by a fresh one under the same slot.
func (c *Conn) redial() error {
	c.tc.Close()
	tc, err := c.t.dial(c.peer.Addr())
	c.tc, c.uses, c.born = tc, 0, time.Now()
	if err != nil {
		return &Error{Phase: Connecting, Err: err}
	}
	c.br.Reset(tc)
	return nil
}

// Net is the connection's socket, for the response's relay.
func (c *Conn) Net() *net.TCPConn { return c.tc }

// Reader is the connection's read buffer: the response head was read
// through it, and the body (or a tunnel's first bytes) may already wait in
// it.
func (c *Conn) Reader() *bufio.Reader { return c.br }

// Addr is the peer's address.
func (c *Conn) Addr() string { return c.peer.Addr() }

// Reused reports whether the connection came from the idle pool.
func (c *Conn) Reused() bool { return c.uses > 0 }

// Drained marks the connection fit for the idle pool: the response resp was
// read to its end, nothing follows it, and neither side asked to close.
func (c *Conn) Drained(resp *http1.Response) {
	c.reuse = c.keepAlive && !resp.Close && !resp.CloseDelimited && c.br.Buffered() == 0
}

// Release ends c's use, once (a second call does nothing). A connection
// that Drained marked goes back to the pool unless failed; any other is
// closed and its slot released. The peer's use ends with Done(failed).
func (c *Conn) Release(failed bool) {
	if c.peer == nil {
		return
	}
	if !c.pool(failed) {
		if c.tc != nil {
			c.tc.Close()
		}
		c.t.Slots.Release(1)
	}
	c.peer.Done(failed)
	c.Detach()
}

func (c *Conn) pool(failed bool) bool {
	if failed || !c.reuse || c.tc == nil {
		return false
	}
	c.tc.SetDeadline(time.Time{})
	return c.t.Idle.put(c.peer.Addr(), c.tc, c.uses+1, c.born)
}

// Detach gives the read buffer back and forgets the connection, whose
// socket, slot and peer use now belong to the caller (a tunnel). Bytes
// buffered in Reader must have been copied first.
func (c *Conn) Detach() {
	if c.br != nil {
		c.br.Reset(nil)
		readers.Put(c.br)
	}
	*c = Conn{}
}

// connectDeadline is the context of a backend dial: proxy_connect_timeout
// and nothing else. The net package turns a context's deadline into the
// socket's write deadline while connect() is pending, which is all the
// timeout needs, and reports its expiry as a timeout error; a
// Dialer.Timeout would instead wrap the context in a timer-backed one and
// register a cancellation callback on it: allocations and a timer per
// dial. Nothing ever cancels a connectDeadline: Done is a channel that
// never closes (the net package applies a deadline only to a context that
// has one), so Err is always nil, and AfterFunc, which context.AfterFunc
// prefers over watching Done, never runs its function.
type connectDeadline struct{ at time.Time }

var neverDone = make(chan struct{})

func (c connectDeadline) Deadline() (time.Time, bool)         { return c.at, true }
func (c connectDeadline) Done() <-chan struct{}               { return neverDone }
func (c connectDeadline) Err() error                          { return nil }
func (c connectDeadline) Value(any) any                       { return nil }
func (c connectDeadline) AfterFunc(func()) (stop func() bool) { return stopNothing }

func stopNothing() bool { return true }
