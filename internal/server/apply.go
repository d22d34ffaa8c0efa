package server

import (
	"errors"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/internal/cluster"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/limit"
	"github.com/wsgate/wsgate/internal/tunnel"
)

// Apply builds cfg beside the running generation and switches to it.
// Nothing changes when any step fails (a listener cannot be bound, a log
// or a certificate cannot be opened): the old configuration keeps serving,
// with its health checks and peer state as they were, and everything the
// attempt opened is closed again.
func (s *Server) Apply(cfg *config.Config, log *errlog.Logger) error {
	s.dyn.mu.Lock() // before s.mu: see dynUpstreams
	defer s.dyn.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return errors.New("server is shutting down")
	}
	st, err := s.stage(cfg, log)
	if err != nil {
		return err
	}
	s.commit(st)
	s.resetUpstreams(st.rt)
	return nil
}

// staged is a configuration built and bound beside the running one, not
// serving yet.
type staged struct {
	rt       *generation
	lb       *limit.Build
	store    *cluster.Store  // cluster_store, nil without one
	newStore bool            // store was opened for this configuration
	otel     *otelExporter   // otel_exporter, nil without one
	newOtel  bool            // otel was built for this configuration
	tcp      []*listener     // sockets opened for it, not accepting yet
	quic     []*quicListener // QUIC sockets opened for it
}

// stage builds cfg and opens the sockets it adds; s.mu is held. On
// failure everything it built or opened is released.
func (s *Server) stage(cfg *config.Config, log *errlog.Logger) (*staged, error) {
	st := &staged{lb: s.limits.Begin()}
	err := s.stageCluster(cfg, st)
	if err == nil {
		err = s.stageOtel(cfg, st)
	}
	if err == nil {
		st.rt, err = buildGeneration(s, cfg, s.rt.Load(), log, st.lb, &s.files)
	}
	if err == nil {
		err = s.openListeners(st)
	}
	if err == nil {
		err = s.openQUIC(st)
	}
	if err != nil {
		s.rollback(st)
		return nil, err
	}
	return st, nil
}

// rollback undoes a stage that failed.
func (s *Server) rollback(st *staged) {
	for _, l := range st.tcp {
		l.ln.Close()
	}
	for _, q := range st.quic {
		q.close()
	}
	if st.rt != nil {
		st.rt.discard()
	}
	s.acme.Retain(s.rt.Load().acmeList()) // those only the failed configuration named stop
	s.rollbackCluster(st)
	s.rollbackOtel(st)
	s.files.Abort()
}

// openListeners binds the TCP addresses the running configuration does not
// already listen on.
func (s *Server) openListeners(st *staged) error {
	for _, ls := range st.rt.binds {
		if _, ok := s.listeners[ls.AddrPort]; ok {
			continue
		}
		if ln := s.takeInheritedFor(ls); ln != nil {
			st.tcp = append(st.tcp, &listener{ln: ln, addr: ls.AddrPort, done: make(chan struct{})})
			continue
		}
		l, err := listen(ls)
		if err != nil {
			return &config.ListenError{Listen: ls, Err: err}
		}
		st.tcp = append(st.tcp, l)
	}
	return nil
}

// openQUIC opens the new QUIC sockets; they may start before the
// generation is published, as the server reads the live one at each
// handshake.
func (s *Server) openQUIC(st *staged) error {
	for ap := range st.rt.quicBinds() {
		if _, ok := s.quic[ap]; ok {
			continue
		}
		ql, err := s.listenQUIC(ap, st.rt)
		if err != nil {
			return &config.ListenError{Listen: config.Listen{Addr: ap.String(), AddrPort: ap, File: st.rt.cfg.File}, Err: err}
		}
		st.quic = append(st.quic, ql)
	}
	return nil
}

// commit switches to a staged configuration; s.mu is held. Nothing in it
// can fail.
func (s *Server) commit(st *staged) {
	rt, prev := st.rt, s.rt.Load()
	s.closeDropped(st)
	s.limit.Store(connLimit(rt.cfg, rt.log))
	s.log.Store(rt.log)
	st.lb.Commit()
	s.commitCluster(st)
	s.commitOtel(st)
	rt.start()
	s.rt.Store(rt)
	s.acme.Retain(rt.acmeList()) // certificates the new configuration dropped stop
	if err := s.files.Commit(); err != nil {
		rt.log.Printf(errlog.Alert, 0, "closing access logs: %v", err)
	}
	// Accept only once the generation and the connection limit are live:
	// a connection must never see a server without a configuration.
	for _, l := range st.tcp {
		s.listeners[l.addr] = l
		s.wg.Add(1)
		go s.acceptLoop(l)
	}
	if prev != nil {
		prev.discard() // its pools' peers live on in rt's, or leave with their last tunnel
	}
	s.drainRemoved(rt)
}

// closeDropped closes the sockets the staged configuration no longer
// listens on and adopts the QUIC sockets it opened.
func (s *Server) closeDropped(st *staged) {
	wantQUIC := st.rt.quicBinds()
	for ap, q := range s.quic {
		if !wantQUIC[ap] {
			q.close()
			delete(s.quic, ap)
		}
	}
	for _, q := range st.quic {
		s.quic[q.addr] = q
	}
	want := map[netip.AddrPort]bool{}
	for _, ls := range st.rt.binds {
		want[ls.AddrPort] = true
	}
	for ap, l := range s.listeners {
		if !want[ap] {
			l.ln.Close()
			<-l.done
			delete(s.listeners, ap)
		}
	}
}

// connLimit is worker_connections x worker_processes, capped by the open
// file limit.
func connLimit(cfg *config.Config, log *errlog.Logger) int64 {
	n := int64(cfg.WorkerConnections) * int64(max(cfg.WorkerProcesses, 1))
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil && int64(rl.Cur) < n+32 {
		// A connection wsgate cannot open a descriptor for would fail
		// anyway: cap the limit so it fails cleanly, at accept.
		log.Printf(errlog.Warn, 0, "%d worker_connections exceed open file resource limit: %d, using %d", n, rl.Cur, int64(rl.Cur)-32)
		n = max(int64(rl.Cur)-32, 1)
	}
	return n
}

// drainRemoved drains the tunnels whose server, location, upstream or peer
// rt removed; all others are not touched. s.mu is held.
func (s *Server) drainRemoved(rt *generation) {
	gone := map[*tunnel.Tunnel]*tunnelInfo{}
	for t, ti := range s.tunnels {
		if !ti.stillServed(rt) {
			gone[t] = ti
		}
	}
	if len(gone) > 0 {
		rt.log.Printf(errlog.Notice, 0, "draining %d WebSocket tunnels whose location, upstream or peer was removed", len(gone))
		drain(gone, tunnel.ReasonDrain, "location removed")
	}
}
