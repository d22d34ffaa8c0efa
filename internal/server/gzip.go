package server

import (
	"io"

	"github.com/wsgate/wsgate/internal/gzipfilter"
	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/static"
	"github.com/wsgate/wsgate/internal/subfilter"
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

// gzipWhole reports whether a static 200 answer will be compressed or
// rewritten by sub_filter, so that package static leaves its Range aside; a range of an eligible
// answer keeps the Vary of the whole (gzipVary).
func (x *exchange) gzipWhole(hdr http1.Header, length int64) bool {
	// sub_filter rewrites the whole answer: no ranges, as nginx.
	sub := len(x.lc.Sub.Find) > 0 && length != 0 && x.subType(hdr.Get("Content-Type"))
	g := &x.lc.Gzip
	if x.errStatus != 0 || !gzipfilter.Eligible(g, 200, hdr, length) {
		return sub
	}
	x.gzipVary = true
	return x.gzipAccepted(hdr) || sub
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

// bodyChain is the body filters the header filters chose for a
// response, in nginx's order: sub_filter, charset, then gzip, counted at
// the end.
type bodyChain struct {
	sub *subfilter.Writer
	cs  io.WriteCloser
	z   *gzipfilter.Writer
	out countingWriter
}

// Flush pushes what the compressor holds (a sync flush), for unbuffered
// proxying; sub_filter keeps a possible partial match. A nil chain has
// nothing to flush.
func (b *bodyChain) Flush() error {
	if b == nil || b.z == nil {
		return nil
	}
	return b.z.Flush()
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// bodyFiltered reports whether a body filter (sub_filter, charset, gzip)
// changes the response's body.
func (x *exchange) bodyFiltered() bool {
	return x.gzip || x.subst != nil || x.recode != nil
}

// gzipBody returns w itself when no body filter applies, else w behind
// the chosen filters (sub_filter, charset, gzip), which gzipEnd finishes.
func (x *exchange) gzipBody(w io.Writer) (io.Writer, *bodyChain) {
	if !x.bodyFiltered() {
		return w, nil
	}
	b := &bodyChain{out: countingWriter{w: w}}
	var cur io.Writer = &b.out
	if x.gzip {
		b.z = gzipfilter.NewWriter(cur, x.lc.Gzip.Level)
		cur = b.z
	}
	if x.recode != nil {
		b.cs = x.recode.writer(cur)
		cur = b.cs
	}
	if x.subst != nil {
		b.sub = subfilter.New(cur, x.subst.find, x.subst.repl, !x.lc.Sub.NotOnce)
		cur = b.sub
	}
	return cur, b
}

// gzipEnd finishes the body filters of a body whose writing ended with
// err, sets $gzip_ratio when it was compressed, and returns the bytes
// written to the client.
func (x *exchange) gzipEnd(b *bodyChain, err error) (int64, error) {
	if b.sub != nil {
		if cerr := b.sub.Close(); err == nil {
			err = cerr
		}
	}
	if b.cs != nil {
		if cerr := b.cs.Close(); err == nil {
			err = cerr
		}
	}
	if b.z != nil {
		if cerr := b.z.Close(); err == nil {
			err = cerr
		}
		x.vc.GzipRatio = gzipfilter.Ratio(b.z.In(), b.z.Out())
	}
	return b.out.n, err
}

// finishChunked is finish for a body sent chunked (compressed, or with
// trailers) or filtered and ended by closing the connection (HTTP/1.0).
func (x *exchange) finishChunked(head []byte, body string, chunked bool) bool {
	bw := x.conn.bw
	bw.Write(head)
	x.sent += int64(len(head))
	var w io.Writer = bw
	var cw *chunkedBody
	if chunked {
		cw = newChunkedBody(bw)
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
	sent = bodyBytes(cw, sent)
	x.sent += sent
	x.bodySent += sent
	x.done()
	return err == nil && !x.close
}
