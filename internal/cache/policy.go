package cache

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/http1"
)

// Rules are what decides whether a response is stored and for how long,
// besides its own headers.
type Rules struct {
	// Ignore* are proxy_ignore_headers: the header is not acted on.
	IgnoreXAccelExpires, IgnoreCacheControl, IgnoreExpires, IgnoreSetCookie, IgnoreVary bool
	// Valid is proxy_cache_valid: how long a response with status stays
	// fresh when its headers do not say; 0: not stored.
	Valid func(status int) time.Duration
}

// maxVary is the longest Vary header nginx stores a response with.
const maxVary = 128

// Validity returns the Unix second until which a response may be served
// from the cache, or ok false when it may not be stored, by nginx's
// rules: X-Accel-Expires (seconds, or @ and an absolute time) first, then
// Cache-Control (no-cache, no-store and private refuse; s-maxage, then
// max-age), then Expires, then proxy_cache_valid. A Set-Cookie, a
// `Vary: *` or a Vary longer than 128 bytes refuse the response, as does
// a zero or unreadable lifetime.
func Validity(status int, h http1.Header, now time.Time, r Rules) (until int64, ok bool) {
	if !r.IgnoreSetCookie && h.Has("Set-Cookie") {
		return 0, false
	}
	if !r.IgnoreVary {
		if v := strings.TrimSpace(h.Join("Vary", ", ")); v == "*" || len(v) > maxVary {
			return 0, false
		}
	}
	if !r.IgnoreXAccelExpires {
		if v := h.Get("X-Accel-Expires"); v != "" {
			if until, ok, known := accelExpires(v, now); known {
				return until, ok
			}
		}
	}
	if !r.IgnoreCacheControl {
		if until, ok, known := cacheControl(h.Join("Cache-Control", ", "), now); known {
			return until, ok
		}
	}
	if !r.IgnoreExpires {
		if v := h.Get("Expires"); v != "" {
			t, err := http.ParseTime(v)
			if err != nil || t.Unix() < now.Unix() {
				return 0, false
			}
			return t.Unix(), true
		}
	}
	if r.Valid == nil {
		return 0, false
	}
	if d := r.Valid(status); d > 0 {
		return now.Add(d).Unix(), true
	}
	return 0, false
}

// accelExpires reads X-Accel-Expires; known is false for a value nginx
// ignores.
func accelExpires(v string, now time.Time) (until int64, ok, known bool) {
	abs := strings.HasPrefix(v, "@")
	n, err := strconv.ParseInt(strings.TrimPrefix(v, "@"), 10, 64)
	switch {
	case err != nil || n < 0:
		return 0, false, false
	case n == 0:
		return 0, false, true
	case abs:
		return n, true, true // a time in the past is stored already stale, as nginx
	}
	return now.Unix() + n, true, true
}

// cacheControl reads Cache-Control; known is false when it says nothing
// about caching.
func cacheControl(v string, now time.Time) (until int64, ok, known bool) {
	if v == "" {
		return 0, false, false
	}
	lv := strings.ToLower(v)
	if strings.Contains(lv, "no-cache") || strings.Contains(lv, "no-store") || strings.Contains(lv, "private") {
		return 0, false, true
	}
	i := strings.Index(lv, "s-maxage=")
	if i >= 0 {
		i += len("s-maxage=")
	} else if i = strings.Index(lv, "max-age="); i >= 0 {
		i += len("max-age=")
	} else {
		return 0, false, false
	}
	var n int64
	for ; i < len(lv); i++ {
		c := lv[i]
		if c >= '0' && c <= '9' {
			n = n*10 + int64(c-'0')
			continue
		}
		if c == ',' || c == ';' || c == ' ' {
			break
		}
		return 0, false, true
	}
	if n == 0 {
		return 0, false, true
	}
	return now.Unix() + n, true, true
}

// Variant is the request's values of the headers that vary names, the
// part of a variant's file name beyond its key; "" for an empty vary.
func Variant(vary string, get func(name string) string) string {
	var b strings.Builder
	for _, name := range strings.Split(vary, ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "" {
			continue
		}
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(get(name))
		b.WriteByte('\n')
	}
	return b.String()
}

// VaryOf is the Vary header of h, all its lines joined.
func VaryOf(h http1.Header) string { return h.Join("Vary", ", ") }

// StaleExtensions reads Cache-Control's stale-while-revalidate and
// stale-if-error seconds, as nginx 1.11.10 and later; 0 for absent ones.
func StaleExtensions(h http1.Header, r Rules) (whileRevalidate, ifError int64) {
	if r.IgnoreCacheControl {
		return 0, 0
	}
	v := strings.ToLower(h.Join("Cache-Control", ", "))
	return seconds(v, "stale-while-revalidate="), seconds(v, "stale-if-error=")
}

// seconds is the number after name in v, up to a delimiter; 0 when name
// is absent or the number is not followed by one.
func seconds(v, name string) int64 {
	i := strings.Index(v, name)
	if i < 0 {
		return 0
	}
	var n int64
	for _, c := range []byte(v[i+len(name):]) {
		if c >= '0' && c <= '9' {
			n = n*10 + int64(c-'0')
			continue
		}
		if c == ',' || c == ';' || c == ' ' {
			break
		}
		return 0
	}
	return n
}

// StaleUpdating reports whether m may be served while it is updated
// (stale-while-revalidate) at now.
func (m *Meta) StaleUpdating(now int64) bool {
	return m.StaleWhileRevalidate > 0 && now <= m.ValidUntil+m.StaleWhileRevalidate
}

// StaleError reports whether m may be served when the backend fails
// (stale-if-error) at now: no answer, or only answers
// proxy_next_upstream passed over.
func (m *Meta) StaleError(now int64) bool {
	return m.StaleIfError > 0 && now <= m.ValidUntil+m.StaleIfError
}
