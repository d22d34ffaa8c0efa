package server

import (
	"bufio"
	"cmp"
	"io"
	"net"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/backend"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/proxy"
	"github.com/wsgate/wsgate/internal/vars"
)

// relayResponse streams a plain response from bc to the client; drained
// reports that the backend's response was read to its end.
func (x *exchange) relayResponse(bc *backend.Conn, resp *http1.Response) (keep, drained bool) {
	x.upstreamOut.relayStart = time.Now()
	if x.intercepts(resp.Status) {
		if u := &x.upstreamOut.ups; len(u.Tries) > 0 {
			u.Tries[len(u.Tries)-1].BytesReceived += int64(bc.Reader().Buffered()) // read with the head, as nginx counts it
		}
		return x.errorPage(resp.Status), false // proxy_intercept_errors: the body is not read
	}
	if uri := x.accelRedirectURI(resp); uri != "" {
		return x.accelRedirect(bc, resp, uri), false // bc is released
	}
	x.accel(resp.Header)
	hdr := x.responseHeader(resp)
	noBody := x.req.Method == "HEAD" || x.upstreamOut.method == "HEAD" || resp.Status == 204 || resp.Status == 304 || resp.Status < 200
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
	hdr, length, chunked = x.filters(resp.Status, hdr, length, chunked)
	status, hdr, length, ok := x.forcedRange(resp.Status, hdr, length)
	if !ok {
		return x.errorPage(status), false
	}
	h := x.head(status, hdr, length, chunked)
	bw := x.conn.bw
	bw.Write(h)
	x.sent += int64(len(h))
	if noBody {
		err := bw.Flush()
		x.responseRead()
		x.done()
		return err == nil && !x.close, true
	}
	n, err := x.copyBody(bc, resp, chunked)
	x.bodySent += n
	x.sent += n
	drained = err == nil
	if ferr := bw.Flush(); ferr != nil {
		err = ferr
	}
	x.responseRead()
	x.done()
	return err == nil && !x.close, drained
}

// responseHeader is the backend's header as the client gets it: filtered,
// with proxy_redirect applied.
func (x *exchange) responseHeader(resp *http1.Response) http1.Header {
	hdr := proxy.FilterResponse(resp.Header, false, &x.lc.ProxyRest)
	proxy.RewriteCookies(hdr, &x.lc.ProxyRest, x.vc)
	if proxy.RewriteRedirects(hdr, x.lc, x.loc, x.vc) {
		for i := range hdr {
			if strings.EqualFold(hdr[i].Name, "Location") {
				hdr[i].Value = x.absoluteLocation(hdr[i].Value)
			}
		}
	}
	return hdr
}

// copyBody copies the response body to the client buffer, chunked when the
// client gets it so: through a spool with proxy_buffering on (spoolBody),
// else each piece flushed at once.
func (x *exchange) copyBody(bc *backend.Conn, resp *http1.Response, chunked bool) (int64, error) {
	src := x.upstreamBody(bc, resp)
	dst, cw, z := x.clientWriter(chunked)
	st := x.startStore(resp)
	if st != nil {
		src = io.TeeReader(src, st)
	}
	var n int64
	var err error
	whole := false
	switch {
	case x.spools(bc, resp):
		n, whole, err = x.spoolBody(bc, resp, src, dst)
	case x.buffering():
		n, err = io.Copy(dst, src)
		whole = err == nil
	default:
		n, err = io.Copy(&flushWriter{w: dst, bw: x.conn.bw, z: z}, src)
	}
	if c, ok := dst.(*cutWriter); ok {
		n = c.n // the range of the body the client got
	}
	x.finishStore(st, resp, whole)
	if z != nil {
		n, err = x.gzipEnd(z, err)
	}
	if err != nil {
		x.logRequest(errlog.Error, x.upstreamOut.addr, "%s while reading upstream", describe(err, "recv()"))
		x.close = true
		return bodyBytes(cw, n), err
	}
	x.upstreamTrailer(resp)
	if cw != nil {
		err = x.endChunked(cw)
	}
	return bodyBytes(cw, n), err
}

// upstreamTrailer keeps the trailer fields of a body read whole: for
// $upstream_trailer_*, and, with proxy_pass_trailers, for the client's
// chunked body, under proxy_hide_header and proxy_pass_header and never
// a framing or hop-by-hop field.
func (x *exchange) upstreamTrailer(resp *http1.Response) {
	if len(resp.Trailer) == 0 {
		return
	}
	x.vc.UpstreamTrailer = resp.Trailer
	if x.lc.ProxyRest.PassTrailers {
		x.upTrailer = proxy.FilterResponse(resp.Trailer, false, &x.lc.ProxyRest)
		x.upTrailer.Del("Upgrade")
	}
}

// upstreamBody is where a response body is read from the backend: under
// proxy_read_timeout, counted for $upstream_response_length, paced by
// proxy_limit_rate.
func (x *exchange) upstreamBody(bc *backend.Conn, resp *http1.Response) io.Reader {
	x.upstreamOut.addr = bc.Addr()
	var src io.Reader = &deadlineReader{r: resp.Body(bc.Reader()), c: bc.Net(), d: x.lc.ReadTimeout, n: &x.upstreamOut.bodyRead}
	if rate := x.lc.ProxyRest.LimitRate.Eval(x.vc); rate > 0 {
		src = &pacedReader{r: src, rate: rate, start: time.Now()}
	}
	return src
}

// clientWriter is where a response body is written for the client: the
// client buffer, through the chunked coding (cw, to end with endChunked),
// the body filters (z, to end with gzipEnd) and proxy_force_ranges' cut
// when they apply.
func (x *exchange) clientWriter(chunked bool) (dst io.Writer, cw *chunkedBody, z *bodyChain) {
	dst = x.conn.bw
	if chunked {
		cw = newChunkedBody(x.conn.bw)
		dst = cw
	}
	dst, z = x.gzipBody(dst)
	if x.cut != nil {
		dst = &cutWriter{w: dst, cut: *x.cut}
	}
	return dst, cw, z
}

// setUpstreamVars records the tries of this pass for the $upstream_*
// variables, after those of an earlier pass (an internal redirect that
// proxies again); with no peer live, the upstream's name stands for the
// address, as nginx.
func (x *exchange) setUpstreamVars(p *pass) {
	u := &x.upstreamOut.ups
	g := u.NewGroup()
	if p.n == 0 {
		u.Add(vars.UpstreamTry{Group: g, Addr: x.proxyPass().Upstream.Name, Status: "502",
			ConnectTime: -1, HeaderTime: -1, QueueTime: cmp.Or(x.upstreamOut.queued, -1)})
	}
	for i := range p.n {
		t := p.at(i)
		u.Add(vars.UpstreamTry{Group: g, Addr: t.addr, Status: cmp.Or(t.status, "502"),
			ConnectTime: t.connect, HeaderTime: t.header, ResponseTime: time.Since(t.start),
			BytesSent: t.sent, BytesReceived: t.recv})
		if i == 0 {
			u.Tries[len(u.Tries)-1].QueueTime = x.upstreamOut.queued
		}
	}
	x.vc.Upstream = u
	x.vc.UpstreamAddr = u.Join(func(t *vars.UpstreamTry) string { return t.Addr })
	x.vc.UpstreamStatus = u.Join(func(t *vars.UpstreamTry) string { return t.Status })
	x.vc.UpstreamRespTime = u.Join(func(t *vars.UpstreamTry) string { return vars.MsecOrDash(t.ResponseTime) })
}

// responseRead completes the last try once its response was relayed:
// the body's length and the time to its end.
func (x *exchange) responseRead() {
	u := &x.upstreamOut.ups
	if len(u.Tries) == 0 {
		return
	}
	t := &u.Tries[len(u.Tries)-1]
	t.ResponseLength = x.upstreamOut.bodyRead
	t.BytesReceived += x.upstreamOut.bodyRead
	t.ResponseTime += time.Since(x.upstreamOut.relayStart)
	x.vc.UpstreamRespTime = u.Join(func(t *vars.UpstreamTry) string { return vars.MsecOrDash(t.ResponseTime) })
}

// headSize is the size of a response head as the backend sent it,
// assuming one space after each colon.
func headSize(r *http1.Response) int64 {
	n := len(r.Proto) + 1 + 3 + 1 + len(r.Reason) + 2 + 2
	for _, f := range r.Header {
		n += len(f.Name) + 2 + len(f.Value) + 2
	}
	return int64(n)
}

// deadlineReader re-arms a read timeout before each read, as nginx's timer
// between two successive reads.
type deadlineReader struct {
	r io.Reader
	c net.Conn
	d time.Duration
	n *int64 // when set, counts the bytes read: $upstream_response_length
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	if d.d > 0 {
		d.c.SetReadDeadline(time.Now().Add(d.d))
	}
	n, err := d.r.Read(p)
	if d.n != nil {
		*d.n += int64(n)
	}
	return n, err
}

// flushWriter sends each piece at once: proxy_buffering off.
type flushWriter struct {
	w  io.Writer
	bw *bufio.Writer
	z  interface{ Flush() error } // the body filters of w: flushed first
}

func (f *flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil && f.z != nil {
		err = f.z.Flush()
	}
	if err == nil {
		err = f.bw.Flush()
	}
	return n, err
}
