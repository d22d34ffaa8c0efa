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

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/limit"
	"github.com/wsgate/wsgate/internal/proxyproto"
	"github.com/wsgate/wsgate/internal/vars"
)

// conn is one client connection and its keep-alive loop.
type conn struct {
	srv *Server
	c   net.Conn     // the client stream: tcp, or TLS over it
	tcp *net.TCPConn // the socket itself, for socket options
	id  uint64
	tls *tls.ConnectionState // nil on plain listeners

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
	remote      netip.AddrPort
	local       netip.AddrPort
}

var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, http1.ReaderSize) }}
	writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4096) }}
	ctxPool    = sync.Pool{New: func() any { return new(vars.Ctx) }}
)

func (c *conn) serve() {
	defer c.srv.removeConn(c)
	defer func() {
		if !c.hijacked {
			c.c.Close()
			if !c.virtual {
				c.srv.release(1)
				c.srv.Stats.Active.Add(-1)
			}
		}
		c.releaseBuffers()
	}()
	c.remote = addrPort(c.c.RemoteAddr())
	c.local = addrPort(c.c.LocalAddr())
	if cfg := c.srv.rt.Load().tlsFor(c.bind); cfg != nil && c.tls == nil {
		if !c.handshakeTLS(cfg) {
			return
		}
		if c.tls.NegotiatedProtocol == "h2" {
			c.serveH2()
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
		c.proxyAddr = h.Source
	}
	first := true
	for {
		rt := c.srv.rt.Load()
		cc := c.connConf(rt)
		wait := cc.Client.HeaderTimeout
		if !first {
			wait = cc.KeepaliveTimeout
			c.idle.Store(true)
			if c.srv.isClosing() {
				return
			}
		}
		c.c.SetReadDeadline(time.Now().Add(wait))
		if _, err := c.br.Peek(1); err != nil {
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
		req, err := http1.ReadRequest(c.br, http1.Limits{HeaderBufferSize: cl.HeaderBufferSize, LargeBuffers: cl.LargeBuffers[0], LargeBufferSize: cl.LargeBuffers[1]})
		c.srv.Stats.Reading.Add(-1)
		if err != nil {
			if isTimeout(err) && cl.ResetTimedOut && c.tcp != nil {
				c.tcp.SetLinger(0) // reset_timedout_connection: free the socket at once
			}
			c.badRequest(rt, err)
			return
		}
		c.reqs++
		first = false
		c.srv.Stats.Requests.Add(1)
		c.c.SetReadDeadline(time.Time{})
		c.srv.Stats.Writing.Add(1)
		keep := c.handle(rt, req, cc) && c.keepGoing(cc)
		if !c.hijacked {
			c.srv.Stats.Writing.Add(-1) // a tunnel stays "writing" until it closes, as in nginx
		}
		if c.hijacked || !keep || c.srv.isClosing() {
			return
		}
	}
}

// connConf is the server-level configuration of the address's default
// server, which governs the connection itself: header limits and timeouts
// (nginx reads headers before it knows the server), keepalive_timeout and
// keepalive_requests (nginx takes those from the last request's location;
// the default server is close enough and cheaper).
func (c *conn) connConf(rt *generation) *config.LocConf {
	if v := rt.vhostsFor(c.local); v != nil && v.def != nil {
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

func (c *conn) closeIfIdle() {
	if c.h2 && c.streams.Load() == 0 {
		c.c.Close() // an HTTP/2 connection with no stream left
		return
	}
	if c.idle.Load() {
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

// badRequest answers a request that could not be parsed, as nginx: the
// status the parser chose, and the connection closes.
func (c *conn) badRequest(rt *generation, err error) {
	var se *http1.StatusError
	if !errors.As(err, &se) {
		if !errors.Is(err, io.EOF) && !isTimeout(err) && !errors.Is(err, net.ErrClosed) {
			rt.log.Printf(errlog.Info, c.id, "client %s closed connection while reading client request line (%v)", c.remote.Addr(), err)
		}
		return
	}
	rt.log.Printf(errlog.Info, c.id, "%s, client: %s", se.Detail, c.remote.Addr())
	x := &exchange{conn: c, rt: rt, req: &http1.Request{Method: "GET", Proto: "HTTP/1.0", Close: true}}
	x.vc = ctxPool.Get().(*vars.Ctx)
	x.vc.Reset(rt.cfg.Vars)
	defer ctxPool.Put(x.vc)
	x.lc = defaultLocConf
	x.vc.Start = time.Now()
	x.vc.Remote, x.vc.Local, x.vc.Proto = c.remote, c.local, "HTTP/1.1"
	title := se.Reason
	if se.Status == 400 && se.Reason == "Request Header Or Cookie Too Large" {
		x.errorPageTitled(400, title)
		return
	}
	x.errorPage(se.Status)
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
	extra       http1.Header // headers the handler adds to an error page
	respHeader  http1.Header // the response's headers, for $sent_http_*
	stopRewrite bool         // `break` ends the rewrite phase
	bodyRead    bool         // the request body was read to its end (sent upstream)
	ctxKept     bool         // a tunnel holds vc until it closes, for its log line
	realIPDone  bool
	leases      []limit.ConnLease // limit_conn slots held until the request or its tunnel ends
	sent        int64             // bytes written to the client for this request
	bodySent    int64
	close       bool
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

	vh := rt.vhostsFor(c.local)
	if vh == nil {
		return false // the listener was removed by a reload mid-flight
	}
	host := req.HostName
	srv, caps := vh.find(host)
	x.srv = srv
	x.fillVars(caps)

	// Post-read (realip with the server's settings), then the server
	// rewrite phase.
	x.lc = srv.Loc.Conf
	x.log = rt.logFor(x.lc)
	x.realIP()
	if done, keep := x.rewrite(srv.Loc); done {
		return keep
	}
	// Find the location, then its rewrite phase.
	loc, lcaps := findLocation(srv.Locations, vc.Path)
	if loc == nil {
		loc = srv.Locations
	}
	if lcaps != nil {
		vc.Captures = append(vc.Captures[:0], lcaps...)
	}
	x.loc, x.lc = loc, loc.Conf
	x.log = rt.logFor(x.lc)
	if x.log.Enabled(errlog.Debug) {
		x.log.Printf(errlog.Debug, c.id, "using configuration \"%s%s%s\", client: %s, request: \"%s\"", loc.Modifier, spaceIf(loc.Modifier), loc.Path, c.remote.Addr(), requestLine(vc))
	}
	x.realIP()
	x.stopRewrite = false // `break` ends one level's instructions, not the next level's
	if done, keep := x.rewrite(loc); done {
		return keep
	}
	// Preaccess and access: a refused handshake never costs a backend
	// connection.
	for _, phase := range [...]func() (bool, bool){x.preaccess, x.access, x.checkOrigin, x.checkWebSocket} {
		if ok, keep := phase(); !ok {
			limit.ReleaseAll(x.leases)
			if x.isUpgrade() {
				c.srv.metrics.Handshake("rejected")
			}
			return keep
		}
	}
	// Content phase.
	var keep bool
	switch {
	case x.lc.StubStatus:
		keep = x.stubStatus()
	case x.lc.Status != "":
		keep = x.statusHandler()
	case x.lc.Proxy != nil:
		keep = x.proxy()
	default:
		keep = x.static()
	}
	if !c.hijacked {
		limit.ReleaseAll(x.leases) // a tunnel releases them when it closes
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
	vc.Method, vc.RequestURI, vc.Proto = req.Method, req.RequestURI, req.Proto
	if c.proto != "" {
		vc.Proto = c.proto
	}
	vc.Path, vc.Args = normalizePath(req.Path), req.RawQuery
	vc.Header = &req.Header // a pointer: boxing the slice would allocate
	vc.Host = req.HostName
	vc.Scheme = "http"
	if c.tls != nil {
		vc.Scheme = "https"
		vc.SSLProtocol, vc.SSLCipher, vc.SSLServerName = tlsVersion(c.tls.Version), tls.CipherSuiteName(c.tls.CipherSuite), c.tls.ServerName
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
		case config.OpIf:
			if x.cond(op.Cond) {
				x.lc = op.If.Conf
				x.log = x.rt.logFor(x.lc)
				if d, k := x.rewrite(op.If); d || x.stopRewrite {
					return d, k
				}
			}
		}
	}
	return false, false
}

func (x *exchange) cond(c *config.Cond) bool {
	v := c.Var.Eval(x.vc)
	switch c.Op {
	case "":
		return v != "" && v != "0"
	case "=":
		return v == c.Value.Eval(x.vc)
	case "!=":
		return v != c.Value.Eval(x.vc)
	case "~", "~*":
		m := c.Regex.FindStringSubmatch(v)
		if m != nil {
			x.vc.Captures = append(x.vc.Captures[:0], m...)
		}
		return m != nil
	case "!~", "!~*":
		return !c.Regex.MatchString(v)
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
		ok = err == nil && st.Mode()&0o111 != 0
	}
	return ok != neg
}

// normalizePath turns the request path into nginx's $uri: percent-decoded,
// with "//", "/./" and "/../" resolved, so that location matching cannot be
// sidestepped with an encoded or dotted path.
func normalizePath(p string) string {
	if !strings.Contains(p, "%") && !strings.Contains(p, "//") && !strings.Contains(p, "/.") {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '%' && i+2 < len(p) && isHex(p[i+1]) && isHex(p[i+2]) {
			b.WriteByte(unhex(p[i+1])<<4 | unhex(p[i+2]))
			i += 2
			continue
		}
		b.WriteByte(p[i])
	}
	segs := strings.Split(b.String(), "/")
	out := make([]string, 0, len(segs))
	for i, s := range segs {
		switch s {
		case "":
			if i == len(segs)-1 {
				out = append(out, "")
			}
		case ".":
			if i == len(segs)-1 {
				out = append(out, "")
			}
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			if i == len(segs)-1 {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	return "/" + strings.Join(out, "/")
}

func isHex(b byte) bool {
	return b >= '0' && b <= '9' || b >= 'a' && b <= 'f' || b >= 'A' && b <= 'F'
}

func unhex(b byte) byte {
	switch {
	case b >= '0' && b <= '9':
		return b - '0'
	case b >= 'a' && b <= 'f':
		return b - 'a' + 10
	}
	return b - 'A' + 10
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

func (w sendWriter) Write(p []byte) (int, error) {
	if d := w.c.sendTimeout; d > 0 {
		w.c.c.SetWriteDeadline(time.Now().Add(d))
	}
	return w.c.c.Write(p)
}
