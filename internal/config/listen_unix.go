package config

import (
	"hash/fnv"
	"net/netip"
	"strings"

	"github.com/wsgate/wsgate/internal/conf"
)

// UnixAddrPort is the key a `listen unix:path` is known by wherever
// listeners are keyed by address: an address in 100::/64, the IPv6
// discard-only prefix (RFC 6666) that no socket is bound to, derived from
// the path, with port 0, which no TCP listen can name. The same path gives
// the same key in every configuration, so a reload keeps its socket.
func UnixAddrPort(path string) netip.AddrPort {
	h := fnv.New64a()
	h.Write([]byte(path))
	var b [16]byte
	b[0], b[1] = 0x01, 0x00
	copy(b[8:], h.Sum(nil))
	return netip.AddrPortFrom(netip.AddrFrom16(b), 0)
}

// dListenUnix reads `listen unix:path [params]`. TLS (ssl, http2, quic)
// and the TCP socket options are refused on a unix socket.
func dListenUnix(d *conf.Directive, s *scope) error {
	path := strings.TrimPrefix(d.Args[0], "unix:")
	if path == "" || !strings.HasPrefix(path, "/") {
		return conf.Errorf(d, "a unix domain socket in \"listen\" needs an absolute path: \"%s\"", d.Args[0])
	}
	ls := Listen{File: d.File, Line: d.Line, Unix: path, Addr: "unix:" + path, AddrPort: UnixAddrPort(path)}
	if err := listenParams(d, &ls); err != nil {
		return err
	}
	o := ls.SockOpts
	switch {
	case ls.SSL || ls.HTTP2 || ls.QUIC:
		return conf.Errorf(d, "\"ssl\", \"http2\" and \"quic\" on a unix domain socket in \"listen\" are not supported")
	case o.FastOpen > 0 || o.Deferred || o.ReusePort || o.KeepAlive.Set:
		return conf.Errorf(d, "TCP socket options (fastopen, deferred, reuseport, so_keepalive) do not apply to a unix domain socket")
	}
	for _, prev := range s.server.Listens {
		if prev.AddrPort == ls.AddrPort {
			return conf.Errorf(d, "a duplicate listen %s", ls.Addr)
		}
	}
	s.server.Listens = append(s.server.Listens, ls)
	return nil
}
