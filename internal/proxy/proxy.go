package proxy

import (
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/vars"
	"github.com/wsgate/wsgate/internal/wsframe"
)

// URI returns the request target sent upstream. Without a URI part in
// proxy_pass the client's target goes as it came; with one, the part of
// the normalized path that matched a prefix location is replaced by it, as
// nginx does. path is $uri; loc is the matched location.
func URI(pp *config.ProxyPass, loc *config.Location, vc *vars.Ctx) string {
	if pp.Dynamic != nil && pp.HasURI {
		return pp.URI // a URL with variables gives the whole URI, as nginx
	}
	if !pp.HasURI && !vc.URIChanged {
		return vc.RequestURI
	}
	if !pp.HasURI || vc.URIBreak {
		u := escapePath(vc.Path)
		if vc.Args != "" {
			u += "?" + vc.Args
		}
		return u
	}
	rest := ""
	if loc != nil && loc.Modifier != "=" && strings.HasPrefix(vc.Path, loc.Path) {
		rest = vc.Path[len(loc.Path):]
	}
	u := pp.URI + escapePath(rest)
	if vc.Args != "" {
		u += "?" + vc.Args
	}
	return u
}

// escapePath re-escapes the decoded path tail as nginx does for a
// replaced URI: only what cannot stand in a path is escaped.
func escapePath(p string) string {
	const hexd = "0123456789ABCDEF"
	var b []byte
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c <= ' ' || c >= 0x7f || c == '%' || c == '?' || c == '#' || c == '"' {
			if b == nil {
				b = append(make([]byte, 0, len(p)+8), p[:i]...)
			}
			b = append(b, '%', hexd[c>>4], hexd[c&15])
			continue
		}
		if b != nil {
			b = append(b, c)
		}
	}
	if b == nil {
		return p
	}
	return string(b)
}

// Body says how the request body reaches the backend.
type Body struct {
	Length  int64 // >= 0: Content-Length; -1: none or chunked
	Chunked bool
}

// hidden are the client headers nginx never passes on by itself: they are
// hop-by-hop or re-created (ngx_http_proxy_headers' defaults).
var hidden = []string{"Host", "Connection", "Keep-Alive", "Upgrade", "TE", "Expect", "Transfer-Encoding", "Content-Length", "Proxy-Connection"}

// AppendRequest appends the request head for the backend: the request
// line, the configured headers (an empty value drops the header), nginx's
// defaults (Host: $proxy_host, Connection: close) where not configured,
// then the client's own headers minus the hidden ones and those configured.
func AppendRequest(dst []byte, method, uri string, req *http1.Request, lc *config.LocConf, vc *vars.Ctx, proxyHost string, body Body) []byte {
	dst = append(dst, method...)
	dst = append(dst, ' ')
	dst = append(dst, uri...)
	dst = append(dst, " HTTP/"...)
	dst = append(dst, lc.ProxyHTTPVersion...)
	dst = append(dst, "\r\n"...)
	setHost, setConn := false, false
	for _, h := range lc.ProxyHeaders {
		switch {
		case strings.EqualFold(h.Name, "Host"):
			setHost = true
		case strings.EqualFold(h.Name, "Connection"):
			setConn = true
		case strings.EqualFold(h.Name, "Content-Length"), strings.EqualFold(h.Name, "Transfer-Encoding"):
			continue // framing is ours to decide; a wrong one would smuggle
		}
		start := len(dst)
		dst = append(dst, h.Name...)
		dst = append(dst, ": "...)
		vstart := len(dst)
		dst = h.Value.Append(dst, vc)
		if len(dst) == vstart {
			dst = dst[:start] // an empty value removes the header, as nginx
			continue
		}
		dst = stripCRLF(dst, vstart)
		dst = append(dst, "\r\n"...)
	}
	if !setHost {
		dst = append(dst, "Host: "...)
		dst = append(dst, proxyHost...)
		dst = append(dst, "\r\n"...)
	}
	if !setConn {
		dst = append(dst, "Connection: close\r\n"...)
	}
	if body.Length >= 0 {
		dst = append(dst, "Content-Length: "...)
		dst = strconv.AppendInt(dst, body.Length, 10)
		dst = append(dst, "\r\n"...)
	} else if body.Chunked {
		dst = append(dst, "Transfer-Encoding: chunked\r\n"...)
	}
	if lc.ProxyRest.NoRequestHeaders {
		return append(dst, "\r\n"...) // proxy_pass_request_headers off
	}
	for _, f := range req.Header {
		if isHidden(f.Name) || Configured(lc.ProxyHeaders, f.Name) {
			continue
		}
		dst = append(dst, f.Name...)
		dst = append(dst, ": "...)
		dst = append(dst, f.Value...)
		dst = append(dst, "\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// stripCRLF keeps a variable's value from splitting the header: a client
// cannot smuggle a header line through $http_x.
func stripCRLF(b []byte, from int) []byte {
	j := from
	for i := from; i < len(b); i++ {
		if b[i] != '\r' && b[i] != '\n' {
			b[j] = b[i]
			j++
		}
	}
	return b[:j]
}

func isHidden(name string) bool {
	for _, h := range hidden {
		if strings.EqualFold(h, name) {
			return true
		}
	}
	return false
}

// Configured reports whether proxy_set_header sets name.
func Configured(hs []config.Header, name string) bool {
	for _, h := range hs {
		if strings.EqualFold(h.Name, name) {
			return true
		}
	}
	return false
}

// responseFraming are backend headers the client never gets as they are:
// framing and hop-by-hop headers are wsgate's to write.
var responseFraming = []string{"Connection", "Keep-Alive", "Transfer-Encoding", "Content-Length", "Proxy-Connection", "TE", "Trailer"}

// responseHidden is nginx's default proxy_hide_header list: Server and
// Date are wsgate's own, X-Accel-* are nginx's internal ones.
// proxy_pass_header takes names from it.
var responseHidden = []string{"Server", "Date", "X-Pad", "X-Accel-Expires", "X-Accel-Redirect", "X-Accel-Limit-Rate", "X-Accel-Buffering", "X-Accel-Charset"}

// ResponseHeader returns the backend's headers that go to the client. For
// a 101 "Connection: upgrade" is added.
func ResponseHeader(h http1.Header, switching bool) http1.Header {
	return FilterResponse(h, switching, nil)
}

// FilterResponse is ResponseHeader under a location's proxy_hide_header
// and proxy_pass_header (rest may be nil: the defaults).
func FilterResponse(h http1.Header, switching bool, rest *config.ProxyRest) http1.Header {
	out := make(http1.Header, 0, len(h)+1)
	for _, f := range h {
		if !hiddenResponse(f.Name, switching, rest) {
			out = append(out, f)
		}
	}
	if switching {
		out = append(out, http1.Field{Name: "Connection", Value: "upgrade"})
	}
	return out
}

func hiddenResponse(name string, switching bool, rest *config.ProxyRest) bool {
	if hasFold(responseFraming, name) {
		return true // an Upgrade on another answer (200, 426) passes, as nginx
	}
	if rest == nil {
		return hasFold(responseHidden, name)
	}
	return (hasFold(responseHidden, name) || hasFold(rest.HideHeaders, name)) && !hasFold(rest.PassHeaders, name)
}

func hasFold(list []string, name string) bool {
	for _, n := range list {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// ErrBadAccept is a 101 whose Sec-WebSocket-Accept does not answer the
// client's key: the backend is not speaking WebSocket to this client, and
// passing it on would hand the client a broken session.
var ErrBadAccept = errors.New("upstream sent invalid \"Sec-WebSocket-Accept\" header")

// CheckSwitch validates a backend's 101 against the client's request.
func CheckSwitch(req *http1.Request, resp *http1.Response) error {
	key := req.Header.Get("Sec-WebSocket-Key")
	if key == "" || !strings.EqualFold(req.Header.Get("Upgrade"), "websocket") {
		return nil // another protocol: nothing of ours to check
	}
	if !acceptAnswers(resp.Header.Get("Sec-WebSocket-Accept"), key) {
		return ErrBadAccept
	}
	return nil
}

// acceptGUID is RFC 6455's suffix for Sec-WebSocket-Accept (section 1.3).
const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// acceptAnswers reports whether accept is the Sec-WebSocket-Accept for key,
// as wsframe.AcceptKey computes it but on the stack: this runs on every
// handshake.
func acceptAnswers(accept, key string) bool {
	var in [64 + len(acceptGUID)]byte
	if len(key) > len(in)-len(acceptGUID) {
		return accept == wsframe.AcceptKey(key) // no valid key is this long
	}
	n := copy(in[:], key)
	n += copy(in[n:], acceptGUID)
	sum := sha1.Sum(in[:n])
	var want [28]byte // base64 of 20 bytes
	base64.StdEncoding.Encode(want[:], sum[:])
	return accept == string(want[:])
}
