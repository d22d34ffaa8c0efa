// Package dnstest runs a small authoritative DNS server on loopback for
// tests: it answers A, AAAA and SRV questions from records the test sets
// and changes while the server runs, over UDP and TCP on the same port.
package dnstest

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// Server is a running DNS server. Its methods are safe for concurrent use.
type Server struct {
	Addr string // "127.0.0.1:port", for UDP and TCP

	udp, tcp *dns.Server
	mu       sync.Mutex
	hosts    map[string][]netip.Addr
	srvs     map[string][]SRV
	ttl      uint32
	silent   bool // drop every question: a resolver that does not answer
	truncate atomic.Bool
	queries  atomic.Int64
	tcpSeen  atomic.Int64
}

// SRV is one record of an SRV answer.
type SRV struct {
	Target                 string
	Port, Priority, Weight uint16
}

// Start runs a server on 127.0.0.1 until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	var pc net.PacketConn
	var ln net.Listener
	var err error
	for range 50 { // a port free for both UDP and TCP
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: pc.LocalAddr().String(), hosts: map[string][]netip.Addr{}, srvs: map[string][]SRV{}, ttl: 1}
	s.udp = &dns.Server{PacketConn: pc, Handler: s}
	s.tcp = &dns.Server{Listener: ln, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, m *dns.Msg) {
		s.tcpSeen.Add(1)
		s.ServeDNS(w, m)
	})}
	started := make(chan struct{}, 2)
	s.udp.NotifyStartedFunc = func() { started <- struct{}{} }
	s.tcp.NotifyStartedFunc = func() { started <- struct{}{} }
	go s.udp.ActivateAndServe()
	go s.tcp.ActivateAndServe()
	<-started
	<-started
	t.Cleanup(func() {
		s.udp.Shutdown()
		s.tcp.Shutdown()
	})
	return s
}

// SetHost makes name answer with addrs (no addresses: the name does not exist).
func (s *Server) SetHost(name string, addrs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := dns.Fqdn(strings.ToLower(name))
	if len(addrs) == 0 {
		delete(s.hosts, k)
		return
	}
	s.hosts[k] = nil
	for _, a := range addrs {
		s.hosts[k] = append(s.hosts[k], netip.MustParseAddr(a))
	}
}

// SetSRV makes name answer SRV questions with records.
func (s *Server) SetSRV(name string, records ...SRV) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.srvs[dns.Fqdn(strings.ToLower(name))] = records
}

// SetTTL sets the TTL of every answer from now on (1s at start).
func (s *Server) SetTTL(ttl uint32) {
	s.mu.Lock()
	s.ttl = ttl
	s.mu.Unlock()
}

// SetSilent makes the server drop every question (true) or answer again.
func (s *Server) SetSilent(silent bool) {
	s.mu.Lock()
	s.silent = silent
	s.mu.Unlock()
}

// SetTruncate makes UDP answers come back empty with the TC bit set, so
// that a client must ask again over TCP.
func (s *Server) SetTruncate(on bool) { s.truncate.Store(on) }

// Queries returns how many questions the server received.
func (s *Server) Queries() int64 { return s.queries.Load() }

// TCPQueries returns how many questions came over TCP.
func (s *Server) TCPQueries() int64 { return s.tcpSeen.Load() }

// ServeDNS answers one message.
func (s *Server) ServeDNS(w dns.ResponseWriter, m *dns.Msg) {
	s.queries.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.silent || len(m.Question) != 1 {
		return
	}
	resp := new(dns.Msg)
	resp.SetReply(m)
	resp.Authoritative = true
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp && s.truncate.Load() {
		resp.Truncated = true
		w.WriteMsg(resp)
		return
	}
	q := m.Question[0]
	name := strings.ToLower(q.Name)
	hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: s.ttl}
	addrs, isHost := s.hosts[name]
	recs, isSRV := s.srvs[name]
	switch {
	case q.Qtype == dns.TypeSRV && isSRV:
		for _, r := range recs {
			h := hdr
			h.Rrtype = dns.TypeSRV
			resp.Answer = append(resp.Answer, &dns.SRV{Hdr: h, Priority: r.Priority, Weight: r.Weight, Port: r.Port, Target: dns.Fqdn(r.Target)})
		}
	case isHost:
		for _, a := range addrs {
			h := hdr
			switch {
			case q.Qtype == dns.TypeA && a.Is4():
				h.Rrtype = dns.TypeA
				resp.Answer = append(resp.Answer, &dns.A{Hdr: h, A: a.AsSlice()})
			case q.Qtype == dns.TypeAAAA && a.Is6():
				h.Rrtype = dns.TypeAAAA
				resp.Answer = append(resp.Answer, &dns.AAAA{Hdr: h, AAAA: a.AsSlice()})
			}
		}
	case !isSRV:
		resp.Rcode = dns.RcodeNameError
	}
	w.WriteMsg(resp)
}
