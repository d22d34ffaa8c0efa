package sockio

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Socket is a TCP connection that Dial made on a descriptor of its own,
// waited on in the runtime's poller through an os.File. Its reads and
// writes are Recv and Send, as Conn's are.
//
// It costs one system call less than the net package's dial (os.NewFile's
// fcntl in place of a getsockname and a getpeername: the remote address is
// the one dialled, the local one is asked of the kernel only when wanted)
// and none of the dialer's resolution and bookkeeping: about 5% of a
// WebSocket handshake's CPU on loopback. As nginx's connect, and unlike the
// net package's dial, it does not retry a connection that the kernel made
// to itself (a local port in the ephemeral range with nothing listening,
// dialled from that same port).
type Socket struct {
	f      *os.File
	rc     syscall.RawConn
	remote netip.AddrPort
	closed atomic.Bool
}

// DialOptions are the socket options Dial sets before it connects.
type DialOptions struct {
	NoDelay   bool // TCP_NODELAY
	KeepAlive bool // SO_KEEPALIVE, with the system's timings
	// Local, when valid, is the address to connect from (proxy_bind). With
	// port 0 the port is chosen at connect, as nginx does it
	// (IP_BIND_ADDRESS_NO_PORT): a source address and port then serve one
	// connection per peer address, not one in all.
	Local netip.AddrPort
	// Transparent allows a Local that is not this host's (IP_TRANSPARENT,
	// IPV6_TRANSPARENT); the kernel requires CAP_NET_ADMIN.
	Transparent bool
}

// Dial connects a new socket to ap, waiting until deadline at most (none
// when zero). Its errors are those of the net package's dial: a
// *net.OpError with Op "dial" around an *os.SyscallError of connect or
// socket, or os.ErrDeadlineExceeded.
func Dial(ap netip.AddrPort, deadline time.Time, o DialOptions) (*Socket, error) {
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	fail := func(err error) (*Socket, error) {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(ap), Err: err}
	}
	family := unix.AF_INET6
	if ap.Addr().Is4() {
		family = unix.AF_INET
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fail(os.NewSyscallError("socket", err))
	}
	if err := setOptions(fd, family, o); err != nil {
		unix.Close(fd)
		return fail(err)
	}
	// On loopback the kernel makes the connection within the first
	// connect; the second finds it made (EISCONN), with no wait to arm.
	e := connect(fd, ap)
	if e == syscall.EINPROGRESS || e == syscall.EINTR {
		e = connect(fd, ap)
	}
	switch e {
	case 0, syscall.EISCONN, syscall.EALREADY, syscall.EINPROGRESS, syscall.EINTR:
	default:
		unix.Close(fd)
		return fail(os.NewSyscallError("connect", e))
	}
	s := &Socket{f: os.NewFile(uintptr(fd), "tcp"), remote: ap}
	if s.rc, err = s.f.SyscallConn(); err != nil {
		s.f.Close()
		return fail(err)
	}
	if e != 0 && e != syscall.EISCONN {
		if err := s.awaitConnect(ap, deadline); err != nil {
			s.f.Close()
			return fail(err)
		}
	}
	return s, nil
}

// setOptions sets o on the socket fd of the address family, and binds it
// to o.Local if that is set.
func setOptions(fd, family int, o DialOptions) error {
	type opt struct {
		on               bool
		level, name, val int
	}
	transparent := opt{o.Transparent, unix.SOL_IP, unix.IP_TRANSPARENT, 1}
	if family == unix.AF_INET6 {
		transparent = opt{o.Transparent, unix.SOL_IPV6, unix.IPV6_TRANSPARENT, 1}
	}
	bind := o.Local.IsValid()
	for _, x := range []opt{
		{o.NoDelay, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1},
		{o.KeepAlive, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		transparent,
		{bind && o.Local.Port() == 0, unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1},
	} {
		if !x.on {
			continue
		}
		if err := unix.SetsockoptInt(fd, x.level, x.name, x.val); err != nil {
			return os.NewSyscallError("setsockopt", err)
		}
	}
	if !bind {
		return nil
	}
	if err := unix.Bind(fd, sockaddr(o.Local, family)); err != nil {
		return os.NewSyscallError("bind", err)
	}
	return nil
}

// sockaddr is ap as an address of the family (an IPv4 address is mapped
// for an IPv6 socket).
func sockaddr(ap netip.AddrPort, family int) unix.Sockaddr {
	if a := ap.Addr().Unmap(); family == unix.AF_INET && a.Is4() {
		return &unix.SockaddrInet4{Addr: a.As4(), Port: int(ap.Port())}
	}
	return &unix.SockaddrInet6{Addr: ap.Addr().As16(), Port: int(ap.Port())}
}

// awaitConnect waits until a connect under way has ended, by deadline at
// most (none when zero): each time the socket is writable, connect again
// says whether it has (EISCONN), is still under way or has failed.
func (s *Socket) awaitConnect(ap netip.AddrPort, deadline time.Time) error {
	if !deadline.IsZero() {
		s.f.SetWriteDeadline(deadline)
		defer s.f.SetWriteDeadline(time.Time{})
	}
	var cerr error
	err := s.rc.Write(func(fd uintptr) bool {
		switch e := connect(int(fd), ap); e {
		case syscall.EALREADY, syscall.EINPROGRESS, syscall.EINTR:
			return false
		case 0, syscall.EISCONN:
		default:
			cerr = os.NewSyscallError("connect", e)
		}
		return true
	})
	if err != nil {
		return err
	}
	return cerr
}

// connect is connect(2) of the socket fd to ap, whose address is not an
// IPv4-mapped one.
func connect(fd int, ap netip.AddrPort) syscall.Errno {
	port := ap.Port()
	if ap.Addr().Is4() {
		sa := syscall.RawSockaddrInet4{Family: syscall.AF_INET, Addr: ap.Addr().As4()}
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		p[0], p[1] = byte(port>>8), byte(port)
		_, _, e := syscall.RawSyscall(syscall.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa)), syscall.SizeofSockaddrInet4)
		return e
	}
	sa := syscall.RawSockaddrInet6{Family: syscall.AF_INET6, Addr: ap.Addr().As16()}
	p := (*[2]byte)(unsafe.Pointer(&sa.Port))
	p[0], p[1] = byte(port>>8), byte(port)
	_, _, e := syscall.RawSyscall(syscall.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa)), syscall.SizeofSockaddrInet6)
	return e
}

// Read reads as net.Conn's Read does: io.EOF at the end of the stream, a
// *net.OpError otherwise.
func (s *Socket) Read(p []byte) (int, error) {
	n, err := recv(s.rc, p)
	if err != nil && err != io.EOF {
		err = s.opError("read", err)
	}
	return n, err
}

// Write writes all of p, as net.Conn's Write does, unless an error stops
// it; it returns the bytes written.
func (s *Socket) Write(p []byte) (int, error) {
	n, err := send(s.rc, p)
	if err != nil {
		err = s.opError("write", err)
	}
	return n, err
}

// Close closes the connection; calls blocked in Read or Write return
// net.ErrClosed.
func (s *Socket) Close() error {
	if s.closed.Swap(true) {
		return s.opError("close", net.ErrClosed)
	}
	if err := s.f.Close(); err != nil {
		return s.opError("close", err)
	}
	return nil
}

// opError words err as the net package words its connections' errors. An
// error of the poller is unwrapped from the file's own error first; once
// the socket is closed, the error is net.ErrClosed.
func (s *Socket) opError(op string, err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	if s.closed.Load() {
		err = net.ErrClosed
	}
	return &net.OpError{Op: op, Net: "tcp", Source: s.LocalAddr(), Addr: s.RemoteAddr(), Err: err}
}

// CloseWrite shuts down the sending side (a FIN to the peer).
func (s *Socket) CloseWrite() error {
	var serr error
	err := s.rc.Control(func(fd uintptr) { serr = unix.Shutdown(int(fd), unix.SHUT_WR) })
	if err == nil && serr != nil {
		err = os.NewSyscallError("shutdown", serr)
	}
	if err != nil {
		return s.opError("shutdown", err)
	}
	return nil
}

// LocalAddr is the socket's own address, asked of the kernel (nil once
// closed, or if it cannot say).
func (s *Socket) LocalAddr() net.Addr {
	var sa unix.Sockaddr
	s.rc.Control(func(fd uintptr) { sa, _ = unix.Getsockname(int(fd)) })
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: sa.Addr[:], Port: sa.Port}
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: sa.Addr[:], Port: sa.Port}
	}
	return nil
}

// RemoteAddr is the address dialled.
func (s *Socket) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(s.remote) }

// SetDeadline sets the read and write deadlines, as net.Conn's does.
func (s *Socket) SetDeadline(t time.Time) error { return s.f.SetDeadline(t) }

// SetReadDeadline sets the read deadline, as net.Conn's does.
func (s *Socket) SetReadDeadline(t time.Time) error { return s.f.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline, as net.Conn's does.
func (s *Socket) SetWriteDeadline(t time.Time) error { return s.f.SetWriteDeadline(t) }

// SyscallConn is the socket's descriptor, for system calls of the caller's
// own that wait in the same poller.
func (s *Socket) SyscallConn() (syscall.RawConn, error) { return s.rc, nil }
