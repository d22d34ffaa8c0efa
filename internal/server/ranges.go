package server

import (
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/static"
)

// byteCut is one byte range [start, end) of a body the client gets, with
// the multipart head that precedes it ("" for a single range). Under
// proxy_force_ranges the bytes of a proxied body before start and from end
// on are read from the backend and dropped.
type byteCut struct {
	start, end int64
	head       string
}

// forcedRange is nginx's range filter on a proxied answer under
// proxy_force_ranges: the backend's Accept-Ranges is dropped and one byte
// range is cut (rangeFilter with nginx's single_range; x.cut, for the body
// writer). ok is false for an unsatisfiable range: the caller answers 416
// (Content-Range is in x.extra).
func (x *exchange) forcedRange(status int, hdr http1.Header, length int64) (int, http1.Header, int64, bool) {
	x.cut = nil
	if !x.lc.ProxyRest.ForceRanges {
		return status, hdr, length, true
	}
	hdr.Del("Accept-Ranges")
	if status != 200 || x.sub {
		return status, hdr, length, true
	}
	status, hdr, length, cuts, _ := x.rangeFilter(hdr, length, 1)
	if len(cuts) == 1 {
		x.cut = &cuts[0]
	}
	return status, hdr, length, status != 416
}

// rangeFilter is nginx's range header filter on a 200 whose ranges are
// allowed: max is the most ranges taken (1: nginx's single_range; else
// max_ranges, -1 no limit). A body of unknown length (-1) or max_ranges 0
// leaves the answer as it is. Without a byte range that applies (none
// asked, If-Range stale, more ranges than max), the answer stays whole with
// "Accept-Ranges: bytes". Else it is a 206 of the ranges in cuts: one with
// Content-Range, several as multipart/byteranges closed by tail; or a 416
// (Content-Range is in x.extra) when none is satisfiable.
func (x *exchange) rangeFilter(hdr http1.Header, length int64, max int) (int, http1.Header, int64, []byteCut, string) {
	if length < 0 || x.lc.Files.MaxRanges == 0 {
		return 200, hdr, length, nil, ""
	}
	if max != 1 {
		max = x.lc.Files.MaxRanges
	}
	v := x.req.Header.Get("Range")
	if len(v) < 7 || !strings.EqualFold(v[:6], "bytes=") || !ifRangeMatches(x.req.Header.Get("If-Range"), hdr) {
		return 200, append(hdr, http1.Field{Name: "Accept-Ranges", Value: "bytes"}), length, nil, ""
	}
	size := strconv.FormatInt(length, 10)
	rs, st := static.ParseRanges(v[6:], length, max)
	switch st {
	case 416:
		x.extra = append(x.extra, http1.Field{Name: "Content-Range", Value: "bytes */" + size})
		return 416, hdr, length, nil, ""
	case 200:
		return 200, append(hdr, http1.Field{Name: "Accept-Ranges", Value: "bytes"}), length, nil, ""
	}
	if len(rs) == 1 {
		cr := "bytes " + strconv.FormatInt(rs[0][0], 10) + "-" + strconv.FormatInt(rs[0][1]-1, 10) + "/" + size
		return 206, append(hdr, http1.Field{Name: "Content-Range", Value: cr}), rs[0][1] - rs[0][0], []byteCut{{start: rs[0][0], end: rs[0][1]}}, ""
	}
	heads, tail, ctype, total := static.Multipart(rs, hdr.Get("Content-Type"), length)
	cuts := make([]byteCut, len(rs))
	for i, r := range rs {
		cuts[i] = byteCut{start: r[0], end: r[1], head: heads[i]}
	}
	hdr.Del("Content-Type")
	return 206, append(hdr, http1.Field{Name: "Content-Type", Value: ctype}), total, cuts, tail
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
