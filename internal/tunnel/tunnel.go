package tunnel

import (
	"errors"
	"math"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/internal/sockio"
)

// Side names an end of a tunnel, or wsgate itself.
type Side uint8

// Sides of a tunnel.
const (
	SideClient Side = iota
	SideBackend
	SideProxy
)

func (s Side) String() string {
	switch s {
	case SideClient:
		return "client"
	case SideBackend:
		return "backend"
	case SideProxy:
		return "proxy"
	}
	return "unknown"
}

// Close codes wsgate sends on its own account (RFC 6455, section 7.4.1).
const (
	CodeGoingAway       uint16 = 1001
	CodeProtocolError   uint16 = 1002
	CodePolicyViolation uint16 = 1008
	CodeInvalidData     uint16 = 1007
	CodeTooBig          uint16 = 1009
	// CodeNoStatus is recorded, never sent, for a close frame without a code.
	CodeNoStatus uint16 = 1005
)

// DefaultCloseGrace is how long a deliberate close waits, when
// Config.CloseGrace is zero, for a partial frame to complete and for the
// peers to answer wsgate's close frames.
const DefaultCloseGrace = 2 * time.Second

// Reasons a tunnel ends that are not a peer's doing; see Result.Err.
var (
	ErrIdleTimeout = errors.New("tunnel: idle timeout")
	ErrSendTimeout = errors.New("tunnel: send timeout")
	ErrProtocol    = errors.New("tunnel: websocket protocol violation")
	// ErrPingTimeout: a leg sent nothing within PingTimeout of a ping.
	ErrPingTimeout = errors.New("tunnel: ping timeout")
	// ErrTooBig: a frame or message went over MaxFrameSize or
	// MaxMessageSize.
	ErrTooBig = errors.New("tunnel: frame or message too big")
	// ErrRateLimited: a sender went over MessageRate.
	ErrRateLimited = errors.New("tunnel: message rate exceeded")
	// ErrLifetime: the tunnel reached Config.MaxSession.
	ErrLifetime = errors.New("tunnel: session lifetime reached")
)

// Reason is why a tunnel ended, as $websocket_close_reason names it.
type Reason uint8

// Reasons a tunnel ends.
const (
	// ReasonPeer: a peer closed (with a close frame or not), or its
	// connection failed.
	ReasonPeer        Reason = iota
	ReasonIdle               // IdleTimeout
	ReasonSendTimeout        // SendTimeout
	ReasonPing               // a ping went unanswered
	ReasonLimit              // a frame, message or rate limit
	ReasonProtocol           // a frame wsgate cannot relay, or strict validation
	ReasonLifetime           // Config.MaxSession
	ReasonDrain              // a reload retired the tunnel's location or peer
	ReasonRebalance          // websocket_rebalance moved the tunnel
	ReasonShutdown           // the server stopped
	ReasonReauth             // a re-authorisation refused the session; the last (see ReasonCount)
)

func (r Reason) String() string {
	switch r {
	case ReasonPeer:
		return "peer"
	case ReasonIdle:
		return "idle"
	case ReasonSendTimeout:
		return "send_timeout"
	case ReasonPing:
		return "ping"
	case ReasonLimit:
		return "limit"
	case ReasonProtocol:
		return "protocol"
	case ReasonLifetime:
		return "lifetime"
	case ReasonDrain:
		return "drain"
	case ReasonRebalance:
		return "rebalance"
	case ReasonShutdown:
		return "shutdown"
	case ReasonReauth:
		return "reauth"
	}
	return "unknown"
}

// Config tells Start how to run a tunnel. The zero value is a pure byte pipe
// with no timeouts.
type Config struct {
	// Frames tracks WebSocket frame boundaries (the default for WebSocket
	// upgrades). Without it the tunnel is a byte pipe and closes without
	// close frames.
	//
	// A tracked tunnel judges only what it must understand itself: frame
	// lengths, control frames of at most 125 bytes that are not
	// fragmented, and its limits. Everything else (reserved opcodes, RSV
	// bits, masking, UTF-8, close codes, interleaved messages) passes to
	// the endpoint that must judge it, unless Strict. A peer that ends its
	// stream or fails without a close frame is mirrored: the other peer's
	// stream ends the same way, with no close frame of wsgate's.
	Frames bool
	// Strict, with Frames, validates every frame as RFC 6455 requires of
	// an endpoint: the offender gets close 1002 (1007 for invalid UTF-8)
	// and the other leg 1001. Text is checked on the buffer path, so a
	// strict tunnel never splices text messages.
	Strict bool
	// AllowRSV, with Strict, holds the RSV bits (RSV1<<2 | RSV2<<1 | RSV3)
	// that the negotiated extensions use; RSV1 on a message's first frame
	// marks it compressed, and its text is not checked.
	AllowRSV uint8
	// SessionCode is the close code sent to both legs at MaxSession; zero
	// means 1001.
	SessionCode uint16
	// ClientOnCaller starts no goroutine for the client's direction: the
	// caller must call RunClient exactly once, which relays what the
	// client sends on the caller's goroutine. It is for a client leg that
	// cannot be parked and whose caller's goroutine lives as long as the
	// tunnel anyway (an HTTP/2 stream's handler), so that the tunnel
	// costs no goroutine of its own there.
	ClientOnCaller bool
	// IdleTimeout closes the tunnel when no byte has been read from
	// either side for this long (nginx's proxy_read_timeout as wsgate
	// applies it to tunnels). Zero means never.
	IdleTimeout time.Duration
	// SendTimeout aborts the tunnel when a single write stays blocked this
	// long (proxy_send_timeout, send_timeout). Zero means never.
	SendTimeout time.Duration
	// CloseGrace bounds a deliberate close: the wait for a frame to
	// complete and for the peers' answers. Zero means DefaultCloseGrace.
	CloseGrace time.Duration
	// PingInterval, with Frames, pings a leg (client or backend, each on
	// its own) that has sent nothing for this long; the ping is written
	// at a frame boundary of the direction toward that leg. Pongs that
	// answer wsgate's pings are consumed, not relayed; like every byte
	// read they count as activity for IdleTimeout. Zero means never.
	PingInterval time.Duration
	// PingTimeout closes the tunnel when a pinged leg sends nothing at
	// all within this long after the ping was written: the other leg gets
	// close 1001, the silent one close 1001 only if it takes it at once.
	// A ping that cannot be written within PingTimeout counts as
	// unanswered, and so does one queued behind a write to the leg that
	// stays blocked for PingTimeout. A ping waiting for the end of a frame
	// whose sender has stalled mid-frame detects nothing until the frame
	// goes on (that is IdleTimeout's job). A leg is never taken for silent
	// while wsgate itself is not reading it, its direction being blocked
	// on the other leg. Zero means pings are sent but never awaited.
	PingTimeout time.Duration
	// MaxFrameSize and MaxMessageSize, with Frames, bound the payload
	// bytes on the wire of one frame and of one message (the sum of its
	// fragments; control frames are not part of messages), in both
	// directions. They are checked on the frame header: an offending
	// frame is not forwarded, its sender gets close 1009 and the other
	// leg 1001. Zero means no limit.
	MaxFrameSize, MaxMessageSize int64
	// MessageRate, with Frames, bounds the client's data messages per
	// second with a token bucket of MessageBurst messages (less than 1
	// means 1), taken as a message starts: the message that finds it
	// empty is not forwarded, its sender gets close 1008 and the other
	// leg 1001. RateLimitBackend applies a bucket of its own to the
	// backend's messages too. Zero means no limit.
	MessageRate      float64
	MessageBurst     int
	RateLimitBackend bool
	// MaxSession closes the tunnel, as Shutdown with SessionCode does, once
	// it has been open this long; the check runs once a sweep period
	// (a second), so the close comes up to a period late. Zero means never.
	MaxSession time.Duration
	// Meter, if set, counts the tunnel's session as it ends and, with
	// Meter.Messages, its messages as they pass (which gives both
	// directions the per-direction state that limits use).
	Meter *Meter
	// FDReserve is how many descriptors splice's pipes leave free below
	// the process's RLIMIT_NOFILE soft limit, besides a slack of their
	// own for listeners and files: the server's connection limit
	// (worker_connections), whose connections must always find a
	// descriptor. Without one to spare, a direction copies through its
	// buffer instead of splicing.
	FDReserve int
	// OnClose, if set, is told exactly once, on a tunnel goroutine,
	// after both connections are closed and both relay goroutines are
	// done with them. It must not call Shutdown on the same tunnel.
	OnClose Closer
}

// Closer is told how a tunnel ended. An interface rather than a func: the
// caller's per-tunnel state is the Closer itself, with no closure to
// allocate for each tunnel.
type Closer interface {
	TunnelClosed(Result)
}

// CloseFunc is a function as a Closer.
type CloseFunc func(Result)

// TunnelClosed calls f.
func (f CloseFunc) TunnelClosed(r Result) { f(r) }

// Result says how a tunnel ended.
type Result struct {
	// FromClient and FromBackend count bytes read from each side,
	// including the pending bytes handed to Start.
	FromClient, FromBackend int64
	// ClosedBy is the side that ended the tunnel first: the sender of the
	// first close frame, the first side to end its stream, or SideProxy.
	ClosedBy Side
	// CloseCode is the code of the first close frame seen or sent;
	// CodeNoStatus for a close frame without a code, 0 if none passed.
	CloseCode uint16
	// Err is why the tunnel ended abnormally: a read or write error,
	// ErrIdleTimeout, ErrSendTimeout, ErrPingTimeout or an error
	// wrapping ErrProtocol, ErrTooBig or ErrRateLimited (ClosedBy then
	// names the offender, as for ErrProtocol).
	// A clean close, a peer's end of stream and Shutdown leave it nil.
	Err error
	// DeadSide is the leg that did not answer a ping; meaningful only
	// when Err is ErrPingTimeout.
	DeadSide Side
	// Reason is why the tunnel ended.
	Reason Reason
	// MessagesFromClient and MessagesFromBackend count complete data
	// messages relayed (with Frames; zero for a byte pipe).
	MessagesFromClient, MessagesFromBackend int64
	Start, End                              time.Time
}

// Culprit is the side whose failure Err reports: DeadSide for a ping
// timeout, else ClosedBy (SideProxy for wsgate's own limits and
// timeouts). A backend that resets the connection is SideBackend.
func (r *Result) Culprit() Side {
	if errors.Is(r.Err, ErrPingTimeout) {
		return r.DeadSide
	}
	return r.ClosedBy
}

// rateClock is the clock of MessageRate; a variable for tests.
var rateClock = time.Now

// Directions, as indexes into Tunnel.dirs.
const (
	c2b = 0 // reads the client, writes the backend
	b2c = 1 // reads the backend, writes the client
)

// conf is the part of a Config that a tunnel keeps. The settings that most
// tunnels leave off (pings, limits, a session lifetime) sit behind a
// pointer, which points to a shared zero value when all are off: a
// tunnel's own copy costs 56 bytes less, which keeps Tunnel a size class
// smaller. Reads go through the embedded pointer as through Config; the
// limits are never written once the tunnel starts.
type conf struct {
	Frames, Strict, ClientOnCaller bool
	AllowRSV                       uint8
	FDReserve                      int32 // beside the flags, in one word
	IdleTimeout, SendTimeout       time.Duration
	CloseGrace                     time.Duration
	Meter                          *Meter
	OnClose                        Closer
	*limits
}

// limits are the settings of Config that most tunnels leave off.
type limits struct {
	PingInterval, PingTimeout    time.Duration
	MaxFrameSize, MaxMessageSize int64
	MessageRate                  float64
	MessageBurst                 int
	MaxSession                   time.Duration
	SessionCode                  uint16
	RateLimitBackend             bool
}

// noLimits is the limits of every tunnel that has none; never written.
var noLimits = new(limits)

// confOf is c as a tunnel keeps it.
func confOf(c *Config) conf {
	l := limits{
		PingInterval: c.PingInterval, PingTimeout: c.PingTimeout,
		MaxFrameSize: c.MaxFrameSize, MaxMessageSize: c.MaxMessageSize,
		MessageRate: c.MessageRate, MessageBurst: c.MessageBurst,
		MaxSession: c.MaxSession, SessionCode: c.SessionCode, RateLimitBackend: c.RateLimitBackend,
	}
	k := conf{
		Frames: c.Frames, Strict: c.Strict, ClientOnCaller: c.ClientOnCaller, AllowRSV: c.AllowRSV,
		IdleTimeout: c.IdleTimeout, SendTimeout: c.SendTimeout, CloseGrace: c.CloseGrace,
		Meter: c.Meter, FDReserve: int32(min(c.FDReserve, math.MaxInt32)), OnClose: c.OnClose, limits: noLimits,
	}
	// PingTimeout, SessionCode, MessageBurst and RateLimitBackend qualify
	// PingInterval, MaxSession and MessageRate (a location has a
	// PingTimeout by default): alone, they change nothing.
	if l.PingInterval != 0 || l.MaxFrameSize != 0 || l.MaxMessageSize != 0 ||
		l.MessageRate != 0 || l.MaxSession != 0 {
		k.limits = new(limits) // allocated here only: &l would move l to the heap on every call
		*k.limits = l
	}
	return k
}

// Tunnel is a running relay between a client and a backend connection.
// From Start on, the Tunnel owns both connections and closes each exactly
// once; the caller must not use them. All methods are safe for concurrent
// use. The zero value is not usable: call Start.
type Tunnel struct {
	cfg   conf
	start time.Time
	dirs  [2]dir

	last atomic.Int64 // nanoseconds from start to the last read, for IdleTimeout (swept: to the sweep that saw it)
	tick *time.Timer  // the one timer behind IdleTimeout and pings
	live atomic.Int32 // relay goroutines still running
	// The flags share live's word: no padding (see TestTunnelSizeClass).
	timed      bool // IdleTimeout or pings by the timer: reads record their time
	swept      bool // IdleTimeout is checked by the parking sweep
	registered bool // in the parking sweep's list; under parker.mu
	wg         sync.WaitGroup
	closing    atomic.Bool            // no new relaying decisions: the tunnel is ending
	closed     atomic.Bool            // both connections closed
	graceAt    atomic.Int64           // unix nanoseconds at which a deliberate close gives up
	tap        atomic.Pointer[tapRef] // on-demand capture (tap.go); nil when off

	mu      sync.Mutex // guards the fields below; never held while taking a dir's wmu
	reason  *string    // the reason in wsgate's close frames, set as a close is decided (a pointer: idle tunnels stay small)
	err     error      // Result.Err
	by      Side       // Result.ClosedBy
	bySet   bool
	dead    Side   // Result.DeadSide
	code    uint16 // Result.CloseCode
	codeSet bool
	why     Reason // Result.Reason

	// The parking sweep's list; under parker.mu.
	next, prev *Tunnel

	detach atomic.Pointer[detachReq] // a handover in progress (handover.go)
}

// Start joins client and backend and returns at once; the relay runs on
// two new goroutines (none for a direction that starts parked, and the
// client's on the caller's with Config.ClientOnCaller), so the caller's
// (possibly grown) stack is not kept alive by an idle tunnel.
// clientPending holds bytes the client sent after its handshake,
// delivered to the backend first; backendPending holds bytes the backend
// sent after its 101 response, delivered to the client first. Start
// copies both, so the caller may reuse them.
func Start(client, backend net.Conn, clientPending, backendPending []byte, cfg Config) *Tunnel {
	return start(client, backend, clientPending, backendPending, cfg, nil)
}

// start is Start, or Resume when st is not nil.
func start(client, backend net.Conn, clientPending, backendPending []byte, cfg Config, st *State) *Tunnel {
	if !cfg.Frames {
		cfg.PingInterval = 0
	}
	t := &Tunnel{cfg: confOf(&cfg), start: time.Now()}
	crc, brc := rawConn(client), rawConn(backend)
	t.dirs[c2b].init(t, c2b, client, crc, clientPending)
	t.dirs[b2c].init(t, b2c, backend, brc, backendPending)
	if st != nil {
		t.restore(st)
	}
	t.live.Store(2)
	t.wg.Add(2)
	// A long IdleTimeout without pings is checked by the parking sweep,
	// which visits every tunnel anyway: no timer per tunnel, and no clock
	// read per message. Set before register, after which the sweep reads it.
	t.swept = cfg.IdleTimeout >= sweptIdleMin && cfg.PingInterval == 0
	parker.register(t)
	if !t.registered {
		t.swept = false // not in the sweep: the timer does it
		if cfg.MaxSession > 0 {
			time.AfterFunc(cfg.MaxSession-time.Since(t.start), t.lifetimeClose)
		}
	}
	t.timed = (cfg.IdleTimeout > 0 && !t.swept) || cfg.PingInterval > 0
	if t.timed {
		first := cfg.IdleTimeout
		if first == 0 || (cfg.PingInterval > 0 && cfg.PingInterval < first) {
			first = cfg.PingInterval
		}
		t.mu.Lock()
		t.tick = time.AfterFunc(first, t.onTick)
		t.mu.Unlock()
	}
	for i := range t.dirs {
		if i == c2b && cfg.ClientOnCaller {
			continue // RunClient
		}
		if !t.startParked(i) {
			go t.run(i)
		}
	}
	return t
}

// RunClient relays what the client sends, on the calling goroutine, for a
// tunnel started with Config.ClientOnCaller; it returns when that
// direction has ended or has handed itself to another goroutine. Calling
// it for any other tunnel, or twice, is a programming error.
func (t *Tunnel) RunClient() {
	if !t.cfg.ClientOnCaller {
		panic("tunnel: RunClient without ClientOnCaller")
	}
	t.run(c2b)
}

// startParked parks direction i from the start, so that a tunnel that
// stays idle never holds a goroutine: the first byte its source sends
// starts one, as for a direction that parked after a sweep. A direction
// with pending bytes, one whose source cannot be waited on through its
// socket, or any when parking is off, starts running.
func (t *Tunnel) startParked(i int) bool {
	d := &t.dirs[i]
	if !t.registered || d.waitRC == nil || d.pending != nil {
		return false
	}
	if d.srcRC() == nil && !t.drained(d) {
		return false
	}
	d.parked.Store(true)
	d.flags.Or(fNew)
	testHookStartParking(t, i)
	// The other direction may be running already and close the tunnel:
	// closeConns (closing set first) unparks d, starting its goroutine,
	// as soon as it is parked. Whoever takes d out of parked starts that
	// goroutine, once: d is taken back only with a swap, and not armed
	// once closing (arm would read fields the new goroutine owns).
	if t.closing.Load() || parker.arm(d) != nil || t.closing.Load() {
		if !d.parked.CompareAndSwap(true, false) {
			return true // closeConns's goroutine runs d
		}
		d.flags.And(^fNew)
		return false
	}
	return true
}

// testHookStartParking runs as direction i of a starting tunnel is marked
// parked, before its source is armed; tests widen that window with it.
var testHookStartParking = func(*Tunnel, int) {}

// drained reports whether d's source, a connection over a socket that is
// not read directly (TLS), holds no byte that the socket's readiness
// would not announce. A TLS connection may have read, during the
// handshake, records that nobody has read from it yet: a read with a
// deadline in the past returns what it holds without reading the socket,
// and fails at once when it holds nothing (a timeout does not break a TLS
// connection). What it returns becomes the direction's pending bytes.
func (t *Tunnel) drained(d *dir) bool {
	var held []byte
	var buf [512]byte
	d.src.SetReadDeadline(aLongTimeAgo)
	var err error
	for err == nil {
		var n int
		n, err = d.src.Read(buf[:])
		held = append(held, buf[:n]...)
	}
	d.src.SetReadDeadline(time.Time{})
	if len(held) > 0 {
		d.pending = &held
		return false
	}
	return errors.Is(err, os.ErrDeadlineExceeded)
}

// rawConn returns c's RawConn when c is a socket whose descriptor can be
// read and written directly; nil sends c down the generic path.
func rawConn(c net.Conn) syscall.RawConn {
	var sc syscall.Conn
	switch c := c.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc = c
	case *sockio.Conn:
		sc = c
	case *sockio.Socket:
		sc = c
	default:
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// Stats returns the bytes read so far from the client and from the backend.
func (t *Tunnel) Stats() (fromClient, fromBackend int64) {
	return t.dirs[c2b].n.Load(), t.dirs[b2c].n.Load()
}

// Messages returns the complete data messages relayed so far from the client
// and from the backend.
func (t *Tunnel) Messages() (fromClient, fromBackend int64) {
	return t.dirs[c2b].msgs.Load(), t.dirs[b2c].msgs.Load()
}

// Shutdown closes the tunnel on purpose and returns once it is closed. With
// Frames, each direction first completes the frame it is relaying, then the
// client gets a close frame with code and reason and the backend a masked
// one; the peers then have Config.CloseGrace (in all) to answer before the
// connections are closed. Without Frames the connections are closed at
// once. Calls after the first, or after the tunnel ended by itself, only
// wait for the end.
func (t *Tunnel) Shutdown(code uint16, reason string) {
	t.Close(ReasonShutdown, code, reason)
}

// Close is Shutdown for why: the tunnel's Result.Reason. What each peer
// sent before the close is delivered to the other before its close frame:
// the client gets its close after what the backend has sent, and the
// backend its close once the client answered, after what the client sent
// until its answer (a client that was writing when the close went out
// loses nothing).
func (t *Tunnel) Close(why Reason, code uint16, reason string) {
	r := closeReq{by: SideProxy, why: why, wait: t.cfg.Frames, reason: reason}
	r.hold[c2b], r.hold[b2c] = holdAnswer, holdDry
	if t.cfg.Frames {
		r.code = [2]uint16{code, code}
	}
	t.closeWith(r)
	t.wg.Wait()
}

// closeReq describes a close wsgate decides on.
type closeReq struct {
	code   [2]uint16 // close code for each direction's destination; 0 sends none
	reason string
	wait   bool // let partial frames complete and peers answer, within the grace
	by     Side
	err    error
	record uint16 // the CloseCode to report, when it must not depend on write order
	dead   Side   // the silent leg, when deadOK
	deadOK bool
	why    Reason
	// hold, with wait, sends direction i's close only once what its
	// source has already sent is relayed (holdClose).
	hold [2]uint8
}

// deadWrite is how long a close frame to a leg that stopped answering
// pings may take: it is sent only if the leg takes it at once.
const deadWrite = 20 * time.Millisecond

func (t *Tunnel) grace() time.Duration {
	if t.cfg.CloseGrace > 0 {
		return t.cfg.CloseGrace
	}
	return DefaultCloseGrace
}

// closeWith starts closing the tunnel; only the first call (or the first
// close of the sockets) takes effect.
func (t *Tunnel) closeWith(r closeReq) {
	t.mu.Lock()
	if t.closing.Load() {
		t.mu.Unlock()
		return
	}
	dl := time.Now().Add(t.grace())
	t.graceAt.Store(dl.UnixNano())
	t.closing.Store(true)
	if r.reason != "" {
		reason := r.reason
		t.reason = &reason
	}
	t.why = r.why
	t.setByLocked(r.by)
	if t.err == nil {
		t.err = r.err
	}
	if r.deadOK {
		t.dead = r.dead
	}
	if r.record != 0 && !t.codeSet {
		t.code, t.codeSet = r.record, true
	}
	t.mu.Unlock()

	// Deadlines first: they bound both the waits below and any write
	// that currently holds a direction's lock.
	for _, c := range [2]net.Conn{t.dirs[c2b].src, t.dirs[b2c].src} {
		if r.wait {
			c.SetDeadline(dl)
		} else {
			c.SetWriteDeadline(dl)
		}
	}
	if r.deadOK {
		t.conn(r.dead).SetWriteDeadline(time.Now().Add(deadWrite))
	}
	// A parked direction has no goroutine to see the deadlines, nor to
	// read the peers' answers.
	t.unpark(c2b)
	t.unpark(b2c)
	if t.cfg.Frames {
		// Held closes first: an answer to a close sent at once must
		// find its direction's close held already.
		var now [2]bool
		for i := range t.dirs {
			if r.wait && r.hold[i] != 0 && t.dirs[i].srcRC() != nil {
				t.holdClose(i, r.code[i], r.hold[i])
			} else {
				now[i] = true
			}
		}
		for i := range t.dirs {
			if now[i] {
				t.injectClose(i, r.code[i], r.wait)
			}
		}
	}
	if !r.wait || (t.dirs[c2b].done() && t.dirs[b2c].done()) {
		t.closeConns()
	}
}

// injectClose sends direction i's destination a close frame if it is at a
// frame boundary; otherwise, when wait is set, the relay goroutine sends it
// at the next boundary.
func (t *Tunnel) injectClose(i int, code uint16, wait bool) {
	if code == 0 {
		return
	}
	d := &t.dirs[i]
	d.wmu.Lock()
	defer d.wmu.Unlock()
	if d.gotClose || d.dead {
		return
	}
	if d.midFrame {
		if wait {
			d.inject = code
		}
		return
	}
	if err := t.writeClose(i, code); err != nil {
		d.dead = true
	}
}

// How a held close waits for what its direction's source has sent.
const (
	// holdDry: until a read of the source would block, or the bytes
	// queued in its socket when the close was decided have passed (so a
	// source that never runs dry cannot hold the close back).
	holdDry uint8 = 1 + iota
	// holdAnswer: until the source's own close frame, which wsgate's
	// takes the place of, or its end. For a close whose other peer has
	// been told already, and answers.
	holdAnswer
)

// holdClose has direction i's relay send its destination a close frame
// once it has relayed what its source has sent (see holdDry, holdAnswer),
// at the next frame boundary; the close's grace bounds the wait. A
// direction that has ended sends it at once.
func (t *Tunnel) holdClose(i int, code uint16, how uint8) {
	if code == 0 {
		return
	}
	d := &t.dirs[i]
	d.wmu.Lock()
	if d.over {
		d.wmu.Unlock()
		t.injectClose(i, code, true)
		return
	}
	if !d.gotClose && !d.dead {
		d.deferred = code
	}
	d.wmu.Unlock()
	if how == holdAnswer {
		d.flags.Or(fAnswer)
		return
	}
	queued := 0
	d.srcRC().Control(func(fd uintptr) {
		queued, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
	})
	d.flushEnd = d.n.Load() + int64(queued)
	// Wake the relay if it waits: a poke, which it lifts (relayLoop).
	d.flags.Or(fFlush | fPoke)
	d.src.SetReadDeadline(aLongTimeAgo)
}

// writeClose writes a close frame to direction i's destination, masked
// toward the backend. The caller holds the direction's wmu.
func (t *Tunnel) writeClose(i int, code uint16) error {
	d := &t.dirs[i]
	d.gotClose, d.injected = true, true
	t.recordCode(code)
	var buf [closeFrameMax]byte
	var reason string
	if t.reason != nil {
		reason = *t.reason
	}
	frame := appendClose(buf[:0], code, reason, i == c2b)
	return d.write(t, frame)
}

func (t *Tunnel) recordCode(code uint16) {
	t.mu.Lock()
	if !t.codeSet {
		t.code, t.codeSet = code, true
	}
	t.mu.Unlock()
}

func (t *Tunnel) setBy(s Side) {
	t.mu.Lock()
	t.setByLocked(s)
	t.mu.Unlock()
}

func (t *Tunnel) setByLocked(s Side) {
	if !t.bySet {
		t.by, t.bySet = s, true
	}
}

func (t *Tunnel) setErr(err error) {
	t.mu.Lock()
	if t.err == nil {
		t.err = err
	}
	t.mu.Unlock()
}

// closeConns closes both connections, once.
func (t *Tunnel) closeConns() {
	t.closing.Store(true)
	if t.closed.CompareAndSwap(false, true) {
		t.dirs[c2b].closeSrc()
		t.dirs[b2c].closeSrc()
	}
	t.unpark(c2b)
	t.unpark(b2c)
}

// exit runs as a relay goroutine ends. The last one out closes the sockets
// and reports.
func (t *Tunnel) exit(i int) {
	defer t.wg.Done()
	t.dirs[i].flags.Or(fExited)
	if t.live.Add(-1) == 0 {
		t.finish()
		return
	}
	if t.closing.Load() && t.dirs[1-i].flags.Load()&fSrcClosed != 0 {
		// The other side has said its last word; nobody is left to wait for.
		t.closeConns()
	}
}

func (t *Tunnel) finish() {
	t.closeConns()
	parker.unregister(t)
	t.mu.Lock()
	if t.tick != nil {
		t.tick.Stop()
	}
	res := Result{ClosedBy: t.by, CloseCode: t.code, Err: t.err, DeadSide: t.dead, Reason: t.why}
	t.mu.Unlock()
	res.FromClient, res.FromBackend = t.Stats()
	res.MessagesFromClient, res.MessagesFromBackend = t.Messages()
	res.Start, res.End = t.start, time.Now()
	if m := t.cfg.Meter; m != nil {
		m.session(&res)
	}
	if t.cfg.OnClose != nil {
		t.cfg.OnClose.TunnelClosed(res)
	}
}

// idleClose ends a tunnel that has read nothing for IdleTimeout.
func (t *Tunnel) idleClose() {
	r := closeReq{by: SideProxy, err: ErrIdleTimeout, why: ReasonIdle, wait: t.cfg.Frames, hold: [2]uint8{holdDry, holdDry}}
	if t.cfg.Frames {
		r.code = [2]uint16{CodeGoingAway, CodeGoingAway}
	}
	t.closeWith(r)
}

// lifetimeClose ends a tunnel that has been open for MaxSession: both legs
// get SessionCode (1001 by default) after what the other has sent.
func (t *Tunnel) lifetimeClose() {
	code := t.cfg.SessionCode
	if code == 0 {
		code = CodeGoingAway
	}
	r := closeReq{by: SideProxy, err: ErrLifetime, why: ReasonLifetime, wait: t.cfg.Frames, hold: [2]uint8{holdDry, holdDry}, reason: "session lifetime"}
	if t.cfg.Frames {
		r.code = [2]uint16{code, code}
	}
	t.closeWith(r)
}

// touch records that direction i has read from its source, for the timer;
// cheaper than re-arming a deadline on every read.
func (t *Tunnel) touch(i int) {
	if t.timed {
		now := int64(time.Since(t.start))
		t.last.Store(now)
		if x := t.dirs[i].x; x != nil && x.track {
			x.last.Store(now)
		}
	}
}

// onTick serves IdleTimeout and the pings of both legs with one timer: it
// acts on what is due and sleeps until the next thing that can be.
func (t *Tunnel) onTick() {
	if t.closing.Load() {
		return
	}
	now := time.Since(t.start)
	next := time.Duration(1<<63 - 1)
	if t.cfg.IdleTimeout > 0 {
		last := time.Duration(t.last.Load())
		rest := t.cfg.IdleTimeout - (now - last)
		if rest <= 0 {
			t.idleClose()
			return
		}
		next = rest
	}
	if t.cfg.PingInterval > 0 {
		for i := range t.dirs {
			rest, ended := t.pingLeg(i, now)
			if ended {
				return
			}
			next = min(next, rest)
		}
	}
	t.mu.Lock()
	if !t.closing.Load() {
		t.tick.Reset(next)
	}
	t.mu.Unlock()
}

// pingLeg looks after the leg that direction i reads at time now (since
// start): it pings the leg when it has been quiet for PingInterval and
// closes the tunnel when an unanswered ping has run out. It returns how
// long until the leg needs looking at again, or ended once it has closed
// the tunnel.
func (t *Tunnel) pingLeg(i int, now time.Duration) (rest time.Duration, ended bool) {
	if t.dirs[i].done() {
		// The leg has sent its close, or ended: the closing handshake,
		// not a ping, decides what happens next.
		return t.cfg.PingInterval, false
	}
	d := t.dirs[i].x
	if d.stuckAt.Load() != 0 {
		// wsgate is not reading the leg: its direction is stuck
		// writing to the other leg. The silence is not the leg's.
		return t.cfg.PingInterval, false
	}
	last := time.Duration(max(d.last.Load(), d.resumed.Load()))
	sent := time.Duration(d.pingAt.Load())
	if sent != 0 {
		if last >= sent {
			// Answered, by a pong or by anything else.
			d.pingAt.CompareAndSwap(int64(sent), 0)
			sent = 0
		} else if t.cfg.PingTimeout > 0 {
			rest := sent + t.cfg.PingTimeout - now
			if rest <= 0 {
				t.legDead(i)
				return 0, true
			}
			return rest, false
		}
	}
	if w := t.dirs[1-i].x; w.pingDue.Load() {
		// Queued behind a frame in progress: the relay sends it. If
		// the relay is stuck writing to the leg (at most one buffer)
		// for PingTimeout while the leg sends nothing, the leg is
		// neither reading nor talking.
		stuck := time.Duration(w.stuckAt.Load())
		if t.cfg.PingTimeout > 0 && stuck != 0 && last < stuck && now-stuck >= t.cfg.PingTimeout {
			t.legDead(i)
			return 0, true
		}
		if t.cfg.PingTimeout > 0 {
			return min(t.cfg.PingTimeout, t.cfg.PingInterval), false
		}
		return t.cfg.PingInterval, false
	}
	if rest := max(last, sent) + t.cfg.PingInterval - now; rest > 0 {
		return rest, false
	}
	if err := t.sendPing(1 - i); err != nil {
		if errors.Is(err, errPingStuck) {
			t.legDead(i)
		} else {
			t.writeFailed(1-i, err)
		}
		return 0, true
	}
	if t.cfg.PingTimeout > 0 {
		return t.cfg.PingTimeout, false
	}
	return t.cfg.PingInterval, false
}

// legDead closes the tunnel because the leg that direction i reads did not
// answer a ping in time.
func (t *Tunnel) legDead(i int) {
	t.closeWith(closeReq{
		by:     SideProxy,
		why:    ReasonPing,
		err:    ErrPingTimeout,
		code:   [2]uint16{CodeGoingAway, CodeGoingAway},
		record: CodeGoingAway,
		dead:   srcSide(i),
		deadOK: true,
	})
}

func (t *Tunnel) conn(s Side) net.Conn {
	if s == SideClient {
		return t.dirs[c2b].src
	}
	return t.dirs[b2c].src
}

// srcSide is the side direction i reads from.
func srcSide(i int) Side {
	if i == c2b {
		return SideClient
	}
	return SideBackend
}

// ClientAddrs are the client connection's local and remote addresses.
func (t *Tunnel) ClientAddrs() (local, remote net.Addr) {
	c := t.dirs[c2b].src
	return c.LocalAddr(), c.RemoteAddr()
}
