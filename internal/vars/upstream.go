package vars

import (
	"strconv"
	"strings"
	"time"
)

// Upstream is what the $upstream_* variables read: every try of every
// proxy pass of the request (an internal redirect may proxy again), and
// the headers of the last response. The server fills it; values are
// formatted only when a variable is read.
type Upstream struct {
	Tries  []UpstreamTry
	groups int            // passes so far
	one    [1]UpstreamTry // Tries' first storage (Add): u is never copied
}

// UpstreamTry is one try at a peer. A duration below zero is unknown and
// shows as "-", as nginx.
type UpstreamTry struct {
	Group          int // the pass it belongs to: " : " between passes
	Addr           string
	Status         string
	ConnectTime    time.Duration
	HeaderTime     time.Duration
	ResponseTime   time.Duration
	QueueTime      time.Duration
	BytesSent      int64
	BytesReceived  int64
	ResponseLength int64
}

// Add records a try. A request's usual single try is kept in u itself,
// costing no allocation; u must not be copied once it holds one.
func (u *Upstream) Add(t UpstreamTry) {
	if u.Tries == nil {
		u.Tries = u.one[:0]
	}
	u.Tries = append(u.Tries, t)
}

// NewGroup starts the tries of another pass and returns its number.
func (u *Upstream) NewGroup() int {
	u.groups++
	return u.groups
}

func init() {
	for name, f := range upstreamVars {
		builtins[name] = f
		volatile[name] = true
	}
}

var upstreamVars = map[string]func(*Ctx) string{
	"upstream_connect_time":     upstreamList(func(t *UpstreamTry) string { return msecOrDash(t.ConnectTime) }),
	"upstream_header_time":      upstreamList(func(t *UpstreamTry) string { return msecOrDash(t.HeaderTime) }),
	"upstream_queue_time":       upstreamList(func(t *UpstreamTry) string { return msecOrDash(t.QueueTime) }),
	"upstream_bytes_sent":       upstreamList(func(t *UpstreamTry) string { return strconv.FormatInt(t.BytesSent, 10) }),
	"upstream_bytes_received":   upstreamList(func(t *UpstreamTry) string { return strconv.FormatInt(t.BytesReceived, 10) }),
	"upstream_response_length":  upstreamList(func(t *UpstreamTry) string { return strconv.FormatInt(t.ResponseLength, 10) }),
	"upstream_last_server_name": func(*Ctx) string { return "" },
	"proxy_port": func(c *Ctx) string {
		if c.ProxyHost == "" {
			return ""
		}
		if i := strings.LastIndexByte(c.ProxyHost, ':'); i >= 0 && !strings.HasSuffix(c.ProxyHost, "]") {
			return c.ProxyHost[i+1:]
		}
		if c.ProxyScheme == "https" {
			return "443"
		}
		return "80"
	},
}

// upstreamList is a variable of one value per try.
func upstreamList(f func(*UpstreamTry) string) func(*Ctx) string {
	return func(c *Ctx) string {
		if c.Upstream == nil {
			return ""
		}
		return c.Upstream.Join(f)
	}
}

// Join joins f's value for each try: ", " within a pass, " : " between
// passes; empty before any try, as nginx's "not found".
func (u *Upstream) Join(f func(*UpstreamTry) string) string {
	if len(u.Tries) == 1 {
		return f(&u.Tries[0])
	}
	var b strings.Builder
	for i := range u.Tries {
		t := &u.Tries[i]
		if i > 0 {
			if t.Group != u.Tries[i-1].Group {
				b.WriteString(" : ")
			} else {
				b.WriteString(", ")
			}
		}
		b.WriteString(f(t))
	}
	return b.String()
}

// MsecOrDash formats a try's duration as nginx: seconds with
// milliseconds, "-" when unknown (below zero).
func MsecOrDash(d time.Duration) string { return msecOrDash(d) }

func msecOrDash(d time.Duration) string {
	if d < 0 {
		return "-"
	}
	return seconds(d)
}

// upstreamPrefixed serves $upstream_cookie_NAME from the last backend
// response (UpstreamHeader, which $upstream_http_NAME reads too), and
// $upstream_trailer_NAME from the trailer fields of its chunked body
// (UpstreamTrailer; empty until the body is read to its end).
func upstreamPrefixed(name string) func(*Ctx) string {
	switch {
	case strings.HasPrefix(name, "upstream_cookie_"):
		ck := name[len("upstream_cookie_"):]
		return func(c *Ctx) string {
			if c.UpstreamHeader == nil {
				return ""
			}
			return setCookieValue(c.UpstreamHeader, ck)
		}
	case strings.HasPrefix(name, "upstream_trailer_"):
		tr := headerName(name[len("upstream_trailer_"):])
		return func(c *Ctx) string {
			if c.UpstreamTrailer == nil {
				return ""
			}
			return c.UpstreamTrailer.Get(tr)
		}
	}
	return nil
}

// setCookieValue is the value of the cookie name that a Set-Cookie header
// sets, the first one naming it.
func setCookieValue(h Header, name string) string {
	for line := range h.Values("Set-Cookie") {
		kv, _, _ := strings.Cut(line, ";")
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		if strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
