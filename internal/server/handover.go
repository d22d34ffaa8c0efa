package server

import (
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/tunnel"
	"github.com/wsgate/wsgate/internal/upstream"
	"github.com/wsgate/wsgate/internal/vars"
)

// A binary upgrade: the old process gives its listening sockets and its
// plain WebSocket tunnels to the new one, which adopts them; what cannot
// move (TLS, HTTP/2 and HTTP/3 tunnels, requests in flight) ends in the
// old process; the UDP sockets of HTTP/3 go to the new process too, which
// reads them once the old one is done (see h3upgrade.go). The transport is the caller's: this file only takes things
// apart and puts them together again.

// ListenerFile is a listening socket as an upgrade hands it over: the
// listen address it serves (a unix socket's path in Unix) and a duplicate
// of its descriptor, which the caller closes. UDP marks a QUIC socket.
type ListenerFile struct {
	Addr string
	Unix string
	UDP  bool
	File *os.File
}

// ListenerFiles returns a duplicate of every listening TCP and unix socket
// and of every UDP socket served with HTTP/3.
func (s *Server) ListenerFiles() ([]ListenerFile, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out, err := s.quicFiles()
	if err != nil {
		return nil, err
	}
	for ap, l := range s.listeners {
		lf := ListenerFile{Addr: ap.String()}
		var err error
		switch ln := l.ln.(type) {
		case *net.TCPListener:
			lf.File, err = ln.File()
		case *net.UnixListener:
			lf.Unix = ln.Addr().String()
			lf.File, err = ln.File()
		default:
			continue
		}
		if err != nil {
			for _, o := range out {
				o.File.Close()
			}
			return nil, err
		}
		out = append(out, lf)
	}
	return out, nil
}

// InheritListeners is Inherit for the sockets of an upgrade, TCP and unix:
// Apply uses a unix socket for the listen with its path.
func (s *Server) InheritListeners(lns []net.Listener) {
	var tcp []*net.TCPListener
	s.mu.Lock()
	for _, ln := range lns {
		switch ln := ln.(type) {
		case *net.TCPListener:
			tcp = append(tcp, ln)
		case *net.UnixListener:
			// Closing it (QUIT, a reload that drops it) removes the
			// file, as for a socket this process bound.
			ln.SetUnlinkOnClose(true)
			s.inheritedUnix = append(s.inheritedUnix, ln)
		default:
			ln.Close()
		}
	}
	s.mu.Unlock()
	s.Inherit(tcp)
}

// takeInheritedFor returns the inherited socket for ls, or nil; s.mu is
// held.
func (s *Server) takeInheritedFor(ls config.Listen) net.Listener {
	if ls.Unix == "" {
		if ln := s.takeInherited(ls.AddrPort); ln != nil {
			return ln
		}
		return nil
	}
	for i, ln := range s.inheritedUnix {
		if ln.Addr().String() == ls.Unix {
			s.inheritedUnix = append(s.inheritedUnix[:i], s.inheritedUnix[i+1:]...)
			return ln
		}
	}
	return nil
}

// uninheritedUnix closes the inherited unix sockets no listen took, leaving
// their files (the old process may still be serving them); s.mu is held.
func (s *Server) uninheritedUnix() []net.Addr {
	var out []net.Addr
	for _, ln := range s.inheritedUnix {
		out = append(out, ln.Addr())
		ln.SetUnlinkOnClose(false)
		ln.Close()
	}
	s.inheritedUnix = nil
	return out
}

// Moved is one tunnel as an upgrade hands it over: its relay state and
// what its session's end needs (the access log line, the metrics, the
// reload's judgement of whether its location still exists).
type Moved struct {
	Tunnel   tunnel.State
	Listens  []netip.AddrPort // of its server block
	Names    []string         // of its server block
	Loc      string           // its location's key (locKey)
	Upstream string
	Peer     string
	Drain    time.Duration
	ConnID   uint64
	Remote   netip.Addr
	Log      *MovedLog // nil unless an access log writes the session's line
	// SessionKey and URI: its registration in the cluster's sessions
	// (websocket_session_key), made again by the new process.
	SessionKey, URI string
}

// MovedLog is what the session's access log line needs.
type MovedLog struct {
	HeadBytes int64
	Start     time.Time
	Vars      MovedVars
}

// MovedVars are the request's variables that a session's log line may
// name: what the request said and what the handshake settled. Variables
// computed from these (maps, $request_time) are computed again.
type MovedVars struct {
	Method, Target, RequestURI, Path, Args, Proto string
	URIChanged                                    bool
	Header, RespHeader                            http1.Header
	Host, Scheme, ServerName                      string
	Remote, Local, RealRemote, ProxyProtocol      netip.AddrPort
	ConnID                                        uint64
	ConnReqs                                      int
	Start                                         time.Time
	ReqLength                                     int64
	Status                                        int
	ProxyHost, ProxyScheme                        string
	UpstreamAddr, UpstreamStatus                  string
	LimitReqStatus, LimitConnStatus               string
	Captures                                      []string
	// Values are the variables settled at the 101 (see vars.Snapshot),
	// by name: a tunnel that kept only those has no request head to pass.
	Values [][2]string
}

func saveVars(vc *vars.Ctx) MovedVars {
	v := MovedVars{
		Method: vc.Method, Target: vc.Target, RequestURI: vc.RequestURI, Path: vc.Path, Args: vc.Args, Proto: vc.Proto,
		URIChanged: vc.URIChanged, Host: vc.Host, Scheme: vc.Scheme, ServerName: vc.ServerName,
		Remote: vc.Remote, Local: vc.Local, RealRemote: vc.RealRemote, ProxyProtocol: vc.ProxyProtocol,
		ConnID: vc.ConnID, ConnReqs: vc.ConnReqs, Start: vc.Start, ReqLength: vc.ReqLength, Status: vc.Status,
		ProxyHost: vc.ProxyHost, ProxyScheme: vc.ProxyScheme, UpstreamAddr: vc.UpstreamAddr, UpstreamStatus: vc.UpstreamStatus,
		LimitReqStatus: vc.LimitReqStatus, LimitConnStatus: vc.LimitConnStatus, Captures: vc.Captures,
	}
	if h, ok := vc.Header.(*http1.Header); ok && h != nil {
		v.Header = *h
	}
	if h, ok := vc.RespHeader.(*http1.Header); ok && h != nil {
		v.RespHeader = *h
	}
	return v
}

func (v *MovedVars) restore(vc *vars.Ctx) {
	vc.Method, vc.Target, vc.RequestURI, vc.Path, vc.Args, vc.Proto = v.Method, v.Target, v.RequestURI, v.Path, v.Args, v.Proto
	vc.URIChanged, vc.Host, vc.Scheme, vc.ServerName = v.URIChanged, v.Host, v.Scheme, v.ServerName
	vc.Remote, vc.Local, vc.RealRemote, vc.ProxyProtocol = v.Remote, v.Local, v.RealRemote, v.ProxyProtocol
	vc.ConnID, vc.ConnReqs, vc.Start, vc.ReqLength, vc.Status = v.ConnID, v.ConnReqs, v.Start, v.ReqLength, v.Status
	vc.ProxyHost, vc.ProxyScheme, vc.UpstreamAddr, vc.UpstreamStatus = v.ProxyHost, v.ProxyScheme, v.UpstreamAddr, v.UpstreamStatus
	vc.LimitReqStatus, vc.LimitConnStatus, vc.Captures = v.LimitReqStatus, v.LimitConnStatus, v.Captures
	h, rh := v.Header, v.RespHeader
	vc.Header, vc.RespHeader = &h, &rh
	for _, nv := range v.Values {
		vc.SetName(nv[0], nv[1])
	}
}

// Sender hands one detached tunnel to the new process and returns once it
// has adopted it (nil) or cannot (the tunnel then resumes here). It is
// called from several goroutines at once.
type Sender func(m *Moved, client, backend net.Conn) error

// moveWorkers is how many tunnels are handed over at once.
const moveWorkers = 128

// detachWait bounds the pause of one tunnel: a tunnel that does not pause
// in time stays, and ends here.
const detachWait = 5 * time.Second

// Retire ends this process's part after an upgrade: it stops accepting
// (the new process accepts on the same sockets), lets requests in flight
// finish and closes keep-alive connections after their current request,
// as QUIT does, and hands every plain tunnel to send, including those that
// requests in flight open meanwhile. HTTP/3 connections stay, accepting
// no new request, until their streams end; the new process reads their
// UDP sockets once this one is done. Tunnels that cannot move stay until they end, or until period has passed since Retire began,
// when they get close 1001 (spread over their websocket_drain_period). It
// returns when nothing is left, with the number of tunnels moved and of
// tunnels that stayed.
func (s *Server) Retire(send Sender, period time.Duration) (moved, stayed int) {
	s.mu.Lock()
	s.stopping.Store(true) // keep-alive connections close after their request
	for ap, l := range s.listeners {
		if ul, ok := l.ln.(*net.UnixListener); ok {
			ul.SetUnlinkOnClose(false) // the new process serves the path
		}
		l.ln.Close()
		delete(s.listeners, ap)
	}
	held, free := s.retireQUIC()
	s.mu.Unlock()
	defer closeRetiredQUIC(held, free)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	end := start.Add(period)
	moved = s.moveTunnels(send)
	s.log.Load().Printf(errlog.Notice, 0, "%d WebSocket tunnels handed over in %v", moved, time.Since(start).Round(time.Millisecond))
	// Requests in flight may still open tunnels, to move too. An HTTP/2
	// connection lasts as long as its tunnels: the period bounds the wait.
	for time.Now().Before(end) {
		moved += s.moveTunnels(send)
		s.mu.Lock()
		s.closeIdle()
		conns := len(s.conns)
		s.mu.Unlock()
		if conns == 0 {
			break
		}
		<-tick.C
	}
	// No request is left to open a tunnel: what remains cannot move.
	s.mu.Lock()
	s.stopLoops()
	s.closing = true
	tunnels := make(map[*tunnel.Tunnel]*tunnelInfo, len(s.tunnels))
	for t, ti := range s.tunnels {
		tunnels[t] = ti
	}
	s.mu.Unlock()
	stayed = len(tunnels)
	if stayed > 0 {
		s.log.Load().Printf(errlog.Notice, 0, "%d WebSocket tunnels cannot move to the new process; they get close 1001 in %v unless they end first", stayed, time.Until(end).Round(time.Second))
	}
	s.waitRetired(tunnels, end)
	return moved, stayed
}

// waitRetired waits for every tunnel, connection and goroutine to end;
// tunnels still open at end are drained with close 1001.
func (s *Server) waitRetired(tunnels map[*tunnel.Tunnel]*tunnelInfo, end time.Time) {
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	timer := time.NewTimer(time.Until(end))
	defer timer.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			s.closeRuntime()
			return
		case <-timer.C:
			drain(tunnels, tunnel.ReasonShutdown, "going away")
		case <-tick.C:
			// HTTP/2 connections close once their last stream ends.
			s.mu.Lock()
			s.closeIdle()
			s.mu.Unlock()
		}
	}
}

// moveTunnels hands over the plain tunnels open now and returns how many
// moved.
func (s *Server) moveTunnels(send Sender) int {
	s.mu.Lock()
	var todo []*tunnelEnd
	for t, ti := range s.tunnels {
		if ti.end != nil && !ti.virtual && !ti.tried && ti.end.movable() && t.Movable() {
			ti.tried = true
			todo = append(todo, ti.end)
		}
	}
	s.mu.Unlock()
	if len(todo) == 0 {
		return 0
	}
	work := make(chan *tunnelEnd)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		moved int
	)
	for range min(moveWorkers, len(todo)) {
		wg.Go(func() {
			for e := range work {
				if e.moveTo(send) {
					mu.Lock()
					moved++
					mu.Unlock()
				}
			}
		})
	}
	for _, e := range todo {
		work <- e
	}
	close(work)
	wg.Wait()
	return moved
}

// moveTo hands e's tunnel over; false leaves it running here.
func (e *tunnelEnd) moveTo(send Sender) bool {
	e.mu.Lock()
	t := e.t
	e.mu.Unlock()
	p, err := t.Detach(detachWait)
	if err != nil {
		return false
	}
	m := e.moved(&p.State)
	if err := send(m, p.Client, p.Backend); err != nil {
		// Not adopted: the tunnel goes on here, from where it paused.
		e.srv.log.Load().Printf(errlog.Warn, e.id, "WebSocket tunnel stays in the old process: %v", err)
		e.resume(t, p)
		return false
	}
	p.Client.Close() // the new process holds the sockets: no FIN is sent
	p.Backend.Close()
	e.handedOver()
	return true
}

// moved describes e's tunnel for the new process.
func (e *tunnelEnd) moved(st *tunnel.State) *Moved {
	m := &Moved{Tunnel: *st, Loc: locKey(e.info.loc), Upstream: e.info.ups, Drain: e.info.drain, ConnID: e.id, Remote: e.remote}
	if cs := e.cluster(); cs != nil {
		m.SessionKey, m.URI = cs.key, cs.uri
	}
	if e.info.peer != nil {
		m.Peer = e.info.peer.Addr()
	}
	if srv := e.info.srv; srv != nil {
		for _, l := range srv.Listens {
			m.Listens = append(m.Listens, l.AddrPort)
		}
		for _, n := range srv.Names {
			m.Names = append(m.Names, n.Name)
		}
	}
	if sl := e.sess; sl != nil {
		vc := sl.ctx()
		m.Log = &MovedLog{HeadBytes: sl.headBytes, Start: sl.start, Vars: saveVars(vc)}
		if sl.snap != nil {
			sl.snap.Each(func(name, v string) { m.Log.Vars.Values = append(m.Log.Vars.Values, [2]string{name, v}) })
			ctxPool.Put(vc)
		}
	}
	return m
}

// shutdown closes e's tunnel, whichever it is now (a handover that failed
// resumes it as another): the cluster's close command.
func (e *tunnelEnd) shutdown(code uint16, reason string) {
	e.mu.Lock()
	t := e.t
	e.mu.Unlock()
	t.Shutdown(code, reason)
}

// resume restarts in this process a tunnel that was detached and not
// adopted, under the same registration.
func (e *tunnelEnd) resume(old *tunnel.Tunnel, p *tunnel.Paused) {
	s := e.srv
	e.mu.Lock()
	defer e.mu.Unlock()
	nt := tunnel.Resume(p.Client, p.Backend, &p.State, p.State.Settings.Config(p.Meter, e))
	s.mu.Lock()
	delete(s.tunnels, old)
	s.tunnels[nt] = &e.info
	s.mu.Unlock()
	e.t = nt
}

// handedOver releases what e's tunnel held here, once the new process has
// it: the session is neither logged nor counted as closed here.
func (e *tunnelEnd) handedOver() {
	srv := e.srv
	srv.release(2)
	srv.Stats.Active.Add(-1)
	srv.Stats.Writing.Add(-1)
	if e.info.peer != nil {
		e.info.peer.Done(false)
	}
	e.releaseLeases()
	if cs := e.cluster(); cs != nil {
		cs.unreg()
	}
	if e.sess != nil {
		e.sess.release()
	}
	srv.removeTunnel(e.t)
}

// Adopt takes over a tunnel that the old process handed over, on client
// and backend (its sockets, received), under the current configuration's
// logs and metrics for its location when it still has it.
func (s *Server) Adopt(m *Moved, client, backend net.Conn) {
	rt := s.rt.Load()
	srvConf, loc := rt.movedPlace(m)
	e := &tunnelEnd{srv: s, log: s.log.Load(), id: m.ConnID, remote: m.Remote}
	e.info = tunnelInfo{srv: srvConf, loc: loc, ups: m.Upstream, drain: m.Drain, end: e}
	e.info.peer = rt.movedPeer(m)
	var meter *tunnel.Meter
	if loc != nil {
		lc := loc.Conf
		e.log = rt.logFor(lc)
		meter = s.meters.get(loc, m.Upstream, lc.WS.MessageMetrics)
		if m.Log != nil && len(rt.accessLogs[lc]) > 0 {
			vc := ctxPool.Get().(*vars.Ctx)
			vc.Reset(rt.cfg.Vars)
			m.Log.Vars.restore(vc)
			e.sess = &sessionLog{rt: rt, lc: lc, headBytes: m.Log.HeadBytes, start: m.Log.Start}
			if !e.sess.keep(rt.accessLogs[lc], vc, true) {
				ctxPool.Put(vc)
			}
		}
	}
	s.active.Add(2)
	s.Stats.Active.Add(1)
	s.Stats.Writing.Add(1)
	e.info.peer.Adopt()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.t = tunnel.Resume(client, backend, &m.Tunnel, m.Tunnel.Settings.Config(meter, e))
	if st := s.cluster.Load(); st != nil && m.SessionKey != "" {
		e.attach(nil, &clusterSession{unreg: st.Register(m.SessionKey, m.Remote.String(), m.URI, e.shutdown), key: m.SessionKey, uri: m.URI}, nil, m.SessionKey)
	}
	if !s.addTunnel(e.t, &e.info, rt) {
		s.wg.Add(1)
		s.Stats.Tunnels.Add(1)
		go e.t.Shutdown(1001, "going away")
	}
}

// movedPlace finds the server block and location of a handed-over tunnel
// in rt: the server that shares a listen address and a name, the location
// with the same key. A server block that is gone is stood in for by one
// with the tunnel's addresses and names (so a reload judges it as before);
// a location that is gone is nil: the session is then not logged.
func (rt *generation) movedPlace(m *Moved) (*config.Server, *config.Location) {
	want := &config.Server{}
	for _, ap := range m.Listens {
		want.Listens = append(want.Listens, config.Listen{AddrPort: ap})
	}
	for _, n := range m.Names {
		want.Names = append(want.Names, config.ServerName{Name: n})
	}
	if rt.cfg.HTTP == nil {
		return want, nil
	}
	for _, srv := range rt.cfg.HTTP.Servers {
		if !shareListen(srv, want) || !shareName(srv, want) {
			continue
		}
		var found *config.Location
		srv.Walk(func(l *config.Location) {
			if found == nil && l.Modifier != "if" && locKey(l) == m.Loc {
				found = l
			}
		})
		if found != nil {
			return srv, found
		}
	}
	return want, nil
}

// movedPeer finds the tunnel's peer in rt's upstream of the same name, or
// stands in for it with a peer of its own.
func (rt *generation) movedPeer(m *Moved) *upstream.Peer {
	for cu, p := range rt.pools {
		if cu.Name != m.Upstream {
			continue
		}
		for _, peer := range p.Peers() {
			if peer.Addr() == m.Peer {
				return peer
			}
		}
	}
	u := upstream.New(upstream.Config{Name: m.Upstream, Peers: []upstream.PeerConfig{{Addr: m.Peer, Weight: 1}}}, nil)
	return u.Peers()[0]
}
