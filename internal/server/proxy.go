package server

import (
	"crypto/tls"
	"errors"
	"sync"
	"time"

	"github.com/wsgate/wsgate/internal/backend"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/proxy"
	"github.com/wsgate/wsgate/internal/upstream"
)

// The proxy_pass content handler. A request goes through these steps:
// proxy reads the body first when proxy_request_buffering says so
// (body.go), builds the head and calls roundTrip; roundTrip picks peers
// under proxy_next_upstream and, for each, exchangeWith has the backend
// package send the request and read the answer, then relays it, starts a
// tunnel, or holds it back for the next peer. Every backend connection
// ends with one backend.Conn.Release (or a tunnel takes it over).

// proxy answers a request from the location's upstream.
func (x *exchange) proxy() bool {
	if x.req.ContentLength > x.lc.ClientMaxBody && x.lc.ClientMaxBody > 0 {
		x.tooLarge(x.req.ContentLength)
		return x.errorPage(413)
	}
	pp, status := x.target()
	if status != 0 {
		return x.errorPage(status)
	}
	rest := &x.lc.ProxyRest
	framing := proxy.Body{Length: x.req.ContentLength} // -1: none
	var body *requestBody                              // nil without a body: a handshake allocates nothing here
	if x.preread != nil && (rest.SetBody != nil || rest.NoRequestBody) {
		x.preread.close() // read for mirror; this request sends another body or none
		x.preread = nil
	}
	var setBody string
	switch {
	case rest.SetBody != nil:
		setBody = rest.SetBody.Eval(x.vc)
		framing = proxy.Body{Length: int64(len(setBody))}
	case rest.NoRequestBody:
		// nginx still announces the client's length (the backend then
		// waits for a body): `proxy_set_header Content-Length ""` drops it.
		if proxy.Configured(x.lc.ProxyHeaders, "Content-Length") {
			framing = proxy.Body{Length: -1}
		}
	case x.preread != nil:
		body, x.preread = x.preread, nil // read whole already (mirror)
		framing = body.framing
	case x.req.ContentLength > 0 || x.req.Chunked:
		body = new(requestBody)
		if status := x.prepareBody(body); status != 0 {
			body.close()
			return x.bodyFailed(status)
		}
		framing = body.framing
	}
	uri := proxy.URI(pp, x.loc, x.vc)
	x.vc.ProxyHost, x.vc.ProxyScheme = pp.HostPort, pp.Scheme
	if done, keep := x.cacheLookup(); done { // proxy_cache (cache.go)
		body.close()
		return keep
	}
	defer x.cacheEnd()
	method := x.req.Method
	if rest.Method != nil {
		method = rest.Method.Eval(x.vc)
	}
	method, creq := x.cacheRequest(method)
	hb := headPool.Get().(*[]byte)
	head := proxy.AppendRequest((*hb)[:0], method, uri, x.backendRequest(creq), x.lc, x.vc, pp.HostPort, framing)
	head = append(head, setBody...) // proxy_set_body goes with the head
	x.upstreamOut.method = method
	x.upstreamOut.reqBody = body // for an X-Accel-Redirect to send again
	ok := x.roundTrip(head, body)
	putHead(hb, head)
	body.close()
	return ok
}

// headPool holds request-head buffers. A head is written synchronously and
// is dead once roundTrip returns; allocating it was about a sixth of a
// WebSocket handshake's garbage.
var headPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 1024)
	return &b
}}

func putHead(hb *[]byte, head []byte) {
	if cap(head) <= 16<<10 { // an outsized head is not kept
		*hb = head[:0]
		headPool.Put(hb)
	}
}

// try is one attempt at a peer, for the $upstream_* variables and logs.
type try struct {
	addr    string
	status  string
	start   time.Time
	connect time.Duration // -1: no connection
	header  time.Duration // -1: no response head
	sent    int64         // bytes of the request written
	recv    int64         // bytes of the response head read
}

// pass is one request's way through proxy_next_upstream: the tries so far,
// the last failure, and an answer held back while the next peer is tried.
type pass struct {
	first [2]try // one try, or a retry: no allocation
	more  []try  // the tries after those
	n     int
	start time.Time
	err   error // the last failure before a response
	last  *held
	sent  bool // the request went to a peer
}

func (p *pass) add(t try) {
	if p.n < len(p.first) {
		p.first[p.n] = t
	} else {
		p.more = append(p.more, t)
	}
	p.n++
}

func (p *pass) at(i int) *try {
	if i < len(p.first) {
		return &p.first[i]
	}
	return &p.more[i-len(p.first)]
}

// setStatus records the outcome of the current try.
func (p *pass) setStatus(status string) { p.at(p.n - 1).status = status }

// fail records a failure of the current try.
func (p *pass) fail(err error) {
	p.err = err
	p.setStatus(statusFor(err))
}

// held is a response kept back while the next peer is tried; if no peer is
// left, it goes to the client, as nginx sends the last answer it got.
type held struct {
	bc   backend.Conn
	resp *http1.Response
}

// hold keeps h in place of the answer held before, which counts as a
// failure of its peer.
func (p *pass) hold(h *held) {
	if p.last != nil {
		p.last.bc.Release(true)
	}
	p.last, p.err = h, nil
}

// transport is the location's way to its upstream.
func (x *exchange) transport() backend.Transport {
	tc := x.backendTLS()
	return backend.Transport{
		Idle:            x.idlePool(),
		Slots:           (*slots)(x.conn.srv),
		ConnectTimeout:  x.lc.ConnectTimeout,
		NoDelay:         x.lc.TCPNoDelay,
		TLS:             tc,
		Local:           x.bindAddr(),
		Transparent:     x.lc.ProxyRest.Bind != nil && x.lc.ProxyRest.Bind.Transparent,
		SocketKeepalive: x.lc.ProxyRest.SocketKeepalive,
		// Only for a plain HTTP/1.1 client and an http:// backend: amid
		// TLS handshakes the net package's socket keeps an idle tunnel
		// smaller (see connect in package backend).
		OwnSocket: tc == nil && x.conn.tls == nil && !x.conn.virtual,
	}
}

// backendTLS is the TLS client config for an https:// backend, for
// proxy_ssl_name (by default $proxy_host); nil for http://.
func (x *exchange) backendTLS() *tls.Config {
	ps := &x.lc.ProxySSL
	if ps.Client == nil || x.proxyPass().Scheme != "https" { // a variable scheme may say http
		return nil
	}
	name := x.proxyPass().HostPort
	if ps.Name != nil {
		name = ps.Name.Eval(x.vc)
	}
	return ps.Client.For(name, ps.Options.SNI)
}

// slots lends the server's worker_connections accounting to backend
// connections.
type slots Server

func (s *slots) Reserve() bool   { return (*Server)(s).reserve() }
func (s *slots) Release(n int64) { (*Server)(s).release(n) }

// roundTrip sends the request to peers of the upstream in turn, as
// proxy_next_upstream allows, and answers the client.
func (x *exchange) roundTrip(head []byte, body *requestBody) bool {
	p := pass{start: time.Now()}
	req := backend.Request{
		Head: head, Chunked: body.chunked(), KeepAlive: x.lc.ProxyHTTPVersion == "1.1",
		Method: x.upstreamOut.method, HeadLimit: x.lc.BufferSize, SendTimeout: x.lc.SendTimeout, ReadTimeout: x.lc.ReadTimeout,
	}
	tr := x.transport()
	x.upstreamOut.streamed = body.streamed()
	var ch chooser
	ch.start(x)
	for x.mayTry(&p, body) {
		peer := ch.next(x)
		if peer == nil {
			break
		}
		var bc backend.Conn
		t0 := time.Now()
		if err := tr.Connect(&bc, peer); err != nil {
			if x.connectFailed(&p, peer, t0, err) {
				continue
			}
			break
		}
		p.add(try{addr: peer.Addr(), start: t0, connect: time.Since(t0), header: -1, sent: int64(len(head)) + max(body.size(), 0)})
		p.sent = true
		req.Body = body.reader()
		if keep, final := x.exchangeWith(&p, peer, &bc, &req); final {
			return keep
		}
		if p.err != nil && !retries(x.lc.NextUpstream, p.err) {
			break
		}
	}
	return x.giveUp(&p)
}

// chooser picks the peers of one request: the sticky route's first, then
// the balancer's.
type chooser struct {
	att    upstream.Attempt
	sticky *config.StickyCookie
	route  string
	first  *upstream.Peer
}

func (ch *chooser) start(x *exchange) {
	ch.att.Reset(x.pool(), x.hashKey())
	if ch.first = x.ntlmPeer(&ch.att); ch.first != nil {
		return
	}
	if ch.sticky = x.proxyPass().Upstream.Sticky; ch.sticky != nil {
		ch.route = x.vc.Cookie(ch.sticky.Name)
		ch.first = ch.att.Sticky(ch.route)
	} else if routes := x.proxyPass().Upstream.StickyRoute; routes != nil {
		ch.first = ch.att.Route(firstNonEmpty(routes, x.vc))
	} else if sl := x.proxyPass().Upstream.StickyLearn; sl != nil {
		ch.first = x.learned(&ch.att, sl)
	}
}

// next returns the next peer to try, or nil when none is left.
func (ch *chooser) next(x *exchange) *upstream.Peer {
	peer := ch.first
	ch.first = nil
	if peer == nil {
		var err error
		if peer, err = x.nextQueued(&ch.att); err != nil {
			return nil
		}
	}
	if ch.sticky != nil {
		x.setRoute(ch.sticky, ch.route, peer)
	}
	return peer
}

// connectFailed records a try whose connection could not be made and
// reports whether proxy_next_upstream tries another peer.
func (x *exchange) connectFailed(p *pass, peer *upstream.Peer, t0 time.Time, err error) bool {
	p.err = err
	if err == backend.ErrNoSlot {
		return false
	}
	p.add(try{addr: peer.Addr(), status: statusFor(err), start: t0, connect: -1, header: -1})
	x.upstreamError(err, peer.Addr())
	return retries(x.lc.NextUpstream, err)
}

// mayTry applies proxy_next_upstream's limits before each try but the
// first. A streamed body cannot be sent again, and a method that is not
// idempotent is not repeated unless non_idempotent says so.
func (x *exchange) mayTry(p *pass, body *requestBody) bool {
	if p.n == 0 {
		return true
	}
	nu := x.lc.NextUpstream
	return nu.Mask&config.NextOff == 0 &&
		(nu.Tries == 0 || p.n < nu.Tries) &&
		(nu.Timeout == 0 || time.Since(p.start) < nu.Timeout) &&
		!(p.sent && body.streamed()) &&
		!(p.sent && !idempotent(x.req.Method) && nu.Mask&config.NextNonIdempotent == 0)
}

func idempotent(method string) bool {
	switch method {
	case "GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE":
		return true
	}
	return false
}

// exchangeWith sends the request over bc and answers the client (final),
// or records in p a failure or a held answer for the next peer to replace.
func (x *exchange) exchangeWith(p *pass, peer *upstream.Peer, bc *backend.Conn, req *backend.Request) (keep, final bool) {
	w := x.watchClient(bc)
	resp, err := bc.Send(req)
	if w.stop() {
		return x.clientAborted(p, bc, peer.Addr()), true
	}
	if err != nil {
		return x.sendFailed(p, peer, bc, err)
	}
	x.bodyRead = x.bodyRead || req.Body != nil // streamed to its end
	p.setStatus(statusString(resp.Status))
	t := p.at(p.n - 1)
	t.header, t.recv = time.Since(t.start), headSize(resp)
	x.timedHead(peer, t.header, resp.Status)
	x.vc.UpstreamHeader = &resp.Header // $upstream_http_*, also of an answer held back; a pointer: boxing the slice would allocate
	series := x.conn.srv.metrics.Peer(x.proxyPass().Upstream.Name, peer.Addr())
	series.Responded(time.Since(p.start))
	switch {
	case resp.Status == 101:
		return x.switchProtocols(p, peer, bc, resp)
	case x.lc.NextUpstream.Mask&config.NextStatus(resp.Status) != 0:
		p.hold(&held{bc: *bc, resp: resp})
		return false, false
	}
	x.answered(peer)
	x.setUpstreamVars(p)
	cu := x.proxyPass().Upstream
	keep, drained := x.relayOrStore(bc, resp)
	timedEnd(cu, peer, t.start)
	if drained {
		bc.Drained(resp) // with `keepalive`, back to the cache
	}
	bc.Release(false)
	return keep, true
}

// sendFailed ends a try whose request or response head failed. A failure
// of the request body's source is the client's: the peer is not blamed
// and no other peer is tried.
func (x *exchange) sendFailed(p *pass, peer *upstream.Peer, bc *backend.Conn, err error) (keep, final bool) {
	if !backend.IsPeer(err) {
		bc.Release(false)
		x.setUpstreamVars(p)
		return x.bodyFailed(bodyStatus(err)), true
	}
	bc.Release(true)
	p.fail(err)
	x.upstreamError(err, peer.Addr())
	var se *http1.StatusError
	if errors.As(err, &se) && !retries(x.lc.NextUpstream, err) {
		x.setUpstreamVars(p)
		return x.errorPage(502), true
	}
	return false, false
}

// switchProtocols checks a 101 and starts the tunnel.
func (x *exchange) switchProtocols(p *pass, peer *upstream.Peer, bc *backend.Conn, resp *http1.Response) (keep, final bool) {
	if !x.upgrade() {
		// nginx passes a 101 to a request that did not ask to switch as
		// a plain answer without a body; nothing is tunnelled, and the
		// client connection ends with it.
		x.setUpstreamVars(p)
		x.close = true
		x.relayResponse(bc, resp)
		bc.Release(false)
		return false, true
	}
	err := proxy.CheckSwitch(x.req, resp)
	if err == nil {
		err = x.checkOffload(resp)
	}
	if err != nil {
		bc.Release(true)
		x.logRequest(errlog.Error, peer.Addr(), "%v while %v", err, backend.Reading)
		if retries(x.lc.NextUpstream, err) {
			p.err = err
			return false, false
		}
		x.setUpstreamVars(p)
		return x.errorPage(502), true
	}
	x.answered(peer)
	x.setUpstreamVars(p)
	x.startTunnel(peer, bc, resp, p.start) // the tunnel owns bc now
	return false, true
}

// upgrade reports whether the request asks to switch protocols.
func (x *exchange) upgrade() bool {
	return x.req.Header.Has("Upgrade") && x.req.Method == "GET" && x.req.Major == 1 && x.req.Minor == 1
}

// giveUp answers when no try succeeded: the last held answer, or an error
// page (503 without a worker_connections slot, 504 after a timeout, 502).
func (x *exchange) giveUp(p *pass) bool {
	x.setUpstreamVars(p)
	if done, keep := x.cacheGiveUp(p); done {
		return keep
	}
	if h := p.last; h != nil {
		x.vc.UpstreamHeader = &h.resp.Header // $upstream_http_*
		keep, _ := x.relayOrStore(&h.bc, h.resp)
		h.bc.Release(false)
		return keep
	}
	status := 502
	switch {
	case p.err == backend.ErrNoSlot:
		status = 503
	case p.err != nil && isTimeout(p.err):
		status = 504
	}
	if x.upgrade() {
		x.conn.srv.metrics.Handshake("failed")
	}
	if p.n == 0 && p.err == nil {
		// No peer is live (down, failed, unhealthy or at max_conns): say
		// when to come back, so clients do not hammer a dead pool.
		x.logRequest(errlog.Error, x.proxyPass().HostPort, "no live upstreams while connecting to upstream")
		x.extra = append(x.extra, http1.Field{Name: "Retry-After", Value: "1"})
	}
	return x.errorPage(status)
}

// retries reports whether a failure before the response is one that
// proxy_next_upstream retries.
func retries(nu config.NextUpstream, err error) bool {
	var se *http1.StatusError
	switch {
	case errors.As(err, &se) || errors.Is(err, proxy.ErrBadAccept):
		return nu.Mask&config.NextInvalidHeader != 0
	case isTimeout(err):
		return nu.Mask&config.NextTimeout != 0
	}
	return nu.Mask&config.NextError != 0
}

func statusFor(err error) string {
	if isTimeout(err) {
		return "504"
	}
	return "502"
}
