package tunnel

import (
	"sync/atomic"
	"time"
)

// Skipping the read that says EAGAIN.
//
// A relay that reads a socket until EAGAIN pays a system call per message
// to learn that nothing more has come: on the 64-byte echo benchmark, a
// third of its reads. A read that returns less than its buffer has emptied
// the socket, so a busy direction (watchAfter such reads) waits for the
// runtime poller's next edge straight away instead; or, with earlyPark and
// if the dispatcher can relay for it, parks (parkEarly, loop.go), which
// needs neither.
//
// Data cannot be missed, provided the wait happens inside the same
// RawConn.Read as the short read: the poller remembers an edge that comes
// while nobody waits, but each new RawConn.Read forgets it before its first
// call. So after a short read the callback relays the bytes itself, then
// returns false to wait (onReadable). Work that must not run inside the
// callback leaves it: splice, which reads the same socket, and closing the
// socket, which waits for the callback to return (closeSrc).
//
// The end of the stream could be missed: a FIN that came with the last
// data is taken by that read without a sign, and the poller may have
// reported it already; only another read would return 0. So a busy
// direction's source is also in wsgate's epoll set (park.go), for its end
// only (EPOLLRDHUP, edge-triggered: data arrivals do not wake it). When the
// dispatcher sees the end, and the relay is waiting without having seen
// EAGAIN, it wakes the relay with a past read deadline; the relay lifts the
// deadline and reads the end. fSkipped and fHup are set by one atomic OR
// each on the same word, so either the relay sees the end before it waits,
// or the dispatcher sees the wait.

// watchAfter is how many short reads a direction makes before it skips:
// a tunnel that carries a message or two, as most handshake-and-close
// sessions, never pays the epoll_ctl.
const watchAfter = 4

// noWatch in dir.shorts: the source could not be watched; always read to
// EAGAIN.
const noWatch = 255

// maybeWatch counts a short read and, after watchAfter of them, adds the
// source to the epoll set for its end. Relay goroutine only.
func (d *dir) maybeWatch() {
	if d.shorts == noWatch {
		return
	}
	if d.shorts < watchAfter {
		d.shorts++
		return
	}
	if earlyPark.Load() && d.t.loopable(d) {
		return // it parks instead (parkEarly)
	}
	if parker.watch(d) != nil {
		d.shorts = noWatch
		return
	}
	d.watching = true
}

// earlyPark lets busy directions park early (parkEarly). Off by default:
// measured on the 20k msg/s paced benchmark, a message relayed by the
// dispatcher cost more CPU than one relayed by a goroutine that waits in
// the runtime's poller (the dispatcher is itself a goroutine woken through
// that poller, and pays an epoll_wait more per wake-up), though it cut the
// p99 latency; it wins only when wake-ups batch many messages. A variable
// for tests and measurements.
var earlyPark atomic.Bool

// parkEarly reports whether direction d, relayed by its goroutine, parks
// now rather than at the sweep: its last read emptied the socket after
// watchAfter others did, and the dispatcher can relay its next messages
// (loop.go). Relay goroutine only.
func (d *dir) parkEarly() bool {
	return earlyPark.Load() && d.short && d.shorts >= watchAfter && d.shorts != noWatch && !d.watching &&
		d.t.loopable(d) && !d.t.canSplice(int(d.idx))
}

// hangUps counts pokes, for tests.
var hangUps atomic.Int64

// hangUp runs on the dispatcher when a watched source has ended or failed.
func (d *dir) hangUp() {
	if d.flags.Or(fHup)&fSkipped != 0 {
		hangUps.Add(1)
		d.flags.Or(fPoke) // before the deadline, which the relay checks it on
		d.src.SetReadDeadline(aLongTimeAgo)
	}
}

// clearReadDeadline lifts a deadline set to wake the relay (a poke, the
// sweeper's request to park), keeping a close's grace deadline (closeWith
// sets closing before it, so checking closing after the reset catches
// every interleaving).
func (t *Tunnel) clearReadDeadline(d *dir) {
	d.src.SetReadDeadline(time.Time{})
	if t.closing.Load() {
		if g := t.graceAt.Load(); g != 0 {
			d.src.SetReadDeadline(time.Unix(0, g))
		}
	}
}

// closeSrc closes d's source. A relay relaying inside its read callback
// holds the descriptor, and Close waits for every holder: called from that
// relay (a close frame, a failed write), it would wait forever. So then the
// close is left to the relay, which does it as it leaves the callback
// (closeOwed); the past deadline makes it leave, and ends any write to
// this connection that blocks.
func (d *dir) closeSrc() {
	if d.flags.Or(fCloseSrc)&fInCB != 0 {
		d.src.SetDeadline(aLongTimeAgo)
		return
	}
	d.closeOwed()
}

// closeOwed closes src if a close is owed; whoever clears fCloseSrc closes.
func (d *dir) closeOwed() {
	if d.flags.Load()&fCloseSrc != 0 && d.flags.And(^fCloseSrc)&fCloseSrc != 0 {
		d.src.Close()
	}
}
