package load

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Sources parses "127.0.0.2-127.0.0.17" or "127.0.0.2,127.0.0.3" into
// loopback addresses; it refuses anything outside 127.0.0.0/8.
func Sources(spec string) ([]netip.Addr, error) {
	if spec == "" {
		return nil, nil
	}
	var out []netip.Addr
	for _, part := range splitComma(spec) {
		lo, hi, isRange := cut(part, '-')
		a, err := netip.ParseAddr(lo)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = netip.ParseAddr(hi); err != nil {
				return nil, err
			}
		}
		for x := a; x.Compare(b) <= 0; x = x.Next() {
			if !x.Is4() || x.As4()[0] != 127 {
				return nil, fmt.Errorf("load: source %s is not in 127.0.0.0/8", x)
			}
			out = append(out, x)
			if len(out) > 1024 {
				return nil, fmt.Errorf("load: too many source addresses in %q", spec)
			}
		}
	}
	return out, nil
}

func splitComma(s string) []string {
	var out []string
	for s != "" {
		var p string
		p, s, _ = cut(s, ',')
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

func cut(s string, sep byte) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// dialer spreads connections over source addresses. Binding with
// IP_BIND_ADDRESS_NO_PORT defers the port choice to connect(), which can
// reuse TIME_WAIT ports on loopback; an early bind() could not.
type dialer struct {
	srcs []netip.Addr
	tls  *tls.Config // nil: plain ws
	next atomic.Uint64
}

func noPortControl(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

func (d *dialer) dial(addr string, timeout time.Duration) (net.Conn, error) {
	nd := net.Dialer{Timeout: timeout}
	if len(d.srcs) > 0 {
		src := d.srcs[d.next.Add(1)%uint64(len(d.srcs))]
		nd.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
		nd.Control = noPortControl
	}
	return nd.Dial("tcp4", addr)
}
