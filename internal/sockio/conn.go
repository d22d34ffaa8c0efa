package sockio

import (
	"io"
	"net"
	"os"
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

// recv reads into p through rc: the bytes read, io.EOF at the end of the
// stream, or an error of the poller or of recvfrom.
func recv(rc syscall.RawConn, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var errno error
	err := rc.Read(func(fd uintptr) bool {
		for n, errno = Recv(int(fd), p); errno == syscall.EINTR; n, errno = Recv(int(fd), p) {
		}
		return errno != syscall.EAGAIN
	})
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
	var n int
	var errno error
	err := rc.Write(func(fd uintptr) bool {
		for n < len(p) {
			m, e := Send(int(fd), p[n:])
			switch e {
			case nil:
				n += m
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false
			default:
				errno = e
				return true
			}
		}
		return true
	})
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
