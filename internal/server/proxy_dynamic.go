package server

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/upstream"
)

// A proxy_pass with variables: each request evaluates the URL; a host
// without a port that names an upstream block uses the block, an IP
// address is used as is, and any other name is resolved through the
// location's resolver, as nginx does.

// dynTarget is where one request's proxy_pass with variables goes, for
// the location lc (an auth subrequest runs in another location).
type dynTarget struct {
	lc   *config.LocConf
	pp   config.ProxyPass
	pool *upstream.Upstream
}

// proxyPass is the request's proxy_pass: the evaluated one for a URL with
// variables once target has run, else the location's.
func (x *exchange) proxyPass() *config.ProxyPass {
	if x.dyn != nil && x.dyn.lc == x.lc {
		return &x.dyn.pp
	}
	return x.lc.Proxy
}

// pool is the peer pool of the request's upstream.
func (x *exchange) pool() *upstream.Upstream {
	if x.dyn != nil && x.dyn.lc == x.lc {
		return x.dyn.pool
	}
	return x.rt.pools[x.lc.Proxy.Upstream]
}

// target returns the proxy_pass to use, evaluating and resolving a URL
// with variables; a status other than 0 is the answer when that failed
// (logged as nginx logs it).
func (x *exchange) target() (*config.ProxyPass, int) {
	pp := x.lc.Proxy
	if pp.Dynamic == nil {
		return pp, 0
	}
	raw := pp.Dynamic.Eval(x.vc)
	t := &dynTarget{lc: x.lc, pp: config.ProxyPass{Dynamic: pp.Dynamic}}
	rest, ok := strings.CutPrefix(raw, "http://")
	t.pp.Scheme = "http"
	if !ok {
		if rest, ok = strings.CutPrefix(raw, "https://"); !ok || x.lc.ProxySSL.Client == nil {
			x.logRequest(errlog.Error, "", "invalid URL prefix in \"%s\"", raw)
			return nil, 500
		}
		t.pp.Scheme = "https"
	}
	hostport, uri := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		hostport, uri = rest[:i], rest[i:]
		if uri[0] == '?' {
			uri = "/" + uri
		}
	}
	t.pp.HostPort, t.pp.URI, t.pp.HasURI = hostport, uri, uri != ""
	if status := x.findPeers(t); status != 0 {
		return nil, status
	}
	x.dyn = t
	return &t.pp, 0
}

// findPeers fills t's upstream and pool from its host.
func (x *exchange) findPeers(t *dynTarget) int {
	hostport := t.pp.HostPort
	host, port, err := net.SplitHostPort(hostport)
	if err != nil { // no port
		if cu := x.rt.upstreamNamed(hostport); cu != nil {
			t.pp.Upstream, t.pool = cu, x.rt.pools[cu] // $proxy_host stays as evaluated
			return 0
		}
		host, port = strings.Trim(hostport, "[]"), "80"
		if t.pp.Scheme == "https" {
			port = "443"
		}
	}
	if host == "" {
		x.logRequest(errlog.Error, "", "no host in upstream \"%s\"", hostport)
		return 502
	}
	addrs, status := x.lookup(host)
	if status != 0 {
		return status
	}
	cu := &config.Upstream{Name: hostport, Implicit: true, Method: "round_robin"}
	pc := upstream.Config{Name: hostport}
	for _, a := range addrs {
		addr := net.JoinHostPort(a.String(), port)
		pc.Peers = append(pc.Peers, upstream.PeerConfig{Addr: addr, Name: hostport, MaxFails: 1, FailTimeout: 10 * time.Second})
	}
	t.pp.Upstream, t.pool = cu, upstream.New(pc, nil)
	return 0
}

// lookup resolves host through the location's resolver.
func (x *exchange) lookup(host string) ([]netip.Addr, int) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a.Unmap()}, 0
	}
	res := x.rt.dns.resolverFor(x.lc.Resolver, x.lc.ResolverTimeout)
	if res == nil {
		x.logRequest(errlog.Error, "", "no resolver defined to resolve %s", host)
		return nil, 502
	}
	addrs, _, err := res.LookupHost(context.Background(), host)
	if err != nil {
		x.logRequest(errlog.Error, "", "%v", err)
		return nil, 502
	}
	return addrs, 0
}

// upstreamNamed finds the upstream block called name, as nginx matches a
// proxy_pass host without a port: ignoring case.
func (rt *generation) upstreamNamed(name string) *config.Upstream {
	for _, cu := range rt.cfg.HTTP.Upstreams {
		if !cu.Implicit && strings.EqualFold(cu.Name, name) {
			return cu
		}
	}
	return nil
}
