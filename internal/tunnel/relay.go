package tunnel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/internal/sockio"
	"github.com/wsgate/wsgate/internal/wsframe"
)

const (
	// bufSize is the pooled relay buffer.
	bufSize = 32 << 10
	// bigSize is the relay buffer of a direction whose reads fill
	// bufSize: a 64 KiB message with its header moves in one read and
	// one write. Whole pages: the runtime allocates it so.
	bigSize = 72 << 10
	// smallSize is what a blocked read holds on a leg without a RawConn
	// (TLS; HTTP/2 and HTTP/3 streams hold it only while reading): a read
	// that fills it moves the next read to a pooled buffer.
	smallSize = 1 << 10
	// closeFrameMax is the largest close frame wsgate writes.
	closeFrameMax = wsframe.MaxHeaderLen + wsframe.MaxControlPayload
	// pingLen is the payload of wsgate's pings: "wsg", the pinged side
	// ('c' or 'b') and a 32-bit counter. Pongs are recognised by it.
	pingLen = 8
)

var bufPool = sync.Pool{New: func() any {
	b := make([]byte, bufSize)
	return &b
}}

var bigPool = sync.Pool{New: func() any {
	b := make([]byte, bigSize)
	return &b
}}

// putBuf gives a relay buffer back to the pool of its size.
func putBuf(b *[]byte) {
	if cap(*b) == bigSize {
		bigPool.Put(b)
		return
	}
	bufPool.Put(b)
}

// smallPool holds the small read buffers of the generic path, given back
// when a direction parks, pauses or ends, and while a ReadWaiter waits.
var smallPool = sync.Pool{New: func() any { return new([smallSize]byte) }}

// ReadWaiter is a leg without a RawConn that can wait for data without a
// buffer, as an HTTP/2 or HTTP/3 stream can: WaitRead returns once a Read
// would not block, with nil or with the error that Read would return
// without data. A direction reading such a leg holds no buffer while it
// waits.
type ReadWaiter interface {
	WaitRead() error
}

// Flags of a direction that the other direction reads.
const (
	fSrcClosed uint32 = 1 << iota // the source's close frame has passed
	fExited                       // the relay goroutine has returned
	fSkipped                      // the relay waits for src without having seen EAGAIN
	fHup                          // the dispatcher saw src end or fail (see skip.go)
	fPoke                         // the dispatcher set a past read deadline to wake the relay
	fInCB                         // the relay is relaying inside its read callback (skip.go)
	fCloseSrc                     // src is to be closed; by the relay if fInCB (closeSrc)
	fFlush                        // a held close waits for src to be read dry (holdDry)
	fAnswer                       // a held close waits for src's close frame (holdAnswer)
	fInLoop                       // the dispatcher is relaying, holding wmu (loop.go)
	fArmed                        // the source is in the epoll set (park.go)
	fEdge                         // it is there for every arrival, edge-triggered (park.go)
	fNew                          // parked since the tunnel started: its first arrival goes to a goroutine (startParked)
)

// Discard states of a direction whose source wsgate has closed on: its
// bytes are read and dropped until its close frame, its end or the close's
// grace, so that the kernel does not reset a connection with unread data
// (a lingering close).
const (
	keepAll      uint8 = iota
	dropFrames         // parsed, so that the source's close frame is seen
	dropAllBytes       // the framing is lost: bytes are dropped unparsed
)

// dir is one direction of a tunnel: it reads src and is the only writer of
// dst, except for close frames that closeWith writes under wmu. What only a
// relaying direction needs is in its relayState, so that a parked one (an
// idle tunnel) carries none of it.
type dir struct {
	t       *Tunnel
	src     net.Conn
	n       atomic.Int64 // bytes read from src
	msgs    atomic.Int64 // complete data messages relayed
	pending *[]byte      // a pointer: most tunnels have none, and every tunnel holds two dirs
	parkState
	x  *dirExt     // pings and limits; nil when all are off, to keep idle tunnels small
	rs *relayState // while relayed (relayState); nil while parked

	// Parser state, owned by the relay goroutine.
	remaining int64 // payload bytes of the current frame still to come
	// flushEnd is n once a held close has let through what src had sent
	// when it was asked for; set before fFlush (holdClose).
	flushEnd int64

	wmu sync.Mutex // serialises writes to dst; guards the fields marked "Under wmu"

	// The small fields last, packed: an idle tunnel's size is its cost.
	flags atomic.Uint32

	held    [wsframe.MaxHeaderLen]byte // a partial header, not yet forwarded
	heldN   uint8
	op      wsframe.Opcode
	masked  bool
	key     [4]byte
	payPos  uint8 // bytes of the current close payload captured, up to 2
	code    [2]byte
	spliced bool  // the last frame's payload went by splice
	finData bool  // the current frame ends a data message
	idx     uint8 // c2b or b2c
	direct  bool  // src is read through its socket, waitRC (srcRC)

	// Under wmu.
	wdl      bool   // a send deadline is armed on dst
	midFrame bool   // bytes written to dst end inside a frame
	gotClose bool   // dst has been sent a close frame, relayed or wsgate's
	injected bool   // the close frame was wsgate's: src bytes are dropped
	dead     bool   // a write to dst failed
	over     bool   // the relay has ended: a held close goes out at once
	inject   uint16 // close code to send at the next frame boundary
	deferred uint16 // close code held until src is read dry (holdClose)
	discard  uint8  // keepAll, dropFrames or dropAllBytes; the relay's
}

// relayState is what a direction needs only while it is relayed: the
// results of its read callback, the generic path's buffer, splice's pipe
// and the bytes the dispatcher could not write. Its owner (see park.go:
// the relay goroutine, or the dispatcher while it hands the direction
// over) takes it from a pool on first use (state) and gives it back
// before the direction parks, pauses or ends (dropState); a parked
// direction has none.
type relayState struct {
	d      *dir
	readCB func(uintptr) bool // d.onReadable; made once per relayState

	// Results of the read callback.
	rbuf *[]byte
	rerr error
	rn   int32

	lastFull bool             // the last generic read filled its buffer
	big      bool             // reads fill bufSize: they take bigSize buffers (onReadable)
	hasPipe  bool             // pipe is open
	small    *[smallSize]byte // generic path only
	pipe     [2]int           // splice's pipe (read end, write end), while hasPipe
	owed     []byte           // what the dispatcher could not write (loop.go); under wmu
}

var relayStates = sync.Pool{New: func() any { return new(relayState) }}

// state returns d's relayState, taking one if it has none. Owner only.
func (d *dir) state() *relayState {
	if d.rs == nil {
		rs := relayStates.Get().(*relayState)
		if rs.readCB == nil {
			rs.readCB = func(fd uintptr) bool { return rs.d.onReadable(fd) }
		}
		rs.d = d
		d.rs = rs
	}
	return d.rs
}

// dropState gives d's relayState back, closing its pipe, before the
// direction parks, pauses or ends. Owner only.
func (d *dir) dropState() {
	rs := d.rs
	if rs == nil {
		return
	}
	d.releasePipe()
	if rs.rbuf != nil {
		putBuf(rs.rbuf)
	}
	if rs.small != nil {
		smallPool.Put(rs.small)
	}
	*rs = relayState{readCB: rs.readCB}
	d.rs = nil
	relayStates.Put(rs)
}

// dst is the connection this direction writes: the other direction's
// source. Derived rather than stored, to keep idle tunnels small.
func (d *dir) dst() net.Conn { return d.t.dirs[1-d.idx].src }

// srcRC is src's RawConn, nil on the generic path: waitRC when src is the
// socket itself. Derived rather than stored, to keep idle tunnels small.
func (d *dir) srcRC() syscall.RawConn {
	if d.direct {
		return d.waitRC
	}
	return nil
}

// dstRC is dst's RawConn, nil on the generic path.
func (d *dir) dstRC() syscall.RawConn { return d.t.dirs[1-d.idx].srcRC() }

// dirExt is the state of a direction's pings and limits.
type dirExt struct {
	// Liveness of src, shared with the timer.
	last    atomic.Int64  // nanoseconds from start to the last read from src
	pingAt  atomic.Int64  // nanoseconds from start to an unanswered ping to src; 0 if none
	stuckAt atomic.Int64  // nanoseconds from start to the start of a write to dst that blocked; 0 if none
	resumed atomic.Int64  // nanoseconds from start to the end of the last write that blocked
	pingSeq atomic.Uint32 // pings sent to src
	pingDue atomic.Bool   // dst is owed a ping at the next frame boundary

	// Set by init, then read-only.
	track bool // pings are on: reads and blocked writes are tracked
	rated bool // src's messages are rate limited
	side  byte // src's letter in wsgate's ping payloads

	// Owned by the relay goroutine.
	skip    int   // bytes scan asks to drop (a pong to wsgate's ping, a refused header)
	msgSize int64 // payload bytes of the current message so far
	tat     int64 // rate limit: theoretical arrival time (GCRA), Now nanoseconds

	// Per-message counts (Config.Meter with Messages).
	meter   *MeterDir
	lastMsg int64 // nanoseconds from start to the end of the last message; 0 for none

	// Strict validation (Config.Strict).
	frameLen int64        // payload length of the current frame
	inMsg    bool         // a fragmented message is open
	inText   bool         // the current message is uncompressed text
	vcode    uint16       // the close code of the violation scan reports
	text     wsframe.UTF8 // the current text message
	reason   wsframe.UTF8 // the current close frame's reason
}

func (d *dir) init(t *Tunnel, i int, src net.Conn, srcRC syscall.RawConn, pending []byte) {
	d.t, d.idx, d.src = t, uint8(i), src
	d.waitRC, d.direct = srcRC, srcRC != nil
	if srcRC == nil {
		d.waitRC = waitRawConn(src)
	}
	c := &t.cfg
	rated := c.MessageRate > 0 && (i == c2b || c.RateLimitBackend)
	metered := c.Meter != nil && c.Meter.Messages
	if c.Frames && (c.PingInterval > 0 || c.MaxFrameSize > 0 || c.MaxMessageSize > 0 || rated || c.Strict || metered) {
		d.x = &dirExt{track: c.PingInterval > 0, rated: rated, side: 'c'}
		if i == b2c {
			d.x.side = 'b'
		}
		if metered {
			d.x.meter = &c.Meter.Dir[i]
		}
	}
	if len(pending) > 0 {
		p := append([]byte(nil), pending...)
		d.pending = &p
	}
}

func (d *dir) done() bool { return d.flags.Load()&(fSrcClosed|fExited) != 0 }

// readBuf returns a buffer for the direction's next read from its socket:
// a bigSize one while its reads fill bufSize.
func (rs *relayState) readBuf() *[]byte {
	if rs.big {
		return bigPool.Get().(*[]byte)
	}
	return bufPool.Get().(*[]byte)
}

// sizeReads notes a read that left n bytes in a buffer of size: one that
// fills bufSize moves the direction to bigSize buffers, one under half of
// bufSize moves it back. A direction of small messages never holds a big
// buffer, even while its destination makes it wait.
func (rs *relayState) sizeReads(n, size int) {
	rs.big = n == size && size == bufSize || rs.big && n > bufSize/2
}

// onReadable takes a buffer only once the socket has data, so a direction
// waiting for its peer holds no buffer.
func (d *dir) onReadable(fd uintptr) bool {
	rs := d.rs
	if d.flags.Load()&fSkipped != 0 {
		d.flags.And(^fSkipped) // woken: no longer waiting
	}
	for {
		b := rs.readBuf()
		held := int(d.heldN)
		h := copy(*b, d.held[:held])
		lim := len(*b)
		if d.spliced {
			// The last frame was large: read little more than the
			// next header, so that splice carries the payload.
			lim = h + headRead
		}
		n, err := sockio.Recv(int(fd), (*b)[h:lim])
		for err == syscall.EINTR {
			n, err = sockio.Recv(int(fd), (*b)[h:lim])
		}
		switch {
		case err == syscall.EAGAIN:
			putBuf(b)
			if d.flags.Load()&fFlush != 0 {
				rs.rerr = errFlush // read dry: a held close goes out
				return true
			}
			return false
		case err != nil:
			rs.rerr = os.NewSyscallError("read", err)
			n = 0
		case n == 0:
			rs.rerr = io.EOF
		}
		d.short = n > 0 && h+n < lim
		if !d.spliced {
			rs.sizeReads(h+n, lim)
		}
		if !d.short || !d.watching {
			rs.rbuf, rs.rn = b, int32(h+n)
			return true
		}
		// Watched, and the read emptied the socket (skip.go): relay
		// here, then wait for the next edge inside this RawRead, which
		// keeps an edge that comes meanwhile; returning would reset it.
		d.flags.Or(fInCB)
		ok := d.t.consume(int(d.idx), b, (*b)[:h+n], held)
		owed := d.flags.And(^fInCB)&fCloseSrc != 0
		if !ok {
			rs.rerr = errRelayEnded
			return true
		}
		if owed {
			return true // d.read closes src, outside this callback
		}
		if d.flags.Load()&fFlush != 0 {
			rs.rerr = errFlush // the read emptied src
			return true
		}
		if d.t.canSplice(int(d.idx)) {
			return true // splice reads src, outside this callback
		}
		if d.flags.Or(fSkipped)&fHup == 0 {
			return false
		}
		d.flags.And(^fSkipped) // src has ended: read the end
	}
}

// errRelayEnded: the read callback relayed data and the direction is over.
var errRelayEnded = errors.New("tunnel: relay ended")

// errFlush: src is read dry while a close is held (holdClose).
var errFlush = errors.New("tunnel: source read dry")

// consume relays data, read into buf (returned to the pool) after held
// header bytes, and reports whether the direction goes on.
func (t *Tunnel) consume(i int, buf *[]byte, data []byte, held int) bool {
	d := &t.dirs[i]
	ok := true
	if fresh := len(data) - held; fresh > 0 {
		d.n.Add(int64(fresh))
		t.touch(i)
		ok = t.relay(i, data)
	}
	if buf != nil {
		putBuf(buf)
	}
	d.spliced = false
	return ok
}

// read returns the held partial header followed by new bytes from src, and
// the pooled buffer holding them (nil if none), which the caller returns.
func (d *dir) read() (buf *[]byte, data []byte, err error) {
	rs := d.state()
	if d.srcRC() != nil {
		if b := rs.rbuf; b != nil {
			// Read by the dispatcher, which handed the rest over
			// (loop.go).
			rs.rbuf = nil
			return b, (*b)[:rs.rn], rs.rerr
		}
		rs.rbuf, rs.rn, rs.rerr = nil, 0, nil
		err := d.srcRC().Read(rs.readCB)
		if d.flags.Load()&(fSkipped|fCloseSrc) != 0 {
			d.flags.And(^fSkipped)
			d.closeOwed()
		}
		if err != nil {
			if rs.rbuf != nil {
				putBuf(rs.rbuf)
				rs.rbuf = nil
			}
			return nil, nil, err
		}
		if rs.rbuf == nil {
			return nil, nil, rs.rerr // the callback relayed what it read
		}
		if d.short && !d.watching {
			d.maybeWatch()
		}
		b := rs.rbuf
		rs.rbuf = nil
		return b, (*b)[:rs.rn], rs.rerr
	}
	if w, ok := d.src.(ReadWaiter); ok && d.heldN == 0 && !rs.lastFull {
		if rs.small != nil {
			smallPool.Put(rs.small) // an idle stream holds no buffer
			rs.small = nil
		}
		if err := w.WaitRead(); err != nil {
			return nil, nil, err
		}
	}
	if rs.small == nil {
		rs.small = smallPool.Get().(*[smallSize]byte) // first read, or parking or waiting gave the last one back
	}
	b := rs.small[:]
	if rs.lastFull {
		buf = bufPool.Get().(*[]byte)
		b = *buf
	}
	h := copy(b, d.held[:d.heldN])
	n, err := d.src.Read(b[h:])
	rs.lastFull = h+n == len(b)
	return buf, b[:h+n], err
}

// writer carries a write to dst through RawConn.Write's callback. Pooled,
// so that a direction holds none: an idle tunnel pays nothing for it.
type writer struct {
	d   *dir
	p   []byte
	err error
	cb  func(uintptr) bool // onWritable; made once per writer
}

var writers = sync.Pool{New: func() any {
	w := new(writer)
	w.cb = w.onWritable
	return w
}}

func (w *writer) onWritable(fd uintptr) bool {
	for len(w.p) > 0 {
		n, err := sockio.Send(int(fd), w.p)
		if n > 0 {
			w.p = w.p[n:]
		}
		switch {
		case err == syscall.EINTR:
		case err == syscall.EAGAIN:
			w.d.blocked(w.d.t)
			return false
		case err != nil:
			w.err = os.NewSyscallError("write", err)
			return true
		}
	}
	return true
}

// write writes all of p to dst. The caller holds wmu. A send deadline is
// armed only once a write would block, so the common case costs none.
func (d *dir) write(t *Tunnel, p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if d.flags.Load()&fInLoop != 0 {
		d.tryWrite(p)
		return nil
	}
	if rc := d.dstRC(); rc != nil {
		w := writers.Get().(*writer)
		w.d, w.p, w.err = d, p, nil
		err := rc.Write(w.cb)
		d.unblocked(t)
		if err == nil {
			err = w.err
		}
		w.d, w.p, w.err = nil, nil, nil
		writers.Put(w)
		return err
	}
	if t.cfg.SendTimeout > 0 {
		t.armWriteDeadline(d.dst())
		defer t.clearWriteDeadline(d.dst())
	}
	x := d.x
	if x == nil || !x.track {
		_, err := d.dst().Write(p)
		return err
	}
	// Without a RawConn a blocked write cannot be told from a quick
	// one until it returns: every write counts as possibly stuck.
	x.stuckAt.Store(max(int64(time.Since(t.start)), 1))
	_, err := d.dst().Write(p)
	x.unstuck(t)
	return err
}

// blocked runs when a write to dst would block: a blocked write may make
// src look silent to the ping timer, and is when a send deadline is armed
// (the poller reads the deadline when it starts waiting).
func (d *dir) blocked(t *Tunnel) {
	if x := d.x; x != nil && x.track && x.stuckAt.Load() == 0 {
		x.stuckAt.Store(max(int64(time.Since(t.start)), 1))
	}
	if t.cfg.SendTimeout > 0 && !d.wdl {
		t.armWriteDeadline(d.dst())
		d.wdl = true
	}
}

// unblocked ends a raw write: it undoes what blocked did, if it ran.
func (d *dir) unblocked(t *Tunnel) {
	if d.wdl {
		d.wdl = false
		t.clearWriteDeadline(d.dst())
	}
	if x := d.x; x != nil && x.track && x.stuckAt.Load() != 0 {
		x.unstuck(t)
	}
}

// unstuck ends a write that may have blocked. Reading src resumes only now,
// so src's silence until now was wsgate's doing, not src's.
func (x *dirExt) unstuck(t *Tunnel) {
	now := int64(time.Since(t.start))
	if now-x.stuckAt.Load() > int64(time.Millisecond) {
		x.resumed.Store(now)
	}
	x.stuckAt.Store(0)
}

func (t *Tunnel) armWriteDeadline(c net.Conn) {
	dl := time.Now().Add(t.cfg.SendTimeout)
	if t.closing.Load() {
		if g := t.graceAt.Load(); g != 0 && g < dl.UnixNano() {
			dl = time.Unix(0, g)
		}
	}
	c.SetWriteDeadline(dl)
}

// clearWriteDeadline lifts a send deadline without losing a close grace
// deadline set meanwhile: closeWith sets closing before its deadline, so
// checking closing after the reset catches every interleaving.
func (t *Tunnel) clearWriteDeadline(c net.Conn) {
	c.SetWriteDeadline(time.Time{})
	if t.closing.Load() {
		if g := t.graceAt.Load(); g != 0 {
			c.SetWriteDeadline(time.Unix(0, g))
		}
	}
}

// run is a relay goroutine: pending bytes first, then src until it ends or
// the direction parks (see park.go), when a later run picks it up.
func (t *Tunnel) run(i int) {
	if t.relayLoop(i) {
		t.end(i)
	}
}

// end is the end of direction i's relay: a held close goes out, src is
// closed if that is owed, and the tunnel is told.
func (t *Tunnel) end(i int) {
	if t.cfg.Frames {
		t.flushOnExit(i)
	}
	t.dirs[i].closeOwed()
	t.dirs[i].dropState()
	t.exit(i)
}

// relayLoop reports false when the direction parked rather than ended.
func (t *Tunnel) relayLoop(i int) bool {
	d := &t.dirs[i]
	if d.pending != nil {
		p := *d.pending
		d.pending = nil
		d.n.Add(int64(len(p)))
		t.touch(i)
		if !t.relay(i, p) {
			return true
		}
	}
	for {
		held := int(d.heldN)
		buf, data, err := d.read()
		if err == errRelayEnded {
			return true
		}
		if err == errFlush {
			if !t.flush(i) {
				return true
			}
			continue
		}
		ok := t.consume(i, buf, data, held)
		if ok && d.flags.Load()&fFlush != 0 && d.n.Load() >= d.flushEnd {
			ok = t.flush(i) // what src had sent is through, though src is not dry
		}
		if ok && err == nil && t.canSplice(i) {
			d.spliced = true
			ok, err = t.splicePayload(i)
		}
		if !ok {
			return true
		}
		if err == nil && d.parkEarly() {
			if t.park(i) {
				return false
			}
			continue
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if d.flags.Load()&fDetach != 0 {
					if t.pause(i) {
						return false // paused for a handover (handover.go)
					}
					continue
				}
				if d.parkReq.Load() {
					if t.park(i) {
						return false
					}
					continue
				}
				if d.flags.Load()&fPoke != 0 {
					d.flags.And(^fPoke)
					t.clearReadDeadline(d)
					continue
				}
			}
			t.readFailed(i, err)
			return true
		}
	}
}

// flush releases direction i's held close: it goes out at the next frame
// boundary, which may be now. It reports whether to go on reading.
func (t *Tunnel) flush(i int) bool {
	d := &t.dirs[i]
	d.flags.And(^fFlush)
	d.wmu.Lock()
	if d.deferred != 0 {
		d.inject, d.deferred = d.deferred, 0
	}
	d.wmu.Unlock()
	return t.relay(i, d.held[:d.heldN])
}

// flushOnExit sends, as direction i's relay ends, a close that was held or
// waiting for a frame boundary, if dst is at one; past the close's grace it
// gets deadWrite to go. Later closes go out at once (holdClose).
func (t *Tunnel) flushOnExit(i int) {
	d := &t.dirs[i]
	d.wmu.Lock()
	defer d.wmu.Unlock()
	d.over = true
	code := max(d.deferred, d.inject)
	d.deferred, d.inject = 0, 0
	if code == 0 || d.gotClose || d.dead || d.midFrame {
		return
	}
	if time.Now().UnixNano() >= t.graceAt.Load() {
		d.dst().SetWriteDeadline(time.Now().Add(deadWrite))
	}
	if t.writeClose(i, code) != nil {
		d.dead = true
	}
}

// relay forwards data, which starts with any held header bytes, to dst. It
// reports whether the direction should go on reading.
func (t *Tunnel) relay(i int, data []byte) bool {
	d := &t.dirs[i]
	if d.discard == dropAllBytes {
		d.heldN = 0
		return true
	}
	if !t.cfg.Frames {
		d.lockW()
		err := d.write(t, data)
		d.unlockW()
		if err != nil {
			t.writeFailed(i, err)
			return false
		}
		return true
	}
	d.heldN = 0
	for {
		d.lockW()
		stop := (d.inject != 0 || (d.x != nil && d.x.pingDue.Load())) && !d.gotClose && !d.dead
		lim, ev, perr := d.scan(data, stop, d.deferred != 0 && d.flags.Load()&fAnswer != 0)
		var err error
		if ev == evClose {
			// Recorded before dst can see the close and answer it:
			// the answer's direction must find this one's already.
			t.noteSrcClose(i)
		}
		if lim > 0 && !d.injected && !d.dead && d.discard == keepAll {
			if err = d.write(t, data[:lim]); err == nil {
				// A refused header (skip) is not forwarded: dst is
				// at the boundary before it.
				d.midFrame = d.remaining != 0 && !((ev == evTooBig || ev == evRate || ev == evInvalid) && d.x.skip > 0)
				if ev == evClose {
					d.gotClose = true
				}
			}
		}
		if ev == evAnswer {
			// The held close goes out in place of src's, if dst can
			// still take it; either way it is no longer held.
			code := d.deferred
			d.deferred = 0
			if err == nil && !d.gotClose && !d.dead {
				err = t.writeClose(i, code)
			}
		}
		if ev == evBoundary && err == nil && !d.gotClose && !d.dead && d.midFrame {
			// The parser is at a boundary, but dst is inside a frame
			// whose rest was refused: dst can take nothing more.
			d.dead = true
		}
		if ev == evBoundary && err == nil && !d.gotClose && !d.dead {
			if code := d.inject; code != 0 {
				d.inject = 0
				err = t.writeClose(i, code)
			} else {
				d.x.pingDue.Store(false)
				err = t.writePing(i)
			}
		}
		if err != nil {
			d.dead = true
		}
		d.unlockW()
		if err != nil {
			if errors.Is(err, errPingStuck) {
				t.legDead(1 - i)
			} else {
				t.writeFailed(i, err)
			}
			return false
		}
		data = data[lim:]
		switch ev {
		case evEnd:
			return true
		case evDrop:
			data = data[d.x.skip:]
		case evTooBig:
			data = d.refuse(data)
			t.limitClose(i, CodeTooBig, ErrTooBig)
		case evRate:
			data = d.refuse(data)
			t.limitClose(i, CodePolicyViolation, ErrRateLimited)
		case evInvalid:
			data = d.refuse(data)
			t.violation(i, d.x.vcode, perr)
		case evPartial:
			d.heldN = uint8(copy(d.held[:], data))
			return true
		case evViolation:
			d.discard = dropAllBytes
			t.violation(i, CodeProtocolError, perr)
			return true
		case evClose:
			if !t.onSrcClose(i) {
				return false
			}
		}
	}
}

type event uint8

const (
	evEnd       event = iota // data used up
	evPartial                // data ends in a partial header
	evViolation              // a header breaks RFC 6455
	evClose                  // a close frame just ended
	evBoundary               // at a frame boundary, as asked
	evDrop                   // a frame of d.x.skip bytes is not to be forwarded
	evTooBig                 // a frame or message goes over its limit
	evRate                   // a message goes over the rate limit
	evInvalid                // strict validation refuses a frame (code in d.x.vcode)
	evAnswer                 // src's close frame starts, and a close is held for it
)

// refuse drops the rest of a frame that scan refused, and every later byte
// of src: data is what follows the refused frame's header or payload chunk.
func (d *dir) refuse(data []byte) []byte {
	d.discard = dropFrames
	return data[d.x.skip:]
}

// scan parses data from the current parser state and returns how many bytes
// to forward and why it stopped. With stop it stops at the first frame
// boundary, which may be at 0; with answer, before a close frame.
func (d *dir) scan(data []byte, stop, answer bool) (int, event, error) {
	pos := 0
	for {
		if d.remaining > 0 {
			if pos == len(data) {
				return pos, evEnd, nil
			}
			k := int(min(d.remaining, int64(len(data)-pos)))
			if d.x != nil && d.discard == keepAll && d.t.cfg.Strict {
				if err := d.strictPayload(data[pos : pos+k]); err != nil {
					d.x.skip = 0
					return pos, evInvalid, err
				}
			}
			if d.op == wsframe.OpClose && d.payPos < 2 {
				d.capture(data[pos : pos+k])
			}
			if tp := d.t.tap.Load(); tp != nil && d.discard == keepAll {
				tp.tap.Payload(int(d.idx), data[pos:pos+k])
			}
			pos += k
			d.remaining -= int64(k)
			if d.remaining == 0 {
				if d.op == wsframe.OpClose {
					return pos, evClose, nil
				}
				if d.finData && !d.injected && d.discard == keepAll {
					d.countMsg()
				}
			}
			continue
		}
		if stop {
			return pos, evBoundary, nil
		}
		if pos == len(data) {
			return pos, evEnd, nil
		}
		h, n, err := wsframe.ParseFraming(data[pos:])
		if err != nil {
			return pos, evViolation, err
		}
		if n == 0 {
			return pos, evPartial, nil
		}
		if answer && h.Opcode == wsframe.OpClose {
			return pos, evAnswer, nil
		}
		if d.x != nil && d.discard == keepAll {
			if ev, err := d.check(h, data[pos:], n); ev != evEnd {
				if ev != evPartial && ev != evDrop {
					// Refused: the frame is parsed on, and dropped.
					d.x.skip = n
					d.setFrame(h)
				}
				return pos, ev, err
			}
		}
		pos += n
		d.setFrame(h)
		if tp := d.t.tap.Load(); tp != nil && d.discard == keepAll {
			tp.tap.Frame(int(d.idx), h)
		}
		if h.Opcode == wsframe.OpClose && h.Length == 0 {
			return pos, evClose, nil
		}
		if h.Length == 0 && d.finData && !d.injected && d.discard == keepAll {
			d.countMsg()
		}
	}
}

// setFrame makes h, whose header has been parsed, the current frame.
func (d *dir) setFrame(h wsframe.Header) {
	d.op, d.masked, d.key, d.remaining = h.Opcode, h.Masked, h.Key, h.Length
	d.finData = h.Fin && !h.Opcode.IsControl()
	if h.Opcode == wsframe.OpClose {
		d.payPos = 0
	}
}

// check applies strict validation, pings and limits to the header h of n
// bytes at the start of rest; evEnd lets the frame through.
func (d *dir) check(h wsframe.Header, rest []byte, n int) (event, error) {
	if d.t.cfg.Strict {
		if ev, err := d.strictHeader(h, rest, n); ev != evEnd {
			return ev, err
		}
	}
	return d.limits(h, rest, n), nil
}

// limits applies pings and limits to the header h of n bytes at the start
// of rest; evEnd lets the frame through.
func (d *dir) limits(h wsframe.Header, rest []byte, n int) event {
	c, x := &d.t.cfg, d.x
	if h.Opcode == wsframe.OpPong && h.Length == pingLen && n <= 6 && c.PingInterval > 0 {
		// A candidate answer to wsgate's ping: its payload decides,
		// so hold it whole (at most 13 bytes, within held) first.
		if len(rest) < n+pingLen {
			return evPartial
		}
		if d.ownPong(h, rest[n:n+pingLen]) {
			x.skip = n + pingLen
			return evDrop
		}
		return evEnd
	}
	if c.MaxFrameSize > 0 && h.Length > c.MaxFrameSize {
		return evTooBig
	}
	if h.Opcode.IsControl() {
		return evEnd
	}
	start := h.Opcode != wsframe.OpContinuation
	if start {
		x.msgSize = h.Length
	} else {
		x.msgSize += min(h.Length, 1<<62-x.msgSize) // saturates instead of overflowing
	}
	if c.MaxMessageSize > 0 && x.msgSize > c.MaxMessageSize {
		return evTooBig
	}
	if start && x.rated && !d.take() {
		return evRate
	}
	return evEnd
}

// take spends a message of the rate limit (GCRA: the bucket is a
// theoretical arrival time, which integer nanoseconds keep exact).
func (d *dir) take() bool {
	c := &d.t.cfg
	ts := rateClock().UnixNano()
	// Clamped so that absurd settings cannot overflow the arithmetic.
	step := int64(min(float64(time.Second)/c.MessageRate, 1<<50))
	tol := int64(min(float64(max(c.MessageBurst, 1)-1)*float64(step), 1<<60))
	tat := max(d.x.tat, ts)
	if tat-ts > tol {
		return false
	}
	d.x.tat = tat + step
	return true
}

// ownPong reports whether p, the payload of a pong from src, answers one of
// wsgate's pings to src.
func (d *dir) ownPong(h wsframe.Header, p []byte) bool {
	var b [pingLen]byte
	copy(b[:], p)
	if h.Masked {
		wsframe.MaskBytes(b[:], h.Key, 0)
	}
	seq := binary.BigEndian.Uint32(b[4:])
	return b[0] == 'w' && b[1] == 's' && b[2] == 'g' && b[3] == d.x.side && seq != 0 && seq <= d.x.pingSeq.Load()
}

// capture keeps the (unmasked) status code of a close frame.
func (d *dir) capture(p []byte) {
	for _, b := range p {
		if d.payPos >= 2 {
			return
		}
		if d.masked {
			b ^= d.key[d.payPos]
		}
		d.code[d.payPos] = b
		d.payPos++
	}
}

func (d *dir) closeCode() uint16 {
	if d.payPos < 2 {
		return CodeNoStatus
	}
	return uint16(d.code[0])<<8 | uint16(d.code[1])
}

// noteSrcClose records the close frame that direction i's source has
// just sent as the tunnel's first, unless another came first. It is
// called before the frame is passed on, so that the answer, read by the
// other direction, can never be recorded first.
func (t *Tunnel) noteSrcClose(i int) {
	t.mu.Lock()
	if !t.codeSet {
		t.code, t.codeSet = t.dirs[i].closeCode(), true
	}
	t.setByLocked(srcSide(i))
	t.mu.Unlock()
}

// onSrcClose marks direction i's close frame as passed on (or dropped,
// after wsgate's own) and reports whether to keep reading.
func (t *Tunnel) onSrcClose(i int) bool {
	d := &t.dirs[i]
	d.flags.Or(fSrcClosed)
	if t.dirs[1-i].done() {
		// Both sides have sent their close (or the other has ended):
		// the last byte is written, the WebSocket is over.
		t.closeConns()
		return false
	}
	return !t.closing.Load()
}

// readFailed handles the end of direction i's source.
func (t *Tunnel) readFailed(i int, err error) {
	if t.closing.Load() {
		return
	}
	d := &t.dirs[i]
	if errors.Is(err, io.EOF) {
		// An end of stream, after a close frame or not, is passed on
		// as it came: a close frame of wsgate's would tell the other
		// peer something its peer did not say. After a close frame the
		// other direction runs to its own end, as TCP allows; without
		// one the WebSocket has failed, and the other peer gets the
		// close's grace to end its side (a lingering close).
		t.setBy(srcSide(i))
		if cw, ok := d.dst().(interface{ CloseWrite() error }); ok {
			d.wmu.Lock()
			d.gotClose = true // dst's stream is over: no ping, no close
			cerr := cw.CloseWrite()
			d.wmu.Unlock()
			if cerr == nil && (!t.cfg.Frames || d.flags.Load()&fSrcClosed != 0) {
				return
			}
		}
		t.closeWith(closeReq{by: srcSide(i), wait: t.cfg.Frames})
		return
	}
	// A failed connection: the other one is closed, without a close frame.
	t.closeWith(closeReq{by: srcSide(i), err: fmt.Errorf("tunnel: reading from %v: %w", srcSide(i), err)})
}

// writeFailed handles a failed write to direction i's destination.
func (t *Tunnel) writeFailed(i int, err error) {
	if t.closing.Load() {
		return
	}
	dst := srcSide(1 - i)
	// A failed peer: the other one's connection is closed without a
	// close frame, as it would end on a direct connection.
	r := closeReq{by: dst, err: fmt.Errorf("tunnel: writing to %v: %w", dst, err)}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// wsgate's own timeout: the other peer is told.
		r.by, r.err, r.why = SideProxy, fmt.Errorf("%w: writing to %v", ErrSendTimeout, dst), ReasonSendTimeout
		if t.cfg.Frames {
			r.code[1-i] = CodeGoingAway
		}
	}
	t.closeWith(r)
}

// violation closes the tunnel after direction i's source sent a frame that
// wsgate cannot relay, or that strict validation refuses: code to the
// offender, 1001 to the other side. The offender gets its close after what
// the other side has sent, and is read (and dropped) until it answers.
func (t *Tunnel) violation(i int, code uint16, err error) {
	r := closeReq{by: srcSide(i), why: ReasonProtocol, wait: true}
	r.err = fmt.Errorf("%w from %v: %w", ErrProtocol, srcSide(i), err)
	r.code[i] = CodeGoingAway
	r.code[1-i] = code
	r.hold[1-i] = holdAnswer
	t.closeWith(r)
}

// appendClose builds a close frame; frames toward a backend are masked
// with a fresh key, as a client's must be.
func appendClose(dst []byte, code uint16, reason string, mask bool) []byte {
	var key [4]byte
	if mask {
		k := rand.Uint32()
		key = [4]byte{byte(k), byte(k >> 8), byte(k >> 16), byte(k >> 24)}
	}
	return wsframe.AppendClose(dst, code, reason, mask, key)
}

// errPingStuck reports a ping that could not be written within PingTimeout.
var errPingStuck = errors.New("tunnel: ping not written in time")

// sendPing pings direction i's destination from the timer goroutine. It
// never waits for the relay: when the relay is writing, or is inside a
// frame toward that leg, the ping is left for it to send at the next
// boundary. A non-nil error means the leg is to be taken for dead.
func (t *Tunnel) sendPing(i int) error {
	d := &t.dirs[i]
	if !d.wmu.TryLock() {
		d.x.pingDue.Store(true)
		return nil
	}
	defer d.wmu.Unlock()
	if d.gotClose || d.dead || t.closing.Load() {
		return nil
	}
	if d.midFrame {
		d.x.pingDue.Store(true)
		return nil
	}
	err := t.writePing(i)
	if err != nil {
		d.dead = true
	}
	return err
}

// writePing writes a ping to direction i's destination, masked toward the
// backend, and starts the wait for its answer. The caller holds wmu. The
// write may take PingTimeout at most: a leg that cannot take 14 bytes in
// that time is as dead as one that does not answer.
func (t *Tunnel) writePing(i int) error {
	d := &t.dirs[i]
	leg := t.dirs[1-i].x
	var p [pingLen]byte
	p[0], p[1], p[2], p[3] = 'w', 's', 'g', leg.side
	binary.BigEndian.PutUint32(p[4:], leg.pingSeq.Add(1))
	var key [4]byte
	if i == c2b {
		k := rand.Uint32()
		key = [4]byte{byte(k), byte(k >> 8), byte(k >> 16), byte(k >> 24)}
	}
	var buf [wsframe.MaxHeaderLen + pingLen]byte
	frame := wsframe.AppendFrame(buf[:0], wsframe.OpPing, p[:], i == c2b, key)
	sent := int64(time.Since(t.start))
	var err error
	if to := t.cfg.PingTimeout; to > 0 {
		d.dst().SetWriteDeadline(time.Now().Add(to))
		if d.dstRC() != nil {
			d.wdl = true // write lifts the deadline and arms no other
			err = d.write(t, frame)
		} else {
			_, err = d.dst().Write(frame)
			t.clearWriteDeadline(d.dst())
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = errPingStuck
		}
	} else {
		err = d.write(t, frame)
	}
	if err == nil {
		leg.pingAt.Store(max(sent, 1))
	}
	return err
}

// limitClose closes the tunnel after direction i's source went over a
// limit: code to the offender, 1001 to the other side. The offending
// frame has not been forwarded. wsgate closed it on purpose, so ClosedBy
// is SideProxy ($websocket_closed_by "proxy"); the offender is named in Err.
func (t *Tunnel) limitClose(i int, code uint16, err error) {
	r := closeReq{by: SideProxy, why: ReasonLimit, wait: true, record: code}
	r.err = fmt.Errorf("%w from %v", err, srcSide(i))
	r.code[i] = CodeGoingAway
	r.code[1-i] = code
	r.hold[1-i] = holdAnswer
	t.closeWith(r)
}
