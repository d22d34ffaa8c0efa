package static

import (
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/http1"
)

// part is one byte range [start, end) of a file, with the multipart
// header that precedes it ("" for a single range).
type part struct {
	start, end int64
	head       string
}

// fileBody writes ranges of an open file, then tail.
type fileBody struct {
	f     *os.File
	parts []part
	tail  string
}

func (b *fileBody) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for _, p := range b.parts {
		if p.head != "" {
			n, err := io.WriteString(w, p.head)
			total += int64(n)
			if err != nil {
				return total, err
			}
		}
		n, err := io.Copy(w, io.NewSectionReader(b.f, p.start, p.end-p.start))
		total += n
		if err != nil {
			return total, err
		}
		if n != p.end-p.start {
			return total, io.ErrUnexpectedEOF // the file shrank under us
		}
	}
	n, err := io.WriteString(w, b.tail)
	return total + int64(n), err
}

func (b *fileBody) Close() error { return b.f.Close() }

// boundaries numbers multipart boundaries, as nginx's temp number.
var boundaries atomic.Uint64

// ranges is nginx's range header filter on a 200 answer: one satisfiable
// range gives 206 with Content-Range, several give multipart/byteranges,
// none 416; otherwise the answer stays whole with Accept-Ranges.
func ranges(r *Request, fc *config.Files, m meta, ctype string, a *Answer) {
	if fc.MaxRanges == 0 || r.Compressed != nil && r.Compressed(a.Header, m.size) {
		return
	}
	v, ok := get(r.Header, "Range")
	if !ok || len(v) < 7 || !strings.EqualFold(v[:6], "bytes=") || !ifRange(r, m) {
		a.Header = append(a.Header, http1.Field{Name: "Accept-Ranges", Value: "bytes"})
		return
	}
	rs, status := parseRanges(v[6:], m.size, fc.MaxRanges)
	switch status {
	case 416:
		a.Body.Close()
		*a = Answer{Status: 416, Length: -1, Header: http1.Header{{Name: "Content-Range", Value: "bytes */" + itoa(m.size)}}}
		return
	case 200:
		a.Header = append(a.Header, http1.Field{Name: "Accept-Ranges", Value: "bytes"})
		return
	}
	body := a.Body.(*fileBody)
	a.Status = 206
	if len(rs) == 1 {
		body.parts = rs
		a.Length = rs[0].end - rs[0].start
		a.Header = append(a.Header, http1.Field{Name: "Content-Range", Value: "bytes " + itoa(rs[0].start) + "-" + itoa(rs[0].end-1) + "/" + itoa(m.size)})
		return
	}
	tail, mtype, length := multipart(rs, ctype, m.size)
	body.parts, body.tail = rs, tail
	a.Length = length
	a.Header[0].Value = mtype
}

// multipart sets the heads of the ranges rs of a size-byte body of type
// ctype ("" none) for a multipart/byteranges answer, as nginx's range
// filter; it returns the closing tail, the answer's Content-Type and the
// length of the whole multipart body.
func multipart(rs []part, ctype string, size int64) (tail, mtype string, length int64) {
	boundary := strconv.FormatUint(boundaries.Add(1), 10)
	boundary = strings.Repeat("0", max(0, 20-len(boundary))) + boundary
	head := "\r\n--" + boundary + "\r\n"
	if ctype != "" {
		head += "Content-Type: " + ctype + "\r\n"
	}
	head += "Content-Range: bytes "
	for i := range rs {
		rs[i].head = head + itoa(rs[i].start) + "-" + itoa(rs[i].end-1) + "/" + itoa(size) + "\r\n\r\n"
		length += int64(len(rs[i].head)) + rs[i].end - rs[i].start
	}
	tail = "\r\n--" + boundary + "--\r\n"
	return tail, "multipart/byteranges; boundary=" + boundary, length + int64(len(tail))
}

// Multipart is multipart for the [start, end) ranges rs of a body that is
// not a file: heads[i] precedes range i.
func Multipart(rs [][2]int64, ctype string, size int64) (heads []string, tail, mtype string, length int64) {
	ps := make([]part, len(rs))
	for i, r := range rs {
		ps[i] = part{start: r[0], end: r[1]}
	}
	tail, mtype, length = multipart(ps, ctype, size)
	heads = make([]string, len(ps))
	for i, p := range ps {
		heads[i] = p.head
	}
	return heads, tail, mtype, length
}

// ifRange reports whether If-Range, when sent, still matches: an entity
// tag compares with the ETag, a date with the modification time.
func ifRange(r *Request, m meta) bool {
	v, ok := get(r.Header, "If-Range")
	if !ok {
		return true
	}
	if len(v) >= 2 && v[len(v)-1] == '"' {
		return m.etag != "" && v == m.etag
	}
	t, ok := parseHTTPTime(v)
	return ok && t == m.mtime
}

// parseRanges is nginx's ngx_http_range_parse: it returns the ranges and
// 206, or 416 when none is satisfiable or the header is malformed, or 200
// when the ranges are to be ignored (more than max, or overlapping past
// the file's size).
func parseRanges(s string, size int64, max int) ([]part, int) {
	var rs []part
	var total int64
	left := max
	for {
		s = strings.TrimLeft(s, " ")
		var start, end int64
		var suffix, ok bool
		if strings.HasPrefix(s, "-") {
			suffix, s = true, s[1:]
		} else {
			if start, s, ok = number(s); !ok {
				return nil, 416
			}
			s = strings.TrimLeft(s, " ")
			if !strings.HasPrefix(s, "-") {
				return nil, 416
			}
			s = strings.TrimLeft(s[1:], " ")
			if s == "" || s[0] == ',' {
				end = size
				goto found
			}
		}
		if end, s, ok = number(s); !ok {
			return nil, 416
		}
		s = strings.TrimLeft(s, " ")
		if s != "" && s[0] != ',' {
			return nil, 416
		}
		if suffix {
			start = 0
			if end < size {
				start = size - end
			}
			end = size - 1
		}
		if end >= size {
			end = size
		} else {
			end++
		}
	found:
		if start < end {
			rs = append(rs, part{start: start, end: end})
			if total > math.MaxInt64-(end-start) {
				return nil, 416
			}
			total += end - start
			if left < 0 {
				// no limit
			} else if left == 0 {
				return nil, 200
			} else {
				left--
			}
		} else if start == 0 {
			return nil, 200
		}
		if s == "" {
			break
		}
		s = s[1:] // the ','
	}
	if len(rs) == 0 {
		return nil, 416
	}
	if total > size {
		return nil, 200
	}
	return rs, 206
}

// number reads decimal digits, refusing an overflow.
func number(s string) (int64, string, bool) {
	i := 0
	var n int64
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		d := int64(s[i] - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, s, false
		}
		n = n*10 + d
		i++
	}
	return n, s[i:], i > 0
}

// ParseRanges is parseRanges for a body that is not a file (a proxied
// answer under proxy_force_ranges): spec is the Range value after
// "bytes=", size the body's length, max the most ranges taken (-1: no
// limit). It returns the [start, end) ranges and 206, or 416 when none is
// satisfiable or spec is malformed, or 200 when the whole body is to be
// sent.
func ParseRanges(spec string, size int64, max int) ([][2]int64, int) {
	rs, status := parseRanges(spec, size, max)
	out := make([][2]int64, len(rs))
	for i, p := range rs {
		out[i] = [2]int64{p.start, p.end}
	}
	return out, status
}
