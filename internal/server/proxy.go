package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/proxy"
	"github.com/wsgate/wsgate/internal/tunnel"
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
	head := proxy.AppendRequest(make([]byte, 0, 1024), x.req.Method, uri, x.req, x.lc, x.vc, pp.HostPort, body)
	return x.roundTrip(pool, head, x.req.Body(x.conn.br), body, upgrade)
}

func (x *exchange) proxyBuffered(pool *upstream.Upstream, uri string) bool {
	limit := x.lc.ClientMaxBody
	r := x.req.Body(x.conn.br)
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
	body := proxy.Body{Length: int64(len(data))}
	head := proxy.AppendRequest(make([]byte, 0, 1024), x.req.Method, uri, x.req, x.lc, x.vc, x.lc.Proxy.HostPort, body)
	return x.roundTrip(pool, head, strings.NewReader(string(data)), body, false)
}

// try is one attempt at a peer, for $upstream_addr and logs.
type try struct {
	addr   string
	status string
}

func (x *exchange) roundTrip(pool *upstream.Upstream, head []byte, reqBody io.Reader, body proxy.Body, upgrade bool) bool {
	att := pool.NewAttempt(nil)
	var tries []try
	var lastErr error
	start := time.Now()
	// A body that was streamed to one peer cannot be sent again: retry
	// only while nothing of it has been read.
	canRetry := body.Length <= 0 && !body.Chunked
	for {
		peer, err := att.Next()
		if err != nil {
			break
		}
		if !x.conn.srv.reserve() {
			peer.Done(false)
			x.setUpstreamVars(tries, start)
			return x.errorPage(503)
		}
		bc, err := x.dial(peer.Addr())
		if err != nil {
			x.conn.srv.release(1)
			peer.Done(true)
			lastErr = err
			tries = append(tries, try{addr: peer.Addr(), status: statusFor(err)})
			x.log.Printf(errlog.Error, x.conn.id, "%s while connecting to upstream, client: %s, server: %s, request: \"%s\", upstream: \"http://%s%s\", host: \"%s\"",
				describe(err, "connect()"), x.conn.remote.Addr(), x.vc.ServerName, requestLine(x.vc), peer.Addr(), x.vc.RequestURI, x.req.Host)
			continue
		}
		tries = append(tries, try{addr: peer.Addr()})
		keep, retryErr := x.exchangeWith(peer, bc, head, reqBody, body, upgrade, &tries, start)
		if retryErr == nil {
			return keep
		}
		lastErr = retryErr
		if !canRetry {
			break
		}
	}
	x.setUpstreamVars(tries, start)
	status := 502
	if lastErr != nil && isTimeout(lastErr) {
		status = 504
	}
	if len(tries) == 0 {
		x.log.Printf(errlog.Error, x.conn.id, "no live upstreams while connecting to upstream, client: %s, server: %s, request: \"%s\", upstream: \"http://%s\"", x.conn.remote.Addr(), x.vc.ServerName, requestLine(x.vc), x.lc.Proxy.HostPort)
	}
	return x.errorPage(status)
}

func statusFor(err error) string {
	if isTimeout(err) {
		return "504"
	}
	return "502"
}

func (x *exchange) dial(addr string) (*net.TCPConn, error) {
	d := net.Dialer{Timeout: x.lc.ConnectTimeout, KeepAlive: -1}
	ctx := context.Background()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	tc := c.(*net.TCPConn)
	tc.SetNoDelay(x.lc.TCPNoDelay)
	return tc, nil
}

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

// exchangeWith sends the request to a connected peer and relays the answer.
// retry reports that the peer failed before anything reached the client
// and another peer may be tried.
func (x *exchange) exchangeWith(peer *upstream.Peer, bc *net.TCPConn, head []byte, reqBody io.Reader, body proxy.Body, upgrade bool, tries *[]try, start time.Time) (keep bool, retry error) {
	released := false
	fail := func(failed bool) {
		if !released {
			released = true
			bc.Close()
			x.conn.srv.release(1)
			peer.Done(failed)
		}
	}
	bc.SetWriteDeadline(time.Now().Add(x.lc.SendTimeout))
	if _, err := bc.Write(head); err != nil {
		fail(true)
		x.upstreamError(err, "while sending request to upstream", peer)
		return false, err
	}
	if body.Length > 0 || body.Chunked {
		if err := sendBody(bc, reqBody, body); err != nil {
			fail(true)
			x.upstreamError(err, "while sending request to upstream", peer)
			x.close = true
			x.setUpstreamVars(*tries, start)
			return x.errorPage(502), nil
		}
	}
	bc.SetWriteDeadline(time.Time{})
	bc.SetReadDeadline(time.Now().Add(x.lc.ReadTimeout))
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(bc)
	defer func() {
		br.Reset(nil)
		readerPool.Put(br)
	}()
	resp, err := http1.ReadResponse(br, x.req.Method, x.lc.BufferSize)
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
		if !errors.As(err, &se) {
			// error and timeout are nginx's default next-upstream
			// conditions; invalid_header is not.
			return false, err
		}
		x.setUpstreamVars(*tries, start)
		return x.errorPage(502), nil
	}
	(*tries)[len(*tries)-1].status = itoa(resp.Status)
	if resp.Status == 101 {
		if !upgrade {
			fail(true)
			x.upstreamError(errors.New("upstream sent 101 to a request that did not ask to switch protocols"), "while reading response header from upstream", peer)
			x.setUpstreamVars(*tries, start)
			return x.errorPage(502), nil
		}
		if err := proxy.CheckSwitch(x.req, resp); err != nil {
			fail(true)
			x.upstreamError(err, "while reading response header from upstream", peer)
			x.setUpstreamVars(*tries, start)
			return x.errorPage(502), nil
		}
		released = true // the tunnel owns bc and the peer slot now
		x.setUpstreamVars(*tries, start)
		x.startTunnel(peer, bc, br, resp, start)
		return false, nil
	}
	bc.SetReadDeadline(time.Time{})
	x.setUpstreamVars(*tries, start)
	keep = x.relayResponse(bc, br, resp)
	// The backend connection is not reused: nginx closes it too unless an
	// upstream keepalive pool is configured (the upstreams issue).
	fail(false)
	return keep, nil
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
	x.vc.UpstreamRespTime = vars.Seconds(time.Since(start))
}

// relayResponse streams a plain response to the client.
func (x *exchange) relayResponse(bc net.Conn, br *bufio.Reader, resp *http1.Response) bool {
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
	case x.req.Major == 1 && x.req.Minor >= 1:
		chunked = true
	}
	h := x.head(resp.Status, hdr, length, chunked)
	bw := x.conn.bw
	bw.Write(h)
	x.sent += int64(len(h))
	if noBody {
		err := bw.Flush()
		x.done()
		return err == nil && !x.close
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
	if ferr := bw.Flush(); ferr != nil {
		err = ferr
	}
	x.done()
	return err == nil && !x.close
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

// startTunnel answers the client's upgrade and joins the connections.
func (x *exchange) startTunnel(peer *upstream.Peer, bc *net.TCPConn, br *bufio.Reader, resp *http1.Response, start time.Time) {
	c := x.conn
	bc.SetReadDeadline(time.Time{})
	hdr := proxy.ResponseHeader(resp.Header, true)
	h := x.head(101, hdr, -2, false)
	c.bw.Write(h)
	x.sent += int64(len(h))
	if err := c.bw.Flush(); err != nil {
		bc.Close()
		c.srv.release(1)
		peer.Done(false)
		x.done()
		return
	}
	peer.Connected()
	// Bytes that arrived behind either head belong to the tunnel.
	clientPending, _ := c.br.Peek(c.br.Buffered())
	backendPending, _ := br.Peek(br.Buffered())
	isWS := strings.EqualFold(x.req.Header.Get("Upgrade"), "websocket")
	srv := c.srv
	headBytes := x.sent
	lc := x.lc
	log := x.log
	id := c.id
	var t *tunnel.Tunnel
	ready := make(chan struct{})
	cfg := tunnel.Config{
		Frames:      isWS && lc.WebSocketFrames,
		IdleTimeout: lc.ReadTimeout,
		SendTimeout: lc.SendTimeout,
		OnClose: func(r tunnel.Result) {
			<-ready
			srv.release(2)
			peer.Done(false)
			if log.Enabled(errlog.Debug) {
				log.Printf(errlog.Debug, id, "tunnel closed by %s, code %d, %d bytes from client, %d from upstream, %d bytes to client incl. head, err %v", r.ClosedBy, r.CloseCode, r.FromClient, r.FromBackend, headBytes+r.FromBackend, r.Err)
			}
			srv.removeTunnel(t)
		},
	}
	c.hijacked = true
	t = tunnel.Start(c.c, bc, clientPending, backendPending, cfg)
	if !srv.addTunnel(t) {
		// Shutting down: the tunnel still closes properly, and its OnClose
		// must not unregister what was never registered.
		srv.wg.Add(1)
		srv.Stats.Tunnels.Add(1)
		close(ready)
		go t.Shutdown(1001, "going away")
	} else {
		close(ready)
	}
	x.status = 101
	x.done()
}
