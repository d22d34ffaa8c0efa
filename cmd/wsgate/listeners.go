package main

import (
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strings"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/server"
)

// logStarted writes the startup lines: one for the process, then one per
// bound socket, TCP (with its ssl, http2 and proxy_protocol options) and
// QUIC on UDP, so an operator sees exactly what is reachable.
func logStarted(log *errlog.Logger, cfg *config.Config, srv *server.Server) {
	log.Printf(errlog.Notice, 0, "wsgate/%s started, pid %d", server.Version, os.Getpid())
	for _, a := range srv.Addrs() {
		ap, _ := netip.ParseAddrPort(a.String())
		log.Printf(errlog.Notice, 0, "listening on %s (%s)", a, strings.Join(append([]string{"tcp"}, tcpOptions(cfg, ap)...), ", "))
	}
	for _, ap := range quicAddrs(cfg) {
		log.Printf(errlog.Notice, 0, "listening on %s (udp, quic, http3)", ap)
	}
}

// tcpOptions are the protocol options of the listen directives bound to ap.
func tcpOptions(cfg *config.Config, ap netip.AddrPort) []string {
	if cfg.HTTP == nil {
		return nil
	}
	seen := map[string]bool{}
	for _, srv := range cfg.HTTP.Servers {
		for _, ls := range srv.Listens {
			if ls.AddrPort.Port() != ap.Port() || (ls.AddrPort.Addr().Unmap() != ap.Addr().Unmap() && !ls.AddrPort.Addr().IsUnspecified()) {
				continue
			}
			seen["ssl"] = seen["ssl"] || ls.SSL
			seen["http2"] = seen["http2"] || ls.HTTP2 || srv.Loc.Conf.HTTP2
			seen["proxy_protocol"] = seen["proxy_protocol"] || ls.ProxyProtocol
		}
	}
	var out []string
	for _, k := range []string{"ssl", "http2", "proxy_protocol"} {
		if seen[k] {
			out = append(out, k)
		}
	}
	return out
}

// quicAddrs are the UDP addresses served with HTTP/3, in order.
func quicAddrs(cfg *config.Config) []netip.AddrPort {
	if cfg.HTTP == nil {
		return nil
	}
	set := map[netip.AddrPort]bool{}
	for _, srv := range cfg.HTTP.Servers {
		for _, ls := range srv.Listens {
			if ls.QUIC && srv.Loc.Conf.HTTP3 {
				set[ls.AddrPort] = true
			}
		}
	}
	out := make([]netip.AddrPort, 0, len(set))
	for ap := range set {
		out = append(out, ap)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// servingStatus is the STATUS= line systemd shows while wsgate runs.
func servingStatus(srv *server.Server) string {
	return fmt.Sprintf("serving on %d TCP listeners, pid %d", len(srv.Addrs()), os.Getpid())
}
