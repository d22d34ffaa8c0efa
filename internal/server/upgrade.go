package server

import (
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wsgate/wsgate/internal/accesslog"
	"github.com/wsgate/wsgate/internal/backend"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/limit"
	"github.com/wsgate/wsgate/internal/otel"
	"github.com/wsgate/wsgate/internal/proxy"
	"github.com/wsgate/wsgate/internal/status"
	"github.com/wsgate/wsgate/internal/tunnel"
	"github.com/wsgate/wsgate/internal/upstream"
	"github.com/wsgate/wsgate/internal/vars"
)

// What follows a backend's choice and answer: the peer a request is
// steered to (hash keys, sticky routes) and the tunnel a 101 starts.

// startTunnel answers the client's upgrade and joins the connections: the
// tunnel takes over conn's socket, its slot and the peer's use.
func (x *exchange) startTunnel(peer *upstream.Peer, conn *backend.Conn, resp *http1.Response, start time.Time) {
	c := x.conn
	bc, br := conn.Net(), conn.Reader()
	bc.SetReadDeadline(time.Time{})
	if x.req.ContentLength > 0 || x.req.Chunked {
		// The tunnel manages its own deadlines: none from reading the
		// body may linger (serve lifted the header's already).
		c.c.SetReadDeadline(time.Time{})
	}
	// Record the success before the client sees its 101: its next
	// handshake must find a recovering peer live again.
	peer.Connected()
	hdr := proxy.FilterResponse(resp.Header, true, &x.lc.ProxyRest)
	// Bytes that arrived behind either head belong to the tunnel; Start
	// copies them before the buffers go back to their pools.
	clientPending, _ := c.br.Peek(c.br.Buffered())
	backendPending, _ := br.Peek(br.Buffered())
	var cc net.Conn = c.c
	// An HTTP/2 or HTTP/3 WebSocket's client leg is its stream, not the
	// bridge: the stream's head is written by the bridge's upgrade.
	st, _ := c.c.(*bridge)
	if st != nil && st.ws {
		cc = st.leg()
	} else {
		st = nil
	}
	offloaded := x.offload(resp, &hdr, &cc, &bc, &clientPending, &backendPending)
	h := x.head(101, hdr, -2, false)
	x.sent += int64(len(h))
	var err error
	if st != nil {
		err = st.upgrade(h)
	} else {
		err = c.sendLast(h)
	}
	if err != nil {
		conn.Release(false)
		x.done()
		return
	}
	// Set before newTunnelEnd, whose log snapshot takes $status, and
	// before the tunnel starts: its close path may read vc at once.
	x.status = 101
	x.vc.Status = 101
	e := x.newTunnelEnd(peer, start)
	span := x.otelSpan()
	c.srv.metrics.Handshake("upgraded")
	cfg := x.tunnelConfig(e, resp, offloaded)
	// An HTTP/2 stream's handler lives as long as the stream: it reads
	// the client (serveStream), and the tunnel starts no goroutine for it.
	cfg.ClientOnCaller = st != nil && !st.h3
	c.hijacked = true
	testHookUpgraded()
	// The tunnel may end before it is registered; closed waits on mu
	// until it is.
	e.mu.Lock()
	e.t = tunnel.Start(cc, bc, clientPending, backendPending, cfg)
	if cfg.ClientOnCaller {
		st.relay = e.t
	}
	e.attach(span, x.registerSession(e), x.startReauth(e), x.sessionKey())
	if c.srv.caps.running.Load() > 0 && cfg.Frames {
		c.srv.tapNew(e)
	}
	conn.Detach()
	if !c.srv.addTunnel(e.t, &e.info, x.rt) {
		// Shutting down: the tunnel still closes properly, and its OnClose
		// must not unregister what was never registered.
		c.srv.wg.Add(1)
		c.srv.Stats.Tunnels.Add(1)
		go e.t.Shutdown(1001, "going away")
	}
	e.mu.Unlock()
}

// newTunnelEnd makes what the tunnel keeps of its handshake: its place
// for reloads and drains, and the request's variables only when a log
// line needs them at its end (otherwise they go back to the pool now, so
// that an idle tunnel does not hold its request).
func (x *exchange) newTunnelEnd(peer *upstream.Peer, start time.Time) *tunnelEnd {
	c, lc := x.conn, x.lc
	e := &tunnelEnd{
		srv:    c.srv,
		log:    x.log,
		id:     c.id,
		remote: x.vc.Remote.Addr(),
	}
	if len(x.leases) > 0 {
		l := slices.Clone(x.leases)
		e.leases = &l
	}
	e.info = tunnelInfo{srv: x.srv, loc: x.loc, peer: peer, drain: lc.WS.DrainPeriod, end: e, virtual: c.virtual}
	if pp := x.proxyPass(); pp != nil && pp.Upstream != nil {
		e.info.ups = pp.Upstream.Name
	}
	if logs := x.rt.accessLogs[lc]; len(logs) > 0 {
		e.sess = &sessionLog{rt: x.rt, lc: lc, headBytes: x.sent, start: start}
		// Re-authorisation keeps the request and writes each check's
		// auth_request_set values into the line's context: it keeps vc.
		reauth := lc.WS.Reauth.Interval > 0 && lc.Auth.Request != ""
		x.ctxKept = e.sess.keep(logs, x.vc, !reauth)
	}
	return e
}

// keep makes sl keep what logs' lines need of vc: a snapshot when freeze
// allows one and one can be taken, else vc itself, which keep reports.
func (sl *sessionLog) keep(logs []*accesslog.Log, vc *vars.Ctx, freeze bool) (kept bool) {
	if freeze {
		sl.snap = vc.Freeze(logVars(logs))
	}
	if sl.snap == nil {
		sl.vc = vc
	}
	return sl.snap == nil
}

// logVars lists the variables that the lines of logs read.
func logVars(logs []*accesslog.Log) []int {
	var onStack [32]int
	idx := onStack[:0]
	for _, l := range logs {
		idx = l.Vars(idx)
	}
	return idx
}

// tunnelConfig is the relay's configuration from the location's
// settings and the backend's 101.
func (x *exchange) tunnelConfig(e *tunnelEnd, resp *http1.Response, offloaded bool) tunnel.Config {
	lc, srv := x.lc, x.conn.srv
	return tunnel.Config{
		Frames:           strings.EqualFold(x.req.Header.Get("Upgrade"), "websocket") && lc.WebSocketFrames,
		IdleTimeout:      lc.ReadTimeout,
		SendTimeout:      lc.SendTimeout,
		PingInterval:     lc.WS.PingInterval,
		PingTimeout:      lc.WS.PingTimeout,
		MaxFrameSize:     lc.WS.MaxFrameSize,
		MaxMessageSize:   lc.WS.MaxMessageSize,
		MessageRate:      lc.WS.MessageRate,
		MessageBurst:     lc.WS.MessageBurst,
		RateLimitBackend: lc.WS.RateBoth,
		Strict:           lc.WS.Strict,
		AllowRSV:         extensionRSV(resp.Header.Join("Sec-WebSocket-Extensions", ","), offloaded),
		MaxSession:       sessionTime(&lc.WS),
		SessionCode:      lc.WS.SessionCode,
		Meter:            srv.meters.get(x.loc, e.info.ups, lc.WS.MessageMetrics),
		FDReserve:        int(srv.limit.Load()), // worker_connections' own descriptors
		OnClose:          e,
	}
}

// testHookUpgraded runs between the client's 101 and the tunnel's
// registration; tests widen that window with it.
var testHookUpgraded = func() {}

// tunnelEnd is what a tunnel needs from its handshake when it closes, and
// its registration (info) meanwhile: one allocation, held for the tunnel's
// life, in place of a closure over a dozen of the exchange's variables.
// Its flags live in info's padding, which keeps it in the 160-byte size
// class.
type tunnelEnd struct {
	mu     sync.Mutex // held by startTunnel until t is registered
	t      *tunnel.Tunnel
	info   tunnelInfo // info.peer is the tunnel's peer
	srv    *Server
	log    *errlog.Logger
	id     uint64
	remote netip.Addr
	leases *[]limit.ConnLease // limit_conn slots; nil for none (a pointer: 8 bytes, not a slice's 24)
	sess   *sessionLog        // nil unless an access log writes the session's line
	extra  *tunnelExtras      // nil unless one of its attachments applies
}

// tunnelExtras are a tunnel's rarer attachments, behind one pointer so
// that a tunnel without any keeps tunnelEnd in a smaller size class.
type tunnelExtras struct {
	span   *otel.Span     // the session's trace span, ended at close; nil unless traced
	reauth *reauthSession // nil unless websocket_reauth_interval applies
	sess   *clusterSession
	key    string // the websocket_session_key value, for captures; "" for none
}

// clusterSession is a tunnel's registration in the cluster's sessions.
type clusterSession struct {
	unreg    func() // removes the tunnel from the cluster's sessions
	key, uri string // its key and URI there, for a binary upgrade
}

// attach keeps the attachments that apply, allocating only when one does.
func (e *tunnelEnd) attach(span *otel.Span, cs *clusterSession, reauth *reauthSession, key string) {
	if span != nil || cs != nil || reauth != nil || key != "" {
		e.extra = &tunnelExtras{span: span, reauth: reauth, sess: cs, key: key}
	}
}

// key is the tunnel's websocket_session_key value; "" for none.
func (e *tunnelEnd) key() string {
	if e.extra == nil {
		return ""
	}
	return e.extra.key
}

// cluster is e's registration in the cluster's sessions; nil when it has
// none.
func (e *tunnelEnd) cluster() *clusterSession {
	if e.extra == nil {
		return nil
	}
	return e.extra.sess
}

// movable reports whether e's tunnel may move to a new process: not one
// whose re-authorisation or trace span would be lost on the way.
func (e *tunnelEnd) movable() bool {
	return e.extra == nil || (e.extra.reauth == nil && e.extra.span == nil)
}

// releaseLeases gives back e's limit_conn slots.
func (e *tunnelEnd) releaseLeases() {
	if e.leases != nil {
		limit.ReleaseAll(*e.leases)
	}
}

// sessionLog is what a tunnel keeps for its access log line, apart from the
// tunnelEnd, which every idle tunnel holds: the values the line's
// variables had at the 101 (snap), or, when one of them could only be
// computed at the end (a map of $request_time), the request's whole
// context (vc).
type sessionLog struct {
	rt        *generation
	lc        *config.LocConf
	snap      *vars.Snapshot
	vc        *vars.Ctx // nil when snap is set
	headBytes int64     // the 101's head, sent to the client
	start     time.Time // of the upstream exchange, for $upstream_response_time
}

// ctx returns the context the line is rendered from, to go back to
// ctxPool once written.
func (sl *sessionLog) ctx() *vars.Ctx {
	if sl.snap == nil {
		return sl.vc
	}
	vc := ctxPool.Get().(*vars.Ctx)
	sl.snap.Restore(vc)
	return vc
}

// release gives back what sl holds when the tunnel leaves without its
// line (an upgrade hands it over).
func (sl *sessionLog) release() {
	if sl.vc != nil {
		ctxPool.Put(sl.vc)
	}
}

// TunnelClosed is the tunnel's OnClose: it gives back the connection slots,
// the peer and the limit_conn leases, and logs the session. It runs at the
// bottom of a relay goroutine's small stack: the rare work (logging) is in
// functions of its own, so that this frame stays small and the common case
// does not grow the stack.
func (e *tunnelEnd) TunnelClosed(r tunnel.Result) {
	e.mu.Lock() // startTunnel has registered the tunnel
	e.mu.Unlock()
	srv, peer := e.srv, e.info.peer
	if e.info.virtual {
		srv.release(1) // the client's TCP connection is its HTTP/2 conn's
	} else {
		srv.release(2)
		srv.Stats.Active.Add(-1)
	}
	srv.Stats.Writing.Add(-1)
	peer.Done(false)
	e.releaseLeases()
	if cs := e.cluster(); cs != nil {
		cs.unreg()
	}
	if e.log.Enabled(errlog.Debug) || (r.Err != nil && e.log.Enabled(errlog.Info)) {
		e.logClose(&r)
	}
	var series *status.PeerSeries // looked up here rather than kept: 8 bytes on every tunnel
	if e.info.ups != "" {
		series = srv.metrics.Peer(e.info.ups, peer.Addr())
	}
	srv.metrics.TunnelClosedAt(series, r.End.Sub(r.Start), r.FromClient, r.FromBackend, r.CloseCode, r.ClosedBy.String())
	srv.metrics.Messages(r.MessagesFromClient, r.MessagesFromBackend)
	if e.sess != nil || e.extra != nil {
		e.endSession(&r)
	}
	if srv.caps.running.Load() > 0 {
		srv.untap(e.t)
	}
	srv.removeTunnel(e.t)
}

func (e *tunnelEnd) logClose(r *tunnel.Result) {
	if e.log.Enabled(errlog.Debug) {
		e.log.Printf(errlog.Debug, e.id, "tunnel closed by %s, code %d, %d bytes from client, %d from upstream, err %v", r.ClosedBy, r.CloseCode, r.FromClient, r.FromBackend, r.Err)
	}
	if r.Err != nil && e.log.Enabled(errlog.Info) {
		e.log.Printf(errlog.Info, e.id, "WebSocket closed: %v (%s side), client: %s, upstream: \"%s\"", r.Err, r.Culprit(), e.remote, e.info.peer.Addr())
	}
}

// logSession writes the session's access log line: $request_time and
// $upstream_response_time span the whole tunnel, and the byte counts
// include what it carried to the client. The variables go back to their
// pool then.
func (e *tunnelEnd) logSession(r *tunnel.Result) {
	sl := e.sess
	vc := sl.ctx()
	vc.BytesSent, vc.BodyBytesSent = sl.headBytes+r.FromBackend, r.FromBackend
	vc.End = r.End
	vc.UpstreamRespTime = vars.Seconds(r.End.Sub(sl.start))
	vc.WS = vars.WSSession{MessagesIn: r.MessagesFromClient, MessagesOut: r.MessagesFromBackend, CloseCode: r.CloseCode, ClosedBy: r.ClosedBy.String(), CloseReason: r.Reason.String(), Closed: true}
	logAccess(sl.rt, sl.lc, vc)
	ctxPool.Put(vc)
}

// hashKey is what ip_hash and hash balance on: the client address, or the
// evaluated key.
func (x *exchange) hashKey() []byte {
	cu := x.proxyPass().Upstream
	switch cu.Method {
	case "ip_hash":
		return x.vc.Remote.Addr().Unmap().AsSlice() // the address realip settled on
	case "hash":
		return []byte(cu.HashKey.Eval(x.vc))
	}
	return nil
}

// setRoute gives the client a sticky cookie for peer unless it already
// carries that route.
func (x *exchange) setRoute(sc *config.StickyCookie, route string, peer *upstream.Peer) {
	x.extra = slices.DeleteFunc(x.extra, func(f http1.Field) bool { return f.Name == "Set-Cookie" })
	id := peer.StickyID()
	if id == route {
		return
	}
	v := sc.Name + "=" + id
	switch {
	case sc.Expires < 0:
		v += "; expires=Thu, 31-Dec-37 23:55:55 GMT; max-age=315360000"
	case sc.Expires > 0:
		v += "; expires=" + time.Now().Add(sc.Expires).UTC().Format(http1TimeFormat) + "; max-age=" + strconv.FormatInt(int64(sc.Expires/time.Second), 10)
	}
	if sc.Domain != "" {
		v += "; domain=" + sc.Domain
	}
	if sc.Path != "" {
		v += "; path=" + sc.Path
	}
	if sc.HTTPOnly {
		v += "; httponly"
	}
	if sc.Secure {
		v += "; secure"
	}
	if sc.SameSite != "" {
		v += "; samesite=" + sc.SameSite
	}
	x.extra = append(x.extra, http1.Field{Name: "Set-Cookie", Value: v})
}
