package server

import (
	"context"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/internal/config"
)

// listen binds one TCP listener with the socket options of its listen
// directives (merged across servers at load), or a unix socket for
// `listen unix:`.
func listen(ls config.Listen) (*listener, error) {
	if ls.Unix != "" {
		return listenUnix(ls)
	}
	lc := net.ListenConfig{
		// Keepalive is off unless asked for, as nginx (Go's default is
		// 15 s); so_keepalive is set on the listening socket and accepted
		// sockets inherit it.
		KeepAlive: -1,
		Control: func(network, address string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) { serr = setListenOpts(int(fd), ls) })
			if err != nil {
				return err
			}
			return serr
		},
	}
	// Plain TCP, as nginx listens. Go 1.24 made listeners MPTCP by
	// default, which puts every accept of an ordinary TCP client through
	// the kernel's MPTCP fallback path.
	lc.SetMultipathTCP(false)
	network := "tcp4"
	if ls.AddrPort.Addr().Is6() && !ls.AddrPort.Addr().Is4In6() {
		network = "tcp6"
	}
	ln, err := lc.Listen(context.Background(), network, ls.AddrPort.String())
	if err != nil {
		return nil, err
	}
	tl := ln.(*net.TCPListener)
	if ls.Backlog != 0 {
		// Linux lets listen() be called again to change the backlog.
		if err := setBacklog(tl, ls.Backlog); err != nil {
			tl.Close()
			return nil, err
		}
	}
	return &listener{ln: tl, addr: ls.AddrPort, done: make(chan struct{})}, nil
}

// setListenOpts applies a listen directive's options to the socket before
// bind(2).
func setListenOpts(fd int, ls config.Listen) error {
	o := ls.SockOpts
	set := func(level, opt, v int) error { return unix.SetsockoptInt(fd, level, opt, v) }
	opts := []struct {
		on         bool
		level, opt int
		v          int
	}{
		{true, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1},
		{o.ReusePort, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1},
		{o.RcvBuf > 0, unix.SOL_SOCKET, unix.SO_RCVBUF, o.RcvBuf},
		{o.SndBuf > 0, unix.SOL_SOCKET, unix.SO_SNDBUF, o.SndBuf},
		{o.FastOpen > 0, unix.IPPROTO_TCP, unix.TCP_FASTOPEN, o.FastOpen},
		{o.Deferred, unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, max(int(o.DeferWait/time.Second), 1)},
		{ls.AddrPort.Addr().Is6() && !ls.AddrPort.Addr().Is4In6(), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, boolInt(o.IPv6Only)},
		{o.KeepAlive.Set, unix.SOL_SOCKET, unix.SO_KEEPALIVE, boolInt(o.KeepAlive.On)},
		{o.KeepAlive.Idle > 0, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, int(o.KeepAlive.Idle / time.Second)},
		{o.KeepAlive.Intvl > 0, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, int(o.KeepAlive.Intvl / time.Second)},
		{o.KeepAlive.Count > 0, unix.IPPROTO_TCP, unix.TCP_KEEPCNT, o.KeepAlive.Count},
	}
	for _, s := range opts {
		if s.on {
			if err := set(s.level, s.opt, s.v); err != nil {
				return err
			}
		}
	}
	return nil
}

func setBacklog(tl syscall.Conn, n int) error {
	rc, err := tl.SyscallConn()
	if err != nil {
		return err
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) { lerr = unix.Listen(int(fd), n) }); err != nil {
		return err
	}
	return lerr
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// listenUnix binds a unix socket at ls.Unix and makes it writable by
// everyone (0666), as nginx does, so that clients running as other users
// can connect; the folder's permissions decide who can reach it. Closing
// the listener removes the file (on QUIT, on stop, or when a reload drops
// the listen); a reload that keeps the path keeps the socket, so no
// client is refused meanwhile. A file already at the path (a socket left
// by a crash) makes the bind fail, as in nginx.
func listenUnix(ls config.Listen) (*listener, error) {
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = setUnixOpts(int(fd), ls.SockOpts) })
		if err != nil {
			return err
		}
		return serr
	}}
	ln, err := lc.Listen(context.Background(), "unix", ls.Unix)
	if err != nil {
		return nil, err
	}
	ul := ln.(*net.UnixListener)
	if err := os.Chmod(ls.Unix, 0o666); err != nil {
		ul.Close()
		return nil, err
	}
	if ls.Backlog != 0 {
		if err := setBacklog(ul, ls.Backlog); err != nil {
			ul.Close()
			return nil, err
		}
	}
	return &listener{ln: ul, addr: ls.AddrPort, done: make(chan struct{})}, nil
}

// setUnixOpts applies rcvbuf= and sndbuf= to a unix socket before bind(2).
func setUnixOpts(fd int, o config.SockOpts) error {
	if o.RcvBuf > 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, o.RcvBuf); err != nil {
			return err
		}
	}
	if o.SndBuf > 0 {
		return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, o.SndBuf)
	}
	return nil
}

// vhostAddr is the address c's server blocks are looked up by: its local
// address, or for a unix socket client (which has none) the listen's key.
func (c *conn) vhostAddr() netip.AddrPort {
	if c.local.IsValid() {
		return c.local
	}
	return c.bind
}
