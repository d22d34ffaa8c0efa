package config

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/conf"
	"github.com/wsgate/wsgate/internal/regex"
)

// SoKeepalive is listen's so_keepalive: SO_KEEPALIVE on or off, with the
// TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT overrides (0 keeps the
// system's value).
type SoKeepalive struct {
	Set, On     bool
	Idle, Intvl time.Duration
	Count       int
}

// SockOpts are listen's socket-level parameters. nginx lets only one
// listen directive per address give them ("duplicate listen options").
type SockOpts struct {
	Set      bool // some socket option below was given
	Backlog  int
	RcvBuf   int
	SndBuf   int
	FastOpen int
	Deferred bool
	// DeferWait is TCP_DEFER_ACCEPT's wait with Deferred: the
	// client_header_timeout of the address's default server, as nginx.
	DeferWait time.Duration
	Bind      bool
	IPv6Only  bool // default on, as nginx
	ReusePort bool
	KeepAlive SoKeepalive
}

// dListen reads a listen directive: an address (host, host:port, port,
// [v6]:port, or a port range lo-hi) and nginx's parameters. A host name
// that resolves to several addresses listens on all of them.
func dListen(l *loader, d *conf.Directive, s *scope) error {
	addr := d.Args[0]
	if strings.HasPrefix(addr, "unix:") {
		return dListenUnix(d, s)
	}
	host, ports, err := splitListen(addr)
	if err != nil {
		return conf.Errorf(d, "%s in \"%s\" of the \"listen\" directive", err, addr)
	}
	var ips []netip.Addr
	switch host {
	case "", "*":
		ips = []netip.Addr{netip.IPv4Unspecified()}
	default:
		ips, err = l.resolve(host)
		if err != nil || len(ips) == 0 {
			return conf.Errorf(d, "host not found in \"%s\" of the \"listen\" directive", addr)
		}
	}
	proto := Listen{File: d.File, Line: d.Line, SockOpts: SockOpts{IPv6Only: true}}
	if err := listenParams(d, &proto); err != nil {
		return err
	}
	for _, ip := range ips {
		for p := ports[0]; p <= ports[1]; p++ {
			ls := proto
			ls.AddrPort = netip.AddrPortFrom(ip, uint16(p))
			ls.Addr = ls.AddrPort.String()
			for _, prev := range s.server.Listens {
				if prev.AddrPort == ls.AddrPort && prev.QUIC == ls.QUIC {
					return conf.Errorf(d, "a duplicate listen %s", ls.Addr)
				}
			}
			s.server.Listens = append(s.server.Listens, ls)
		}
	}
	return nil
}

// splitListen separates the host from the port or port range; a lone
// number is a port, a lone name a host on port 80.
func splitListen(addr string) (host string, ports [2]int, err error) {
	host, port, serr := net.SplitHostPort(addr)
	if serr != nil {
		if strings.HasPrefix(addr, "[") && strings.HasSuffix(addr, "]") {
			return addr[1 : len(addr)-1], [2]int{80, 80}, nil
		}
		if _, rerr := parsePortRange(addr); rerr == nil || strings.Trim(addr, "0123456789-") == "" {
			host, port = "", addr
		} else {
			host, port = addr, "80"
		}
	}
	ports, err = parsePortRange(port)
	return host, ports, err
}

func parsePortRange(s string) ([2]int, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := strconv.Atoi(lo)
	if err != nil || a < 1 || a > 65535 {
		return [2]int{}, fmt.Errorf("invalid port")
	}
	b := a
	if isRange {
		b, err = strconv.Atoi(hi)
		if err != nil || b < 1 || b > 65535 || b < a {
			return [2]int{}, fmt.Errorf("invalid port range")
		}
	}
	return [2]int{a, b}, nil
}

// listenParams reads the parameters after the address into ls.
func listenParams(d *conf.Directive, ls *Listen) error {
	o := &ls.SockOpts
	for _, a := range d.Args[1:] {
		key, val, hasVal := strings.Cut(a, "=")
		var err error
		switch {
		case a == "default_server" || a == "default":
			ls.DefaultServer = true
		case a == "ssl":
			ls.SSL = true
		case a == "http2":
			ls.HTTP2 = true
		case a == "quic":
			ls.QUIC = true
		case a == "proxy_protocol":
			ls.ProxyProtocol = true
		case a == "reuseport":
			o.ReusePort = true
		case a == "deferred":
			o.Deferred = true
		case a == "bind":
			o.Bind = true
		case key == "ipv6only" && hasVal:
			if o.IPv6Only, err = parseFlag(val); err != nil {
				return conf.Errorf(d, "invalid ipv6only flags \"%s\"", val)
			}
		case key == "backlog" && hasVal:
			o.Backlog, err = strconv.Atoi(val)
			if err != nil || o.Backlog == 0 {
				return conf.Errorf(d, "invalid backlog \"%s\"", val)
			}
		case (key == "rcvbuf" || key == "sndbuf") && hasVal:
			n, err := ParseSize(val)
			if err != nil || n <= 0 || n > 1<<31-1 {
				return conf.Errorf(d, "invalid %s \"%s\"", key, val)
			}
			if key == "rcvbuf" {
				o.RcvBuf = int(n)
			} else {
				o.SndBuf = int(n)
			}
		case key == "fastopen" && hasVal:
			if o.FastOpen, err = strconv.Atoi(val); err != nil || o.FastOpen < 0 {
				return conf.Errorf(d, "invalid fastopen \"%s\"", val)
			}
		case key == "so_keepalive" && hasVal:
			if o.KeepAlive, err = parseSoKeepalive(val); err != nil {
				return conf.Errorf(d, "invalid so_keepalive value: \"%s\"", val)
			}
		case key == "accept_filter" && hasVal:
			// nginx on Linux says the same and carries on.
			continue
		case key == "setfib" && hasVal:
			return conf.Errorf(d, "invalid parameter \"%s\": routing tables (setfib) exist on FreeBSD only; nginx on Linux refuses it too", a)
		default:
			return conf.Errorf(d, "invalid parameter \"%s\"", a)
		}
		if a != "default_server" && a != "default" && a != "ssl" && a != "http2" && a != "quic" && a != "proxy_protocol" {
			o.Set = true
		}
	}
	if ls.SSL && ls.QUIC {
		return conf.Errorf(d, "\"ssl\" parameter is incompatible with \"quic\"")
	}
	return nil
}

// parseSoKeepalive reads on, off, or [idle]:[intvl]:[count].
func parseSoKeepalive(v string) (SoKeepalive, error) {
	k := SoKeepalive{Set: true}
	switch v {
	case "on":
		k.On = true
		return k, nil
	case "off":
		return k, nil
	}
	parts := strings.Split(v, ":")
	if len(parts) != 3 {
		return k, errBadValue
	}
	k.On = true
	var err error
	if parts[0] != "" {
		if k.Idle, err = ParseDuration(parts[0]); err != nil || k.Idle < time.Second {
			return k, errBadValue
		}
	}
	if parts[1] != "" {
		if k.Intvl, err = ParseDuration(parts[1]); err != nil || k.Intvl < time.Second {
			return k, errBadValue
		}
	}
	if parts[2] != "" {
		if k.Count, err = strconv.Atoi(parts[2]); err != nil || k.Count < 1 {
			return k, errBadValue
		}
	}
	if parts[0] == "" && parts[1] == "" && parts[2] == "" {
		return k, errBadValue
	}
	return k, nil
}

// dServerName reads server_name: exact names, wildcards ("*.example.com",
// ".example.com", "www.example.*"), regexes ("~...") whose named captures
// become variables, and $hostname.
func dServerName(l *loader, d *conf.Directive, s *scope) error {
	for _, n := range d.Args {
		if n == "$hostname" {
			h, _ := os.Hostname()
			n = h
		}
		sn := ServerName{Name: strings.ToLower(n)}
		switch {
		case strings.HasPrefix(n, "~"):
			re, err := compileServerRegex(n)
			if err != nil {
				return conf.Errorf(d, "invalid server name regex \"%s\": %v", n, err)
			}
			sn.Kind, sn.Regex, sn.Name = NameRegex, re, n
			l.recordCaptures(re) // its names were declared by declareServerName
		case strings.HasPrefix(n, "*.") && !strings.Contains(n[2:], "*"), strings.HasPrefix(n, ".") && len(n) > 1 && !strings.Contains(n, "*"):
			sn.Kind = NameWildcardPrefix
		case strings.HasSuffix(n, ".*") && !strings.Contains(n[:len(n)-2], "*") && len(n) > 2:
			sn.Kind = NameWildcardSuffix
		case strings.Contains(n, "*"):
			return conf.Errorf(d, "invalid server name or wildcard \"%s\"", n)
		case strings.Contains(n, "/"):
			l.warn(d, "server name \"%s\" has suspicious symbols", n)
		}
		s.server.Names = append(s.server.Names, sn)
	}
	return nil
}

// compileServerRegex compiles "~expr" case-insensitively, as nginx (host
// names are compared lowercased).
func compileServerRegex(n string) (*regex.Regexp, error) {
	return regex.Compile(n[1:], true)
}

// declareServerName defines the named captures of a server_name regex
// before any template is compiled, so that a log_format or map above the
// server may use them.
func (l *loader) declareServerName(d *conf.Directive) error {
	for _, n := range d.Args {
		if !strings.HasPrefix(n, "~") {
			continue
		}
		re, err := compileServerRegex(n)
		if err != nil {
			continue // reported with its position by the main pass
		}
		for _, name := range re.SubexpNames() {
			if name == "" {
				continue
			}
			if _, err := l.cfg.Vars.DefineSet(name); err != nil {
				return conf.Errorf(d, "%v", err)
			}
		}
	}
	return nil
}

// mergeListens applies nginx's rules to listen directives that share an
// address: socket options may come from one of them only ("duplicate
// listen options"), default_server from one only, and http2 and
// proxy_protocol given on one apply to the address as a whole: every
// Listen of the address then carries them. ssl too applies to the whole
// address, but each Listen keeps its own flag (a server that did not ask
// for ssl needs no certificate); the server binds TLS where any asked.
func mergeListens(servers []*Server) error {
	type merged struct {
		opts    SockOpts
		optsSet bool
		optsAt  Listen // the listen that gave the options
		http2   bool
		pp      bool
		def     bool
		first   Listen
		defSrv  *Server // the address's default server
	}
	addrs := map[netip.AddrPort]*merged{}
	key := func(ls Listen) netip.AddrPort { return ls.AddrPort }
	for _, srv := range servers {
		for _, ls := range srv.Listens {
			if ls.QUIC {
				continue // a UDP socket: no TCP options to agree on
			}
			m := addrs[key(ls)]
			if m == nil {
				m = &merged{first: ls, opts: SockOpts{IPv6Only: true}, defSrv: srv}
				addrs[key(ls)] = m
			}
			if ls.SockOpts.Set {
				if m.optsSet {
					return &conf.Error{File: ls.File, Line: ls.Line, Msg: "duplicate listen options for " + ls.Addr}
				}
				m.opts, m.optsSet, m.optsAt = ls.SockOpts, true, ls
			}
			if ls.DefaultServer {
				if m.def {
					return &conf.Error{File: ls.File, Line: ls.Line, Msg: "a duplicate default server for " + ls.Addr}
				}
				m.def, m.defSrv = true, srv
			}
			m.http2 = m.http2 || ls.HTTP2
			m.pp = m.pp || ls.ProxyProtocol
		}
	}
	for _, m := range addrs {
		if m.opts.Deferred {
			m.opts.DeferWait = m.defSrv.Loc.Conf.Client.HeaderTimeout
		}
	}
	for ap, m := range addrs {
		if !m.optsSet || ap.Addr().IsUnspecified() {
			continue
		}
		if w := addrs[netip.AddrPortFrom(unspecifiedLike(ap.Addr()), ap.Port())]; w != nil {
			ls := m.optsAt
			return &conf.Error{File: ls.File, Line: ls.Line, Msg: fmt.Sprintf("%s has \"bind\" or socket options, so it needs a socket of its own, "+
				"but the wildcard listen %s (%s:%d) holds the port: Linux refuses to bind both, and nginx fails to start with this too", ls.Addr, w.first.Addr, w.first.File, w.first.Line)}
		}
	}
	for _, srv := range servers {
		for i := range srv.Listens {
			ls := &srv.Listens[i]
			m := addrs[key(*ls)]
			if m == nil {
				continue
			}
			ls.SockOpts, ls.HTTP2, ls.ProxyProtocol = m.opts, m.http2, m.pp
		}
	}
	return nil
}

// conflictingNames warns, as nginx -t does, about a server name that an
// earlier server on the same address already claimed; the earlier one
// keeps it.
func (l *loader) conflictingNames(servers []*Server) {
	taken := map[netip.AddrPort]map[string]bool{}
	var order []netip.AddrPort
	byAddr := map[netip.AddrPort][]*Server{}
	for _, srv := range servers {
		for _, ls := range srv.Listens {
			if _, ok := byAddr[ls.AddrPort]; !ok {
				order = append(order, ls.AddrPort)
			}
			if n := len(byAddr[ls.AddrPort]); n == 0 || byAddr[ls.AddrPort][n-1] != srv {
				byAddr[ls.AddrPort] = append(byAddr[ls.AddrPort], srv)
			}
		}
	}
	for _, ap := range order {
		taken[ap] = map[string]bool{}
		for _, srv := range byAddr[ap] {
			for _, n := range srv.Names {
				if n.Kind == NameRegex {
					continue
				}
				keys := []string{n.Name}
				if n.Kind == NameWildcardPrefix && strings.HasPrefix(n.Name, ".") {
					keys = []string{"*" + n.Name, n.Name[1:]}
				}
				clash := false
				for _, k := range keys {
					clash = clash || taken[ap][k]
				}
				if clash {
					l.warnAt("", 0, fmt.Sprintf("conflicting server name \"%s\" on %s, ignored", n.Name, ap))
					continue
				}
				for _, k := range keys {
					taken[ap][k] = true
				}
			}
		}
	}
}

// unspecifiedLike is the wildcard address of a's family.
func unspecifiedLike(a netip.Addr) netip.Addr {
	if a.Is4() || a.Is4In6() {
		return netip.IPv4Unspecified()
	}
	return netip.IPv6Unspecified()
}
