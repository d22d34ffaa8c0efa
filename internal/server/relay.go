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
	if x.intercepts(resp.Status) {
		return x.errorPage(resp.Status), false // proxy_intercept_errors: the body is not read
	}
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
	hdr, length, chunked = x.filters(resp.Status, hdr, length, chunked)
	h := x.head(resp.Status, hdr, length, chunked)
	bw := x.conn.bw
	bw.Write(h)
	x.sent += int64(len(h))
	if noBody {
		err := bw.Flush()
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
	x.done()
	return err == nil && !x.close, drained
}

// copyBody copies the response body to the client buffer, chunked when the
// client gets it so, flushing each piece with proxy_buffering off.
func (x *exchange) copyBody(bc *backend.Conn, resp *http1.Response, chunked bool) (int64, error) {
	bw := x.conn.bw
	src := &deadlineReader{r: resp.Body(bc.Reader()), c: bc.Net(), d: x.lc.ReadTimeout}
	var dst io.Writer = bw
	var cw io.WriteCloser
	if chunked {
		cw = http1.NewChunkedWriter(bw)
		dst = cw
	}
	dst, z := x.gzipBody(dst)
	if !x.lc.Buffering {
		dst = &flushWriter{w: dst, bw: bw, z: z}
	}
	n, err := io.Copy(dst, src)
	if z != nil {
		n, err = x.gzipEnd(z, err)
	}
	if err != nil {
		x.logRequest(errlog.Error, bc.Addr(), "%s while reading upstream", describe(err, "recv()"))
		x.close = true
		return n, err
	}
	if cw != nil {
		err = x.endChunked(cw)
	}
	return n, err
}

// setUpstreamVars sets $upstream_addr, $upstream_status and
// $upstream_response_time from the tries.
func (x *exchange) setUpstreamVars(p *pass) {
	x.vc.UpstreamRespTime = vars.Seconds(time.Since(p.start))
	if p.n == 1 { // the common case: nothing to join
		x.vc.UpstreamAddr, x.vc.UpstreamStatus = p.first[0].addr, cmp.Or(p.first[0].status, "502")
		return
	}
	var a, s strings.Builder
	for i := range p.n {
		t := p.at(i)
		if i > 0 {
			a.WriteString(", ")
			s.WriteString(", ")
		}
		a.WriteString(t.addr)
		s.WriteString(cmp.Or(t.status, "502"))
	}
	x.vc.UpstreamAddr, x.vc.UpstreamStatus = a.String(), s.String()
}

// deadlineReader re-arms a read timeout before each read, as nginx's timer
// between two successive reads.
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
