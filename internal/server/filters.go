package server

import (
	"io"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/expires"
	"github.com/wsgate/wsgate/internal/http1"
)

// filters runs, in nginx's order, the header filters that change a
// response about to be sent (never a 101): expires, userid, charset
// (which may recode the body), sub_filter, then gzip, then the
// chunking add_trailer needs. It returns the headers, length and framing
// to send; the body writers then end chunked bodies with endChunked.
func (x *exchange) filters(status int, hdr http1.Header, length int64, chunked bool) (http1.Header, int64, bool) {
	x.trailers, x.gzip, x.subst, x.recode = false, false, nil, nil
	if x.lc == nil || status == 101 {
		return hdr, length, chunked
	}
	hdr = x.expires(x.effectiveStatus(status), hdr)
	hdr = x.useridHeader(hdr)
	hdr, length, chunked = x.charset(hdr, length, chunked)
	hdr, length, chunked = x.subHead(hdr, length, chunked)
	hdr, length, chunked = x.gzipHead(status, hdr, length, chunked)
	if !x.wantTrailers(x.effectiveStatus(status)) || x.req.Method == "HEAD" || length == -2 {
		return hdr, length, chunked
	}
	if !chunked && x.req.Major == 1 && x.req.Minor >= 1 && x.lc.ChunkedTransferEncoding {
		length, chunked = -1, true // trailers need a chunked body, as nginx's chunked filter
	}
	x.trailers = chunked
	return hdr, length, chunked
}

// effectiveStatus is the status the client sees: error_page's, if any.
func (x *exchange) effectiveStatus(status int) int {
	if x.errStatus != 0 {
		return x.errStatus
	}
	return status
}

// expires sets Expires and Cache-Control from the location's `expires`
// on the statuses add_header applies to, replacing those the response
// has (ngx_http_headers_module). A variable value that does not parse
// changes nothing.
func (x *exchange) expires(status int, hdr http1.Header) http1.Header {
	e := &x.lc.Expires
	if (e.Spec.Kind == expires.Off && e.Value == nil) || !addHeaderStatus(status) {
		return hdr
	}
	spec, constNeg := e.Spec, e.Spec.Seconds < 0
	if e.Value != nil {
		var err error
		if spec, err = expires.Parse(e.Value.Eval(x.vc), e.Modified); err != nil || spec.Kind == expires.Off {
			return hdr
		}
		constNeg = false
	}
	exp, cc := spec.Values(time.Now(), lastModified(hdr), constNeg)
	out := make(http1.Header, 0, len(hdr)+2)
	for _, f := range hdr {
		if !strings.EqualFold(f.Name, "Expires") && !strings.EqualFold(f.Name, "Cache-Control") {
			out = append(out, f)
		}
	}
	return append(out, http1.Field{Name: "Expires", Value: exp}, http1.Field{Name: "Cache-Control", Value: cc})
}

// lastModified is the response's Last-Modified in Unix seconds, -1
// without a readable one.
func lastModified(hdr http1.Header) int64 {
	v := hdr.Get("Last-Modified")
	if v == "" {
		return -1
	}
	t, err := time.Parse(http1TimeFormat, v)
	if err != nil {
		return -1
	}
	return t.Unix()
}

// wantTrailers reports whether an add_trailer applies to status.
func (x *exchange) wantTrailers(status int) bool {
	ok := addHeaderStatus(status)
	for _, h := range x.lc.Trailers {
		if ok || h.Always {
			return true
		}
	}
	return false
}

// endChunked ends a chunked body: with the backend's trailer fields that
// proxy_pass_trailers passes, then the add_trailer fields, evaluated now
// that the body is sent (empty ones left out), when filters asked for
// them; else with the empty trailer.
func (x *exchange) endChunked(cw *chunkedBody) error {
	if !x.trailers && len(x.upTrailer) == 0 {
		return cw.Close()
	}
	b := append(x.conn.bw.AvailableBuffer(), "0\r\n"...)
	for _, f := range x.upTrailer {
		b = appendField(b, f.Name, f.Value)
	}
	ok := addHeaderStatus(x.status)
	for _, h := range x.lc.Trailers {
		if v := h.Value.Eval(x.vc); v != "" && x.trailers && (ok || h.Always) {
			b = appendField(b, h.Name, v)
		}
	}
	b = append(b, "\r\n"...)
	_, err := cw.out.Write(b)
	return err
}

// chunkedBody is the chunked coding of a body onto the client buffer; out
// counts what it writes, chunk framing and trailer included, which is the
// body as $body_bytes_sent counts it (all that follows the head).
type chunkedBody struct {
	io.WriteCloser
	out countingWriter
}

func newChunkedBody(w io.Writer) *chunkedBody {
	c := &chunkedBody{out: countingWriter{w: w}}
	c.WriteCloser = http1.NewChunkedWriter(&c.out)
	return c
}

// bodyBytes is n, the bytes of a body written, or with cw (not nil) the
// bytes cw wrote.
func bodyBytes(cw *chunkedBody, n int64) int64 {
	if cw != nil {
		return cw.out.n
	}
	return n
}
