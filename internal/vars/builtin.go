package vars

import (
	"github.com/wsgate/wsgate/internal/auth"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// volatile variables change during a request (time, status, byte counts)
// and are never cached.
var volatile = map[string]bool{
	"limit_req_status": true, "limit_conn_status": true,
	"websocket_messages_in": true, "websocket_messages_out": true, "websocket_close_code": true, "websocket_closed_by": true, "websocket_close_reason": true,
	"connections_active": true, "connections_reading": true, "connections_writing": true, "connections_waiting": true,
	"status": true, "time_local": true, "time_iso8601": true, "msec": true,
	"request_time": true, "body_bytes_sent": true, "bytes_sent": true, "gzip_ratio": true,
	"upstream_addr": true, "upstream_status": true, "upstream_response_time": true, "upstream_cache_status": true,
	// rewrite and internal redirects change these (nginx's NOCACHEABLE);
	// the file variables follow the location, which a redirect changes.
	"uri": true, "document_uri": true, "args": true, "query_string": true, "is_args": true,
	"document_root": true, "realpath_root": true, "request_filename": true,
}

// isVolatile reports whether a variable is computed afresh at every use:
// the volatile list, the regex captures $0..$9 and the $arg_*,
// $upstream_http_* and $upstream_trailer_* families.
func isVolatile(name string) bool {
	return volatile[name] || strings.HasPrefix(name, "arg_") || strings.HasPrefix(name, "upstream_http_") || strings.HasPrefix(name, "upstream_trailer_") || (len(name) == 1 && name[0] >= '0' && name[0] <= '9')
}

var builtins = map[string]func(*Ctx) string{
	"remote_addr": func(c *Ctx) string { return addrString(c.Remote) },
	"remote_port": func(c *Ctx) string { return portString(c.Remote.Port()) },
	"binary_remote_addr": func(c *Ctx) string {
		a := c.Remote.Addr().Unmap()
		if !a.IsValid() {
			return ""
		}
		b := a.AsSlice()
		return string(b)
	},
	"proxy_add_x_forwarded_for": func(c *Ctx) string {
		ra := addrString(c.Remote)
		if c.Header == nil {
			return ra
		}
		xs := c.Header.Join("X-Forwarded-For", ", ")
		if xs == "" {
			return ra
		}
		return xs + ", " + ra
	},
	"scheme": func(c *Ctx) string { return c.Scheme },
	"https": func(c *Ctx) string {
		if c.Scheme == "https" {
			return "on"
		}
		return ""
	},
	"host": func(c *Ctx) string {
		if c.Host != "" {
			return c.Host
		}
		return c.ServerName
	},
	"hostname":            func(*Ctx) string { return hostname },
	"server_name":         func(c *Ctx) string { return c.ServerName },
	"server_port":         func(c *Ctx) string { return portString(c.Local.Port()) },
	"server_addr":         func(c *Ctx) string { return addrString(c.Local) },
	"server_protocol":     func(c *Ctx) string { return c.Proto },
	"request_uri":         func(c *Ctx) string { return c.RequestURI },
	"uri":                 func(c *Ctx) string { return c.Path },
	"document_uri":        func(c *Ctx) string { return c.Path },
	"args":                func(c *Ctx) string { return c.Args },
	"query_string":        func(c *Ctx) string { return c.Args },
	"is_args":             func(c *Ctx) string { return isArgs(c) },
	"request_method":      func(c *Ctx) string { return c.Method },
	"request":             (*Ctx).RequestLine,
	"request_length":      func(c *Ctx) string { return strconv.FormatInt(c.ReqLength, 10) },
	"content_length":      func(c *Ctx) string { return hdr(c, "Content-Length") },
	"content_type":        func(c *Ctx) string { return hdr(c, "Content-Type") },
	"remote_user":         remoteUser,
	"connection":          func(c *Ctx) string { return strconv.FormatUint(c.ConnID, 10) },
	"connection_requests": func(c *Ctx) string { return strconv.Itoa(c.ConnReqs) },
	"pid":                 func(*Ctx) string { return pid },
	"status": func(c *Ctx) string {
		if c.Status == 0 {
			return "000"
		}
		return strconv.Itoa(c.Status)
	},
	"time_local":   func(c *Ctx) string { return now(c).Format("02/Jan/2006:15:04:05 -0700") },
	"time_iso8601": func(c *Ctx) string { return now(c).Format("2006-01-02T15:04:05-07:00") },
	"msec": func(c *Ctx) string {
		ms := now(c).UnixMilli()
		return strconv.FormatInt(ms/1000, 10) + "." + pad3(ms%1000)
	},
	"request_time": func(c *Ctx) string {
		if c.Start.IsZero() {
			return "0.000"
		}
		return seconds(now(c).Sub(c.Start))
	},
	"body_bytes_sent": func(c *Ctx) string { return strconv.FormatInt(c.BodyBytesSent, 10) },
	"bytes_sent":      func(c *Ctx) string { return strconv.FormatInt(c.BytesSent, 10) },
	"gzip_ratio":      func(c *Ctx) string { return c.GzipRatio },
	"upstream_addr":   func(c *Ctx) string { return c.UpstreamAddr },
	"proxy_host":      func(c *Ctx) string { return c.ProxyHost },
	"realip_remote_addr": func(c *Ctx) string {
		if c.RealRemote.IsValid() {
			return addrString(c.RealRemote)
		}
		return addrString(c.Remote)
	},
	"realip_remote_port": func(c *Ctx) string {
		if c.RealRemote.IsValid() {
			return portString(c.RealRemote.Port())
		}
		return portString(c.Remote.Port())
	},
	"proxy_protocol_addr": func(c *Ctx) string { return addrString(c.ProxyProtocol) },
	"proxy_protocol_port": func(c *Ctx) string { return portString(c.ProxyProtocol.Port()) },
	"limit_req_status":    func(c *Ctx) string { return c.LimitReqStatus },
	"ssl_protocol":        func(c *Ctx) string { return c.SSLProtocol },
	"websocket_messages_in": func(c *Ctx) string {
		return strconv.FormatInt(c.WS.MessagesIn, 10)
	},
	"websocket_messages_out": func(c *Ctx) string {
		return strconv.FormatInt(c.WS.MessagesOut, 10)
	},
	"websocket_close_code": func(c *Ctx) string {
		if c.WS.CloseCode == 0 {
			return ""
		}
		return strconv.Itoa(int(c.WS.CloseCode))
	},
	"websocket_closed_by":    func(c *Ctx) string { return c.WS.ClosedBy },
	"websocket_close_reason": func(c *Ctx) string { return c.WS.CloseReason },
	"ssl_cipher":             func(c *Ctx) string { return c.SSLCipher },
	"ssl_server_name":        func(c *Ctx) string { return c.SSLServerName },
	// $acme_certificate and $acme_certificate_key are read by
	// ssl_certificate and ssl_certificate_key during the handshake, where
	// they name the server's acme_certificate; in a request they are
	// empty.
	"acme_certificate":       func(*Ctx) string { return "" },
	"acme_certificate_key":   func(*Ctx) string { return "" },
	"connections_active":     func(c *Ctx) string { return connCount(c, 0) },
	"connections_reading":    func(c *Ctx) string { return connCount(c, 1) },
	"connections_writing":    func(c *Ctx) string { return connCount(c, 2) },
	"connections_waiting":    func(c *Ctx) string { return connCount(c, 3) },
	"limit_conn_status":      func(c *Ctx) string { return c.LimitConnStatus },
	"upstream_status":        func(c *Ctx) string { return c.UpstreamStatus },
	"upstream_response_time": func(c *Ctx) string { return c.UpstreamRespTime },
	"upstream_cache_status":  func(c *Ctx) string { return c.UpstreamCache },
	"document_root":          fileVar(FileVars.DocumentRoot),
	"realpath_root":          fileVar(FileVars.RealpathRoot),
	"request_filename":       fileVar(FileVars.RequestFilename),
}

func fileVar(f func(FileVars) string) func(*Ctx) string {
	return func(c *Ctx) string {
		if c.Files == nil {
			return ""
		}
		return f(c.Files)
	}
}

var pid = strconv.Itoa(osPid())

func now(c *Ctx) time.Time {
	if !c.End.IsZero() {
		return c.End
	}
	return time.Now()
}

// Seconds formats d as nginx does for $request_time: seconds with
// millisecond resolution.
func seconds(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	ms := d.Milliseconds()
	if ms == 0 {
		return "0.000" // a loopback or LAN answer: no allocation
	}
	var b [24]byte
	out := strconv.AppendInt(b[:0], ms/1000, 10)
	f := ms % 1000
	out = append(out, '.', byte('0'+f/100), byte('0'+f/10%10), byte('0'+f%10))
	return string(out)
}

// Seconds is exported for the proxy's $upstream_response_time.
func Seconds(d time.Duration) string { return seconds(d) }

func pad3(n int64) string {
	s := strconv.FormatInt(n, 10)
	return "000"[len(s):] + s
}

func isArgs(c *Ctx) string {
	if c.Args != "" {
		return "?" // nginx: a request "/x?" has no arguments either
	}
	return ""
}

func hdr(c *Ctx, name string) string {
	if c.Header == nil {
		return ""
	}
	return c.Header.Get(name)
}

func addrString(ap netip.AddrPort) string {
	a := ap.Addr()
	if !a.IsValid() {
		return ""
	}
	return a.Unmap().String()
}

func portString(p uint16) string {
	if p == 0 {
		return ""
	}
	return strconv.Itoa(int(p))
}

func osPid() int { return os.Getpid() }

// prefixed serves the variable families nginx builds from a name prefix.
func prefixed(name string) func(*Ctx) string {
	switch {
	case strings.HasPrefix(name, "http_"):
		u := name[len("http_"):]
		h := headerName(u)
		return func(c *Ctx) string {
			if c.Header == nil {
				return ""
			}
			sep := ", "
			if strings.EqualFold(h, "Cookie") {
				sep = "; "
			}
			v := c.Header.Join(h, sep)
			if v == "" && u != h {
				// A header sent with underscores (kept by
				// underscores_in_headers on) matches too, as in nginx.
				v = c.Header.Join(u, sep)
			}
			return v
		}
	case strings.HasPrefix(name, "sent_http_"):
		h := headerName(name[len("sent_http_"):])
		return func(c *Ctx) string {
			if c.RespHeader == nil {
				return ""
			}
			return c.RespHeader.Get(h)
		}
	case strings.HasPrefix(name, "upstream_http_"):
		h := headerName(name[len("upstream_http_"):])
		return func(c *Ctx) string {
			if c.UpstreamHeader == nil {
				return ""
			}
			return c.UpstreamHeader.Get(h)
		}
	case strings.HasPrefix(name, "arg_"):
		arg := name[len("arg_"):]
		return func(c *Ctx) string { return argValue(c.Args, arg) }
	case strings.HasPrefix(name, "cookie_"):
		ck := name[len("cookie_"):]
		return func(c *Ctx) string { return cookieValue(c, ck) }
	}
	if f := upstreamPrefixed(name); f != nil {
		return f
	}
	return corePrefixed(name)
}

// headerName turns "x_forwarded_for" into "x-forwarded-for"; header lookups
// are case-insensitive, as nginx's.
func headerName(s string) string { return strings.ReplaceAll(s, "_", "-") }

// argValue returns the raw (still escaped) value of the first argument
// named arg, compared case-insensitively, as nginx's $arg_ does.
func argValue(args, arg string) string {
	for args != "" {
		var kv string
		kv, args, _ = strings.Cut(args, "&")
		k, v, _ := strings.Cut(kv, "=")
		if strings.EqualFold(k, arg) {
			return v
		}
	}
	return ""
}

func cookieValue(c *Ctx, name string) string {
	if c.Header == nil {
		return ""
	}
	for line := range c.Header.Values("Cookie") {
		for line != "" {
			var kv string
			kv, line, _ = strings.Cut(line, ";")
			k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
			if strings.EqualFold(k, name) {
				return v
			}
		}
	}
	return ""
}

// Cookie returns the value of the request cookie name, as $cookie_name.
func (c *Ctx) Cookie(name string) string { return cookieValue(c, name) }

func connCount(c *Ctx, i int) string {
	if c.Stats == nil {
		return "0"
	}
	a, r, w, wt := c.Stats.ConnCounts()
	return strconv.FormatInt([4]int64{a, r, w, wt}[i], 10)
}

// remoteUser is $remote_user: the user name of Basic credentials the
// client sent, whether or not auth_basic checked them, as nginx.
func remoteUser(c *Ctx) string {
	if c.Header == nil {
		return ""
	}
	user, _, _ := auth.Credentials(c.Header.Get("Authorization"))
	return user
}
