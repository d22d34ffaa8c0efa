package sockio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// dialListener dials a fresh loopback listener and returns both ends.
func dialListener(t *testing.T, o DialOptions) (*Socket, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, err := Dial(netip.MustParseAddrPort(ln.Addr().String()), time.Now().Add(5*time.Second), o)
	if err != nil {
		t.Fatal(err)
	}
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); peer.Close() })
	return s, peer
}

// sockopt reads an integer socket option of s.
func sockopt(t *testing.T, s *Socket, level, opt int) int {
	t.Helper()
	var v int
	var err error
	s.rc.Control(func(fd uintptr) { v, err = unix.GetsockoptInt(int(fd), level, opt) })
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestDialSocket: a dialled socket carries bytes both ways, larger than
// both socket buffers; its addresses are the connection's; CloseWrite
// ends the peer's stream and the peer's close ends ours; the options
// asked for are set, and only those.
func TestDialSocket(t *testing.T) {
	s, peer := dialListener(t, DialOptions{NoDelay: true})
	if got, want := s.RemoteAddr().String(), peer.LocalAddr().String(); got != want {
		t.Fatalf("RemoteAddr %s, want %s", got, want)
	}
	if got, want := s.LocalAddr().String(), peer.RemoteAddr().String(); got != want {
		t.Fatalf("LocalAddr %s, want %s", got, want)
	}
	if sockopt(t, s, unix.IPPROTO_TCP, unix.TCP_NODELAY) == 0 || sockopt(t, s, unix.SOL_SOCKET, unix.SO_KEEPALIVE) != 0 {
		t.Fatal("options: want TCP_NODELAY and no SO_KEEPALIVE")
	}
	want := bytes.Repeat([]byte("0123456789abcdef"), 1<<19) // 8 MiB
	done := make(chan error, 1)
	go func() {
		_, err := s.Write(want)
		if err == nil {
			err = s.CloseWrite()
		}
		done <- err
	}()
	got, err := io.ReadAll(peer)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("peer read %d bytes (%v), want %d", len(got), err, len(want))
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	peer.Write([]byte("back"))
	peer.Close()
	if got, err := io.ReadAll(s); err != nil || string(got) != "back" {
		t.Fatalf("read %q, %v; want \"back\" and the end of stream", got, err)
	}
	if n, err := s.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("read after the end: %d, %v", n, err)
	}
}

// TestDialOptions: without NoDelay Nagle stays on; KeepAlive turns
// SO_KEEPALIVE on.
func TestDialOptions(t *testing.T) {
	s, _ := dialListener(t, DialOptions{KeepAlive: true})
	if sockopt(t, s, unix.IPPROTO_TCP, unix.TCP_NODELAY) != 0 || sockopt(t, s, unix.SOL_SOCKET, unix.SO_KEEPALIVE) == 0 {
		t.Fatal("options: want no TCP_NODELAY and SO_KEEPALIVE")
	}
}

// TestSocketDeadlineAndClose: a read past its deadline is a timeout, as a
// net.Conn's; a read blocked when the socket closes, and any call after,
// fail with net.ErrClosed.
func TestSocketDeadlineAndClose(t *testing.T) {
	s, _ := dialListener(t, DialOptions{})
	s.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := s.Read(make([]byte, 1))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v, want a timeout", err)
	}
	s.SetReadDeadline(time.Time{})
	blocked := make(chan error, 1)
	go func() {
		_, err := s.Read(make([]byte, 1))
		blocked <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-blocked:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("blocked read: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a blocked read outlived Close")
	}
	if _, err := s.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after Close: %v, want net.ErrClosed", err)
	}
	if err := s.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close: %v, want net.ErrClosed", err)
	}
}

// TestDialRefused: a port nobody listens on is ECONNREFUSED from connect,
// worded as the net package's dial words it.
func TestDialRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	_, err = Dial(ap, time.Time{}, DialOptions{})
	var oe *net.OpError
	var se *os.SyscallError
	if !errors.As(err, &oe) || oe.Op != "dial" || !errors.As(err, &se) || se.Syscall != "connect" || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial to a closed port: %v, want dial's connect ECONNREFUSED", err)
	}
	if oe.Addr.String() != ap.String() {
		t.Fatalf("error names %v, want %v", oe.Addr, ap)
	}
}

// TestDialTimesOut: a connection the peer never completes (its accept
// queue is full, so the kernel drops the SYN) ends at the deadline.
func TestDialTimesOut(t *testing.T) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil { // room for one connection, never accepted
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(sa.(*unix.SockaddrInet4).Port))
	var fill []*Socket
	defer func() {
		for _, s := range fill {
			s.Close()
		}
	}()
	start := time.Now()
	for range 4 { // the queue takes one or two before it drops SYNs
		s, err := Dial(ap, time.Now().Add(300*time.Millisecond), DialOptions{})
		if err == nil {
			fill = append(fill, s)
			continue
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("dial to a full queue: %v, want a timeout", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("the dial took %v", d)
		}
		return
	}
	t.Fatalf("%d dials to a queue of one all connected", len(fill))
}

// TestDialFromLocal: with Local the connection leaves from that address.
// Without a port the port is chosen at connect (IP_BIND_ADDRESS_NO_PORT,
// as nginx), so that the address's ports are not used up one per
// connection whatever the peer; with a port, that port is used.
// Transparent sets IP_TRANSPARENT, which needs CAP_NET_ADMIN.
func TestDialFromLocal(t *testing.T) {
	from := netip.MustParseAddrPort("127.0.0.2:0")
	s, peer := dialListener(t, DialOptions{Local: from})
	if got := netip.MustParseAddrPort(peer.RemoteAddr().String()).Addr(); got != from.Addr() {
		t.Fatalf("the peer sees %v, want %v", got, from.Addr())
	}
	if sockopt(t, s, unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT) == 0 {
		t.Fatal("IP_BIND_ADDRESS_NO_PORT is off for a local address without a port")
	}

	ln, err := net.Listen("tcp", "127.0.0.3:0") // a free port to name
	if err != nil {
		t.Fatal(err)
	}
	port := netip.MustParseAddrPort(ln.Addr().String()).Port()
	ln.Close()
	from = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.3"), port)
	s, peer = dialListener(t, DialOptions{Local: from})
	if got := peer.RemoteAddr().String(); got != from.String() {
		t.Fatalf("the peer sees %s, want %s", got, from)
	}
	if sockopt(t, s, unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT) != 0 {
		t.Fatal("IP_BIND_ADDRESS_NO_PORT is on for a local address with a port")
	}

	ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, err = Dial(netip.MustParseAddrPort(ln.Addr().String()), time.Time{}, DialOptions{Local: netip.MustParseAddrPort("127.0.0.4:0"), Transparent: true})
	if err != nil {
		if !errors.Is(err, syscall.EPERM) {
			t.Fatalf("transparent: %v; want a connection, or EPERM without CAP_NET_ADMIN", err)
		}
		return
	}
	defer s.Close()
	if sockopt(t, s, unix.SOL_IP, unix.IP_TRANSPARENT) == 0 {
		t.Fatal("IP_TRANSPARENT is off")
	}
}
