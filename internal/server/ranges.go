package server

import (
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/static"
)

// byteCut is the one byte range of a proxied body the client gets
// (proxy_force_ranges): the bytes before start and from end on are read
// from the backend and dropped.
type byteCut struct {
	start, end int64
}

// forcedRange is nginx's range filter on a proxied answer under
// proxy_force_ranges: the backend's Accept-Ranges is dropped; a 200 of
// known length (after the body filters) to a request with one satisfiable
// byte range, whose If-Range (if any) still matches, becomes a 206 with
// Content-Range and its length cut to the range (x.cut, for the body
// writer). More than one range sends the whole answer, as nginx's
// single_range. ok is false for an unsatisfiable range: the caller answers
// 416 (Content-Range is in x.extra).
func (x *exchange) forcedRange(status int, hdr http1.Header, length int64) (int, http1.Header, int64, bool) {
	x.cut = nil
	if !x.lc.ProxyRest.ForceRanges {
		return status, hdr, length, true
	}
	hdr.Del("Accept-Ranges")
	if status != 200 || length < 0 || x.sub {
		return status, hdr, length, true
	}
	v := x.req.Header.Get("Range")
	if len(v) < 7 || !strings.EqualFold(v[:6], "bytes=") || !ifRangeMatches(x.req.Header.Get("If-Range"), hdr) {
		return status, append(hdr, http1.Field{Name: "Accept-Ranges", Value: "bytes"}), length, true
	}
	size := strconv.FormatInt(length, 10)
	rs, st := static.ParseRanges(v[6:], length, 1)
	switch st {
	case 416:
		x.extra = append(x.extra, http1.Field{Name: "Content-Range", Value: "bytes */" + size})
		return 416, hdr, length, false
	case 200:
		return status, append(hdr, http1.Field{Name: "Accept-Ranges", Value: "bytes"}), length, true
	}
	x.cut = &byteCut{start: rs[0][0], end: rs[0][1]}
	cr := "bytes " + strconv.FormatInt(x.cut.start, 10) + "-" + strconv.FormatInt(x.cut.end-1, 10) + "/" + size
	return 206, append(hdr, http1.Field{Name: "Content-Range", Value: cr}), x.cut.end - x.cut.start, true
}

// ifRangeMatches reports whether an If-Range value (none: true) still
// holds for a response head: an entity tag equals its ETag, a date its
// Last-Modified.
func ifRangeMatches(v string, hdr http1.Header) bool {
	if v == "" {
		return true
	}
	if v[len(v)-1] == '"' {
		etag := hdr.Get("ETag")
		return etag != "" && v == etag
	}
	t, err := time.Parse(http1TimeFormat, v)
	lm := lastModified(hdr)
	return err == nil && lm >= 0 && t.Unix() == lm
}

// cutWriter passes on only the bytes of a body that fall in cut; Write
// always takes all of p. n counts the bytes passed on.
type cutWriter struct {
	w   io.Writer
	cut byteCut
	off int64 // the body's bytes seen so far
	n   int64
}

func (c *cutWriter) Write(p []byte) (int, error) {
	from, to := max(c.cut.start-c.off, 0), min(c.cut.end-c.off, int64(len(p)))
	c.off += int64(len(p))
	if from >= to {
		return len(p), nil
	}
	n, err := c.w.Write(p[from:to])
	c.n += int64(n)
	if err != nil {
		return int(from) + n, err
	}
	return len(p), nil
}
