package server

import (
	"net"
	"net/netip"
	"testing"
)

func tcpListen(t *testing.T, network, addr string) *net.TCPListener {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("%s %s: %v", network, addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.(*net.TCPListener)
}

// TestTakeInherited: an inherited socket serves its exact address, or its
// port when both sides are wildcards, once; Uninherited closes the rest.
func TestTakeInherited(t *testing.T) {
	exact := tcpListen(t, "tcp4", "127.0.0.1:0")
	wild := tcpListen(t, "tcp", "[::]:0")
	left := tcpListen(t, "tcp4", "127.0.0.1:0")
	s := &Server{}
	s.Inherit([]*net.TCPListener{exact, wild, left})
	ap := func(ln *net.TCPListener, addr string) netip.AddrPort {
		return netip.AddrPortFrom(netip.MustParseAddr(addr), uint16(ln.Addr().(*net.TCPAddr).Port))
	}
	if got := s.takeInherited(ap(exact, "127.0.0.2")); got != nil {
		t.Error("another address took the socket")
	}
	if got := s.takeInherited(ap(exact, "127.0.0.1")); got != exact {
		t.Error("the exact address did not get its socket")
	}
	if got := s.takeInherited(ap(exact, "127.0.0.1")); got != nil {
		t.Error("a socket was handed out twice")
	}
	if got := s.takeInherited(ap(wild, "0.0.0.0")); got != wild {
		t.Error("listen *:port did not take the [::]:port socket")
	}
	if got := s.Uninherited(); len(got) != 1 || got[0].String() != left.Addr().String() {
		t.Errorf("Uninherited = %v, want %v", got, left.Addr())
	}
	if _, err := left.Accept(); err == nil {
		t.Error("an unused inherited socket is still open")
	}
}
