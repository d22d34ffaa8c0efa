package server

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/internal/accesslog"
	"github.com/wsgate/wsgate/internal/acme"
	"github.com/wsgate/wsgate/internal/cluster"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/limit"
	"github.com/wsgate/wsgate/internal/status"
	"github.com/wsgate/wsgate/internal/tunnel"
	"github.com/wsgate/wsgate/internal/upstream"
)

// Server serves every listener of the current configuration. Apply swaps
// configurations; open connections keep the snapshot they started with for
// the request in flight and take the new one for the next request; tunnels
// are never touched by a reload. All methods are safe for concurrent use.
type Server struct {
	rt  atomic.Pointer[generation]
	log atomic.Pointer[errlog.Logger]

	mu        sync.Mutex
	listeners map[netip.AddrPort]*listener
	inherited []*net.TCPListener // socket activation: bound sockets for Apply to use (see Inherit)
	quic      map[netip.AddrPort]*quicListener
	// An upgrade's UDP sockets, held unread until StartQUIC closes
	// quicFree (see InheritQUIC); h3Held is set while this process
	// accepts no QUIC connection on them, or no longer does (Retire).
	inheritedQUIC map[netip.AddrPort]net.PacketConn
	quicFree      chan struct{}
	h3Held        atomic.Bool
	conns         map[*conn]struct{}
	tunnels       map[*tunnel.Tunnel]*tunnelInfo
	caps          captures // on-demand captures (capture.go)
	closing       bool
	stopping      atomic.Bool   // closing, readable without mu on the request path
	stop          chan struct{} // closed when the server stops: ends background loops
	halt          chan struct{} // closed by Close: ends what waits on a timer (limit_req delays)
	haltOnce      sync.Once
	handoff       chan *conn     // accepted connections for an idle serving goroutine (unbuffered)
	held          chan struct{}  // closed by Serve after HoldServing; nil: serve at once
	idleServers   atomic.Int32   // serving goroutines waiting on handoff
	wg            sync.WaitGroup // accept loops, connections, tunnels, background loops

	dyn     dynUpstreams                  // run-time server lists of the upstreams with a zone
	acme    *acme.Manager                 // ACME certificates, across reloads; nil under Check
	limits  *limit.Registry               // zones live as long as the process, across reloads
	cluster atomic.Pointer[cluster.Store] // cluster_store, shared by the sync zones
	otel    atomic.Pointer[otelExporter]  // otel_exporter; nil without one
	files   accesslog.Files               // access log files, kept open across reloads

	metrics    *status.Metrics
	meters     meterSet // per-location WebSocket counts, across reloads
	started    time.Time
	reloads    atomic.Int64
	lastReload atomic.Int64 // unix nanoseconds

	connID   atomic.Uint64
	active   atomic.Int64 // client and backend connections, nginx's count
	limit    atomic.Int64 // worker_connections x worker_processes
	Stats    Stats
	leaving  atomic.Int64 // tunnels asked to close by a rebalancer, still open
	limitLog atomic.Int64 // last "not enough" log, unix seconds

	inheritedUnix []*net.UnixListener // an upgrade's unix sockets (handover.go); under mu
}

// Stats are the counters stub_status shows; all atomics.
type Stats struct {
	Accepts, Handled, Requests atomic.Int64
	// Active counts client connections, as stub_status does: an open
	// WebSocket is one (its backend leg is not counted).
	Active           atomic.Int64
	Reading, Writing atomic.Int64
	Tunnels          atomic.Int64
}

// ConnCounts returns stub_status's active, reading, writing and waiting.
func (st *Stats) ConnCounts() (active, reading, writing, waiting int64) {
	active, reading, writing = st.Active.Load(), st.Reading.Load(), st.Writing.Load()
	return active, reading, writing, max(active-reading-writing, 0)
}

type listener struct {
	ln   net.Listener // a *net.TCPListener, or a *net.UnixListener for listen unix:
	addr netip.AddrPort
	done chan struct{}
}

// New returns a server with no listeners; log receives errors until a
// configuration names its own error logs.
func New(log *errlog.Logger) *Server {
	s := &Server{
		listeners: map[netip.AddrPort]*listener{},
		quic:      map[netip.AddrPort]*quicListener{},
		conns:     map[*conn]struct{}{},
		tunnels:   map[*tunnel.Tunnel]*tunnelInfo{},
		limits:    limit.NewRegistry(nil),
		stop:      make(chan struct{}),
		halt:      make(chan struct{}),
		handoff:   make(chan *conn),
		metrics:   status.NewMetrics(),
		started:   time.Now(),
	}
	s.log.Store(log)
	s.acme = s.newACME()
	s.metrics.WatchCluster(s.clusterState())
	s.wg.Add(1)
	go s.rebalanceLoop()
	return s
}

// Addrs returns the bound addresses (tests listen on port 0 through -g).
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []net.Addr
	for _, l := range s.listeners {
		out = append(out, l.ln.Addr())
	}
	return out
}

// HoldServing makes the listeners the next Apply opens wait for Serve
// before they accept: the process binds its privileged ports, then drops
// its privileges, and only then takes connections, so no request is ever
// served as the user it started as. Call it once, before the first Apply;
// a reload must not come between the two calls.
func (s *Server) HoldServing() { s.held = make(chan struct{}) }

// Serve lets the listeners held by HoldServing accept.
func (s *Server) Serve() {
	if s.held != nil && !isClosed(s.held) {
		close(s.held)
	}
}

// awaitServing waits until the server may accept connections; false if it
// stopped first.
func (s *Server) awaitServing() bool {
	if s.held == nil {
		return true
	}
	select {
	case <-s.held:
		return true
	case <-s.stop:
		return false
	}
}

func (s *Server) acceptLoop(l *listener) {
	defer s.wg.Done()
	defer close(l.done)
	if !s.awaitServing() {
		return
	}
	var delay time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and friends: back off as net/http does, and say so.
			if delay == 0 {
				delay = 5 * time.Millisecond
			} else if delay *= 2; delay > time.Second {
				delay = time.Second
			}
			s.log.Load().Printf(errlog.Crit, 0, "accept() failed (%v)", err)
			time.Sleep(delay)
			continue
		}
		delay = 0
		s.Stats.Accepts.Add(1)
		if s.active.Add(1) > s.limit.Load() {
			s.active.Add(-1)
			s.tooMany()
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
			c.Close()
			continue
		}
		s.Stats.Handled.Add(1)
		s.Stats.Active.Add(1)
		tc, _ := c.(*net.TCPConn) // nil on a unix socket
		cn := &conn{srv: s, c: c, tcp: tc, id: s.connID.Add(1), bind: l.addr}
		cn.started = time.Now()
		if !s.addConn(cn) {
			s.active.Add(-1)
			s.Stats.Active.Add(-1)
			c.Close()
			continue
		}
		s.serveConn(cn)
	}
}

// maxIdleServers bounds the serving goroutines kept waiting for a
// connection, and so the stack memory they hold (8 or 16 KiB each);
// idleServerTimeout ends one that no connection came to.
const (
	maxIdleServers    = 64
	idleServerTimeout = time.Second
)

// serveConn serves c on a goroutine that has already served one: serving
// a request runs deeper than a new goroutine's stack, the backend dial
// alone going a dozen frames into the net package, so a fresh goroutine
// per connection would grow its stack, copying it each time, two or three
// times per handshake. One whose connection has ended (most often handed
// to a tunnel) waits a while for the next instead, stack already grown; a
// new one starts only when none is waiting.
func (s *Server) serveConn(c *conn) {
	select {
	case s.handoff <- c:
	default:
		go s.serveConns(c)
	}
}

func (s *Server) serveConns(c *conn) {
	var idle *time.Timer // one per goroutine, re-armed at each wait
	for {
		c.serve()
		if s.idleServers.Add(1) > maxIdleServers {
			s.idleServers.Add(-1)
			return
		}
		if idle == nil {
			idle = time.NewTimer(idleServerTimeout)
		} else {
			idle.Reset(idleServerTimeout)
		}
		select {
		case c = <-s.handoff:
			s.idleServers.Add(-1)
			idle.Stop()
		case <-idle.C:
			s.idleServers.Add(-1)
			return
		case <-s.stop:
			s.idleServers.Add(-1)
			idle.Stop()
			return
		}
	}
}

// tooMany logs nginx's line at most once a second, so a flood cannot fill
// the disk.
func (s *Server) tooMany() {
	now := time.Now().Unix()
	if last := s.limitLog.Load(); last != now && s.limitLog.CompareAndSwap(last, now) {
		s.log.Load().Printf(errlog.Alert, 0, "%d worker_connections are not enough", s.limit.Load())
	}
}

// reserve takes one connection slot for a backend leg.
func (s *Server) reserve() bool {
	if s.active.Add(1) > s.limit.Load() {
		s.active.Add(-1)
		s.tooMany()
		return false
	}
	return true
}

func (s *Server) release(n int64) { s.active.Add(-n) }

// Active reports the connections counted against worker_connections:
// client connections and backend connections.
func (s *Server) Active() int64 { return s.active.Load() }

// ReopenLogs reopens every access log file (USR1); error logs are the
// command's to reopen.
func (s *Server) ReopenLogs() error { return s.files.ReopenAll() }

func (s *Server) removeConn(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// addTunnel registers t, whose handshake served generation started; it
// is false when the server is shutting down. A reload committed since
// that handshake has already run its drain pass, which could not see t:
// t is checked against the live generation here, under the lock that
// pass holds, and drained if its location, upstream or peer is gone.
func (s *Server) addTunnel(t *tunnel.Tunnel, ti *tunnelInfo, served *generation) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	ti.started = time.Now().UnixNano()
	s.tunnels[t] = ti
	s.wg.Add(1)
	s.Stats.Tunnels.Add(1)
	if cur := s.rt.Load(); cur != served && !ti.stillServed(cur) {
		drain(map[*tunnel.Tunnel]*tunnelInfo{t: ti}, tunnel.ReasonDrain, "location removed")
	}
	return true
}

func (s *Server) removeTunnel(t *tunnel.Tunnel) {
	s.mu.Lock()
	if ti := s.tunnels[t]; ti != nil && ti.rebalanced {
		s.leaving.Add(-1)
	}
	delete(s.tunnels, t)
	s.mu.Unlock()
	s.Stats.Tunnels.Add(-1)
	s.wg.Done()
}

// String names the server for logs.
func (s *Server) String() string { return fmt.Sprintf("wsgate(%d listeners)", len(s.Addrs())) }

// RecordReload counts a reload attempt for the metrics and the api.
func (s *Server) RecordReload(ok bool) {
	s.metrics.Reload(ok)
	if ok {
		s.reloads.Add(1)
		s.lastReload.Store(time.Now().UnixNano())
	}
}

// Snapshot reports the server's state for the status handlers.
func (s *Server) Snapshot() status.Snapshot {
	snap := status.Snapshot{Version: Version, PID: os.Getpid(), Started: s.started, Reloads: s.reloads.Load()}
	if n := s.lastReload.Load(); n != 0 {
		snap.LastReload = time.Unix(0, n)
	}
	c := &snap.Connections
	c.Active, c.Reading, c.Writing, c.Waiting = s.Stats.ConnCounts()
	c.Accepted, c.Handled, c.Requests = s.Stats.Accepts.Load(), s.Stats.Handled.Load(), s.Stats.Requests.Load()
	snap.Tunnels = s.Stats.Tunnels.Load()
	snap.Locations = s.MessageStats()
	if rt := s.rt.Load(); rt != nil && rt.cfg.HTTP != nil {
		seen := map[string]bool{}
		for _, cu := range rt.cfg.HTTP.Upstreams {
			if p := rt.pools[cu]; p != nil && !seen[cu.Name] {
				seen[cu.Name] = true
				snap.Upstreams = append(snap.Upstreams, upstreamSnapshot(cu.Name, p))
			}
		}
		for cu, p := range rt.pools {
			if !seen[cu.Name] {
				seen[cu.Name] = true
				snap.Upstreams = append(snap.Upstreams, upstreamSnapshot(cu.Name, p))
			}
		}
		snap.Resolvers = rt.dns.stats()
	}
	return snap
}

func upstreamSnapshot(name string, p *upstream.Upstream) status.Upstream {
	u := status.Upstream{Name: name}
	for _, peer := range p.Peers() {
		u.Peers = append(u.Peers, peer.State())
	}
	return u
}

// Check builds cfg's generation without binding anything, so that
// `wsgate -t` reports what only a start would find (unreadable
// certificates, log files that cannot be opened, a zone whose key
// changed), as nginx's -t does.
func Check(cfg *config.Config, log *errlog.Logger) error {
	s := &Server{limits: limit.NewRegistry(nil), stop: make(chan struct{})}
	s.log.Store(log)
	rt, err := buildGeneration(s, cfg, nil, log, s.limits.Begin(), &s.files)
	s.files.Abort()
	if err != nil {
		return err
	}
	rt.discard()
	return nil
}

// addConn registers a connection (or an HTTP/2 stream's) so that stops
// wait for it; false once the server is stopping.
func (s *Server) addConn(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

// closeQUIC stops the HTTP/3 servers at once (TERM); s.mu is held.
func (s *Server) closeQUIC() {
	for ap, q := range s.quic {
		go q.close()
		delete(s.quic, ap)
	}
}
