package backend

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/sockio"
)

// Peer is the balancer's side of one backend server.
type Peer interface {
	// Addr is "host:port" for TCP, or "unix:/path" for a unix socket.
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
	// TLS, when set, wraps each new connection in a TLS client under it
	// (proxy_pass https://); the handshake runs under ConnectTimeout.
	// Idle connections are reused only by a Transport with the same TLS.
	TLS         *tls.Config
	Local       *net.TCPAddr // proxy_bind: the local address; nil lets the kernel choose
	Transparent bool         // proxy_bind transparent: IP_TRANSPARENT (needs CAP_NET_ADMIN)
	// SocketKeepalive turns TCP keepalive on for new connections
	// (proxy_socket_keepalive), with the system's timings.
	SocketKeepalive bool
	// OwnSocket connects to an IP address through sockio.Dial rather than
	// the net package's dialer (see connect for the trade).
	OwnSocket bool
}

// ErrNoSlot is Connect's error when worker_connections are all in use.
var ErrNoSlot = errors.New("worker_connections are not enough")

// Conn is one backend connection in use by one request. Its zero value
// holds nothing; Release on it does nothing.
type Conn struct {
	t    Transport
	peer Peer
	tc   net.Conn // a *net.TCPConn, *net.UnixConn or *tls.Conn; nil after a failed dial
	br   *bufio.Reader
	uses int       // requests served before this one; 0 for a fresh connection
	born time.Time // when the connection was dialled (keepalive_time)

	keepAlive bool // the request lets the connection be kept (see Send)
	reuse     bool // Drained found it fit for the Pool

	// dl is the context of a dial by c: in place, a pointer to it makes a
	// context.Context without an allocation.
	dl connectDeadline
}

// readers holds the buffers that response heads are read into.
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, http1.ReaderSize) }}

// Connect binds c to peer over an idle connection from the pool or, under a
// new worker_connections slot, a fresh one. On an error c holds nothing and
// the peer's use has ended: ErrNoSlot does not count against the peer, a
// failed dial (an *Error) does.
func (t Transport) Connect(c *Conn, peer Peer) error {
	*c = Conn{t: t, peer: peer}
	if tc, uses, born := t.Idle.get(peer.Addr(), t.TLS); tc != nil {
		c.tc, c.uses, c.born = tc, uses, born
	} else {
		if !t.Slots.Reserve() {
			c.peer = nil
			peer.Done(false)
			return ErrNoSlot
		}
		tc, err := t.dial(peer.Addr(), &c.dl)
		if err != nil {
			c.Release(true)
			return &Error{Phase: phaseOf(err), Err: err}
		}
		c.tc, c.born = tc, time.Now()
	}
	c.br = readers.Get().(*bufio.Reader)
	c.br.Reset(c.tc)
	return nil
}

// dial connects to addr (see Peer.Addr) under proxy_connect_timeout and,
// with t.TLS, completes the TLS handshake within the same time; dl is
// where the dial's context is kept.
func (t Transport) dial(addr string, dl *connectDeadline) (net.Conn, error) {
	var ctx context.Context = context.Background()
	var deadline time.Time
	if t.ConnectTimeout > 0 {
		deadline = time.Now().Add(t.ConnectTimeout)
		*dl = connectDeadline{deadline}
		ctx = dl
	}
	c, err := t.connect(ctx, addr, deadline)
	if err != nil {
		return nil, err
	}
	if t.TLS == nil {
		return c, nil
	}
	return handshake(c, t.TLS, deadline)
}

// handshake runs the TLS client handshake over c, finished by deadline
// (none when zero). On failure c is closed and the error is a
// *HandshakeError.
func handshake(c net.Conn, cfg *tls.Config, deadline time.Time) (net.Conn, error) {
	c.SetDeadline(deadline)
	tc := tls.Client(sockio.Wrap(c), cfg)
	if err := tc.Handshake(); err != nil {
		c.Close()
		return nil, &HandshakeError{Err: err}
	}
	c.SetDeadline(time.Time{})
	return tc, nil
}

// connect makes the connection to addr, by ctx's deadline (deadline, or
// none when zero). An IP address without a zone goes through sockio.Dial
// with t.OwnSocket, and with proxy_bind to an IP address, which it binds
// as nginx does (IP_BIND_ADDRESS_NO_PORT); anything else through the net
// package's dialer.
//
// sockio.Dial costs about 5% less CPU per plain WebSocket handshake (one
// system call and sixteen allocations less), and its socket holds less
// memory for as long as it lives: 0.18 KiB less per idle plain tunnel. But
// two of its long-lived objects (the Socket and the os.File's state, 64
// and 96 bytes) fall in size classes that TLS handshakes fill with
// garbage: amid those, the spans that hold them ended about a quarter
// full, and an idle wss tunnel measured 0.4 KiB more. So the caller asks
// for it only where no TLS handshake is made.
func (t Transport) connect(ctx context.Context, addr string, deadline time.Time) (net.Conn, error) {
	path, isUnix := strings.CutPrefix(addr, "unix:")
	if !isUnix && t.ownSocket() {
		if ap, err := netip.ParseAddrPort(addr); err == nil && ap.Addr().Zone() == "" {
			s, err := sockio.Dial(ap, deadline, t.dialOptions())
			if err != nil {
				return nil, err // not a nil *Socket in a non-nil net.Conn
			}
			return s, nil
		}
	}
	d := net.Dialer{KeepAlive: -1}
	if t.SocketKeepalive {
		// proxy_socket_keepalive: SO_KEEPALIVE with the system's timings.
		d.KeepAliveConfig = net.KeepAliveConfig{Enable: true, Idle: -1, Interval: -1, Count: -1}
	}
	if isUnix {
		return d.DialContext(ctx, "unix", path)
	}
	if t.Local != nil { // proxy_bind to a name or a scoped address
		d.LocalAddr = t.Local
		if t.Transparent {
			d.Control = transparent
		}
	} else if loopback(addr) {
		d.Control = connectNow
	}
	c, err := d.DialContext(ctx, "tcp", addr)
	if tc, ok := c.(*net.TCPConn); ok && !t.NoDelay {
		tc.SetNoDelay(false) // Go's dialer has already turned Nagle off
	}
	return c, err
}

// ownSocket reports whether an IP peer is connected through sockio.Dial:
// with OwnSocket, or to bind to proxy_bind's address unless it has a zone.
func (t Transport) ownSocket() bool {
	if t.Local != nil {
		return t.Local.Zone == ""
	}
	return t.OwnSocket
}

// dialOptions are t's socket options for sockio.Dial, binding to t.Local.
func (t Transport) dialOptions() sockio.DialOptions {
	return sockio.DialOptions{
		NoDelay: t.NoDelay, KeepAlive: t.SocketKeepalive,
		Local: t.Local.AddrPort(), Transparent: t.Transparent,
	}
}

// HandshakeError is a failed TLS handshake with a peer (a refused
// certificate among others); Error.Phase is Handshaking.
type HandshakeError struct{ Err error }

func (e *HandshakeError) Error() string { return e.Err.Error() }
func (e *HandshakeError) Unwrap() error { return e.Err }

// rawConn is c's socket, for system calls on it, or nil when c is not a
// plain socket (a TLS connection).
func rawConn(c net.Conn) syscall.Conn {
	switch c := c.(type) {
	case *net.TCPConn:
		return c
	case *net.UnixConn:
		return c
	case *sockio.Conn:
		return c
	case *sockio.Socket:
		return c
	}
	return nil
}

// socketOf is the socket under c, TLS or not.
func socketOf(c net.Conn) syscall.Conn {
	if tc, ok := c.(*tls.Conn); ok {
		return rawConn(tc.NetConn())
	}
	return rawConn(c)
}

// redial replaces c's connection, which the peer closed while it was idle,
// by a fresh one under the same slot.
func (c *Conn) redial() error {
	c.tc.Close()
	tc, err := c.t.dial(c.peer.Addr(), &c.dl)
	c.tc, c.uses, c.born = tc, 0, time.Now()
	if err != nil {
		return &Error{Phase: phaseOf(err), Err: err}
	}
	c.br.Reset(tc)
	return nil
}

// phaseOf is the phase a dial failed in.
func phaseOf(err error) Phase {
	var he *HandshakeError
	if errors.As(err, &he) {
		return Handshaking
	}
	return Connecting
}

// Net is the connection, for the response's relay: a *net.TCPConn, a
// *net.UnixConn or, to a TLS peer, a *tls.Conn.
func (c *Conn) Net() net.Conn { return c.tc }

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
	return c.t.Idle.put(c.peer.Addr(), c.t.TLS, c.tc, c.uses+1, c.born)
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
