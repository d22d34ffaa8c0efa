package server

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/internal/cluster"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/limit"
	"github.com/wsgate/wsgate/internal/proxyproto"
	"github.com/wsgate/wsgate/internal/tlsconf"
	"github.com/wsgate/wsgate/internal/vars"
)

// conn is one client connection and its keep-alive loop.
type conn struct {
	srv *Server
	c   net.Conn     // the client stream: tcp, or TLS over it
	tcp *net.TCPConn // the socket itself, for socket options
	id  uint64
	tls *tls.ConnectionState // nil on plain listeners
	ssl *connSSL             // what $ssl_* show; nil when tls is nil
	// plainOnTLS marks a plain HTTP client on an ssl listener: its
	// requests get nginx's 497 page (see clientcert.go).
	plainOnTLS bool

	// virtual marks a stream of an HTTP/2 connection carried over a
	// bridge: the TCP connection is counted once, by its own conn.
	virtual bool
	proto   string       // "HTTP/2.0" for such a stream; "" uses the request's
	h2      bool         // this connection speaks HTTP/2
	streams atomic.Int64 // open HTTP/2 streams

	br *bufio.Reader
	bw *bufio.Writer

	idle      atomic.Bool // waiting for the next request: safe to close on QUIT
	hijacked  bool        // handed to a tunnel: the tunnel owns c now
	reqs      int
	proxyAddr netip.AddrPort // from a PROXY protocol header, when the listener asks for one
	bind      netip.AddrPort // the listening address that accepted c
	// sendTimeout is the send_timeout of the response being written: the
	// deadline is re-armed before every write, as nginx's timer between
	// two successive writes.
	sendTimeout time.Duration
	armed       bool // sendWriter has set a write deadline on c, still in place
	remote      netip.AddrPort
	local       netip.AddrPort
	debug       bool         // debug_connection lists the client: its lines log at every level
	ntlm        *ntlmBinding // the backend connection bound to this one by `ntlm`; nil: none
	keepMin
	connLimits
	coreState
}

var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, http1.ReaderSize) }}
	writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4096) }}
	ctxPool    = sync.Pool{New: func() any { return new(vars.Ctx) }}
)

// serve runs the connection until it ends, and then releases it (end),
// unless it handed the connection to a goroutine of its own.
func (c *conn) serve() {
	handed := false
	defer func() {
		if !handed {
			c.end()
		}
	}()
	c.remote = addrPort(c.c.RemoteAddr())
	c.local = addrPort(c.c.LocalAddr())
	c.debug = c.srv.rt.Load().cfg.DebugConnections.Match(c.remote.Addr())
	if cfg := c.srv.rt.Load().tlsFor(c.bind); cfg != nil && c.tls == nil {
		if !c.handshakeTLS(cfg) {
			return
		}
		if c.tls != nil && c.tls.NegotiatedProtocol == "h2" {
			// An HTTP/2 connection keeps its goroutine for as long as it
			// lives: it gets a fresh one, with a small stack, rather than
			// this one, which the TLS handshake grew; this one goes back
			// to serving other connections.
			handed = true
			go func() {
				defer c.end()
				c.serveH2()
			}()
			return
		}
	}
	c.br = readerPool.Get().(*bufio.Reader)
	c.br.Reset(c.c)
	c.bw = writerPool.Get().(*bufio.Writer)
	c.bw.Reset(sendWriter{c})

	if rt := c.srv.rt.Load(); rt.proxyProto[c.bind] && !c.virtual {
		c.c.SetReadDeadline(time.Now().Add(c.connConf(rt).Client.HeaderTimeout))
		h, err := proxyproto.Read(c.br)
		if err != nil {
			rt.log.Printf(errlog.Error, c.id, "broken header: \"%v\" while reading PROXY protocol, client: %s", err, c.remote.Addr())
			return
		}
		c.proxyAddr, c.proxyDest, c.proxyTLVs = h.Source, h.Dest, h.TLVs
	}
	first := true
	for {
		rt := c.srv.rt.Load()
		cc := c.connConf(rt)
		wait := cc.Client.HeaderTimeout
		if !first {
			wait = cc.KeepaliveTimeout
			c.idleFrom(cc.KeepaliveMinTimeout)
			c.idle.Store(true)
			if c.srv.isClosing() {
				if cc.KeepaliveMinTimeout <= 0 {
					return
				}
				wait = min(wait, cc.KeepaliveMinTimeout)
			}
		}
		c.pipelined = !first && c.br.Buffered() > 0
		c.c.SetReadDeadline(time.Now().Add(wait))
		if _, err := c.br.Peek(1); err != nil {
			if first && isTimeout(err) && !c.srv.isClosing() {
				rt.log.Printf(errlog.Info, c.id, "client timed out (110: Connection timed out) while waiting for request, client: %s", c.remote.Addr())
			}
			return // closed, timed out between requests, or QUIT closed it
		}
		c.idle.Store(false)
		if !first {
			rt = c.srv.rt.Load() // a reload while idle: the next request sees it
		}
		if !first {
			cc = c.connConf(rt) // rt may be newer
		}
		cl := cc.Client
		if !first {
			// The keep-alive wait is over: the head gets its own timeout.
			c.c.SetReadDeadline(time.Now().Add(cl.HeaderTimeout))
		}
		c.srv.Stats.Reading.Add(1)
		req, err := http1.ReadRequest(c.br, http1.Limits{HeaderBufferSize: cl.HeaderBufferSize, LargeBuffers: cl.LargeBuffers[0], LargeBufferSize: cl.LargeBuffers[1],
			KeepSlashes: cl.KeepSlashes, MaxHeaders: cl.MaxHeaders})
		c.srv.Stats.Reading.Add(-1)
		if err != nil {
			if isTimeout(err) && cl.ResetTimedOut && c.tcp != nil {
				c.tcp.SetLinger(0) // reset_timedout_connection: free the socket at once
			}
			c.badRequest(rt, req, err)
			return
		}
		c.dropInvalidHeaders(rt, req, cc)
		c.reqs++
		first = false
		c.srv.Stats.Requests.Add(1)
		c.c.SetReadDeadline(time.Time{})
		c.srv.Stats.Writing.Add(1)
		keep := c.handle(rt, req, cc) && c.keepGoing(cc)
		if !c.hijacked {
			c.srv.Stats.Writing.Add(-1) // a tunnel stays "writing" until it closes, as in nginx
		}
		if c.hijacked || !keep || c.srv.isClosing() && cc.KeepaliveMinTimeout <= 0 {
			return
		}
	}
}

// end releases the connection once nothing serves it any more.
func (c *conn) end() {
	c.ntlm.close()
	if !c.hijacked {
		c.lingerClose()
		c.c.Close()
		if !c.virtual {
			c.srv.release(1)
			c.srv.Stats.Active.Add(-1)
		}
	}
	c.releaseBuffers()
	c.srv.removeConn(c)
}

// connConf is the server-level configuration of the address's default
// server, which governs the connection itself: header limits and timeouts
// (nginx reads headers before it knows the server), keepalive_timeout and
// keepalive_requests (nginx takes those from the last request's location;
// the default server is close enough and cheaper).
func (c *conn) connConf(rt *generation) *config.LocConf {
	if v := rt.vhostsFor(c.vhostAddr()); v != nil && v.def != nil {
		return v.def.Loc.Conf
	}
	return defaultLocConf
}

// keepGoing reports whether the connection may carry another request.
func (c *conn) keepGoing(cc *config.LocConf) bool {
	return cc.KeepaliveTimeout > 0 && c.reqs < cc.KeepaliveRequests
}

func (c *conn) releaseBuffers() {
	if c.br != nil {
		c.br.Reset(nil)
		readerPool.Put(c.br)
		c.br = nil
	}
	if c.bw != nil {
		c.bw.Reset(nil)
		writerPool.Put(c.bw)
		c.bw = nil
	}
}

// sock is c's socket as accepted. TLS replaces c.c on the serving
// goroutine; sock stays the same, so other goroutines close it.
func (c *conn) sock() net.Conn {
	if c.tcp != nil {
		return c.tcp
	}
	return c.c
}

func (c *conn) closeIfIdle() {
	if c.h2 && c.streams.Load() == 0 {
		c.sock().Close() // an HTTP/2 connection with no stream left
		return
	}
	if c.idle.Load() && c.keepMin.over() {
		c.c.SetReadDeadline(time.Now())
	}
}

func (s *Server) isClosing() bool { return s.stopping.Load() }

func addrPort(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	default:
		if a != nil {
			ap, _ = netip.ParseAddrPort(a.String())
		}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// badRequest answers a request head the parser refused, as nginx: the
// status the parser chose, and the connection closes. The refusal is
// logged in the error log (info) and, with what was parsed ($request is
// empty unless the request line was valid), in the access log of the
// server it was for. A head that never arrived whole goes to readFailed.
func (c *conn) badRequest(rt *generation, req *http1.Request, err error) {
	var se *http1.StatusError
	if !errors.As(err, &se) {
		c.readFailed(rt, req, err)
		return
	}
	x := c.refusal(rt, req)
	defer ctxPool.Put(x.vc)
	rt.log.Printf(errlog.Info, c.id, "%s, client: %s%s", se.Detail, c.remote.Addr(), requestField(x.vc))
	if se.Status == 400 && se.Reason == http1.ReasonHeaderTooLarge {
		x.errorPageTitled(400, se.Reason)
		return
	}
	x.errorPage(se.Status)
}

// readFailed ends a connection whose request head did not arrive whole:
// client_header_timeout expired or the client went away mid-head. As in
// nginx it is logged at info and, with nothing sent, in the access log
// (408 for a timeout, 400 otherwise).
func (c *conn) readFailed(rt *generation, req *http1.Request, err error) {
	status, what := 400, ""
	switch {
	case isTimeout(err):
		status, what = 408, "client timed out (110: Connection timed out)"
	case errors.Is(err, io.ErrUnexpectedEOF):
		what = "client prematurely closed connection"
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		return // closed before a request began, or by wsgate itself
	default:
		what = "recv() failed (" + err.Error() + ")"
	}
	x := c.refusal(rt, req)
	defer ctxPool.Put(x.vc)
	rt.log.Printf(errlog.Info, c.id, "%s while reading client request headers, client: %s%s", what, c.remote.Addr(), requestField(x.vc))
	x.vc.Status = status
	x.done()
}

// refusal is the exchange of a request the parser did not accept: the
// server is the one its Host names, if it got that far, else the
// address's default server. It counts in stub_status's requests, as
// nginx counts every request that began to arrive.
func (c *conn) refusal(rt *generation, req *http1.Request) *exchange {
	c.srv.Stats.Requests.Add(1)
	if req == nil || req.Proto == "" {
		line := ""
		if req != nil {
			line = req.Line
		}
		// No valid request line: $request is the line as received.
		req = &http1.Request{ContentLength: -1, Target: line}
	}
	req.Close = true
	x := &exchange{conn: c, rt: rt, req: req, close: true, lc: defaultLocConf}
	x.vc = ctxPool.Get().(*vars.Ctx)
	x.vc.Reset(rt.cfg.Vars)
	if vh := rt.vhostsFor(c.vhostAddr()); vh != nil && vh.def != nil {
		x.srv, _ = vh.find(req.HostName)
		x.lc = x.srv.Loc.Conf
		x.fillVars(nil)
	} else {
		x.vc.Start = time.Now()
		x.vc.Remote, x.vc.Local = c.remote, c.local
	}
	x.vc.ConnReqs = c.reqs + 1
	x.log = x.logFor(x.lc)
	return x
}

// requestField is the ", request: ..." part of an error-log line, empty
// without a valid request line.
func requestField(vc *vars.Ctx) string {
	if vc.RequestLine() == "" {
		return ""
	}
	return ", request: \"" + vc.RequestLine() + "\""
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// exchange is one request and its response.
type exchange struct {
	conn *conn
	rt   *generation
	req  *http1.Request
	vc   *vars.Ctx
	srv  *config.Server
	loc  *config.Location
	lc   *config.LocConf
	log  *errlog.Logger

	status      int
	upstreamOut upstreamOut  // per-response proxy state: X-Accel-Buffering, upstream variables
	extra       http1.Header // headers the handler adds to an error page
	respHeader  http1.Header // the response's headers, for $sent_http_*
	stopRewrite bool         // `break` ends the rewrite phase
	uriChanged  bool         // a rewrite changed $uri: the location is searched again
	uriChanges  int          // nginx's uri_changes: what is left of maxURIChanges, plus one
	internal    bool         // redirected inside the server: `internal` locations are reachable
	phased      bool         // runs through the phases: error_page applies
	errorPaged  bool         // error_page redirected once (without recursive_error_pages)
	errStatus   int          // the status an error_page gives the answer; 0: its own
	bodyRead    bool         // the request body was read to its end (sent upstream)
	ctxKept     bool         // a tunnel holds vc until it closes, for its log line
	realIPDone  bool
	uid         *uidState         // userid: the cookie read and the identifier to set
	sub         bool              // a mirror subrequest: its answer is dropped, it is not logged
	subst       *substitution     // sub_filter rewrites the body (subHead)
	recode      *recoding         // charset recodes the body (charset)
	preread     *requestBody      // the body read whole before the content handler (mirror)
	leases      []limit.ConnLease // limit_conn slots held until the request or its tunnel ends
	sent        int64             // bytes written to the client for this request
	bodySent    int64
	gzip        bool         // the response's body is gzip-compressed (gzipHead)
	trailers    bool         // the chunked body ends with add_trailer's fields (filters)
	upTrailer   http1.Header // the backend's trailer fields the chunked body ends with (proxy_pass_trailers)
	cut         *byteCut     // the range of a proxied body the client gets (proxy_force_ranges)
	gzipVary    bool         // nginx's r->gzip_vary: gzip_static or a range met gzip
	close       bool
	otelSeen    bool        // otelStart ran: the trace decision is made once per request
	otel        *otelState  // the trace context; nil until a location needs one
	dyn         *dynTarget  // proxy_pass with variables, evaluated (proxy_dynamic.go)
	cache       *cacheState // proxy_cache's part of the request (cache.go)
	coreExchange

	// sessRes is the WebSocket's session, registered at preaccess (nil
	// when none); a tunnel takes it, or the end of the request cancels it.
	sessRes *cluster.Reservation
}

// handle runs one request through nginx's phases. It reports whether the
// connection may serve another request.
func (c *conn) handle(rt *generation, req *http1.Request, cc *config.LocConf) bool {
	x := &exchange{conn: c, rt: rt, req: req, close: req.Close || !c.keepGoing(cc)}
	vc := ctxPool.Get().(*vars.Ctx)
	defer func() {
		if !x.ctxKept {
			ctxPool.Put(vc) // unless a tunnel keeps it for its log line
		}
	}()
	vc.Reset(rt.cfg.Vars)
	x.vc = vc

	vh := rt.vhostsFor(c.vhostAddr())
	if vh == nil {
		return false // the listener was removed by a reload mid-flight
	}
	host := req.HostName
	srv, caps, re, reErr := vh.lookup(host)
	x.srv = srv
	x.fillVars(nil)
	if caps != nil {
		x.setCaptures(re, caps)
	}
	vc.Warn = x
	x.uriChanges = maxURIChanges + 1
	x.phased = true
	// nginx's TLS checks come before the phases, with the server's settings.
	x.lc = srv.Loc.Conf
	x.log = x.logFor(x.lc)
	if reErr != nil {
		return x.hostRegexFailed(reErr)
	}
	if answered, keep := x.acmeChallenge(); answered {
		return keep
	}
	if ok, keep := x.checkSSL(host); !ok {
		return keep
	}
	keep := x.serverPhases()
	x.preread.close() // a body no handler sent
	if !c.hijacked {
		limit.ReleaseAll(x.leases) // a tunnel releases them when it closes
	}
	if x.sessRes != nil { // no tunnel took it
		x.sessRes.Cancel()
		x.sessRes = nil
	}
	return keep
}

func spaceIf(s string) string {
	if s == "" {
		return ""
	}
	return " "
}

func (x *exchange) fillVars(hostCaps []string) {
	c, req, vc := x.conn, x.req, x.vc
	vc.Method, vc.Target, vc.RequestURI, vc.Proto = req.Method, req.Target, req.RequestURI, req.Proto
	if c.proto != "" {
		vc.Proto = c.proto
	}
	vc.Path, vc.Args = req.URI, req.RawQuery
	vc.Header = &req.Header // a pointer: boxing the slice would allocate
	vc.Files = x            // $document_root, $realpath_root, $request_filename
	vc.Core = x             // $connection_time, $pipe, $request_body, ...
	vc.Loc = x              // $invalid_referer, $secure_link, $uid_*, ...
	vc.Host = req.HostName
	vc.Scheme = "http"
	if c.tls != nil {
		vc.Scheme = "https"
		vc.SSLProtocol, vc.SSLCipher, vc.SSLServerName = tlsVersion(c.tls.Version), tlsconf.CipherName(c.tls.CipherSuite), c.tls.ServerName
		if c.ssl != nil {
			vc.TLS = &c.ssl.SSL
		}
	}
	vc.Remote, vc.Local = c.remote, c.local
	vc.ProxyProtocol = c.proxyAddr
	vc.Stats = &c.srv.Stats
	vc.ConnID, vc.ConnReqs = c.id, c.reqs
	vc.Start = time.Now()
	vc.ReqLength = int64(req.HeaderBytes)
	if len(x.srv.Names) > 0 {
		vc.ServerName = x.srv.Names[0].Name
	}
	if hostCaps != nil {
		vc.Captures = append(vc.Captures[:0], hostCaps...)
	}
}

// rewrite runs a location's rewrite-phase instructions. `if` switches the
// request to the if block's configuration and runs its instructions inline,
// then carries on with the rest, as nginx does.
func (x *exchange) rewrite(loc *config.Location) (done, keep bool) {
	if x.stopRewrite {
		return false, false
	}
	for _, op := range loc.Rewrite {
		switch op.Kind {
		case config.OpBreak:
			x.stopRewrite = true
			return false, false
		case config.OpSet:
			x.vc.Set(op.Var, op.Value.Eval(x.vc))
		case config.OpReturn:
			return true, x.doReturn(op)
		case config.OpRewrite:
			if done, keep := x.doRewrite(op.Rw); done || x.stopRewrite {
				return done, keep
			}
		case config.OpIf:
			ok, err := x.cond(op.Cond)
			if err != nil {
				return true, x.regexFailed(err)
			}
			if ok {
				x.lc = op.If.Conf
				x.log = x.logFor(x.lc)
				if d, k := x.rewrite(op.If); d || x.stopRewrite {
					return d, k
				}
			}
		}
	}
	return false, false
}

// cond evaluates an if() condition; err is a regex match cut short.
func (x *exchange) cond(c *config.Cond) (bool, error) {
	v := c.Var.Eval(x.vc)
	switch c.Op {
	case "":
		return v != "" && v != "0", nil
	case "=":
		return v == c.Value.Eval(x.vc), nil
	case "!=":
		return v != c.Value.Eval(x.vc), nil
	case "~", "~*", "!~", "!~*":
		m, err := c.Regex.FindStringSubmatch(v)
		if err != nil {
			return false, err
		}
		x.logMatch(c.Pattern, v, m != nil)
		if m != nil {
			x.setCaptures(c.Regex, m)
		}
		return (m != nil) == (c.Op[0] == '~'), nil
	}
	st, err := os.Stat(v)
	neg := strings.HasPrefix(c.Op, "!")
	var ok bool
	switch strings.TrimPrefix(c.Op, "!") {
	case "-f":
		ok = err == nil && st.Mode().IsRegular()
	case "-d":
		ok = err == nil && st.IsDir()
	case "-e":
		ok = err == nil
	case "-x":
		ok = err == nil && st.Mode()&0o100 != 0 // the owner's bit, as nginx's ngx_is_exec
	}
	return ok != neg, nil
}

func itoa(n int) string { return strconv.Itoa(n) }

// statusStrings holds the three-digit statuses as strings, for
// $upstream_status without an allocation per response.
var statusStrings = func() (t [600]string) {
	for i := 100; i < len(t); i++ {
		t[i] = strconv.Itoa(i)
	}
	return t
}()

func statusString(code int) string {
	if code >= 100 && code < len(statusStrings) {
		return statusStrings[code]
	}
	return strconv.Itoa(code)
}

// isUpgrade reports whether the request asks for a WebSocket.
func (x *exchange) isUpgrade() bool {
	return strings.EqualFold(x.req.Header.Get("Upgrade"), "websocket")
}

// sendWriter arms send_timeout before each write to the client.
type sendWriter struct{ c *conn }

func (w sendWriter) Write(p []byte) (n int, err error) {
	defer w.c.noteSend(&err)
	if w.c.rate > 0 {
		return w.c.writeLimited(p)
	}
	if d := w.c.sendTimeout; d > 0 {
		w.c.c.SetWriteDeadline(time.Now().Add(d))
		w.c.armed = true
	}
	return w.c.c.Write(p)
}
