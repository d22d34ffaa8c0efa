package server

import (
	"cmp"
	"crypto/tls"
	"net/netip"

	"time"

	"github.com/wsgate/wsgate/internal/accesslog"
	"github.com/wsgate/wsgate/internal/acme"
	"github.com/wsgate/wsgate/internal/backend"
	"github.com/wsgate/wsgate/internal/cache"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/limit"
	"github.com/wsgate/wsgate/internal/tlsconf"
	"github.com/wsgate/wsgate/internal/upstream"
)

// generation is everything built from one configuration. It is immutable
// once published; requests that started under it finish under it.
type generation struct {
	cfg     *config.Config
	vhosts  map[netip.AddrPort]*vhosts // by configured listen address
	binds   []config.Listen            // what to bind: wildcards absorb same-port specifics
	pools   map[*config.Upstream]*upstream.Upstream
	log     *errlog.Logger
	locLogs map[*config.LocConf]*errlog.Logger
	zones   zones
	// proxyProto says which bound addresses expect a PROXY header.
	proxyProto map[netip.AddrPort]bool
	accessLogs map[*config.LocConf][]*accesslog.Log
	idle       map[*config.Upstream]*backend.Pool // upstream keepalive caches
	tlsServers map[*config.Server]*tlsconf.Config
	h3         *h3Cache // HTTP/3 variants of tlsServers' configs
	tlsBinds   map[netip.AddrPort]*tls.Config
	dns        *genDNS                           // resolvers, and the upstream servers re-resolved at run time
	caches     map[*config.CachePath]*cache.Zone // proxy_cache_path (cache.go)
	acme       *acme.Manager                     // the process's; nil under wsgate -t
	acmeCerts  map[*config.Server]*acme.Cert
}

// buildGeneration prepares a generation without touching the running one:
// its upstream pools share the peer state of prev's pools of the same name
// (prev may be nil), but they are not started, so prev's health checks
// keep running until the new generation is committed. On error, what was
// built is released and nothing else has changed (zones and access logs
// wait in lb and files for the caller's commit or abort).
func buildGeneration(srv *Server, cfg *config.Config, prev *generation, log *errlog.Logger, lb *limit.Build, files *accesslog.Files) (*generation, error) {
	rt := &generation{
		cfg:     cfg,
		vhosts:  map[netip.AddrPort]*vhosts{},
		pools:   map[*config.Upstream]*upstream.Upstream{},
		log:     log,
		locLogs: map[*config.LocConf]*errlog.Logger{},
		h3:      &h3Cache{},
	}
	if cfg.HTTP == nil {
		return rt, nil
	}
	if err := rt.build(srv, prev, lb, files); err != nil {
		rt.discard()
		return nil, err
	}
	return rt, nil
}

func (rt *generation) build(srv *Server, prev *generation, lb *limit.Build, files *accesslog.Files) error {
	var err error
	if rt.zones, err = buildZones(rt.cfg.HTTP, lb); err != nil {
		return err
	}
	if rt.accessLogs, err = buildAccessLogs(rt.cfg, files); err != nil {
		return err
	}
	if rt.caches, err = openCaches(rt.cfg.HTTP); err != nil {
		return err
	}
	rt.indexListens()
	rt.buildPools(prev)
	rt.buildDNS(prev)
	if err := rt.openLocationLogs(); err != nil {
		return err
	}
	rt.buildIdle(srv)
	if err := rt.buildACME(srv.acme); err != nil {
		return err
	}
	return rt.buildTLS(rt.log)
}

// indexListens files every server block under its listen addresses and
// works out the sockets to bind.
func (rt *generation) indexListens() {
	seen := map[netip.AddrPort]bool{}
	var all []config.Listen
	for _, srv := range rt.cfg.HTTP.Servers {
		for _, ls := range srv.Listens {
			v := rt.vhosts[ls.AddrPort]
			if v == nil {
				v = newVhosts()
				rt.vhosts[ls.AddrPort] = v
			}
			v.add(srv, ls)
			// A QUIC listen is a UDP socket, opened by the server's QUIC side.
			if !ls.QUIC && !seen[ls.AddrPort] {
				seen[ls.AddrPort] = true
				all = append(all, ls)
			}
		}
	}
	rt.proxyProto = map[netip.AddrPort]bool{}
	for _, ls := range all {
		if ls.ProxyProtocol {
			bind := ls.AddrPort
			if seen[wildcardOf(bind)] {
				bind = wildcardOf(bind)
			}
			rt.proxyProto[bind] = true
		}
		if !ls.AddrPort.Addr().IsUnspecified() && seen[wildcardOf(ls.AddrPort)] {
			continue // served through the wildcard socket, chosen by local address
		}
		rt.binds = append(rt.binds, ls)
	}
}

// buildPools builds one pool per upstream name, for upstreams with health
// checks (they run from the moment the configuration loads, even before a
// location uses them) and for those a location proxies to. Each shares the
// peer state of prev's pool of that name.
func (rt *generation) buildPools(prev *generation) {
	prevPools := map[string]*upstream.Upstream{}
	if prev != nil {
		for cu, p := range prev.pools {
			prevPools[cu.Name] = p
		}
	}
	byName := map[string]*upstream.Upstream{}
	pool := func(cu *config.Upstream) {
		p := byName[cu.Name]
		if p == nil {
			pc := poolConfig(cu)
			seedResolved(cu, &pc, prev)
			pc.Logf = func(format string, args ...any) { rt.log.Printf(errlog.Warn, 0, format, args...) }
			p = upstream.New(pc, prevPools[cu.Name])
			byName[cu.Name] = p
		}
		rt.pools[cu] = p
	}
	byVariables := hasDynamicProxy(rt.cfg) // may name any upstream block
	for _, cu := range rt.cfg.HTTP.Upstreams {
		if cu.Health != nil || byVariables {
			pool(cu)
		}
	}
	for _, srv := range rt.cfg.HTTP.Servers {
		srv.Walk(func(loc *config.Location) {
			if px := loc.Conf.Proxy; px != nil && px.Upstream != nil {
				pool(px.Upstream)
			}
		})
	}
}

// openLocationLogs opens the error logs that locations name.
func (rt *generation) openLocationLogs() error {
	var err error
	for _, srv := range rt.cfg.HTTP.Servers {
		srv.Walk(func(loc *config.Location) {
			lc := loc.Conf
			if err != nil || len(lc.ErrorLogs) == 0 || rt.locLogs[lc] != nil {
				return
			}
			var l *errlog.Logger
			if l, err = OpenErrorLog(rt.cfg, lc.ErrorLogs); err == nil {
				rt.locLogs[lc] = l
			}
		})
	}
	return err
}

func (rt *generation) buildIdle(srv *Server) {
	rt.idle = map[*config.Upstream]*backend.Pool{}
	for cu := range rt.pools {
		if cu.Keepalive > 0 {
			rt.idle[cu] = backend.NewPool((*slots)(srv), cu.Keepalive, cu.KeepaliveTimeout, cu.KeepaliveRequests)
			rt.idle[cu].SetMaxAge(cmp.Or(cu.KeepaliveTime, time.Hour)) // nginx's default: 1h
		}
	}
}

// start makes the generation's pools the live ones: they take over peer
// health from the previous generation and start their health checks.
func (rt *generation) start() {
	for _, p := range rt.pools {
		p.Start() // once per pool, though several names may share one
	}
	rt.startDNS()
}

var methods = map[string]upstream.Method{
	"round_robin": upstream.RoundRobin, "": upstream.RoundRobin, "ip_hash": upstream.IPHash,
	"hash": upstream.Hash, "least_conn": upstream.LeastConn, "random": upstream.Random, "least_time": upstream.LeastTime,
}

func poolConfig(cu *config.Upstream) upstream.Config {
	c := upstream.Config{Name: cu.Name, Method: methods[cu.Method], HashConsistent: cu.HashConsistent, RandomTwo: cu.RandomTwo,
		Queue: cu.Queue, QueueTimeout: cu.QueueTimeout, Learn: learnConfig(cu)}
	for _, s := range cu.Servers {
		if s.Resolve {
			c.Dynamic = true // its addresses come from resolve.go
			continue
		}
		c.Peers = append(c.Peers, peerFor(s, s.Addr))
	}
	if h := cu.Health; h != nil {
		c.Health = &upstream.HealthCheck{Interval: h.Interval, Fails: h.Fails, Passes: h.Passes, URI: h.URI, Port: h.Port, WebSocket: h.WebSocket, TLS: h.TLS}
	}
	return c
}

// vhostsFor finds the server blocks for a connection's local address:
// the exact address first, then the wildcard of its port.
func (rt *generation) vhostsFor(local netip.AddrPort) *vhosts {
	local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	if v := rt.vhosts[local]; v != nil {
		return v
	}
	if v := rt.vhosts[wildcardOf(local)]; v != nil || !local.Addr().Is4() {
		return v
	}
	// An IPv4 client of a dual-stack socket (listen [::]:port ipv6only=off).
	return rt.vhosts[netip.AddrPortFrom(netip.IPv6Unspecified(), local.Port())]
}

// discard releases what rt holds: the health checks of its pools (their
// peers stay usable, shared with the next generation's or held by tunnels),
// upstream keepalive caches, location logs, OCSP refreshers. It is for a
// generation that never served, one that a newer one replaced, or the last.
func (rt *generation) discard() {
	rt.stopDNS()
	for _, p := range rt.pools {
		p.Close()
	}
	for _, p := range rt.idle {
		p.Close()
	}
	for _, l := range rt.locLogs {
		l.Close()
	}
	for _, tc := range rt.tlsServers {
		tc.Close() // stops OCSP refreshers; handshakes in flight keep working
	}
	closeCaches(rt.caches)
}

func (rt *generation) logFor(lc *config.LocConf) *errlog.Logger {
	if l := rt.locLogs[lc]; l != nil {
		return l
	}
	return rt.log
}

// buildAccessLogs compiles the formats once and opens each log file once
// (kept open across reloads by files), for every configuration level.
func buildAccessLogs(cfg *config.Config, files *accesslog.Files) (map[*config.LocConf][]*accesslog.Log, error) {
	h := cfg.HTTP
	formats := map[string]*accesslog.Format{"combined": accesslog.Combined(cfg.Vars)}
	for name, lf := range h.LogFormats {
		esc, err := accesslog.ParseEscape(lf.Escape)
		if err == nil {
			formats[name], err = accesslog.CompileFormat(cfg.Vars, esc, lf.Parts)
		}
		if err != nil {
			return nil, &config.PosError{File: lf.File, Line: lf.Line, Err: err}
		}
	}
	out := map[*config.LocConf][]*accesslog.Log{}
	var firstErr error
	add := func(lc *config.LocConf) {
		if _, done := out[lc]; done || firstErr != nil || lc.AccessLogOff {
			return
		}
		var logs []*accesslog.Log
		for _, al := range lc.AccessLogs {
			w, err := files.Open(cfg.Abs(al.Path), int(al.Buffer), al.Flush)
			if err != nil {
				firstErr = &config.PosError{File: al.File, Line: al.Line, Err: err}
				return
			}
			logs = append(logs, &accesslog.Log{W: w, F: formats[al.Format], If: al.If})
		}
		out[lc] = logs
	}
	for _, srv := range h.Servers {
		srv.Walk(func(loc *config.Location) { add(loc.Conf) })
	}
	return out, firstErr
}

// OpenErrorLog opens error_log targets, resolving relative paths from the
// prefix as nginx does.
func OpenErrorLog(cfg *config.Config, logs []config.ErrorLog) (*errlog.Logger, error) {
	targets := make([]errlog.Target, len(logs))
	for i, el := range logs {
		targets[i] = errlog.Target{Path: cfg.Abs(el.Path), Level: errlog.Level(el.Level)}
	}
	return errlog.Open(targets)
}
