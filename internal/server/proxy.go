package server

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/proxy"
	"github.com/wsgate/wsgate/internal/upstream"
	"github.com/wsgate/wsgate/internal/vars"
)

// proxy is the proxy_pass content handler: pick a peer (trying the next
// one on connect errors and timeouts, nginx's default proxy_next_upstream),
// send the request, then either join the two connections after a 101 or
// stream the response back.
func (x *exchange) proxy() bool {
	pp := x.lc.Proxy
	if x.req.ContentLength > x.lc.ClientMaxBody && x.lc.ClientMaxBody > 0 {
		x.log.Printf(errlog.Error, x.conn.id, "client intended to send too large body: %d bytes, client: %s", x.req.ContentLength, x.conn.remote.Addr())
		x.close = true
		return x.errorPage(413)
	}
	pool := x.rt.pools[pp.Upstream]
	upgrade := x.req.Header.Has("Upgrade") && x.req.Method == "GET" && x.req.Major == 1 && x.req.Minor == 1
	uri := proxy.URI(pp, x.loc, x.vc)
	x.vc.ProxyHost = pp.HostPort

	body := proxy.Body{Length: -1}
	if x.req.ContentLength >= 0 {
		body.Length = x.req.ContentLength
	} else if x.req.Chunked {
		if x.lc.ProxyHTTPVersion == "1.1" {
			body.Chunked = true
		} else {
			// An HTTP/1.0 backend needs a length: read the body first,
			// bounded by client_max_body_size.
			return x.proxyBuffered(pool, uri)
		}
	}
	hb := headPool.Get().(*[]byte)
	head := proxy.AppendRequest((*hb)[:0], x.req.Method, uri, x.req, x.lc, x.vc, pp.HostPort, body)
	var reqBody io.Reader
	if body.Length > 0 || body.Chunked {
		reqBody = x.clientBody()
	}
	ok := x.roundTrip(pool, head, reqBody, body, upgrade)
	putHead(hb, head)
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

// clientBody reads the request body under client_body_timeout, re-armed
// before each read as nginx's timer between two successive reads.
func (x *exchange) clientBody() io.Reader {
	return &deadlineReader{r: x.req.Body(x.conn.br), c: x.conn.c, d: x.lc.Client.BodyTimeout}
}

func (x *exchange) proxyBuffered(pool *upstream.Upstream, uri string) bool {
	limit := x.lc.ClientMaxBody
	r := x.clientBody()
	if limit > 0 {
		r = io.LimitReader(r, limit+1)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		x.close = true
		return x.errorPage(400)
	}
	if limit > 0 && int64(len(data)) > limit {
		x.close = true
		return x.errorPage(413)
	}
	x.bodyRead = true
	body := proxy.Body{Length: int64(len(data))}
	hb := headPool.Get().(*[]byte)
	head := proxy.AppendRequest((*hb)[:0], x.req.Method, uri, x.req, x.lc, x.vc, x.lc.Proxy.HostPort, body)
	ok := x.roundTrip(pool, head, strings.NewReader(string(data)), body, false)
	putHead(hb, head)
	return ok
}

// try is one attempt at a peer, for $upstream_addr and logs.
type try struct {
	addr   string
	status string
}

// outcome is how one peer's exchange ended.
type outcome struct {
	keep bool  // the client connection may serve another request
	err  error // the peer failed before anything reached the client
	held *held // an answer whose status proxy_next_upstream names
}

// held is a response kept back while the next peer is tried; if no peer is
// left, it goes to the client, as nginx sends the last answer it got.
type held struct {
	peer *upstream.Peer
	bc   *net.TCPConn
	br   *bufio.Reader
	resp *http1.Response
}

func (h *held) discard(x *exchange) {
	h.bc.Close()
	x.conn.srv.release(1)
	h.peer.Done(true)
	putReader(h.br)
}

func putReader(br *bufio.Reader) {
	br.Reset(nil)
	readerPool.Put(br)
}

func (x *exchange) roundTrip(pool *upstream.Upstream, head []byte, reqBody io.Reader, body proxy.Body, upgrade bool) bool {
	nu := x.lc.NextUpstream
	att := pool.NewAttempt(x.hashKey())
	var triesBuf [2]try // one try, or a retry: no allocation
	tries := triesBuf[:0]
	var lastErr error
	var last *held
	start := time.Now()
	// A body streamed to one peer cannot be sent again, and a method that
	// is not idempotent is not repeated unless non_idempotent says so.
	sent := false
	idempotent := x.req.Method == "GET" || x.req.Method == "HEAD" || x.req.Method == "OPTIONS" || x.req.Method == "PUT" || x.req.Method == "DELETE" || x.req.Method == "TRACE"
	sticky := x.lc.Proxy.Upstream.Sticky
	var route string
	var stickyPeer *upstream.Peer
	if sticky != nil {
		route = x.vc.Cookie(sticky.Name)
		stickyPeer = att.Sticky(route)
	}
	for {
		if len(tries) > 0 {
			if nu.Mask&config.NextOff != 0 ||
				(nu.Tries > 0 && len(tries) >= nu.Tries) ||
				(nu.Timeout > 0 && time.Since(start) >= nu.Timeout) ||
				(sent && (body.Length > 0 || body.Chunked)) ||
				(sent && !idempotent && nu.Mask&config.NextNonIdempotent == 0) {
				break
			}
		}
		peer := stickyPeer
		stickyPeer = nil
		if peer == nil {
			var err error
			if peer, err = att.Next(); err != nil {
				break
			}
		}
		if sticky != nil {
			x.setRoute(sticky, route, peer)
		}
		idle := x.rt.idle[x.lc.Proxy.Upstream]
		bc, uses := idle.get(peer.Addr())
		var err error
		if bc == nil {
			if !x.conn.srv.reserve() {
				peer.Done(false)
				lastErr = errNoSlot
				break
			}
			bc, err = x.dial(peer.Addr())
		}
		if err != nil {
			x.conn.srv.release(1)
			peer.Done(true)
			lastErr = err
			tries = append(tries, try{addr: peer.Addr(), status: statusFor(err)})
			x.log.Printf(errlog.Error, x.conn.id, "%s while connecting to upstream, client: %s, server: %s, request: \"%s\", upstream: \"http://%s%s\", host: \"%s\"",
				describe(err, "connect()"), x.conn.remote.Addr(), x.vc.ServerName, requestLine(x.vc), peer.Addr(), x.vc.RequestURI, x.req.Host)
			if !retries(nu, err) {
				break
			}
			continue
		}
		tries = append(tries, try{addr: peer.Addr()})
		out := x.exchangeWith(peer, bc, uses, head, reqBody, body, upgrade, &tries, start)
		sent = true
		switch {
		case out.held != nil:
			if last != nil {
				last.discard(x)
			}
			last, lastErr = out.held, nil
			continue
		case out.err != nil:
			lastErr = out.err
			if retries(nu, out.err) {
				continue
			}
		default:
			if last != nil {
				last.discard(x)
			}
			return out.keep
		}
		break
	}
	x.setUpstreamVars(tries, start)
	if last != nil {
		defer putReader(last.br)
		keep, _ := x.relayResponse(last.bc, last.br, last.resp)
		last.bc.Close()
		x.conn.srv.release(1)
		last.peer.Done(false)
		return keep
	}
	status := 502
	switch {
	case lastErr == errNoSlot:
		status = 503
	case lastErr != nil && isTimeout(lastErr):
		status = 504
	}
	if upgrade {
		x.conn.srv.metrics.Handshake("failed")
	}
	if len(tries) == 0 && lastErr == nil {
		// No peer is live (down, failed, unhealthy or at max_conns): say
		// when to come back, so clients do not hammer a dead pool.
		x.log.Printf(errlog.Error, x.conn.id, "no live upstreams while connecting to upstream, client: %s, server: %s, request: \"%s\", upstream: \"http://%s\"", x.conn.remote.Addr(), x.vc.ServerName, requestLine(x.vc), x.lc.Proxy.HostPort)
		x.extra = append(x.extra, http1.Field{Name: "Retry-After", Value: "1"})
	}
	return x.errorPage(status)
}

var errNoSlot = errors.New("worker_connections are not enough")

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

func (x *exchange) dial(addr string) (*net.TCPConn, error) {
	var ctx context.Context = context.Background()
	if t := x.lc.ConnectTimeout; t > 0 {
		ctx = connectDeadline{time.Now().Add(t)}
	}
	d := net.Dialer{KeepAlive: -1}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	tc := c.(*net.TCPConn)
	if !x.lc.TCPNoDelay {
		tc.SetNoDelay(false) // Go's dialer has already turned Nagle off
	}
	return tc, nil
}

// connectDeadline is the context of a backend dial: proxy_connect_timeout
// and nothing else. The net package turns a context's deadline into the
// socket's write deadline while connect() is pending, which is all the
// timeout needs, and reports its expiry as a timeout error; a
// Dialer.Timeout would instead wrap the context in a timer-backed one and
// register a cancellation callback on it: allocations and a timer per
// dial. Nothing ever cancels a connectDeadline: Done is a channel that
// never closes (the net package applies a deadline only to a context that
// has one), so Err is always nil, and AfterFunc, which context.AfterFunc
// prefers over watching Done, never runs its function.
type connectDeadline struct{ at time.Time }

var neverDone = make(chan struct{})

func (c connectDeadline) Deadline() (time.Time, bool)         { return c.at, true }
func (c connectDeadline) Done() <-chan struct{}               { return neverDone }
func (c connectDeadline) Err() error                          { return nil }
func (c connectDeadline) Value(any) any                       { return nil }
func (c connectDeadline) AfterFunc(func()) (stop func() bool) { return stopNothing }

func stopNothing() bool { return true }

// describe renders a socket error as nginx does: "connect() failed (111:
// Connection refused)" or "upstream timed out (110: Connection timed out)".
func describe(err error, op string) string {
	if isTimeout(err) {
		return "upstream timed out (110: Connection timed out)"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return fmt.Sprintf("%s failed (%d: %s)", op, int(errno), capitalize(errno.Error()))
	}
	return fmt.Sprintf("%s failed (%v)", op, err)
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// exchangeWith sends the request to a connected peer and relays the answer,
// or hands back a failure or a held answer for the next peer to replace.
func (x *exchange) exchangeWith(peer *upstream.Peer, bc *net.TCPConn, uses int, head []byte, reqBody io.Reader, body proxy.Body, upgrade bool, tries *[]try, start time.Time) outcome {
	var reqHead []byte // the head already written on a reused connection
	if uses > 0 {
		// A kept-alive connection the peer may have closed meanwhile: if
		// the request cannot even start on it, start again on a fresh one.
		bc.SetWriteDeadline(time.Now().Add(x.lc.SendTimeout))
		if _, err := bc.Write(head); err != nil && stale(err) {
			bc.Close()
			nc, derr := x.dial(peer.Addr())
			if derr != nil {
				x.conn.srv.release(1)
				peer.Done(true)
				return outcome{err: derr}
			}
			bc, uses = nc, 0
		} else if err != nil {
			bc.Close()
			x.conn.srv.release(1)
			peer.Done(true)
			return outcome{err: err}
		} else {
			reqHead, head = head, nil // already sent
		}
	}
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(bc)
	owned := true // bc, br and the peer slot are released here unless handed on
	fail := func(failed bool) {
		if owned {
			owned = false
			bc.Close()
			x.conn.srv.release(1)
			peer.Done(failed)
			putReader(br)
		}
	}
	defer fail(false)
	nu := x.lc.NextUpstream
	if uses == 0 && body.Length <= 0 && !body.Chunked {
		if err := x.sendAwait(bc, head); err != nil {
			fail(true)
			x.upstreamError(err, "while sending request to upstream", peer)
			return outcome{err: err}
		}
	} else {
		bc.SetWriteDeadline(time.Now().Add(x.lc.SendTimeout))
		if len(head) > 0 {
			if _, err := bc.Write(head); err != nil {
				fail(true)
				x.upstreamError(err, "while sending request to upstream", peer)
				return outcome{err: err}
			}
		}
		if body.Length > 0 || body.Chunked {
			err := sendBody(bc, reqBody, body)
			x.bodyRead = err == nil
			if err != nil {
				fail(true)
				x.upstreamError(err, "while sending request to upstream", peer)
				x.close = true
				x.setUpstreamVars(*tries, start)
				return outcome{keep: x.errorPage(502)}
			}
		}
		bc.SetWriteDeadline(time.Time{})
		bc.SetReadDeadline(time.Now().Add(x.lc.ReadTimeout))
	}
	resp, err := http1.ReadResponse(br, x.req.Method, x.lc.BufferSize)
	if err != nil && reqHead != nil && stale(err) && body.Length <= 0 && !body.Chunked {
		// The peer closed the kept-alive connection as the request went
		// out: send it again on a fresh connection, once.
		bc.Close()
		nc, derr := x.dial(peer.Addr())
		if derr != nil {
			owned = false
			x.conn.srv.release(1)
			putReader(br)
			peer.Done(true)
			return outcome{err: derr}
		}
		bc, uses = nc, 0
		br.Reset(bc)
		bc.SetWriteDeadline(time.Now().Add(x.lc.SendTimeout))
		if _, err = bc.Write(reqHead); err == nil {
			bc.SetReadDeadline(time.Now().Add(x.lc.ReadTimeout))
			resp, err = http1.ReadResponse(br, x.req.Method, x.lc.BufferSize)
		}
		head = reqHead
	}
	for err == nil && resp.Status >= 100 && resp.Status < 200 && resp.Status != 101 {
		resp, err = http1.ReadResponse(br, x.req.Method, x.lc.BufferSize) // 100 Continue and friends are not relayed
	}
	if err != nil {
		fail(true)
		(*tries)[len(*tries)-1].status = statusFor(err)
		what := "while reading response header from upstream"
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			x.log.Printf(errlog.Error, x.conn.id, "upstream prematurely closed connection %s, client: %s, server: %s, request: \"%s\", upstream: \"http://%s%s\", host: \"%s\"", what, x.conn.remote.Addr(), x.vc.ServerName, requestLine(x.vc), peer.Addr(), x.vc.RequestURI, x.req.Host)
		} else {
			x.upstreamError(err, what, peer)
		}
		var se *http1.StatusError
		if errors.As(err, &se) && !retries(nu, err) {
			x.setUpstreamVars(*tries, start)
			return outcome{keep: x.errorPage(502)}
		}
		return outcome{err: err}
	}
	(*tries)[len(*tries)-1].status = statusString(resp.Status)
	x.conn.srv.metrics.PeerResponse(x.lc.Proxy.Upstream.Name, peer.Addr(), time.Since(start), false)
	if resp.Status == 101 {
		if !upgrade {
			fail(true)
			err := errors.New("upstream sent 101 to a request that did not ask to switch protocols")
			x.upstreamError(err, "while reading response header from upstream", peer)
			x.setUpstreamVars(*tries, start)
			return outcome{keep: x.errorPage(502)}
		}
		if err := proxy.CheckSwitch(x.req, resp); err != nil {
			fail(true)
			x.upstreamError(err, "while reading response header from upstream", peer)
			if retries(nu, err) {
				return outcome{err: err}
			}
			x.setUpstreamVars(*tries, start)
			return outcome{keep: x.errorPage(502)}
		}
		owned = false // the tunnel owns bc and the peer slot now
		x.setUpstreamVars(*tries, start)
		x.startTunnel(peer, bc, br, resp, start)
		putReader(br)
		return outcome{}
	}
	if nu.Mask&config.NextStatus(resp.Status) != 0 {
		owned = false
		return outcome{held: &held{peer: peer, bc: bc, br: br, resp: resp}}
	}
	bc.SetReadDeadline(time.Time{})
	x.setUpstreamVars(*tries, start)
	keep, drained := x.relayResponse(bc, br, resp)
	// With `keepalive`, a connection whose request asked to keep it and
	// whose response was read to its end goes back to the cache.
	if idle := x.rt.idle[x.lc.Proxy.Upstream]; idle != nil && drained && !resp.Close && !resp.CloseDelimited &&
		x.lc.ProxyHTTPVersion == "1.1" && !asksClose(head) && !asksClose(reqHead) && br.Buffered() == 0 {
		bc.SetDeadline(time.Time{})
		if idle.put(peer.Addr(), bc, uses+1) {
			owned = false
			peer.Done(false)
			putReader(br)
		}
	}
	return outcome{keep: keep}
}

// sendAwait sends head, a request without a body, on a fresh connection,
// then waits until the answer begins to arrive, all within one RawConn
// read. A Write then a Read would try the read at once and, the backend not
// having answered yet, get EAGAIN: a wasted system call per request. Waiting
// inside the same RawConn read cannot miss the answer, as the poller's read
// readiness is reset before the head is written. The head needs no
// send_timeout when the socket takes it whole, as a new socket's empty
// buffer does; any rest goes through Write under send_timeout. The wait is
// under proxy_read_timeout; if it ends in an error (a timeout, a closed
// socket), the read that follows reports it.
func (x *exchange) sendAwait(bc *net.TCPConn, head []byte) error {
	bc.SetReadDeadline(time.Now().Add(x.lc.ReadTimeout))
	rc, err := bc.SyscallConn()
	if err != nil {
		return err
	}
	w := headWriter{head: head}
	rc.Read(w.ready)
	if w.err != nil {
		return w.err
	}
	if len(w.head) > 0 {
		bc.SetWriteDeadline(time.Now().Add(x.lc.SendTimeout))
		_, err := bc.Write(w.head)
		bc.SetWriteDeadline(time.Time{})
		bc.SetReadDeadline(time.Now().Add(x.lc.ReadTimeout))
		return err
	}
	return nil
}

// headWriter is sendAwait's RawConn callback and its state.
type headWriter struct {
	head []byte // what is still to be written
	sent bool   // head is written: a call now means the answer is here
	err  error
}

func (w *headWriter) ready(fd uintptr) bool {
	if w.sent {
		return true // readable (or a spurious wakeup: the read that follows waits again)
	}
	for len(w.head) > 0 {
		n, err := syscall.Write(int(fd), w.head)
		switch {
		case err == syscall.EINTR:
		case err == syscall.EAGAIN:
			return true // the socket's buffer is full: the caller writes the rest
		case err != nil:
			w.err = os.NewSyscallError("write", err)
			return true
		default:
			w.head = w.head[n:]
		}
	}
	w.sent = true
	return false // wait for the answer
}

// asksClose reports whether a request head sent "Connection: close".
func asksClose(head []byte) bool {
	for _, line := range strings.Split(string(head), "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), "Connection") && strings.Contains(strings.ToLower(v), "close") {
			return true
		}
	}
	return false
}

func (x *exchange) upstreamError(err error, what string, peer *upstream.Peer) {
	x.log.Printf(errlog.Error, x.conn.id, "%s %s, client: %s, server: %s, request: \"%s\", upstream: \"http://%s%s\", host: \"%s\"",
		describe(err, "recv()"), what, x.conn.remote.Addr(), x.vc.ServerName, requestLine(x.vc), peer.Addr(), x.vc.RequestURI, x.req.Host)
}

func sendBody(w io.Writer, r io.Reader, body proxy.Body) error {
	if body.Chunked {
		cw := http1.NewChunkedWriter(w)
		if _, err := io.Copy(cw, r); err != nil {
			return err
		}
		return cw.Close()
	}
	_, err := io.CopyN(w, r, body.Length)
	return err
}

func (x *exchange) setUpstreamVars(tries []try, start time.Time) {
	x.vc.UpstreamRespTime = vars.Seconds(time.Since(start))
	if len(tries) == 1 { // the common case: nothing to join
		x.vc.UpstreamAddr, x.vc.UpstreamStatus = tries[0].addr, cmp.Or(tries[0].status, "502")
		return
	}
	var a, s strings.Builder
	for i, t := range tries {
		if i > 0 {
			a.WriteString(", ")
			s.WriteString(", ")
		}
		a.WriteString(t.addr)
		st := t.status
		if st == "" {
			st = "502"
		}
		s.WriteString(st)
	}
	x.vc.UpstreamAddr, x.vc.UpstreamStatus = a.String(), s.String()
}

// relayResponse streams a plain response to the client; drained reports
// that the backend's response was read to its end.
func (x *exchange) relayResponse(bc net.Conn, br *bufio.Reader, resp *http1.Response) (keep, drained bool) {
	hdr := proxy.ResponseHeader(resp.Header, false)
	noBody := x.req.Method == "HEAD" || resp.Status == 204 || resp.Status == 304 || resp.Status < 200
	length, chunked := int64(-1), false
	switch {
	case noBody:
		length = -2
		if resp.ContentLength >= 0 {
			length = resp.ContentLength
		}
	case resp.ContentLength >= 0:
		length = resp.ContentLength
	case x.req.Major == 1 && x.req.Minor >= 1 && x.lc.ChunkedTransferEncoding:
		chunked = true
	}
	h := x.head(resp.Status, hdr, length, chunked)
	bw := x.conn.bw
	bw.Write(h)
	x.sent += int64(len(h))
	if noBody {
		err := bw.Flush()
		x.done()
		return err == nil && !x.close, true
	}
	src := resp.Body(br)
	src = &deadlineReader{r: src, c: bc, d: x.lc.ReadTimeout}
	var dst io.Writer = bw
	var cw io.WriteCloser
	if chunked {
		cw = http1.NewChunkedWriter(bw)
		dst = cw
	}
	if !x.lc.Buffering {
		dst = &flushWriter{w: dst, bw: bw}
	}
	n, err := io.Copy(dst, src)
	x.bodySent += n
	x.sent += n
	if err != nil {
		x.log.Printf(errlog.Error, x.conn.id, "%s while reading upstream, client: %s, server: %s, request: \"%s\"", describe(err, "recv()"), x.conn.remote.Addr(), x.vc.ServerName, requestLine(x.vc))
		x.close = true
	}
	if cw != nil && err == nil {
		err = cw.Close()
	}
	drained = err == nil
	if ferr := bw.Flush(); ferr != nil {
		err = ferr
	}
	x.done()
	return err == nil && !x.close, drained
}

// deadlineReader re-arms proxy_read_timeout before each read, as nginx's
// timer between two successive reads.
type deadlineReader struct {
	r io.Reader
	c net.Conn
	d time.Duration
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	if d.d > 0 {
		d.c.SetReadDeadline(time.Now().Add(d.d))
	}
	return d.r.Read(p)
}

// flushWriter sends each piece at once: proxy_buffering off.
type flushWriter struct {
	w  io.Writer
	bw *bufio.Writer
}

func (f *flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		err = f.bw.Flush()
	}
	return n, err
}
