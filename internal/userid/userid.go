// Package userid reads and makes the client identifier cookies of
// nginx's ngx_http_userid_filter_module: 16 bytes (four 32-bit words),
// sent base64-encoded with the standard alphabet.
package userid

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// Mode is the `userid` setting.
type Mode int

// The modes, in nginx's order: Log and Off never set a cookie.
const (
	Off Mode = iota
	Log
	V1
	On
)

// MaxExpires is `userid_expires max`: 31 Dec 2037 23:55:55 GMT.
const MaxExpires = -1

// Conf is a location's userid settings, as written.
type Conf struct {
	Mode       Mode
	Service    uint32
	HasService bool   // userid_service was given
	Name       string // "" means "uid"
	Domain     string // "" for none
	Path       string // "" means "/"
	P3P        string
	Expires    int64 // seconds; 0 off, MaxExpires for max
	Mark       byte  // 0 for off
	Flags      []string
}

// CookieName is userid_name, "uid" by default.
func (c *Conf) CookieName() string {
	if c.Name == "" {
		return "uid"
	}
	return c.Name
}

// UID is one identifier: the four words as nginx keeps them in memory.
type UID [16]byte

// Zero reports a missing identifier: nginx tests the fourth word.
func (u UID) Zero() bool { return binary.LittleEndian.Uint32(u[12:]) == 0 }

// Var formats u as $uid_got and $uid_set do: "name=" and the four words
// in upper-case hex, each read as a little-endian number.
func (u UID) Var(name string) string {
	le := binary.LittleEndian
	return fmt.Sprintf("%s=%08X%08X%08X%08X", name, le.Uint32(u[0:]), le.Uint32(u[4:]), le.Uint32(u[8:]), le.Uint32(u[12:]))
}

// Got is a request's identifier cookie: Raw is the cookie's value, UID
// its decoded first 22 characters (zero when absent or invalid).
type Got struct {
	Raw string
	UID UID
}

// Parse finds the cookie name in the request's Cookie header values and
// decodes it; a value shorter than 22 characters or not base64 yields a
// zero UID and a reason for the error log.
func Parse(cookies []string, name string) (Got, string) {
	raw, ok := find(cookies, name)
	if !ok {
		return Got{}, ""
	}
	g := Got{Raw: raw}
	if len(raw) < 22 {
		return g, fmt.Sprintf("client sent too short userid cookie %q", raw)
	}
	b, err := base64.RawStdEncoding.DecodeString(raw[:22])
	if err != nil || len(b) != 16 {
		return g, fmt.Sprintf("client sent invalid userid cookie %q", raw)
	}
	copy(g.UID[:], b)
	return g, ""
}

// find returns the first cookie called name, as nginx's cookie parser.
func find(cookies []string, name string) (string, bool) {
	for _, h := range cookies {
		for part := range strings.SplitSeq(h, ";") {
			k, v, ok := strings.Cut(strings.TrimLeft(part, " \t,"), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), name) {
				return strings.TrimSpace(v), true
			}
		}
	}
	return "", false
}

var (
	startValue = uint32(time.Now().Nanosecond()/1000/20)<<16 | uint32(os.Getpid())&0xffff
	seqV1      atomic.Uint32
	seqV2      atomic.Uint32
)

func init() {
	seqV1.Store(1)
	seqV2.Store(0x03030302)
}

// New makes an identifier for c's mode: v1 in host order, on (v2) in
// network order with the server's IPv4 address (or the last four bytes of
// its IPv6 one) unless userid_service is set.
func New(c *Conf, local netip.Addr, now time.Time) UID {
	var u UID
	if c.Mode == V1 {
		le := binary.LittleEndian
		if c.HasService {
			le.PutUint32(u[0:], c.Service)
		}
		le.PutUint32(u[4:], uint32(now.Unix()))
		le.PutUint32(u[8:], startValue)
		le.PutUint32(u[12:], seqV1.Add(0x100)-0x100)
		return u
	}
	be := binary.BigEndian
	if c.HasService {
		be.PutUint32(u[0:], c.Service)
	} else if a := local.As16(); local.IsValid() {
		copy(u[0:4], a[12:16])
	}
	be.PutUint32(u[4:], uint32(now.Unix()))
	be.PutUint32(u[8:], startValue)
	be.PutUint32(u[12:], nextV2())
	return u
}

func nextV2() uint32 {
	for {
		cur := seqV2.Load()
		next := cur + 0x100
		if next < 0x03030302 {
			next = 0x03030302
		}
		if seqV2.CompareAndSwap(cur, next) {
			return cur
		}
	}
}

// NeedsCookie reports whether a response must carry Set-Cookie: no valid
// identifier came, a reset was asked for, or the cookie lacks the mark.
func NeedsCookie(c *Conf, g Got, reset bool) bool {
	if c.Mode < V1 {
		return false
	}
	if g.UID.Zero() || reset {
		return true
	}
	return c.Mark != 0 && !(len(g.Raw) > 23 && g.Raw[22] == c.Mark && g.Raw[23] == '=')
}

// Cookie is the Set-Cookie value for u; reuse sends the client's own
// identifier again (to add the mark) from its raw cookie.
func Cookie(c *Conf, u UID, raw string, reuse bool, now time.Time) string {
	var b strings.Builder
	b.WriteString(c.CookieName())
	b.WriteByte('=')
	if reuse {
		b.WriteString(raw[:22])
		b.WriteByte(c.Mark)
		b.WriteByte('=')
	} else {
		enc := []byte(base64.StdEncoding.EncodeToString(u[:]))
		if c.Mark != 0 {
			enc[len(enc)-2] = c.Mark
		}
		b.Write(enc)
	}
	switch {
	case c.Expires == MaxExpires:
		b.WriteString("; expires=Thu, 31-Dec-37 23:55:55 GMT")
	case c.Expires > 0:
		b.WriteString("; expires=" + cookieTime(now.Add(time.Duration(c.Expires)*time.Second)))
	}
	if c.Domain != "" {
		b.WriteString("; domain=" + c.Domain)
	}
	path := c.Path
	if path == "" {
		path = "/"
	}
	b.WriteString("; path=" + path)
	for _, f := range c.Flags {
		b.WriteString("; " + f)
	}
	return b.String()
}

// cookieTime is nginx's cookie date: a two-digit year up to 2037.
func cookieTime(t time.Time) string {
	t = t.UTC()
	if t.Year() > 2037 {
		return t.Format("Mon, 02-Jan-2006 15:04:05 GMT")
	}
	return t.Format("Mon, 02-Jan-06 15:04:05 GMT")
}
