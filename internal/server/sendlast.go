package server

import (
	"net"
	"os"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/internal/sockio"
)

// sendLast writes h, the last thing c's buffer sends before a tunnel takes
// the connection over (the 101), and leaves no write deadline on c: the
// tunnel arms its own only when a write blocks, so one that outlived the
// head would fail the tunnel's first write after send_timeout.
//
// On a plain socket with nothing buffered before h, h goes out in one
// non-blocking system call; a socket whose buffer takes it whole, as a new
// connection's empty one does, needs no send_timeout armed and lifted
// around it. What the socket does not take goes through the buffer under
// send_timeout, as any response.
func (c *conn) sendLast(h []byte) error {
	if c.tls != nil || c.rate > 0 || c.tcp == nil || c.c != net.Conn(c.tcp) || c.bw.Buffered() > 0 {
		c.bw.Write(h)
		return c.flushLast()
	}
	if c.armed { // an earlier response's send_timeout, expired or not
		c.c.SetWriteDeadline(time.Time{})
		c.armed = false
	}
	n, err := c.sendNow(h)
	if err != nil {
		c.sendFailed = true
		return err
	}
	if n < len(h) {
		c.bw.Write(h[n:]) // h may be c.bw's free space (see head): copy moves the rest to its start
		return c.flushLast()
	}
	return nil
}

// flushLast sends what c's buffer holds under send_timeout, then lifts it.
func (c *conn) flushLast() error {
	err := c.bw.Flush()
	c.c.SetWriteDeadline(time.Time{})
	c.armed = false
	return err
}

// sendNow writes what of p the socket takes at once, without waiting:
// a full socket buffer is not an error.
func (c *conn) sendNow(p []byte) (n int, err error) {
	rc, err := c.tcp.SyscallConn()
	if err != nil {
		return 0, err
	}
	werr := rc.Write(func(fd uintptr) bool {
		for len(p) > n {
			m, e := sockio.Send(int(fd), p[n:])
			switch e {
			case nil:
				n += m
			case syscall.EINTR:
			case syscall.EAGAIN:
				return true // full: the caller sends the rest
			default:
				err = os.NewSyscallError("write", e)
				return true
			}
		}
		return true
	})
	if err == nil {
		err = werr
	}
	return n, err
}
