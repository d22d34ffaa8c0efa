package server

import (
	"crypto/tls"
	"net/netip"
	"sync"

	"github.com/wsgate/wsgate/internal/accesslog"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/limit"
	"github.com/wsgate/wsgate/internal/tlsconf"
	"github.com/wsgate/wsgate/internal/upstream"
)

// runtime is everything built from one config snapshot. It is immutable
// once published; requests that started under it finish under it.
type runtime struct {
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
	idle       map[*config.Upstream]*idlePool // upstream keepalive caches
	tlsServers map[*config.Server]*tlsconf.Config
	h3mu       sync.Mutex
	h3tls      map[*tls.Config]*tls.Config // HTTP/3 variants of tlsServers' configs
	tlsBinds   map[netip.AddrPort]*tls.Config
}

// buildRuntime prepares a snapshot without touching the running one; prev
// (may be nil) lends its upstream state so peer health and counts survive
// a reload.
func buildRuntime(srv *Server, cfg *config.Config, prev *runtime, log *errlog.Logger, lb *limit.Build, files *accesslog.Files) (*runtime, error) {
	rt := &runtime{
		cfg:     cfg,
		vhosts:  map[netip.AddrPort]*vhosts{},
		pools:   map[*config.Upstream]*upstream.Upstream{},
		log:     log,
		locLogs: map[*config.LocConf]*errlog.Logger{},
	}
	if cfg.HTTP == nil {
		return rt, nil
	}
	var err error
	if rt.zones, err = buildZones(cfg.HTTP, lb); err != nil {
		return nil, err
	}
	if rt.accessLogs, err = buildAccessLogs(cfg, files); err != nil {
		return nil, err
	}
	seen := map[netip.AddrPort]bool{}
	var all []config.Listen
	for _, srv := range cfg.HTTP.Servers {
		for _, ls := range srv.Listens {
			v := rt.vhosts[ls.AddrPort]
			if ls.QUIC {
				if v == nil {
					v = newVhosts()
					rt.vhosts[ls.AddrPort] = v
				}
				v.add(srv, ls)
				continue // a UDP socket, opened by the server's QUIC side
			}
			if v == nil {
				v = newVhosts()
				rt.vhosts[ls.AddrPort] = v
			}
			v.add(srv, ls)
			if !seen[ls.AddrPort] {
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
	prevPools := map[string]*upstream.Upstream{}
	if prev != nil {
		for cu, p := range prev.pools {
			prevPools[cu.Name] = p
		}
	}
	pools := map[string]*upstream.Upstream{}
	// pool builds an upstream's pool once per name, taking over the state
	// of the previous snapshot's pool of that name.
	pool := func(cu *config.Upstream) {
		if _, ok := rt.pools[cu]; ok {
			return
		}
		p := pools[cu.Name]
		if p == nil {
			pc := poolConfig(cu)
			pc.Logf = func(format string, args ...any) { log.Printf(errlog.Warn, 0, format, args...) }
			p = upstream.New(pc, prevPools[cu.Name])
			pools[cu.Name] = p
		}
		rt.pools[cu] = p
	}
	var walkErr error
	// Upstreams with health checks run them from the moment the config
	// loads, even before a location uses them.
	for _, cu := range cfg.HTTP.Upstreams {
		if cu.Health != nil {
			pool(cu)
		}
	}
	for _, srv := range cfg.HTTP.Servers {
		srv.Walk(func(loc *config.Location) {
			lc := loc.Conf
			if len(lc.ErrorLogs) > 0 && rt.locLogs[lc] == nil && walkErr == nil {
				l, err := OpenErrorLog(cfg, lc.ErrorLogs)
				if err != nil {
					walkErr = err
					return
				}
				rt.locLogs[lc] = l
			}
			if lc.Proxy == nil || lc.Proxy.Upstream == nil {
				return
			}
			pool(lc.Proxy.Upstream)
		})
	}
	if walkErr != nil {
		rt.close()
		return nil, walkErr
	}
	rt.idle = map[*config.Upstream]*idlePool{}
	for cu := range rt.pools {
		if cu.Keepalive > 0 {
			rt.idle[cu] = &idlePool{srv: srv, max: cu.Keepalive, timeout: cu.KeepaliveTimeout, requests: cu.KeepaliveRequests}
		}
	}
	if err := rt.buildTLS(log); err != nil {
		rt.close()
		return nil, err
	}
	return rt, nil
}

var methods = map[string]upstream.Method{
	"round_robin": upstream.RoundRobin, "": upstream.RoundRobin, "ip_hash": upstream.IPHash,
	"hash": upstream.Hash, "least_conn": upstream.LeastConn, "random": upstream.Random,
}

func poolConfig(cu *config.Upstream) upstream.Config {
	c := upstream.Config{Name: cu.Name, Method: methods[cu.Method], HashConsistent: cu.HashConsistent, RandomTwo: cu.RandomTwo}
	for _, s := range cu.Servers {
		c.Peers = append(c.Peers, upstream.PeerConfig{
			Addr: s.Addr, Name: s.Name, Weight: s.Weight, MaxFails: s.MaxFails,
			FailTimeout: s.FailTimeout, Backup: s.Backup, Down: s.Down,
			MaxConns: s.MaxConns, SlowStart: s.SlowStart,
		})
	}
	if h := cu.Health; h != nil {
		c.Health = &upstream.HealthCheck{Interval: h.Interval, Fails: h.Fails, Passes: h.Passes, URI: h.URI, Port: h.Port, WebSocket: h.WebSocket}
	}
	return c
}

// vhostsFor finds the server blocks for a connection's local address:
// the exact address first, then the wildcard of its port.
func (rt *runtime) vhostsFor(local netip.AddrPort) *vhosts {
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

// close releases what this snapshot owns alone (health checkers of pools
// that the next snapshot did not take over, location logs).
func (rt *runtime) close() {
	for _, p := range rt.idle {
		p.close()
	}
	for _, l := range rt.locLogs {
		l.Close()
	}
	for _, tc := range rt.tlsServers {
		tc.Close() // stops OCSP refreshers; handshakes in flight keep working
	}
}

func (rt *runtime) logFor(lc *config.LocConf) *errlog.Logger {
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
