package server

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"syscall"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/internal/errlog"
)

// HTTP/3 runs on a UDP socket per `listen ... quic` address, with
// quic-go. Streams go through the same bridge as HTTP/2; a WebSocket over
// HTTP/3 (RFC 9220: CONNECT with :protocol websocket, which quic-go always
// advertises) becomes a GET with Upgrade to the backend, and once upgraded
// its stream is taken over from quic-go (http3.HTTPStreamer) and relayed
// on directly (h3Conn): the handler returns, and quic-go keeps serving the
// connection, whose streams it accepts until it closes.

// quicListener is one UDP socket and the HTTP/3 server on it. A socket
// inherited from the old process of a binary upgrade is held, not read,
// until start (see StartQUIC): ln is nil until then.
type quicListener struct {
	addr netip.AddrPort
	pc   net.PacketConn
	tr   *quic.Transport
	tls  *tls.Config
	qcfg *quic.Config
	ln   *quic.EarlyListener
	h3   *http3.Server
	done chan struct{}
	shut chan struct{} // closed when a graceful shutdown has ended (retireQUIC)
}

// quicBinds are the addresses with `listen ... quic` in rt.
func (rt *generation) quicBinds() map[netip.AddrPort]bool {
	out := map[netip.AddrPort]bool{}
	if rt.cfg.HTTP == nil {
		return out
	}
	for _, srv := range rt.cfg.HTTP.Servers {
		for _, ls := range srv.Listens {
			if ls.QUIC && srv.Loc.Conf.HTTP3 {
				out[ls.AddrPort] = true
			}
		}
	}
	return out
}

// quicRetry reports whether a server on addr asks for quic_retry.
func (rt *generation) quicRetry(addr netip.AddrPort) bool {
	for _, srv := range rt.cfg.HTTP.Servers {
		for _, ls := range srv.Listens {
			if ls.QUIC && ls.AddrPort == addr && srv.Loc.Conf.QUICRetry {
				return true
			}
		}
	}
	return false
}

// listenQUIC opens the UDP socket, or takes the one inherited from an
// upgrade's old process, and starts the HTTP/3 server; an inherited socket
// waits for StartQUIC. The TLS settings are taken from the live snapshot
// at every handshake, so a reload's certificates apply at once; s.mu is
// held.
func (s *Server) listenQUIC(addr netip.AddrPort, rt *generation) (*quicListener, error) {
	pc, held := s.takeInheritedQUIC(addr)
	if pc == nil {
		var err error
		if pc, err = bindUDP(addr); err != nil {
			return nil, err
		}
	}
	l := s.newQUIC(addr, rt, pc)
	if held {
		return l, nil
	}
	if err := l.start(s); err != nil {
		pc.Close()
		return nil, err
	}
	return l, nil
}

func bindUDP(addr netip.AddrPort) (net.PacketConn, error) {
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	return lc.ListenPacket(context.Background(), "udp", addr.String())
}

// newQUIC prepares the HTTP/3 server on pc without reading from it.
func (s *Server) newQUIC(addr netip.AddrPort, rt *generation, pc net.PacketConn) *quicListener {
	l := &quicListener{addr: addr, pc: pc, done: make(chan struct{})}
	l.tr = &quic.Transport{Conn: pc, VerifySourceAddress: func(net.Addr) bool {
		if cur := s.rt.Load(); cur != nil {
			return cur.quicRetry(addr)
		}
		return rt.quicRetry(addr)
	}}
	l.tls = &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			cur := s.rt.Load()
			v := cur.vhosts[addr]
			if v == nil {
				return nil, errNoServer
			}
			srv, _ := v.find(hello.ServerName)
			tc := cur.tlsServers[srv]
			if tc == nil {
				tc = cur.tlsServers[v.def]
			}
			if tc == nil {
				return nil, errNoServer
			}
			return cur.h3TLS(tc.TLS()), nil
		},
		NextProtos: []string{http3.NextProtoH3},
	}
	l.qcfg = &quic.Config{Allow0RTT: rt.earlyData(addr)}
	l.h3 = &http3.Server{ConnContext: withH3SSL, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws := r.Method == "CONNECT" && r.Proto == "websocket"
		remote, _ := netip.ParseAddrPort(r.RemoteAddr)
		s.serveStream(w, r, ws, "HTTP/3.0", addr, s.rt.Load().h3SSLInfo(r.Context(), addr, r.TLS), net.UDPAddrFromAddrPort(addr), net.UDPAddrFromAddrPort(remote))
	})}
	return l
}

// start reads the socket and accepts QUIC connections; s.mu is held.
func (l *quicListener) start(s *Server) error {
	ln, err := l.tr.ListenEarly(l.tls, l.qcfg)
	if err != nil {
		return err
	}
	l.ln = ln
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(l.done)
		err := l.h3.ServeListener(&countingListener{EarlyListener: ln, srv: s})
		if err != nil && err != http.ErrServerClosed && err != quic.ErrServerClosed {
			s.log.Load().Printf(errlog.Crit, 0, "HTTP/3 on %s: %v", l.addr, err)
		}
	}()
	return nil
}

// close stops the server and its connections at once and closes the
// socket (this process's descriptor: an upgrade's new process may hold the
// same socket).
func (l *quicListener) close() {
	if l.ln == nil {
		l.pc.Close()
		return
	}
	l.h3.Close()
	l.tr.Close()
	l.pc.Close()
	<-l.done
}

// h3TLS is tc with HTTP/3's ALPN; cached per certificate set so that
// handshakes do not clone configs.
func (rt *generation) h3TLS(c *tls.Config) *tls.Config {
	rt.h3.mu.Lock()
	defer rt.h3.mu.Unlock()
	if h, ok := rt.h3.tls[c]; ok {
		return h
	}
	h := c.Clone()
	h.NextProtos = []string{http3.NextProtoH3}
	h.MinVersion = tls.VersionTLS13
	if rt.h3.tls == nil {
		rt.h3.tls = map[*tls.Config]*tls.Config{}
	}
	rt.h3.tls[c] = h
	return h
}

// countingListener counts QUIC connections as nginx counts connections,
// against worker_connections and in stub_status.
type countingListener struct {
	*quic.EarlyListener
	srv *Server
}

func (l *countingListener) Accept(ctx context.Context) (*quic.Conn, error) {
	if !l.srv.awaitServing() {
		return nil, quic.ErrServerClosed
	}
	for {
		c, err := l.EarlyListener.Accept(ctx)
		if err != nil {
			return nil, err
		}
		s := l.srv
		s.Stats.Accepts.Add(1)
		if s.active.Add(1) > s.limit.Load() {
			s.active.Add(-1)
			s.tooMany()
			c.CloseWithError(0x0101, "worker_connections are not enough") // H3_EXCESSIVE_LOAD-like
			continue
		}
		s.Stats.Handled.Add(1)
		s.Stats.Active.Add(1)
		// Released when the connection ends, without a goroutine
		// waiting for it meanwhile.
		context.AfterFunc(c.Context(), func() {
			s.active.Add(-1)
			s.Stats.Active.Add(-1)
		})
		return c, nil
	}
}

// h3Cache holds a generation's HTTP/3 TLS configurations, made on first
// use; a generation that only swaps an upstream's pool shares it.
type h3Cache struct {
	mu  sync.Mutex
	tls map[*tls.Config]*tls.Config
}
