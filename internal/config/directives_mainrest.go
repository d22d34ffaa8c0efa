package config

import (
	"net/netip"
	"strings"

	"github.com/wsgate/wsgate/internal/conf"
)

// mainRestDirectives are the last directives of nginx's core and http
// core modules: worker_rlimit_core, debug_connection and
// keepalive_min_timeout (ssl_engine is refused: see refusedDirectives).
var mainRestDirectives = map[string]dirSpec{
	"worker_rlimit_core": {ctx: cMain, min: 1, max: 1, once: true, fn: dRlimitCore},
	"debug_connection":   {ctx: cEvents, min: 1, max: 1, fn: dDebugConnection},
	"keepalive_min_timeout": {ctx: cHSL, min: 1, max: 1,
		fn: duration("keepalive_min_timeout", func(c *LocConf) *durationField { return &c.KeepaliveMinTimeout })},
}

func init() {
	mergers["keepalive_min_timeout"] = func(c, p *LocConf) { c.KeepaliveMinTimeout = p.KeepaliveMinTimeout }
}

// DebugConnections is debug_connection: the clients whose connections
// log at debug level.
type DebugConnections struct {
	Prefixes []netip.Prefix
	Unix     bool // "unix:": clients of unix-domain listeners
}

// Match reports whether a client at addr (invalid for a unix-domain
// client) is listed.
func (dc *DebugConnections) Match(addr netip.Addr) bool {
	if !addr.IsValid() {
		return dc.Unix
	}
	addr = addr.Unmap()
	for _, p := range dc.Prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// Any reports whether some client is listed.
func (dc *DebugConnections) Any() bool { return dc.Unix || len(dc.Prefixes) > 0 }

// dRlimitCore reads worker_rlimit_core: a size, applied as RLIMIT_CORE.
func dRlimitCore(l *loader, d *conf.Directive, s *scope) error {
	n, err := ParseSize(d.Args[0])
	if err != nil || n < 0 {
		return conf.Errorf(d, "\"%s\" directive invalid value", d.Name)
	}
	l.cfg.RlimitCore, l.cfg.HasRlimitCore = uint64(n), true
	return nil
}

// dDebugConnection reads `debug_connection address|CIDR|hostname|unix:`.
// As nginx, host bits of a CIDR are dropped with a warning and a host
// name stands for each of its addresses.
func dDebugConnection(l *loader, d *conf.Directive, s *scope) error {
	dc := &l.cfg.DebugConnections
	v := d.Args[0]
	if v == "unix:" {
		dc.Unix = true
		return nil
	}
	if strings.Contains(v, "/") {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return conf.Errorf(d, "invalid parameter \"%s\"", v)
		}
		if m := p.Masked(); m != p {
			l.warn(d, "low address bits of %s are meaningless", v)
			p = m
		}
		dc.Prefixes = append(dc.Prefixes, netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-unmapBits(p.Addr())))
		return nil
	}
	if a, err := netip.ParseAddr(v); err == nil {
		a = a.Unmap()
		dc.Prefixes = append(dc.Prefixes, netip.PrefixFrom(a, a.BitLen()))
		return nil
	}
	addrs, err := l.resolve(v)
	if err != nil || len(addrs) == 0 {
		return conf.Errorf(d, "host not found in \"%s\" of the \"%s\" directive", v, d.Name)
	}
	for _, a := range addrs {
		a = a.Unmap()
		dc.Prefixes = append(dc.Prefixes, netip.PrefixFrom(a, a.BitLen()))
	}
	return nil
}
