package sockio

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// Conn is a TCP connection whose Read and Write are Recv and Send on its
// socket, waiting in the net package's poller as the connection's own
// would. It is for a connection that a library reads and writes through
// net.Conn (crypto/tls): the library's calls then cost what the relay's
// own do. Everything else (deadlines, Close, CloseWrite, addresses,
// SyscallConn) is the TCPConn's.
type Conn struct {
	*net.TCPConn
	rc syscall.RawConn
}

// Wrap returns c as a *Conn when it is a TCP connection with its socket,
// and c itself otherwise.
func Wrap(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	return &Conn{TCPConn: tc, rc: rc}
}

// Read reads as net.Conn's Read does: io.EOF at the end of the stream, a
// *net.OpError otherwise.
func (c *Conn) Read(p []byte) (int, error) {
	n, err := recv(c.rc, p)
	if err != nil && err != io.EOF {
		err = c.opError("read", err)
	}
	return n, err
}

// Write writes all of p, as net.Conn's Write does, unless an error stops
// it; it returns the bytes written.
func (c *Conn) Write(p []byte) (int, error) {
	n, err := send(c.rc, p)
	if err != nil {
		err = c.opError("write", err)
	}
	return n, err
}

// ioCall is one recv or send made inside a RawConn's Read or Write. A
// closure passed to the RawConn escapes to the heap with every variable it
// shares, and crypto/tls reads and writes its socket for every record, so
// the calls come from a pool, each with its callbacks bound once.
type ioCall struct {
	p      []byte
	n      int
	errno  error
	recvFn func(fd uintptr) bool
	sendFn func(fd uintptr) bool
}

var ioCalls = sync.Pool{New: func() any {
	c := new(ioCall)
	c.recvFn, c.sendFn = c.recv, c.send
	return c
}}

// getCall returns a call on p from the pool.
func getCall(p []byte) *ioCall {
	c := ioCalls.Get().(*ioCall)
	c.p = p
	return c
}

// done returns c's results and c to the pool.
func (c *ioCall) done() (int, error) {
	n, errno := c.n, c.errno
	c.p, c.n, c.errno = nil, 0, nil
	ioCalls.Put(c)
	return n, errno
}

// recv is a read's callback: one recvfrom into c.p (again on EINTR); it
// asks the poller to wait on EAGAIN.
func (c *ioCall) recv(fd uintptr) bool {
	for c.n, c.errno = Recv(int(fd), c.p); c.errno == syscall.EINTR; c.n, c.errno = Recv(int(fd), c.p) {
	}
	return c.errno != syscall.EAGAIN
}

// send is a write's callback: sendto until c.p is written or fails; it
// asks the poller to wait on EAGAIN, keeping what was written in c.n.
func (c *ioCall) send(fd uintptr) bool {
	for c.n < len(c.p) {
		m, e := Send(int(fd), c.p[c.n:])
		switch e {
		case nil:
			c.n += m
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			c.errno = e
			return true
		}
	}
	return true
}

// recv reads into p through rc: the bytes read, io.EOF at the end of the
// stream, or an error of the poller or of recvfrom.
func recv(rc syscall.RawConn, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c := getCall(p)
	err := rc.Read(c.recvFn)
	n, errno := c.done()
	switch {
	case err != nil:
		return 0, err
	case errno != nil:
		return 0, os.NewSyscallError("recvfrom", errno)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// send writes all of p through rc unless an error of the poller or of
// sendto stops it; it returns the bytes written.
func send(rc syscall.RawConn, p []byte) (int, error) {
	c := getCall(p)
	err := rc.Write(c.sendFn)
	n, errno := c.done()
	switch {
	case err != nil:
		return n, err
	case errno != nil:
		return n, os.NewSyscallError("sendto", errno)
	}
	return n, nil
}

// opError words err as the net package words its connections' errors. An
// error of the poller (a deadline, a closed connection) is unwrapped from
// the RawConn's own OpError first.
func (c *Conn) opError(op string, err error) error {
	if oe, ok := err.(*net.OpError); ok {
		err = oe.Err
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
