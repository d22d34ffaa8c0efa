package server

import (
	"io"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/backend"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/proxy"
	"github.com/wsgate/wsgate/internal/vars"
)

// upstreamOut is what a proxied response's headers set for the exchange.
type upstreamOut struct {
	buffer int8   // X-Accel-Buffering: 1 yes, -1 no, 0 as proxy_buffering says
	method string // the method sent upstream (proxy_method)

	ups        vars.Upstream // the tries, for $upstream_*
	relayStart time.Time     // when the response's relay began
	bodyRead   int64         // response body bytes read from the backend
	streamed   bool          // the request body streams from the client while it is sent
	queued     time.Duration // the wait in the upstream's queue before the first try
	addr       string        // the peer the body is read from, for log lines
	reqBody    *requestBody  // the request body sent, which proxy() closes

	rate    int64 // X-Accel-Limit-Rate, when rateSet: the client rate of this answer and of one it redirects to
	rateSet bool
	charset string       // X-Accel-Charset: the charset to label the answer with
	carry   http1.Header // headers an X-Accel-Redirect hands to the answer it leads to
	expires accelExpiry  // X-Accel-Expires, for the cache
}

// accel reads the backend's X-Accel-Buffering, X-Accel-Limit-Rate,
// X-Accel-Charset and X-Accel-Expires, as nginx does unless
// proxy_ignore_headers names them. It runs before the answer's filters
// and head (before an X-Accel-Redirect, the answer it leads to), which
// then apply the charset and the rate.
func (x *exchange) accel(h http1.Header) {
	ign := x.lc.ProxyRest.IgnoreHeaders
	if ign&config.IgnoreXAccelBuffering == 0 {
		switch v := h.Get("X-Accel-Buffering"); {
		case strings.EqualFold(v, "no"):
			x.upstreamOut.buffer = -1
		case strings.EqualFold(v, "yes"):
			x.upstreamOut.buffer = 1
		}
	}
	if v := h.Get("X-Accel-Charset"); v != "" && ign&config.IgnoreXAccelCharset == 0 {
		x.upstreamOut.charset = v
	}
	if ign&config.IgnoreXAccelExpires == 0 {
		x.upstreamOut.expires = parseAccelExpires(h.Get("X-Accel-Expires"), time.Now())
	}
	if ign&config.IgnoreXAccelLimitRate == 0 {
		x.accelLimitRate(h.Get("X-Accel-Limit-Rate"))
	}
}

// accelLimitRate takes the answer's rate to the client from
// X-Accel-Limit-Rate: bytes a second, or "off"; the head arms it.
func (x *exchange) accelLimitRate(v string) {
	if v == "" {
		return
	}
	if strings.EqualFold(v, "off") {
		x.upstreamOut.rate, x.upstreamOut.rateSet = 0, true
		return
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return // nginx logs an invalid value and ignores it
	}
	x.upstreamOut.rate, x.upstreamOut.rateSet = n, true
}

// accelExpiry is X-Accel-Expires as nginx reads it, for the cache: set
// says the header was there and valid; with noCache ("0") the answer is
// not to be cached, else it is fresh until until. It changes nothing
// without a cache.
type accelExpiry struct {
	set     bool
	noCache bool
	until   time.Time
}

// parseAccelExpires reads X-Accel-Expires: seconds from now, or "@" and
// a Unix time; anything else is ignored, as nginx.
func parseAccelExpires(v string, now time.Time) accelExpiry {
	at := strings.HasPrefix(v, "@")
	n, err := strconv.ParseInt(strings.TrimPrefix(v, "@"), 10, 64)
	switch {
	case v == "" || err != nil || n < 0:
		return accelExpiry{}
	case at:
		return accelExpiry{set: true, until: time.Unix(n, 0)}
	case n == 0:
		return accelExpiry{set: true, noCache: true}
	}
	return accelExpiry{set: true, until: now.Add(time.Duration(n) * time.Second)}
}

// redirectCarried are the backend headers an X-Accel-Redirect hands to
// the answer it leads to, as nginx's upstream module.
var redirectCarried = []string{"Content-Type", "Set-Cookie", "Content-Disposition", "Cache-Control", "Expires", "Accept-Ranges"}

// accelRedirect follows a backend's X-Accel-Redirect: the backend's
// answer is dropped (its connection kept only when it has no body), the
// headers of redirectCarried go with the request, which continues at
// the URI (by GET, HEAD staying HEAD) or the named location. It reports
// whether the client connection may be kept.
func (x *exchange) accelRedirect(bc *backend.Conn, resp *http1.Response, uri string) bool {
	if resp.ContentLength == 0 {
		bc.Drained(resp)
	}
	bc.Release(false)
	x.responseRead()
	x.accel(resp.Header)
	x.upstreamOut.buffer = 0 // the next answer's own
	x.redirectBody()
	for _, f := range resp.Header {
		for _, n := range redirectCarried {
			if strings.EqualFold(f.Name, n) {
				x.upstreamOut.carry = append(x.upstreamOut.carry, f)
			}
		}
	}
	if strings.HasPrefix(uri, "@") {
		return x.namedRedirect(uri)
	}
	path, args, _ := strings.Cut(uri, "?")
	path, ok := safeURI(path)
	if !ok {
		x.logRequest(errlog.Error, "", "unsafe URI \"%s\" was detected", uri)
		return x.errorPage(404)
	}
	if x.req.Method != "HEAD" {
		x.req.Method = "GET"
		x.vc.SetMethod("GET")
	}
	return x.redirectInternally(path, args)
}

// redirectBody hands the request body to the request an X-Accel-Redirect
// continues, which nginx sends again if it proxies: a buffered body as it
// is, a streamed one (read and gone) as an empty one. The proxy() that
// sent it still closes it.
func (x *exchange) redirectBody() {
	b := x.upstreamOut.reqBody
	x.upstreamOut.reqBody = nil
	switch {
	case b == nil:
	case b.streamed():
		x.preread = &requestBody{framing: proxy.Body{Length: 0}, mem: []byte{}}
	default:
		x.preread = b
	}
}

// accelRedirectURI is the backend's X-Accel-Redirect when it is acted
// on: not under proxy_ignore_headers.
func (x *exchange) accelRedirectURI(resp *http1.Response) string {
	if x.lc.ProxyRest.IgnoreHeaders&config.IgnoreXAccelRedirect != 0 {
		return ""
	}
	return resp.Header.Get("X-Accel-Redirect")
}

// safeURI decodes a redirect's path as nginx's ngx_http_parse_unsafe_uri:
// percent escapes are decoded, and a path that is not absolute or has a
// ".." segment or a NUL is refused.
func safeURI(p string) (string, bool) {
	if strings.Contains(p, "%") {
		u, err := url.PathUnescape(p)
		if err != nil {
			return "", false
		}
		p = u
	}
	if !strings.HasPrefix(p, "/") || strings.ContainsRune(p, 0) {
		return "", false
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." {
			return "", false
		}
	}
	return p, true
}

// withCarried adds the headers an X-Accel-Redirect carried to the answer
// it led to: each unless the answer has one of that name, Set-Cookie
// always.
func (x *exchange) withCarried(hdr http1.Header) http1.Header {
	c := x.upstreamOut.carry
	if len(c) == 0 {
		return hdr
	}
	out := slices.Clone(hdr)
	for _, f := range c {
		if strings.EqualFold(f.Name, "Set-Cookie") || !hasField(hdr, f.Name) {
			out = append(out, f)
		}
	}
	return out
}

// carriedType gives a static file the Content-Type an X-Accel-Redirect
// carried, as nginx, whose static handler keeps a type already set.
func (x *exchange) carriedType(hdr http1.Header) http1.Header {
	ct := x.upstreamOut.carry.Get("Content-Type")
	if ct == "" {
		return hdr
	}
	out := slices.DeleteFunc(slices.Clone(hdr), func(f http1.Field) bool { return strings.EqualFold(f.Name, "Content-Type") })
	return append(out, http1.Field{Name: "Content-Type", Value: ct})
}

// buffering reports whether the response is copied through the client
// buffer (proxy_buffering, unless X-Accel-Buffering said otherwise).
func (x *exchange) buffering() bool {
	if b := x.upstreamOut.buffer; b != 0 {
		return b > 0
	}
	return x.lc.Buffering
}

// pacedReader reads from the backend at most rate bytes a second on
// average (proxy_limit_rate): a read that is ahead waits until the bytes
// so far are due.
type pacedReader struct {
	r     io.Reader
	rate  int64
	start time.Time
	n     int64
}

func (p *pacedReader) Read(b []byte) (int, error) {
	if max := int(p.rate); len(b) > max {
		b = b[:max] // at most a second's worth at a time
	}
	n, err := p.r.Read(b)
	p.n += int64(n)
	due := p.start.Add(time.Duration(p.n * int64(time.Second) / p.rate))
	if wait := time.Until(due); wait > 0 {
		time.Sleep(wait)
	}
	return n, err
}

// bindAddr is proxy_bind's address for this request; nil without one (or
// when its variables give an empty value, as nginx).
func (x *exchange) bindAddr() *net.TCPAddr {
	b := x.lc.ProxyRest.Bind
	if b == nil {
		return nil
	}
	v := b.Addr.Eval(x.vc)
	if v == "" {
		return nil
	}
	ap, err := config.ParseBindAddr(v)
	if err != nil {
		x.logRequest(errlog.Error, "", "invalid local address \"%s\"", v)
		return nil
	}
	return net.TCPAddrFromAddrPort(ap)
}

// size is the body's length as sent, for $upstream_bytes_sent; -1 when
// unknown (chunked) or absent.
func (b *requestBody) size() int64 {
	if b == nil {
		return -1
	}
	return b.framing.Length
}
