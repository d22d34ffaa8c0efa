package server

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/errlog"
)

// HTTP/3 across a binary upgrade. A QUIC connection's state cannot leave
// its process, and a UDP socket's datagrams go to whichever process reads
// it (to the newest socket, were the new process to bind one beside it).
// So the old process hands its UDP sockets to the new one with its TCP
// listeners, stops accepting QUIC connections and goes on reading for the
// ones it has, as it keeps its HTTP/2 connections; the new process holds
// the sockets unread until the old one is done with them (StartQUIC).
// Meanwhile neither accepts a new QUIC connection: clients use TCP, and
// responses leave out an Alt-Svc header that names h3.

// InheritQUIC hands Apply the UDP sockets of an upgrade's old process, by
// the listen address they serve: Apply holds them unread until StartQUIC.
func (s *Server) InheritQUIC(pcs map[netip.AddrPort]net.PacketConn) {
	if len(pcs) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inheritedQUIC == nil {
		s.inheritedQUIC = map[netip.AddrPort]net.PacketConn{}
	}
	for ap, pc := range pcs {
		s.inheritedQUIC[ap] = pc
	}
	if s.quicFree == nil {
		s.quicFree = make(chan struct{})
		s.h3Held.Store(true)
	}
}

// takeInheritedQUIC removes and returns the inherited UDP socket for ap;
// held reports whether it must wait for StartQUIC. s.mu is held.
func (s *Server) takeInheritedQUIC(ap netip.AddrPort) (pc net.PacketConn, held bool) {
	pc, ok := s.inheritedQUIC[ap]
	if !ok {
		return nil, false
	}
	delete(s.inheritedQUIC, ap)
	return pc, true
}

// StartQUIC starts the HTTP/3 servers on the sockets held since
// InheritQUIC, once the old process no longer reads them (it has exited,
// or its drain period is over), and closes the inherited sockets that no
// listen took. It does nothing when nothing is held, or a second time.
func (s *Server) StartQUIC() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.quicFree == nil || isClosed(s.quicFree) {
		return
	}
	close(s.quicFree)
	for _, pc := range s.inheritedQUIC {
		pc.Close()
	}
	s.inheritedQUIC = nil
	if s.stopping.Load() {
		return // retiring or stopping: the sockets stay unread
	}
	n := 0
	for _, q := range s.quic {
		if q.ln != nil {
			continue
		}
		if err := q.start(s); err != nil {
			s.log.Load().Printf(errlog.Crit, 0, "HTTP/3 on %s: %v", q.addr, err)
			continue
		}
		n++
	}
	s.h3Held.Store(false)
	if n > 0 {
		s.log.Load().Printf(errlog.Notice, 0, "HTTP/3: accepting QUIC connections on %d sockets the old process has left", n)
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// retireQUIC stops accepting QUIC connections, as Retire begins: the
// connections open go on (with GOAWAY, so their clients send no new
// request) until closeRetiredQUIC. It returns the listeners and the
// channel that StartQUIC closes, nil unless a socket is held unread; s.mu
// is held.
func (s *Server) retireQUIC() ([]*quicListener, chan struct{}) {
	s.h3Held.Store(true)
	var out []*quicListener
	var free chan struct{}
	for ap, q := range s.quic {
		delete(s.quic, ap)
		out = append(out, q)
		if q.ln == nil {
			free = s.quicFree
			continue
		}
		q.ln.Close() // handshakes in flight are refused; accepted connections stay
		q.shut = make(chan struct{})
		go func() {
			defer close(q.shut)
			q.h3.Shutdown(context.Background())
		}()
	}
	return out, free
}

// quicLinger is how long the QUIC connections left once Retire is done may
// take to close themselves, as their clients do after GOAWAY, before
// closeRetiredQUIC closes them: the last stream data (a close frame)
// reaches the client then, as closing the connection drops what is not
// yet acknowledged.
const quicLinger = 3 * time.Second

// closeRetiredQUIC closes the QUIC connections left once Retire has waited
// for their streams, and this process's descriptors of the sockets, which
// the new process reads from then on. A socket this process held unread
// (it was itself an upgrade's new process) is released only once the
// process before it is done with it: free is closed.
func closeRetiredQUIC(qs []*quicListener, free chan struct{}) {
	if free != nil {
		<-free
	}
	linger, cancel := context.WithTimeout(context.Background(), quicLinger)
	defer cancel()
	for _, q := range qs {
		if q.shut != nil {
			select {
			case <-q.shut:
			case <-linger.Done():
			}
		}
		q.close()
	}
}

// quicFiles returns a duplicate of every UDP socket served with HTTP/3,
// for an upgrade's new process; s.mu is held.
func (s *Server) quicFiles() ([]ListenerFile, error) {
	var out []ListenerFile
	for ap, q := range s.quic {
		uc, ok := q.pc.(*net.UDPConn)
		if !ok {
			continue
		}
		f, err := uc.File()
		if err != nil {
			for _, o := range out {
				o.File.Close()
			}
			return nil, err
		}
		out = append(out, ListenerFile{Addr: ap.String(), UDP: true, File: f})
	}
	return out, nil
}

// advertisesH3 reports whether a response header field is an Alt-Svc that
// names HTTP/3: left out while this process accepts no QUIC connection
// (see InheritQUIC), as a client would try it and fail.
func advertisesH3(name, value string) bool {
	return strings.EqualFold(name, "Alt-Svc") && strings.Contains(strings.ToLower(value), "h3")
}
