package tunnel

import (
	"io"
	"os"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/internal/wsframe"
)

// Relaying in the dispatcher: a parked direction costs no goroutine per
// message.
//
// When a parked direction's source becomes readable, the dispatcher
// (park.go) relays in place when it can finish without blocking: one
// non-blocking recv into its own buffer, the relay's frame logic (consume,
// relay, scan), one non-blocking send; the source stays registered
// (edge-triggered) and the direction parked, holding no buffer. It hands
// the direction to a relay goroutine, as unpark does, whenever that is not
// so:
//   - before reading: the tunnel is closing or being handed over, a close
//     is held or owed, a frame was spliced last, pings or limits are on
//     (their timer and events need the goroutine), a leg is not a plain
//     socket, or the direction's write lock is taken (TryLock: the
//     dispatcher never waits);
//   - after reading: the source ended or failed, or what was read holds a
//     close frame, a header the relay refuses or a payload that splice
//     would carry (plain); the goroutine gets the bytes read (in its
//     relayState) and does what it always does with them;
//   - after relaying: dst took only part of the bytes. The goroutine
//     inherits the write lock, still held, and writes the rest first, so
//     that nothing (a close frame) can come between. Or the read filled
//     the buffer, or the event reported the source's end: the socket may
//     hold more than a new arrival would report.
//
// A new tunnel's directions start parked (startParked) so that a tunnel
// opened and left idle never holds a goroutine, but their first arrival
// goes to a goroutine: a tunnel that starts talking is likely busy, and a
// busy direction costs less there (see earlyPark).
//
// A direction parked after a sweep's silence that becomes busy stays here:
// its messages cost no goroutine start, no read that finds the socket
// empty and no epoll_ctl to park again. With earlyPark, a busy direction
// also parks on its own once its reads keep emptying the socket
// (parkEarly), so that a tunnel carrying a message every few milliseconds
// is relayed here without a goroutine wake-up per message; see earlyPark
// for why that is off by default.

// loopOff switches relaying in the dispatcher off: a readable parked
// direction then always wakes a goroutine, and busy ones never park early.
// For tests and measurements.
var loopOff atomic.Bool

// loopRelays counts the reads the dispatcher relayed, loopHandoffs the
// directions it handed to a goroutine, loopOwed those handed over with
// bytes left to write; for tests.
var loopRelays, loopHandoffs, loopOwed atomic.Int64

// loopable reports whether the dispatcher may relay direction d's next
// read without a goroutine. The fields it reads belong to whoever runs the
// direction: the relay goroutine, or the dispatcher while it is parked.
func (t *Tunnel) loopable(d *dir) bool {
	// Not fPoke: a past read deadline does not stop a raw recv, and the
	// goroutine lifts it when it meets it.
	const busy = fFlush | fAnswer | fDetach | fCloseSrc | fSrcClosed | fHup
	return !loopOff.Load() && d.x == nil && d.srcRC() != nil && d.dstRC() != nil &&
		d.pending == nil && !d.spliced && d.discard == keepAll &&
		!t.closing.Load() && t.detach.Load() == nil && t.tap.Load() == nil &&
		d.flags.Load()&busy == 0
}

// relay runs on the dispatcher when parked direction i's source is
// readable (events): it relays in place or hands the direction to a
// goroutine.
func (l *dispatcher) relay(t *Tunnel, i int, events uint32) {
	d := &t.dirs[i]
	if !d.parked.CompareAndSwap(true, false) {
		return // a close or a handover took it
	}
	if !t.loopable(d) || !d.wmu.TryLock() {
		handOff(t, i)
		return
	}
	if d.inject != 0 || d.deferred != 0 || d.gotClose || d.dead || d.injected || d.over {
		d.wmu.Unlock()
		handOff(t, i)
		return
	}
	if l.buf == nil {
		l.buf = bufPool.Get().(*[]byte)
	}
	b := l.buf
	held := int(d.heldN)
	h := copy(*b, d.held[:held])
	n, err := l.recv(d, (*b)[h:])
	switch {
	case err == syscall.EAGAIN:
		d.wmu.Unlock()
		t.rearm(i) // woken for nothing
		return
	case err != nil || n == 0:
		if err == nil {
			err = io.EOF
		} else if _, ok := err.(syscall.Errno); ok {
			err = os.NewSyscallError("read", err)
		}
		d.wmu.Unlock()
		l.carry(t, i, h, err)
		return
	}
	data := (*b)[:h+n]
	if t.cfg.Frames && !d.plain(data) {
		d.wmu.Unlock()
		l.carry(t, i, h+n, nil)
		return
	}
	d.flags.Or(fInLoop)
	ok := t.consume(i, nil, data, held)
	d.flags.And(^fInLoop)
	if d.rs != nil && len(d.rs.owed) > 0 || !ok {
		// dst did not take it all: the goroutine finishes the write
		// under the lock it inherits (see runOwed).
		l.buf = nil
		loopHandoffs.Add(1)
		loopOwed.Add(1)
		d.takeBack()
		go t.runOwed(i, b, ok)
		return
	}
	d.wmu.Unlock()
	loopRelays.Add(1)
	if h+n == len(*b) || events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		// The socket may hold more, or its end, which came with the
		// bytes read; an edge-triggered registration reports only
		// new arrivals.
		handOff(t, i)
		return
	}
	t.rearm(i)
}

// recv reads d's source once, without blocking.
func (l *dispatcher) recv(d *dir, b []byte) (int, error) {
	c := getRawCall(opRecv)
	c.b = b
	cerr := d.srcRC().Control(c.fn)
	n, err := c.n, c.err
	c.put()
	if cerr != nil {
		return 0, cerr
	}
	return n, err
}

// carry hands direction i to a goroutine with what the dispatcher read: the
// first n bytes of its buffer (held header bytes first) and how the read
// ended, as the read callback leaves them (dir.read returns them first).
func (l *dispatcher) carry(t *Tunnel, i, n int, err error) {
	rs := t.dirs[i].state()
	rs.rbuf, rs.rn, rs.rerr = l.buf, int32(n), err
	l.buf = nil
	handOff(t, i)
}

// handOff starts direction i's relay goroutine, as unpark does.
func handOff(t *Tunnel, i int) {
	loopHandoffs.Add(1)
	t.dirs[i].takeBack()
	go t.run(i)
}

// takeBack prepares parked direction d for its goroutine: its readiness
// stops waking the dispatcher, and it parks early again only after
// watchAfter reads have emptied its socket, so that a destination that
// keeps blocking does not bounce it between the two.
func (d *dir) takeBack() {
	parker.quiet(d)
	if d.shorts != noWatch {
		d.shorts = 0
	}
}

// rearm parks direction i again after the dispatcher emptied its socket,
// or hands it to a goroutine if a close or a handover came meanwhile (the
// same checks as park, in the same order). An edge-triggered registration
// stays as it is: a system call per message saved.
func (t *Tunnel) rearm(i int) {
	d := &t.dirs[i]
	d.parked.Store(true)
	if t.closing.Load() || d.flags.Load()&(fDetach|fFlush) != 0 ||
		(d.flags.Load()&fEdge == 0 && parker.arm(d) != nil) || t.closing.Load() {
		if d.parked.CompareAndSwap(true, false) {
			handOff(t, i)
		}
	}
}

// runOwed is direction i's relay goroutine after the dispatcher left bytes
// unwritten (relayState.owed): it holds d.wmu, taken by the dispatcher,
// writes them, and relays on unless relay reported the direction over (ok
// false).
func (t *Tunnel) runOwed(i int, buf *[]byte, ok bool) {
	d := &t.dirs[i]
	var rest []byte
	if rs := d.rs; rs != nil {
		rest, rs.owed = rs.owed, nil
	}
	err := d.write(t, rest)
	if err != nil {
		d.dead = true
	}
	d.wmu.Unlock()
	putBuf(buf)
	if err != nil {
		t.writeFailed(i, err)
		ok = false
	}
	if !ok {
		t.end(i)
		return
	}
	t.run(i)
}

// tryWrite is write inside the dispatcher: it sends what dst takes now and
// leaves the rest in relayState.owed, for runOwed. The caller holds wmu.
func (d *dir) tryWrite(p []byte) {
	if d.rs == nil || len(d.rs.owed) == 0 {
		c := getRawCall(opSend)
		c.b = p
		d.dstRC().Control(c.fn) // EAGAIN, or a failure that runOwed's write meets again, leaves c.b
		p = c.b
		c.put()
		if len(p) == 0 {
			return
		}
		d.state().owed = p
		return
	}
	owed := d.rs.owed
	d.rs.owed = append(owed[:len(owed):len(owed)], p...)
}

// plain reports whether relaying data (held header bytes first) from d's
// parser state only forwards bytes: no close frame, no header the framing
// parser refuses, and no payload left over that splice would carry. It
// reads the headers with the relay's framing parser and changes nothing;
// relay then does the work. Without a limit, a ping or a tap (loopable),
// such data makes scan stop only at its end or at a partial header.
func (d *dir) plain(data []byte) bool {
	rem := d.remaining
	if rem > 0 && d.op == wsframe.OpClose {
		return false
	}
	for len(data) > 0 {
		if rem > 0 {
			k := min(rem, int64(len(data)))
			data, rem = data[k:], rem-k
			continue
		}
		h, n, err := wsframe.ParseFraming(data)
		if err != nil || h.Opcode == wsframe.OpClose {
			return false
		}
		if n == 0 {
			return true // a partial header: held
		}
		data, rem = data[n:], h.Length
	}
	return rem < spliceMin
}

// lockW and unlockW take d.wmu for relay, except inside the dispatcher,
// which holds it already.
func (d *dir) lockW() {
	if d.flags.Load()&fInLoop == 0 {
		d.wmu.Lock()
	}
}

func (d *dir) unlockW() {
	if d.flags.Load()&fInLoop == 0 {
		d.wmu.Unlock()
	}
}
