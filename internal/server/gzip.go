package server

import (
	"io"

	"github.com/wsgate/wsgate/internal/gzipfilter"
	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/static"
)

// gzipHead is nginx's gzip header filter, run by filters: an eligible
// response, or any once gzip_static or a range found one (gzipVary), gets
// Vary with gzip_vary; one the client accepts loses its length and is sent
// chunked (closed at the end for HTTP/1.0), and its body goes through
// gzipBody.
func (x *exchange) gzipHead(status int, hdr http1.Header, length int64, chunked bool) (http1.Header, int64, bool) {
	status = x.effectiveStatus(status)
	g := &x.lc.Gzip
	eligible := gzipfilter.Eligible(g, status, hdr, length)
	if (eligible || x.gzipVary) && g.Vary {
		hdr = append(hdr[:len(hdr):len(hdr)], http1.Field{Name: "Vary", Value: "Accept-Encoding"})
	}
	if !eligible || !x.gzipAccepted(hdr) {
		return hdr, length, chunked
	}
	x.gzip = true
	if length == -2 || x.req.Method == "HEAD" { // no body: only the headers change
		return gzipfilter.Headers(hdr), -2, false
	}
	return gzipfilter.Headers(hdr), -1, x.req.Major == 1 && x.req.Minor >= 1 && x.lc.ChunkedTransferEncoding
}

func (x *exchange) gzipAccepted(resp http1.Header) bool {
	r := gzipfilter.Request{Header: x.req.Header, Major: x.req.Major, Minor: x.req.Minor}
	return gzipfilter.Accepts(&x.lc.Gzip, &r, resp)
}

// gzipWhole reports whether a static 200 answer will be compressed, so
// that package static leaves its Range aside; a range of an eligible
// answer keeps the Vary of the whole (gzipVary).
func (x *exchange) gzipWhole(hdr http1.Header, length int64) bool {
	g := &x.lc.Gzip
	if x.errStatus != 0 || !gzipfilter.Eligible(g, 200, hdr, length) {
		return false
	}
	x.gzipVary = true
	return x.gzipAccepted(hdr)
}

// gzipStatic is nginx's gzip_static handler: the answer for the file's
// .gz beside it when the client accepts gzip (or always), else nil.
func (x *exchange) gzipStatic(r *static.Request, path, root string) *static.Answer {
	g := &x.lc.Gzip
	if g.Static == gzipfilter.StaticOff || r.Method != "GET" && r.Method != "HEAD" {
		return nil
	}
	ok := g.Static == gzipfilter.StaticAlways || x.gzipAccepted(nil)
	if !ok && !g.Vary {
		return nil
	}
	a, found := static.Precompressed(r, path, root)
	x.gzipVary = x.gzipVary || found
	if !ok && a != nil {
		a.Close()
		return nil
	}
	return a
}

// gzipBody returns w itself when the response is not compressed, else a
// compressor into w, which gzipEnd finishes.
func (x *exchange) gzipBody(w io.Writer) (io.Writer, *gzipfilter.Writer) {
	if !x.gzip {
		return w, nil
	}
	z := gzipfilter.NewWriter(w, x.lc.Gzip.Level)
	return z, z
}

// gzipEnd finishes a compressed body whose writing ended with err, sets
// $gzip_ratio and returns the bytes the compressor wrote.
func (x *exchange) gzipEnd(z *gzipfilter.Writer, err error) (int64, error) {
	if cerr := z.Close(); err == nil {
		err = cerr
	}
	x.vc.GzipRatio = gzipfilter.Ratio(z.In(), z.Out())
	return z.Out(), err
}

// finishChunked is finish for a body sent chunked (compressed, or with
// trailers) or compressed and ended by closing the connection (HTTP/1.0).
func (x *exchange) finishChunked(head []byte, body string, chunked bool) bool {
	bw := x.conn.bw
	bw.Write(head)
	x.sent += int64(len(head))
	var w io.Writer = bw
	var cw io.WriteCloser
	if chunked {
		cw = http1.NewChunkedWriter(bw)
		w = cw
	}
	w, z := x.gzipBody(w)
	n, err := io.WriteString(w, body)
	sent := int64(n)
	if z != nil {
		sent, err = x.gzipEnd(z, err)
	}
	if cw != nil && err == nil {
		err = x.endChunked(cw)
	}
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	x.sent += sent
	x.bodySent += sent
	x.done()
	return err == nil && !x.close
}
