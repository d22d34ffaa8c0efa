package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/internal/accesslog"
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
	rt  atomic.Pointer[runtime]
	log atomic.Pointer[errlog.Logger]

	mu          sync.Mutex
	listeners   map[netip.AddrPort]*listener
	quic        map[netip.AddrPort]*quicListener
	conns       map[*conn]struct{}
	tunnels     map[*tunnel.Tunnel]*tunnelInfo
	closing     bool
	stopping    atomic.Bool    // closing, readable without mu on the request path
	stop        chan struct{}  // closed when the server stops: ends background loops
	handoff     chan *conn     // accepted connections for an idle serving goroutine (unbuffered)
	idleServers atomic.Int32   // serving goroutines waiting on handoff
	wg          sync.WaitGroup // accept loops, connections, tunnels, background loops

	limits *limit.Registry // zones live as long as the process, across reloads
	files  accesslog.Files // access log files, kept open across reloads

	metrics    *status.Metrics
	started    time.Time
	reloads    atomic.Int64
	lastReload atomic.Int64 // unix nanoseconds

	connID   atomic.Uint64
	active   atomic.Int64 // client and backend connections, nginx's count
	limit    atomic.Int64 // worker_connections x worker_processes
	Stats    Stats
	limitLog atomic.Int64 // last "not enough" log, unix seconds
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
	ln   *net.TCPListener
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
		handoff:   make(chan *conn),
		metrics:   status.NewMetrics(),
		started:   time.Now(),
	}
	s.log.Store(log)
	s.wg.Add(1)
	go s.rebalanceLoop()
	return s
}

// Apply builds cfg beside the running snapshot and switches to it. Nothing
// changes when any step fails (a listener cannot be bound, a log cannot be
// opened): the old configuration keeps serving.
func (s *Server) Apply(cfg *config.Config, log *errlog.Logger) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return errors.New("server is shutting down")
	}
	prev := s.rt.Load()
	lb := s.limits.Begin()
	rt, err := buildRuntime(s, cfg, prev, log, lb, &s.files)
	if err != nil {
		s.files.Abort()
		return err
	}
	// Bind what is new first; on any failure close only what we opened.
	want := map[netip.AddrPort]config.Listen{}
	for _, ls := range rt.binds {
		want[ls.AddrPort] = ls
	}
	var opened []*listener
	for ap, ls := range want {
		if _, ok := s.listeners[ap]; ok {
			continue
		}
		l, err := listen(ls)
		if err != nil {
			for _, o := range opened {
				o.ln.Close()
			}
			rt.close()
			s.files.Abort()
			return &config.ListenError{Listen: ls, Err: err}
		}
		opened = append(opened, l)
	}
	// QUIC sockets: open the new ones (the server reads the snapshot at
	// each handshake, so they may start before it is published).
	wantQUIC := rt.quicBinds()
	var openedQUIC []*quicListener
	for ap := range wantQUIC {
		if _, ok := s.quic[ap]; ok {
			continue
		}
		ql, err := s.listenQUIC(ap, rt)
		if err != nil {
			for _, o := range opened {
				o.ln.Close()
			}
			for _, q := range openedQUIC {
				q.close()
			}
			rt.close()
			s.files.Abort()
			return &config.ListenError{Listen: config.Listen{Addr: ap.String(), AddrPort: ap, File: cfg.File}, Err: err}
		}
		openedQUIC = append(openedQUIC, ql)
	}
	for ap, q := range s.quic {
		if !wantQUIC[ap] {
			q.close()
			delete(s.quic, ap)
		}
	}
	for _, q := range openedQUIC {
		s.quic[q.addr] = q
	}
	for ap, l := range s.listeners {
		if _, ok := want[ap]; !ok {
			l.ln.Close()
			<-l.done
			delete(s.listeners, ap)
		}
	}
	n := int64(cfg.WorkerConnections) * int64(max(cfg.WorkerProcesses, 1))
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil && int64(rl.Cur) < n+32 {
		// A connection wsgate cannot open a descriptor for would fail
		// anyway: cap the limit so it fails cleanly, at accept.
		log.Printf(errlog.Warn, 0, "%d worker_connections exceed open file resource limit: %d, using %d", n, rl.Cur, int64(rl.Cur)-32)
		n = max(int64(rl.Cur)-32, 1)
	}
	s.limit.Store(n)
	s.log.Store(log)
	lb.Commit()
	s.rt.Store(rt)
	if err := s.files.Commit(); err != nil {
		log.Printf(errlog.Alert, 0, "closing access logs: %v", err)
	}
	// Accept only once the snapshot and the connection limit are live: a
	// connection must never see a server without a configuration.
	for _, l := range opened {
		s.listeners[l.addr] = l
		s.wg.Add(1)
		go s.acceptLoop(l)
	}
	if prev != nil {
		closeUnused(prev, rt)
		prev.close()
	}
	// Tunnels whose server, location, upstream or peer the new
	// configuration removed are drained; all others are not touched.
	gone := map[*tunnel.Tunnel]*tunnelInfo{}
	for t, ti := range s.tunnels {
		if !ti.stillServed(rt) {
			gone[t] = ti
		}
	}
	if len(gone) > 0 {
		log.Printf(errlog.Notice, 0, "draining %d WebSocket tunnels whose location, upstream or peer was removed", len(gone))
		drain(gone, "location removed")
	}
	return nil
}

// closeUnused stops the upstream pools (and their health checks) that the
// new snapshot did not take over by name.
func closeUnused(prev, next *runtime) {
	kept := map[string]bool{}
	for cu := range next.pools {
		kept[cu.Name] = true
	}
	for cu, p := range prev.pools {
		if !kept[cu.Name] {
			p.Close()
		}
	}
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

func (s *Server) acceptLoop(l *listener) {
	defer s.wg.Done()
	defer close(l.done)
	var delay time.Duration
	for {
		c, err := l.ln.AcceptTCP()
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
			c.SetLinger(0)
			c.Close()
			continue
		}
		s.Stats.Handled.Add(1)
		s.Stats.Active.Add(1)
		cn := &conn{srv: s, c: c, tcp: c, id: s.connID.Add(1), bind: l.addr}
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

func (s *Server) addTunnel(t *tunnel.Tunnel, ti *tunnelInfo) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.tunnels[t] = ti
	s.wg.Add(1)
	s.Stats.Tunnels.Add(1)
	return true
}

func (s *Server) removeTunnel(t *tunnel.Tunnel) {
	s.mu.Lock()
	delete(s.tunnels, t)
	s.mu.Unlock()
	s.Stats.Tunnels.Add(-1)
	s.wg.Done()
}

// Shutdown stops gracefully (QUIT): it closes the listeners, lets requests
// in flight finish, closes idle keep-alive connections, sends close 1001 on
// every tunnel and waits for all of it until ctx ends; then it closes what
// is left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.stopLoops()
	s.closing = true
	for ap, q := range s.quic {
		// GOAWAY, then wait for the streams: tunnels over HTTP/3 drain
		// with their close frames like the others.
		go func() {
			q.h3.Shutdown(ctx)
			q.close()
		}()
		delete(s.quic, ap)
	}
	for ap, l := range s.listeners {
		l.ln.Close()
		delete(s.listeners, ap)
	}
	tunnels := make(map[*tunnel.Tunnel]*tunnelInfo, len(s.tunnels))
	for t, ti := range s.tunnels {
		tunnels[t] = ti
	}
	for c := range s.conns {
		c.closeIfIdle()
	}
	s.mu.Unlock()
	drain(tunnels, "going away")
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	// Connections that were mid-request become idle later: poll them.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			s.closeRuntime()
			return nil
		case <-ctx.Done():
			s.Close()
			<-done
			return ctx.Err()
		case <-tick.C:
			s.mu.Lock()
			for c := range s.conns {
				c.closeIfIdle()
			}
			s.mu.Unlock()
		}
	}
}

// Close stops at once (TERM): listeners, connections and tunnels are
// closed; tunnels still get a close frame where one can be written without
// waiting.
func (s *Server) Close() error {
	s.mu.Lock()
	s.stopLoops()
	s.closing = true
	s.closeQUIC()
	for ap, l := range s.listeners {
		l.ln.Close()
		delete(s.listeners, ap)
	}
	for c := range s.conns {
		c.c.Close()
	}
	tunnels := make([]*tunnel.Tunnel, 0, len(s.tunnels))
	for t := range s.tunnels {
		tunnels = append(tunnels, t)
	}
	s.mu.Unlock()
	for _, t := range tunnels {
		go t.Shutdown(1001, "going away")
	}
	s.wg.Wait()
	s.closeRuntime()
	return nil
}

func (s *Server) closeRuntime() {
	s.files.CloseAll()
	if rt := s.rt.Load(); rt != nil {
		for _, p := range rt.pools {
			p.Close()
		}
		rt.close()
	}
}

// String names the server for logs.
func (s *Server) String() string { return fmt.Sprintf("wsgate(%d listeners)", len(s.Addrs())) }

// stopLoops ends the background loops once and marks the server as
// stopping; s.mu is held.
func (s *Server) stopLoops() {
	if !s.closing {
		close(s.stop)
	}
	s.stopping.Store(true)
}

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

// Check builds cfg's runtime without binding anything, so that `wsgate -t`
// reports what only a start would find (unreadable certificates, log files
// that cannot be opened, a zone whose key changed), as nginx's -t does.
func Check(cfg *config.Config, log *errlog.Logger) error {
	s := &Server{limits: limit.NewRegistry(nil), stop: make(chan struct{})}
	s.log.Store(log)
	rt, err := buildRuntime(s, cfg, nil, log, s.limits.Begin(), &s.files)
	s.files.Abort()
	if err != nil {
		return err
	}
	rt.close()
	for _, p := range rt.pools {
		p.Close()
	}
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
