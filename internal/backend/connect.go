package backend

import (
	"net/netip"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// connectNow is the Dialer's Control for a loopback peer: it starts the
// connection itself, by a raw connect(2), before the net package's own.
//
// On loopback the kernel completes TCP's handshake within the connect
// call, though a non-blocking socket still says EINPROGRESS. The net
// package's connect that follows then finds the connection made (0 or
// EISCONN) and takes it at once: no wait for writability (a park of the
// goroutine and a poller round), no SO_ERROR query, and no write deadline
// for proxy_connect_timeout to set and lift. Should it find the
// connection still in progress (EALREADY) or refused, it waits or fails
// as it would have. The raw call also keeps the processor from being
// handed to another thread while the kernel works through the handshake.
// An error of the first connect is returned as the net package words it.
func connectNow(network, address string, rc syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return nil // the net package's connect reports it
	}
	c := connects.Get().(*connectCall)
	c.ap = ap
	cerr := rc.Control(c.fn)
	errno := c.errno
	c.errno = 0
	connects.Put(c)
	switch {
	case cerr != nil:
		return cerr
	case errno == 0, errno == syscall.EINPROGRESS, errno == syscall.EINTR:
		return nil
	}
	return os.NewSyscallError("connect", errno)
}

// connectCall is connectNow's Control callback and its state. A closure
// passed to Control escapes to the heap with what it shares, so the calls
// come from a pool, each with run bound once in fn.
type connectCall struct {
	ap    netip.AddrPort
	errno syscall.Errno
	fn    func(fd uintptr)
}

var connects = sync.Pool{New: func() any {
	c := new(connectCall)
	c.fn = c.run
	return c
}}

func (c *connectCall) run(fd uintptr) { c.errno = rawConnect(fd, c.ap) }

// rawConnect is connect(2) of the socket fd to ap.
func rawConnect(fd uintptr, ap netip.AddrPort) syscall.Errno {
	port := ap.Port()
	if a := ap.Addr().Unmap(); a.Is4() { // the net package makes an IPv4 socket for a mapped address
		sa := syscall.RawSockaddrInet4{Family: syscall.AF_INET, Addr: a.As4()}
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		p[0], p[1] = byte(port>>8), byte(port)
		_, _, e := syscall.RawSyscall(syscall.SYS_CONNECT, fd, uintptr(unsafe.Pointer(&sa)), syscall.SizeofSockaddrInet4)
		return e
	}
	sa := syscall.RawSockaddrInet6{Family: syscall.AF_INET6, Addr: ap.Addr().As16()}
	p := (*[2]byte)(unsafe.Pointer(&sa.Port))
	p[0], p[1] = byte(port>>8), byte(port)
	_, _, e := syscall.RawSyscall(syscall.SYS_CONNECT, fd, uintptr(unsafe.Pointer(&sa)), syscall.SizeofSockaddrInet6)
	return e
}

// loopback reports whether addr, a peer's "ip:port", is on the loopback
// interface, where connectNow applies.
func loopback(addr string) bool {
	ap, err := netip.ParseAddrPort(addr)
	return err == nil && ap.Addr().Unmap().IsLoopback() && ap.Addr().Zone() == ""
}
