package gzipfilter

import (
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/http1"
)

// Request is what the decision needs of a request.
type Request struct {
	Header       http1.Header
	Major, Minor int
}

// Eligible is the first half of nginx's gzip header filter: gzip is on,
// the status is 200, 403 or 404, the response has no Content-Encoding, its
// length (-1 unknown) reaches gzip_min_length and its type is in
// gzip_types. An eligible response gets Vary with gzip_vary, whether or
// not it is then compressed.
func Eligible(c *Conf, status int, resp http1.Header, length int64) bool {
	if !c.On || (status != 200 && status != 403 && status != 404) {
		return false
	}
	if resp.Get("Content-Encoding") != "" {
		return false
	}
	if length >= 0 && length < c.MinLength {
		return false
	}
	return c.typeOK(resp.Get("Content-Type"))
}

// Accepts is nginx's ngx_http_gzip_ok: the client accepts gzip, is not
// refused by gzip_disable or gzip_http_version, and a proxied request
// (one with Via) passes gzip_proxied judged on the response's headers.
func Accepts(c *Conf, r *Request, resp http1.Header) bool {
	ae, ok := first(r.Header, "Accept-Encoding")
	if !ok || len(ae) < 4 {
		return false
	}
	if !strings.HasPrefix(ae, "gzip,") && !acceptEncoding(ae) {
		return false
	}
	ua, hasUA := first(r.Header, "User-Agent")
	if c.DisableMSIE6 && hasUA && msie6(ua) {
		return false
	}
	if r.Major*1000+r.Minor < c.HTTPVersion {
		return false
	}
	if r.Header.Has("Via") && !proxiedOK(c.Proxied, r, resp) {
		return false
	}
	if hasUA {
		for _, re := range c.Disable {
			// A match cut short disables gzip too, as nginx.
			if ok, err := re.MatchString(ua); ok || err != nil {
				return false
			}
		}
	}
	return true
}

func first(h http1.Header, name string) (string, bool) {
	for _, f := range h {
		if strings.EqualFold(f.Name, name) {
			return f.Value, true
		}
	}
	return "", false
}

// proxiedOK applies gzip_proxied to a request that came through a proxy.
func proxiedOK(p Proxied, r *Request, resp http1.Header) bool {
	switch {
	case p&ProxiedOff != 0:
		return false
	case p&ProxiedAny != 0:
		return true
	case p&ProxiedAuth != 0 && r.Header.Has("Authorization"):
		return true
	}
	if e, ok := first(resp, "Expires"); ok {
		return p&ProxiedExpired != 0 && expired(e, resp)
	}
	if resp.Has("Cache-Control") {
		return p&ProxiedNoCache != 0 && resp.HasToken("Cache-Control", "no-cache") ||
			p&ProxiedNoStore != 0 && resp.HasToken("Cache-Control", "no-store") ||
			p&ProxiedPrivate != 0 && resp.HasToken("Cache-Control", "private")
	}
	if p&ProxiedNoLastModified != 0 && resp.Has("Last-Modified") {
		return false
	}
	if p&ProxiedNoETag != 0 && resp.Has("ETag") {
		return false
	}
	return true
}

// expired reports whether Expires is before the response's Date (or now).
func expired(e string, resp http1.Header) bool {
	exp, err := parseHTTPTime(e)
	if err != nil {
		return false
	}
	date := time.Now()
	if d, ok := first(resp, "Date"); ok {
		if date, err = parseHTTPTime(d); err != nil {
			return false
		}
	}
	return exp.Unix() < date.Unix()
}

func parseHTTPTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC1123, time.RFC850, time.ANSIC} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Parse(time.RFC1123Z, s)
}

// acceptEncoding is nginx's ngx_http_gzip_accept_encoding: a "gzip" token
// (any case) started by the value's start, ',' or ' ', followed by the
// end, ',' or a q parameter that is not zero.
func acceptEncoding(ae string) bool {
	lower := strings.ToLower(ae)
	start := 0
	for {
		i := strings.Index(lower[start:], "gzip")
		if i < 0 {
			return false
		}
		p := start + i
		if p == 0 || ae[p-1] == ',' || ae[p-1] == ' ' {
			return afterGzip(ae[p+4:])
		}
		start = p + 4
	}
}

func afterGzip(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ',':
			return true
		case ';':
			return quantity(s[i+1:])
		case ' ':
		default:
			return false
		}
	}
	return true
}

func quantity(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case 'q', 'Q':
			s = s[i+1:]
			if len(s) < 2 || s[0] != '=' {
				return false
			}
			return qvalue(s[1:]) != 0
		case ' ':
		default:
			return false
		}
	}
	return true
}

// qvalue is nginx's ngx_http_gzip_quantity: a q-value times 100, 0 when
// it is malformed.
func qvalue(s string) int {
	if s == "" {
		return 0
	}
	n := int(s[0] - '0')
	if n > 1 {
		return 0
	}
	s = s[1:]
	if s == "" || s[0] == ',' || s[0] == ' ' {
		return n * 100
	}
	if s[0] != '.' {
		return 0
	}
	s = s[1:]
	q, scale := 0, 100
	for len(s) > 0 {
		c := s[0]
		if c == ',' || c == ' ' {
			break
		}
		if c < '0' || c > '9' {
			return 0
		}
		if scale == 1 {
			return 0 // three decimals at most
		}
		q = q*10 + int(c-'0')
		scale /= 10
		s = s[1:]
	}
	if scale > 1 {
		q *= scale
	}
	q += n * 100
	if q > 100 {
		return 0
	}
	return q
}

// msie6 is nginx's test for MSIE 4, 5 and 6 without SV1 (Opera excluded),
// what `gzip_disable msie6` refuses.
func msie6(ua string) bool {
	i := strings.Index(ua, "MSIE ")
	if i < 0 || i+7 >= len(ua) || strings.Contains(ua, "Opera") {
		return false
	}
	m := ua[i:]
	if m[6] != '.' {
		return false
	}
	switch m[5] {
	case '4', '5':
		return true
	case '6':
		return !strings.Contains(m[8:], "SV1")
	}
	return false
}

// Headers turns an eligible, accepted response's headers into those of
// its compressed form: Content-Encoding gzip, no Content-Length or
// Accept-Ranges, and the ETag weakened (a strong one gets "W/"; one that
// is not quoted is dropped), as nginx 1.7.3 and later.
func Headers(h http1.Header) http1.Header {
	out := h[:0:0]
	for _, f := range h {
		switch {
		case strings.EqualFold(f.Name, "Content-Length"), strings.EqualFold(f.Name, "Accept-Ranges"):
			continue
		case strings.EqualFold(f.Name, "ETag") && !strings.HasPrefix(f.Value, "W/"):
			if !strings.HasPrefix(f.Value, `"`) {
				continue
			}
			f.Value = "W/" + f.Value
		}
		out = append(out, f)
	}
	return append(out, http1.Field{Name: "Content-Encoding", Value: "gzip"})
}
