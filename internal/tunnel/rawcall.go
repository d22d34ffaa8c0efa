package tunnel

import (
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/internal/sockio"
)

// rawCall is a system call made on a socket inside its RawConn.Control,
// which keeps the descriptor open meanwhile, without allocating. A closure
// passed to Control escapes to the heap, with every variable it shares;
// the dispatcher makes such calls for each message it relays in place (a
// recv and a send) and whenever a direction parks or is taken back (an
// epoll_ctl), so they come from a pool, with run bound once. The fields
// are the call's arguments and results; put clears the references.
type rawCall struct {
	op    rawOp
	b     []byte // recv: the buffer; send: what is left to send
	n     int
	err   error
	d     *dir            // arm: the direction whose source it registers
	epfds []int           // arm, disarm: the epoll instances, by descriptor
	ev    unix.EpollEvent // arm: the registration

	fn func(fd uintptr) // run, for Control
}

type rawOp uint8

const (
	opRecv rawOp = iota
	opSend
	opArm
	opDisarm
)

var rawCalls = sync.Pool{New: func() any {
	c := new(rawCall)
	c.fn = c.run
	return c
}}

// getRawCall returns a call of op from the pool; c.fn runs it.
func getRawCall(op rawOp) *rawCall {
	c := rawCalls.Get().(*rawCall)
	c.op = op
	return c
}

func (c *rawCall) put() {
	c.b, c.err, c.d, c.epfds = nil, nil, nil, nil
	rawCalls.Put(c)
}

func (c *rawCall) run(fd uintptr) {
	switch c.op {
	case opRecv:
		c.recv(fd)
	case opSend:
		c.send(fd)
	case opArm:
		c.arm(fd)
	case opDisarm:
		c.disarm(fd)
	}
}

// recv reads the socket once into c.b: c.n bytes, or c.err.
func (c *rawCall) recv(fd uintptr) {
	c.n, c.err = sockio.Recv(int(fd), c.b)
	for c.err == syscall.EINTR {
		c.n, c.err = sockio.Recv(int(fd), c.b)
	}
}

// send writes what of c.b the socket takes now; c.b keeps the rest. A
// failure other than EAGAIN is left for a later write to meet again.
func (c *rawCall) send(fd uintptr) {
	for len(c.b) > 0 {
		n, err := sockio.Send(int(fd), c.b)
		if n > 0 {
			c.b = c.b[n:]
		}
		if err != nil && err != syscall.EINTR {
			return
		}
	}
}

// arm puts c.d's source in its epoll instance with c.ev, or changes its
// registration to c.ev: c.err.
func (c *rawCall) arm(fd uintptr) {
	d, epfd := c.d, c.epfds[int(fd)%len(c.epfds)]
	op := unix.EPOLL_CTL_MOD
	if d.flags.Load()&fArmed == 0 {
		op = unix.EPOLL_CTL_ADD
	}
	// Set before the call: once armed, the next goroutine (or the
	// dispatcher) may run. A flag, so that the race detector sees the
	// order that epoll gives.
	d.flags.Or(fArmed)
	err := epollCtl(epfd, op, int(fd), &c.ev)
	switch err {
	case unix.EEXIST:
		err = epollCtl(epfd, unix.EPOLL_CTL_MOD, int(fd), &c.ev)
	case unix.ENOENT:
		err = epollCtl(epfd, unix.EPOLL_CTL_ADD, int(fd), &c.ev)
	}
	if err != nil {
		d.flags.And(^fArmed) // not parked: no other goroutine runs
	}
	c.err = err
}

// disarm takes the socket out of its epoll instance (c.epfds, by
// descriptor).
func (c *rawCall) disarm(fd uintptr) {
	epollCtl(c.epfds[int(fd)%len(c.epfds)], unix.EPOLL_CTL_DEL, int(fd), nil)
}
