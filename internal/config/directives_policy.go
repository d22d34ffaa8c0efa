package config

import (
	"github.com/wsgate/wsgate/internal/conf"
	"net/netip"
	"strconv"
	"strings"
)

// Readers of the traffic policy directives: limit zones and rules, access
// rules and real client addresses.

func (l *loader) reqZone(name string) *ReqZone {
	for _, z := range l.cfg.HTTP.ReqZones {
		if z.Name == name {
			return z
		}
	}
	return nil
}

func (l *loader) connZone(name string) *ConnZone {
	for _, z := range l.cfg.HTTP.ConnZones {
		if z.Name == name {
			return z
		}
	}
	return nil
}

// zoneArg reads "zone=name:size".
func zoneArg(d *conf.Directive, a string) (string, int64, error) {
	v, ok := strings.CutPrefix(a, "zone=")
	if !ok {
		return "", 0, conf.Errorf(d, "invalid parameter \"%s\"", a)
	}
	name, size, ok := strings.Cut(v, ":")
	if !ok || name == "" {
		return "", 0, conf.Errorf(d, "invalid zone size \"%s\"", a)
	}
	n, err := ParseSize(size)
	if err != nil || n < 8*EntryBytes {
		return "", 0, conf.Errorf(d, "zone \"%s\" is too small", name)
	}
	return name, n, nil
}

// EntryBytes is what one limit zone entry costs in nginx's accounting: a
// zone of size S holds S/EntryBytes keys.
const EntryBytes = 128

func dLimitReqZone(l *loader, d *conf.Directive, s *scope) error {
	z := &ReqZone{File: d.File, Line: d.Line}
	var err error
	if z.Key, err = l.cfg.Vars.Compile(d.Args[0]); err != nil {
		return conf.Errorf(d, "%v", err)
	}
	for _, a := range d.Args[1:] {
		switch {
		case strings.HasPrefix(a, "zone="):
			if z.Name, z.Size, err = zoneArg(d, a); err != nil {
				return err
			}
		case strings.HasPrefix(a, "rate="):
			v := a[len("rate="):]
			per := int64(1)
			switch {
			case strings.HasSuffix(v, "r/s"):
				v = v[:len(v)-3]
			case strings.HasSuffix(v, "r/m"):
				v, per = v[:len(v)-3], 60
			default:
				return conf.Errorf(d, "invalid rate \"%s\"", a)
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return conf.Errorf(d, "invalid rate \"%s\"", a)
			}
			z.RateMilli = n * 1000 / per
			if z.RateMilli == 0 {
				z.RateMilli = 1
			}
		case a == "sync":
			z.Sync = true
		default:
			return conf.Errorf(d, "invalid parameter \"%s\"", a)
		}
	}
	if z.Name == "" {
		return conf.Errorf(d, "\"%s\" must have \"zone\" parameter", d.Name)
	}
	if z.RateMilli == 0 {
		return conf.Errorf(d, "invalid rate \"%s\"", strings.Join(d.Args, " "))
	}
	if l.reqZone(z.Name) != nil || l.connZone(z.Name) != nil {
		return conf.Errorf(d, "duplicate zone \"%s\"", z.Name)
	}
	l.cfg.HTTP.ReqZones = append(l.cfg.HTTP.ReqZones, z)
	return nil
}

func dLimitConnZone(l *loader, d *conf.Directive, s *scope) error {
	z := &ConnZone{File: d.File, Line: d.Line}
	var err error
	if z.Key, err = l.cfg.Vars.Compile(d.Args[0]); err != nil {
		return conf.Errorf(d, "%v", err)
	}
	if z.Name, z.Size, err = zoneArg(d, d.Args[1]); err != nil {
		return err
	}
	for _, a := range d.Args[2:] {
		if a != "sync" {
			return conf.Errorf(d, "invalid parameter \"%s\"", a)
		}
		z.Sync = true
	}
	if l.reqZone(z.Name) != nil || l.connZone(z.Name) != nil {
		return conf.Errorf(d, "duplicate zone \"%s\"", z.Name)
	}
	l.cfg.HTTP.ConnZones = append(l.cfg.HTTP.ConnZones, z)
	return nil
}

// Zones may be declared after the limit_req that names them, as in nginx;
// rules are resolved at the end of the http block.
type pendingLimit struct {
	d    *conf.Directive
	lc   *LocConf
	req  bool
	zone string
	idx  int
}

func dLimitReq(l *loader, d *conf.Directive, s *scope) error {
	r := LimitReq{}
	zone := ""
	for _, a := range d.Args {
		k, v, _ := strings.Cut(a, "=")
		var err error
		switch k {
		case "zone":
			zone = v
		case "burst":
			r.Burst, err = intAtLeast(v, 0)
		case "delay":
			r.Delay, err = intAtLeast(v, 0)
		case "nodelay":
			r.NoDelay = true
		default:
			return conf.Errorf(d, "invalid parameter \"%s\"", a)
		}
		if err != nil {
			return conf.Errorf(d, "invalid %s \"%s\"", k, v)
		}
	}
	if zone == "" {
		return conf.Errorf(d, "\"%s\" must have \"zone\" parameter", d.Name)
	}
	if r.NoDelay && r.Delay > 0 {
		return conf.Errorf(d, "\"delay\" and \"nodelay\" are mutually exclusive")
	}
	if !s.lc.set["limit_req"] {
		s.lc.LimitReq = nil
	}
	for _, p := range l.limits {
		if p.lc == s.lc && p.req && p.zone == zone {
			return conf.Errorf(d, "\"%s\" directive is duplicate", d.Name)
		}
	}
	s.lc.LimitReq = append(s.lc.LimitReq, r)
	l.limits = append(l.limits, pendingLimit{d: d, lc: s.lc, req: true, zone: zone, idx: len(s.lc.LimitReq) - 1})
	s.lc.set["limit_req"] = true
	return nil
}

func dLimitConn(l *loader, d *conf.Directive, s *scope) error {
	n, err := strconv.Atoi(d.Args[1])
	if err != nil || n < 1 || n > 65535 {
		return conf.Errorf(d, "invalid number of connections \"%s\"", d.Args[1])
	}
	if !s.lc.set["limit_conn"] {
		s.lc.LimitConn = nil
	}
	for _, p := range l.limits {
		if p.lc == s.lc && !p.req && p.zone == d.Args[0] {
			return conf.Errorf(d, "\"%s\" directive is duplicate", d.Name)
		}
	}
	s.lc.LimitConn = append(s.lc.LimitConn, LimitConn{N: n})
	l.limits = append(l.limits, pendingLimit{d: d, lc: s.lc, zone: d.Args[0], idx: len(s.lc.LimitConn) - 1})
	s.lc.set["limit_conn"] = true
	return nil
}

func (l *loader) resolveLimits() error {
	for _, p := range l.limits {
		if p.req {
			z := l.reqZone(p.zone)
			if z == nil {
				return conf.Errorf(p.d, "zone \"%s\" is unknown", p.zone)
			}
			p.lc.LimitReq[p.idx].Zone = z
			continue
		}
		z := l.connZone(p.zone)
		if z == nil {
			return conf.Errorf(p.d, "zone \"%s\" is unknown", p.zone)
		}
		p.lc.LimitConn[p.idx].Zone = z
	}
	return nil
}

func dLimitStatus(l *loader, d *conf.Directive, s *scope) error {
	n, err := strconv.Atoi(d.Args[0])
	if err != nil || n < 400 || n > 599 {
		return conf.Errorf(d, "value must be between 400 and 599")
	}
	if d.Name == "limit_req_status" {
		s.lc.LimitReqStatus = n
	} else {
		s.lc.LimitConnStatus = n
	}
	return s.lc.mark(d, d.Name)
}

func dLimitLogLevel(l *loader, d *conf.Directive, s *scope) error {
	lv, err := parseLevel(d, d.Args[0])
	if err != nil {
		return err
	}
	if lv < LevelInfo || lv > LevelError {
		return conf.Errorf(d, "invalid value \"%s\"", d.Args[0])
	}
	if d.Name == "limit_req_log_level" {
		s.lc.LimitReqLog = lv
	} else {
		s.lc.LimitConnLog = lv
	}
	return s.lc.mark(d, d.Name)
}

func dAccess(l *loader, d *conf.Directive, s *scope) error {
	r := AccessRule{Allow: d.Name == "allow"}
	a := d.Args[0]
	switch {
	case a == "all":
		r.All = true
	case strings.HasPrefix(a, "unix:"):
		return conf.Errorf(d, "unix domain sockets are not supported")
	default:
		p, err := parsePrefix(a)
		if err != nil {
			return conf.Errorf(d, "invalid parameter \"%s\"", a)
		}
		if p.Masked() != p {
			l.warn(d, "low address bits of %s are meaningless", a)
			p = p.Masked()
		}
		r.Prefix = p
	}
	if !s.lc.set["access"] {
		s.lc.Access = nil
	}
	s.lc.Access = append(s.lc.Access, r)
	s.lc.set["access"] = true
	return nil
}

// parsePrefix reads an address or a CIDR block.
func parsePrefix(a string) (netip.Prefix, error) {
	if strings.Contains(a, "/") {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			return p, err
		}
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-unmapBits(p.Addr())), nil
	}
	ip, err := netip.ParseAddr(a)
	if err != nil {
		return netip.Prefix{}, err
	}
	ip = ip.Unmap()
	return netip.PrefixFrom(ip, ip.BitLen()), nil
}

func unmapBits(a netip.Addr) int {
	if a.Is4In6() {
		return 96
	}
	return 0
}

func dRealIPFrom(l *loader, d *conf.Directive, s *scope) error {
	if strings.HasPrefix(d.Args[0], "unix:") {
		return conf.Errorf(d, "unix domain sockets are not supported")
	}
	p, err := parsePrefix(d.Args[0])
	if err != nil {
		return conf.Errorf(d, "invalid parameter \"%s\"", d.Args[0])
	}
	if !s.lc.set["set_real_ip_from"] {
		s.lc.RealIPFrom = nil
	}
	s.lc.RealIPFrom = append(s.lc.RealIPFrom, p.Masked())
	s.lc.set["set_real_ip_from"] = true
	return nil
}

func dRealIPHeader(l *loader, d *conf.Directive, s *scope) error {
	s.lc.RealIPHeader = d.Args[0]
	return s.lc.mark(d, "real_ip_header")
}
