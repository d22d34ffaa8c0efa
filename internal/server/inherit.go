package server

import (
	"net"
	"net/netip"
)

// Inherit gives the server TCP sockets that are already bound and
// listening, as systemd's socket activation passes them. Apply uses one
// for a listen address instead of binding it: the same address, or the
// same port when both sides are wildcards (a `listen 80` takes a socket
// bound to [::]:80). Each socket serves one address. Call it before the
// first Apply.
func (s *Server) Inherit(lns []*net.TCPListener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inherited = append(s.inherited, lns...)
}

// takeInherited removes and returns the inherited socket for ap, or nil.
// s.mu is held.
func (s *Server) takeInherited(ap netip.AddrPort) *net.TCPListener {
	for i, ln := range s.inherited {
		got, err := netip.ParseAddrPort(ln.Addr().String())
		if err != nil || got.Port() != ap.Port() {
			continue
		}
		same := got.Addr().Unmap() == ap.Addr().Unmap()
		if same || (got.Addr().IsUnspecified() && ap.Addr().IsUnspecified()) {
			s.inherited = append(s.inherited[:i], s.inherited[i+1:]...)
			return ln
		}
	}
	return nil
}

// Uninherited closes the inherited sockets no listen address took and
// returns their addresses.
func (s *Server) Uninherited() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []net.Addr
	for _, ln := range s.inherited {
		out = append(out, ln.Addr())
		ln.Close()
	}
	s.inherited = nil
	return append(out, s.uninheritedUnix()...)
}
