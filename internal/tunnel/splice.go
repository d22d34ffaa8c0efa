package tunnel

import (
	"io"
	"math"
	"os"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// Large payloads move with splice(2): once a frame's header has passed
// through the buffer, the rest of its payload goes socket -> pipe -> socket
// inside the kernel, never copied to wsgate's memory. wsgate forwards
// payloads untouched (masked or not), so it needs none of those bytes; the
// frame parser only counts them. A direction takes a pipe the first time it
// splices and keeps it while busy; it gives it back when it parks or ends,
// so an idle tunnel still holds two descriptors (its sockets).

// Pipes cost two descriptors each that the server's connection limit
// does not count. A direction takes one only while the descriptors held by
// pipes stay below the RLIMIT_NOFILE soft limit minus Config.FDReserve (the
// server's connections) minus fdSlack (listeners, logs, files); otherwise
// it copies, which needs no descriptor. So accept() does not meet EMFILE
// before the connection limit refuses a client.
const fdSlack = 64

// pipeFDs counts the descriptors held by pipes, process-wide.
var pipeFDs atomic.Int64

// fdLimit is the soft RLIMIT_NOFILE as last read; 0 before the first read.
var fdLimit atomic.Int64

// readFDLimit returns the soft RLIMIT_NOFILE. A variable for tests.
var readFDLimit = func() int64 {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > math.MaxInt32 {
		return math.MaxInt32
	}
	return int64(rl.Cur)
}

// pipeRoom reports whether a new pipe fits the budget, on the limit as
// last read: a cheap check before a direction chooses to splice.
func (t *Tunnel) pipeRoom() bool {
	lim := fdLimit.Load()
	if lim == 0 {
		lim = readFDLimit()
		fdLimit.Store(lim)
	}
	return pipeFDs.Load()+2 <= lim-int64(t.cfg.FDReserve)-fdSlack
}

// reservePipe counts a new pipe's descriptors if they fit the budget, on
// the limit read now.
func (t *Tunnel) reservePipe() bool {
	lim := readFDLimit()
	fdLimit.Store(lim)
	max := lim - int64(t.cfg.FDReserve) - fdSlack
	for {
		n := pipeFDs.Load()
		if n+2 > max {
			return false
		}
		if pipeFDs.CompareAndSwap(n, n+2) {
			return true
		}
	}
}

// spliceMin is the payload remainder worth a splice rather than the buffer.
// A variable for tests.
var spliceMin int64 = 16 << 10

// headRead is how much a direction reads after a spliced frame: enough for
// the next header and a small frame, little of a large frame's payload.
const headRead = 2 << 10

// pipeSize is how much one splice round moves at most: the pipe's default
// capacity, so that a splice into an empty pipe never finds it full.
const pipeSize = 64 << 10

// canSplice reports whether direction i should splice the rest of its
// current frame's payload.
func (t *Tunnel) canSplice(i int) bool {
	d := &t.dirs[i]
	// Control frames stay on the buffer path (their payloads are 125
	// bytes at most, and a close frame's code must be read).
	// Strict text is checked on the buffer path.
	return t.cfg.Frames && d.remaining >= spliceMin && !d.op.IsControl() &&
		(d.x == nil || !d.x.inText) && d.discard == keepAll &&
		d.srcRC() != nil && d.dstRC() != nil && d.heldN == 0 && !t.closing.Load() && !noSplice.Load() &&
		t.tap.Load() == nil &&
		(d.rs != nil && d.rs.hasPipe || t.pipeRoom())
}

// spliced counts splice rounds, for tests.
var spliced atomic.Int64

// noSplice is set the first time splice is refused (a kernel or sandbox
// without it); the buffer path then does everything.
var noSplice atomic.Bool

// splicePayload moves the rest of direction i's current frame payload. It
// returns like relay: false when the direction is over, with the error (a
// read error ends the source) handled as relayLoop would.
func (t *Tunnel) splicePayload(i int) (ok bool, readErr error) {
	d := &t.dirs[i]
	rs := d.state()
	if !rs.hasPipe {
		if !t.reservePipe() {
			d.spliced = false // the buffer path carries on, with full reads
			return true, nil
		}
		if err := unix.Pipe2(rs.pipe[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
			pipeFDs.Add(-2)
			d.spliced = false
			return true, nil
		}
		rs.hasPipe = true
	}
	for d.remaining > 0 {
		d.wmu.Lock()
		drop := d.dead || d.injected
		d.wmu.Unlock()
		if drop {
			return true, nil // the buffer path drops the rest
		}
		want := int(min(d.remaining, pipeSize))
		var n int64
		var serr error
		err := d.srcRC().Read(func(fd uintptr) bool {
			for {
				n, serr = unix.Splice(int(fd), nil, rs.pipe[1], nil, want, unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
				if serr == unix.EINTR {
					continue
				}
				return serr != unix.EAGAIN
			}
		})
		if err == nil && serr != nil {
			if serr == unix.EINVAL || serr == unix.ENOSYS {
				noSplice.Store(true)
				return true, nil
			}
			err = os.NewSyscallError("splice", serr)
		}
		if err == nil && n == 0 {
			err = io.EOF
		}
		if err != nil {
			return true, err
		}
		d.n.Add(n)
		t.touch(i)
		spliced.Add(1)
		d.wmu.Lock()
		if d.dead || d.injected {
			// Meanwhile dst failed, or got wsgate's close: the
			// source's bytes are dropped, as relay drops them.
			d.releasePipe()
			d.remaining -= n
			d.wmu.Unlock()
			continue
		}
		werr := d.drainPipe(t, n)
		if werr == nil {
			d.remaining -= n
			d.midFrame = d.remaining != 0
			if d.remaining == 0 && d.finData {
				d.countMsg()
			}
		} else {
			d.dead = true
		}
		d.wmu.Unlock()
		if werr != nil {
			t.writeFailed(i, werr)
			return false, nil
		}
	}
	// At a frame boundary now: a close or ping waiting for one goes out.
	return t.relay(i, nil), nil
}

// drainPipe writes the n bytes in d's pipe to dst. The caller holds wmu. A
// send deadline is armed only once a write would block, as in write.
func (d *dir) drainPipe(t *Tunnel, n int64) error {
	rs := d.rs
	var werr error
	err := d.dstRC().Write(func(fd uintptr) bool {
		for n > 0 {
			m, err := unix.Splice(rs.pipe[0], nil, int(fd), nil, int(n), unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
			if m > 0 {
				n -= m
			}
			switch {
			case err == unix.EINTR:
			case err == unix.EAGAIN:
				d.blocked(t)
				return false
			case err != nil:
				werr = os.NewSyscallError("splice", err)
				return true
			}
		}
		return true
	})
	d.unblocked(t)
	if err == nil {
		err = werr
	}
	if err != nil && n > 0 {
		// The pipe holds bytes that will never go: it cannot be reused.
		d.releasePipe()
	}
	return err
}

// releasePipe closes d's pipe, if it has one.
func (d *dir) releasePipe() {
	if rs := d.rs; rs != nil && rs.hasPipe {
		syscall.Close(rs.pipe[0])
		syscall.Close(rs.pipe[1])
		rs.hasPipe = false
		pipeFDs.Add(-2)
	}
}
