// Package epollrelay is the relay written directly on epoll with
// golang.org/x/sys/unix: one loop per GOMAXPROCS, each with its own
// SO_REUSEPORT listener and epoll set; edge-triggered, non-blocking
// accept4, connect, read and write on raw descriptors; no net.Conn, no
// goroutine per connection. A tunnel is two conn values in one loop.
//
// Its system calls go through the Go scheduler's system call path
// (syscall.Syscall), as the net package's do, except in RunRaw, where
// every call on a socket and on the epoll set is a raw one
// (syscall.RawSyscall): the scheduler is not told, and the runtime's
// monitor thread, asleep while the process idles, is not woken by them.
package epollrelay

import (
	"fmt"
	"log"
	"net"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/bench/evloop/internal/head"
)

const (
	// readBuf is each loop's one read buffer, shared by all its sockets.
	readBuf = 64 << 10
	// maxPending is how many unsent bytes a socket may hold before the loop
	// stops reading from its peer (back-pressure).
	maxPending = 256 << 10
	// events is how many readiness events one epoll_wait returns at most.
	events = 256
	// connEvents: every socket is registered once for both directions,
	// edge-triggered, so it is never modified afterwards.
	connEvents = unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET
)

// Run starts one loop per GOMAXPROCS accepting on listen and relaying to
// backend; each loop blocks in epoll_wait. It returns the first loop's
// failure.
func Run(listen, backend string) error { return run(listen, backend, false, false) }

// RunParked is Run with loops that wait in Go's netpoller instead: the
// loop's epoll descriptor is itself registered with the runtime, the loop
// goroutine parks until it is readable and then collects events with a
// non-blocking epoll_wait. An idle loop holds no thread in a system call.
func RunParked(listen, backend string) error { return run(listen, backend, true, false) }

// RunRaw is RunParked with raw system calls: nothing the loops do once
// they run wakes the runtime's monitor thread. None of its calls can
// block: the sockets are non-blocking and the loop's epoll_wait returns at
// once, the netpoller having said events are there.
func RunRaw(listen, backend string) error { return run(listen, backend, true, true) }

// syscall6 makes the loops' system calls: unix.Syscall6, or
// unix.RawSyscall6 for RunRaw. It is set before any loop starts.
var syscall6 = unix.Syscall6

func run(listen, backend string, parked, raw bool) error {
	if raw {
		syscall6 = unix.RawSyscall6
	}
	la, err := sockaddr(listen)
	if err != nil {
		return fmt.Errorf("listen address: %w", err)
	}
	ba, err := sockaddr(backend)
	if err != nil {
		return fmt.Errorf("backend address: %w", err)
	}
	n := runtime.GOMAXPROCS(0)
	errc := make(chan error, n)
	for range n {
		l, err := newLoop(la, ba)
		if err != nil {
			return err
		}
		wait := l.waitBlocking
		if parked {
			if wait, err = l.parkedWaiter(); err != nil {
				return err
			}
		}
		go func() { errc <- l.run(wait) }()
	}
	return <-errc
}

func sockaddr(hostport string) (unix.Sockaddr, error) {
	a, err := net.ResolveTCPAddr("tcp", hostport)
	if err != nil {
		return nil, err
	}
	if ip4 := a.IP.To4(); ip4 != nil {
		sa := &unix.SockaddrInet4{Port: a.Port}
		copy(sa.Addr[:], ip4)
		return sa, nil
	}
	sa := &unix.SockaddrInet6{Port: a.Port}
	copy(sa.Addr[:], a.IP.To16())
	return sa, nil
}

func family(sa unix.Sockaddr) int {
	if _, ok := sa.(*unix.SockaddrInet4); ok {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// conn is one socket of a tunnel. A client conn has no peer until its
// request head is complete; its peer is then the backend conn, and the
// backend's peer is the client.
type conn struct {
	fd         int
	gen        uint32 // tells a reused descriptor from an event for its closed predecessor
	peer       *conn
	hd         head.Accumulator // client, before the tunnel exists
	out        []byte           // bytes waiting to be written to fd
	connecting bool             // backend: connect in progress
	rdhup      bool             // the peer's FIN was seen: read to EOF
	eof        bool             // fd's input ended
	shutAfter  bool             // shut fd's output once out is written
	wrShut     bool             // fd's output is shut
	paused     bool             // not reading fd until the peer's out drains
	closed     bool
}

// loop is one event loop; only its own goroutine touches it.
type loop struct {
	ep, lfd    int
	backend    unix.Sockaddr
	rawBackend []byte // backend as connect(2) takes it
	// one and ev are arguments that system calls take by address: on the
	// heap, as the calls go through a function value (syscall6), which
	// the compiler does not keep a stack address valid across.
	one    int32
	ev     unix.EpollEvent
	conns  []*conn // by descriptor
	gen    uint32
	buf    []byte
	events [events]unix.EpollEvent
}

func newLoop(la, ba unix.Sockaddr) (*loop, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	lfd, err := listenFD(la)
	if err != nil {
		unix.Close(ep)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: int32(lfd)}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, lfd, &ev); err != nil {
		unix.Close(lfd)
		unix.Close(ep)
		return nil, err
	}
	return &loop{ep: ep, lfd: lfd, backend: ba, rawBackend: rawSockaddr(ba), one: 1, buf: make([]byte, readBuf)}, nil
}

func listenFD(sa unix.Sockaddr) (int, error) {
	fd, err := unix.Socket(family(sa), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	for _, opt := range []int{unix.SO_REUSEADDR, unix.SO_REUSEPORT} {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, opt, 1); err != nil {
			unix.Close(fd)
			return -1, err
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if err := unix.Listen(fd, 4096); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// run handles the events that wait returns until wait fails.
func (l *loop) run(wait func() (int, error)) error {
	for {
		n, err := wait()
		if err != nil {
			return err
		}
		for i := range n {
			ev := l.events[i]
			if int(ev.Fd) == l.lfd {
				l.accept()
				continue
			}
			if c := l.lookup(ev); c != nil {
				l.handle(c, ev.Events)
			}
		}
	}
}

// waitBlocking blocks in epoll_wait until events come.
func (l *loop) waitBlocking() (int, error) {
	for {
		n, err := unix.EpollWait(l.ep, l.events[:], -1)
		if err != unix.EINTR {
			return n, err
		}
	}
}

// parkedWaiter registers the epoll descriptor with Go's netpoller and
// returns a wait that parks the goroutine until the set has events.
func (l *loop) parkedWaiter() (func() (int, error), error) {
	if err := unix.SetNonblock(l.ep, true); err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(l.ep), "epoll")
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	return func() (int, error) {
		var n int
		var werr error
		err := rc.Read(func(uintptr) bool {
			var r uintptr
			r, werr = call6(unix.SYS_EPOLL_PWAIT, uintptr(l.ep), uintptr(unsafe.Pointer(&l.events[0])), uintptr(len(l.events)), 0, 0, 0)
			n = int(r)
			return n > 0 || (werr != nil && werr != unix.EINTR)
		})
		if err != nil {
			return 0, err
		}
		return n, werr
	}, nil
}

func (l *loop) lookup(ev unix.EpollEvent) *conn {
	fd := int(ev.Fd)
	if fd >= len(l.conns) {
		return nil
	}
	c := l.conns[fd]
	if c == nil || c.gen != uint32(ev.Pad) {
		return nil
	}
	return c
}

func (l *loop) accept() {
	for {
		fd, err := accept4(l.lfd)
		switch err {
		case nil:
		case unix.EAGAIN:
			return
		case unix.EINTR, unix.ECONNABORTED:
			continue
		default:
			log.Printf("epoll: accept: %v", err)
			return
		}
		l.noDelay(fd)
		l.add(&conn{fd: fd})
	}
}

// accept4 accepts without asking for the peer's address (x/sys's Accept4
// decodes it, at the cost of a getsockopt per call).
func accept4(lfd int) (int, error) {
	fd, err := call6(unix.SYS_ACCEPT4, uintptr(lfd), 0, 0, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if err != nil {
		return -1, err
	}
	return int(fd), nil
}

// add registers c in the epoll set; on failure it closes c.
func (l *loop) add(c *conn) bool {
	l.gen++
	c.gen = l.gen
	for c.fd >= len(l.conns) {
		l.conns = append(l.conns, make([]*conn, len(l.conns)+64)...)
	}
	l.conns[c.fd] = c
	l.ev = unix.EpollEvent{Events: connEvents, Fd: int32(c.fd), Pad: int32(c.gen)}
	if _, err := call6(unix.SYS_EPOLL_CTL, uintptr(l.ep), unix.EPOLL_CTL_ADD, uintptr(c.fd), uintptr(unsafe.Pointer(&l.ev)), 0, 0); err != nil {
		log.Printf("epoll: epoll_ctl: %v", err)
		l.teardown(c)
		return false
	}
	return true
}

func (l *loop) handle(c *conn, ev uint32) {
	if ev&unix.EPOLLRDHUP != 0 {
		c.rdhup = true
	}
	if ev&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 && (c.connecting || len(c.out) > 0 || c.shutAfter) {
		l.writable(c)
	}
	if !c.closed && ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
		l.readable(c)
	}
}

// readable reads c until EAGAIN, a short read (edge-triggered: more input
// raises a new event), back-pressure, or its end.
func (l *loop) readable(c *conn) {
	for !c.eof && !c.paused && !c.closed {
		n, err := read(c.fd, l.buf)
		switch {
		case err == unix.EAGAIN:
			return
		case err == unix.EINTR:
			continue
		case err != nil:
			l.teardown(c)
			return
		case n == 0:
			l.readEOF(c)
			return
		}
		if !l.deliver(c, l.buf[:n]) {
			return
		}
		if n < len(l.buf) && !c.rdhup {
			return
		}
	}
}

// deliver passes bytes read from c on: to the head while c is a client
// without a tunnel, else to c's peer. It reports whether c is still open.
func (l *loop) deliver(c *conn, p []byte) bool {
	if c.peer == nil {
		all, done, tooLong := c.hd.Add(p)
		if tooLong {
			write(c.fd, head.BadRequest)
			l.teardown(c)
			return false
		}
		if !done {
			return true
		}
		return l.dial(c, all)
	}
	d := c.peer
	if len(d.out) == 0 && !d.connecting {
		n, err := write(d.fd, p)
		switch {
		case err == unix.EAGAIN:
			n = 0
		case err != nil:
			l.teardown(c)
			return false
		}
		p = p[n:]
	}
	if len(p) > 0 {
		d.out = append(d.out, p...)
		c.paused = len(d.out) >= maxPending
	}
	return true
}

// dial connects to the backend without blocking; first (the head and any
// bytes after it) waits in the backend conn's out until the connect ends.
func (l *loop) dial(c *conn, first []byte) bool {
	fd, err := call(unix.SYS_SOCKET, uintptr(family(l.backend)), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		log.Printf("epoll: socket: %v", err)
		l.teardown(c)
		return false
	}
	l.noDelay(int(fd))
	_, err = call(unix.SYS_CONNECT, fd, uintptr(unsafe.Pointer(&l.rawBackend[0])), uintptr(len(l.rawBackend)))
	if err != nil && err != unix.EINPROGRESS {
		log.Printf("epoll: connect: %v", err)
		closeFD(int(fd))
		l.teardown(c)
		return false
	}
	b := &conn{fd: int(fd), peer: c, out: first, connecting: true}
	c.peer = b
	if !l.add(b) {
		return false
	}
	if err == nil {
		l.writable(b)
	}
	return !c.closed
}

// writable ends a connect, writes c's pending bytes, shuts c's output when
// asked to, and resumes reading the peer once c has room again.
func (l *loop) writable(c *conn) {
	c.connecting = false
	for len(c.out) > 0 {
		n, err := write(c.fd, c.out)
		if err == unix.EAGAIN {
			return
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			l.teardown(c)
			return
		}
		c.out = c.out[n:]
	}
	c.out = nil
	if c.shutAfter {
		c.shutAfter = false
		l.shutWrite(c)
		if c.closed {
			return
		}
	}
	if p := c.peer; p != nil && p.paused {
		p.paused = false
		l.readable(p)
	}
}

// readEOF passes c's end of input on as a shutdown of the peer's output,
// at once or after the peer's pending bytes.
func (l *loop) readEOF(c *conn) {
	c.eof = true
	p := c.peer
	if p == nil {
		l.teardown(c)
		return
	}
	if len(p.out) > 0 || p.connecting {
		p.shutAfter = true
		return
	}
	l.shutWrite(p)
}

// shutWrite shuts c's output and closes the tunnel once both ways ended.
func (l *loop) shutWrite(c *conn) {
	if _, err := call(unix.SYS_SHUTDOWN, uintptr(c.fd), unix.SHUT_WR, 0); err != nil {
		l.teardown(c)
		return
	}
	c.wrShut = true
	if p := c.peer; p != nil && p.wrShut {
		l.teardown(c)
	}
}

// teardown closes c and its peer.
func (l *loop) teardown(c *conn) {
	for _, x := range []*conn{c, c.peer} {
		if x == nil || x.closed {
			continue
		}
		x.closed = true
		x.out = nil
		l.conns[x.fd] = nil
		closeFD(x.fd)
	}
}

// call6 is the system call trap with its arguments, through syscall6; the
// error is the errno, nil for none.
func call6(trap, a1, a2, a3, a4, a5, a6 uintptr) (uintptr, error) {
	r, _, e := syscall6(trap, a1, a2, a3, a4, a5, a6)
	if e != 0 {
		return r, e
	}
	return r, nil
}

func call(trap, a1, a2, a3 uintptr) (uintptr, error) { return call6(trap, a1, a2, a3, 0, 0, 0) }

func read(fd int, p []byte) (int, error) {
	n, err := call(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(n), err
}

func write(fd int, p []byte) (int, error) {
	n, err := call(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(n), err
}

func closeFD(fd int) { call(unix.SYS_CLOSE, uintptr(fd), 0, 0) }

// noDelay turns Nagle's algorithm off on fd.
func (l *loop) noDelay(fd int) {
	call6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY, uintptr(unsafe.Pointer(&l.one)), 4, 0)
}

// rawSockaddr is sa in the kernel's layout (sockaddr_in or sockaddr_in6),
// as connect(2) takes it, on the heap.
func rawSockaddr(sa unix.Sockaddr) []byte {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		var r unix.RawSockaddrInet4
		r.Family = unix.AF_INET
		r.Addr = sa.Addr
		p := (*[2]byte)(unsafe.Pointer(&r.Port))
		p[0], p[1] = byte(sa.Port>>8), byte(sa.Port)
		return unsafe.Slice((*byte)(unsafe.Pointer(&r)), unix.SizeofSockaddrInet4)
	case *unix.SockaddrInet6:
		var r unix.RawSockaddrInet6
		r.Family = unix.AF_INET6
		r.Addr = sa.Addr
		p := (*[2]byte)(unsafe.Pointer(&r.Port))
		p[0], p[1] = byte(sa.Port>>8), byte(sa.Port)
		return unsafe.Slice((*byte)(unsafe.Pointer(&r)), unix.SizeofSockaddrInet6)
	}
	return nil
}
