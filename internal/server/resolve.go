package server

import (
	"context"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/resolver"
	"github.com/wsgate/wsgate/internal/upstream"
)

// The resolvers of a generation, and the upstream servers with `resolve`
// that it keeps re-resolving as their records expire.

// genDNS is built with its generation and read-only afterwards, except for
// the watchers' own state.
type genDNS struct {
	resolvers map[resolverKey]*resolver.Resolver
	watchers  []*watcher
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

type resolverKey struct {
	rc      *config.ResolverConf
	timeout time.Duration
}

// resolverFor returns the resolver of a `resolver` directive, nil when none
// applies. One is shared by every location and upstream that inherit the
// same directive and timeout, and so is its cache.
func (d *genDNS) resolverFor(rc *config.ResolverConf, timeout time.Duration) *resolver.Resolver {
	if d == nil || rc == nil {
		return nil
	}
	return d.resolvers[resolverKey{rc, timeout}]
}

func (d *genDNS) add(rc *config.ResolverConf, timeout time.Duration) *resolver.Resolver {
	k := resolverKey{rc, timeout}
	if r := d.resolvers[k]; r != nil {
		return r
	}
	r := resolver.New(resolver.Config{Servers: rc.Servers, Valid: rc.Valid, NoIPv4: rc.NoIPv4, NoIPv6: rc.NoIPv6, Timeout: timeout, Zone: rc.Zone})
	d.resolvers[k] = r
	return r
}

// buildDNS makes the resolvers of every location and of every pooled
// upstream with servers that resolve at run time. Their pools are already
// built, seeded with what prev knew.
func (rt *generation) buildDNS(prev *generation) {
	d := &genDNS{resolvers: map[resolverKey]*resolver.Resolver{}}
	rt.dns = d
	for _, srv := range rt.cfg.HTTP.Servers {
		srv.Walk(func(loc *config.Location) {
			if lc := loc.Conf; lc.Resolver != nil {
				d.add(lc.Resolver, lc.ResolverTimeout)
			}
		})
	}
	for cu, pool := range rt.pools {
		if cu.Resolver == nil || !dynamicUpstream(cu) || slices.ContainsFunc(d.watchers, func(w *watcher) bool { return w.pool == pool }) {
			continue
		}
		w := &watcher{cu: cu, pool: pool, res: d.add(cu.Resolver, cu.ResolverTimeout), log: rt.log, last: prevKnown(prev, cu.Name)}
		d.watchers = append(d.watchers, w)
	}
}

// startDNS starts re-resolving; each watcher resolves at once, then as
// the answers expire.
func (rt *generation) startDNS() {
	d := rt.dns
	if d == nil || len(d.watchers) == 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	for _, w := range d.watchers {
		d.wg.Go(func() { w.run(ctx) })
	}
}

// stopDNS stops the watchers and waits for them.
func (rt *generation) stopDNS() {
	if d := rt.dns; d != nil && d.cancel != nil {
		d.cancel()
		d.wg.Wait()
	}
}

func dynamicUpstream(cu *config.Upstream) bool {
	return slices.ContainsFunc(cu.Servers, func(s config.UpstreamServer) bool { return s.Resolve })
}

// peerFor is the pool's view of one configured server at addr.
func peerFor(s config.UpstreamServer, addr string) upstream.PeerConfig {
	return upstream.PeerConfig{
		Addr: addr, Name: s.Name, Weight: s.Weight, MaxFails: s.MaxFails,
		FailTimeout: s.FailTimeout, Backup: s.Backup, Down: s.Down,
		MaxConns: s.MaxConns, SlowStart: s.SlowStart, Drain: s.Drain, Route: s.Route,
	}
}

// seedResolved adds to a pool's configuration the addresses that the
// previous generation had resolved for the same servers, so that a reload
// serves at once and keeps the peers' state.
func seedResolved(cu *config.Upstream, pc *upstream.Config, prev *generation) {
	known := prevKnown(prev, cu.Name)
	for _, s := range cu.Servers {
		if s.Resolve {
			pc.Peers = append(pc.Peers, resolvedPeers(s, known[serverKey(s)])...)
		}
	}
}

func prevKnown(prev *generation, name string) map[string][]resolved {
	out := map[string][]resolved{}
	if prev == nil || prev.dns == nil {
		return out
	}
	for _, w := range prev.dns.watchers {
		if w.cu.Name == name {
			w.mu.Lock()
			for k, v := range w.last {
				out[k] = v
			}
			w.mu.Unlock()
		}
	}
	return out
}

// resolved is one address a server's name resolved to.
type resolved struct {
	addr   string // ip:port
	weight int    // from SRV; 0: the server's weight
	backup bool   // SRV: not of the best priority
}

func serverKey(s config.UpstreamServer) string { return s.Name + " " + s.Service }

func resolvedPeers(s config.UpstreamServer, rs []resolved) []upstream.PeerConfig {
	out := make([]upstream.PeerConfig, 0, len(rs))
	for _, r := range rs {
		p := peerFor(s, r.addr)
		if r.weight > 0 {
			p.Weight = r.weight
		}
		p.Backup = p.Backup || r.backup
		out = append(out, p)
	}
	return out
}

// watcher keeps the servers with `resolve` of one upstream resolved.
type watcher struct {
	cu   *config.Upstream
	pool *upstream.Upstream
	res  *resolver.Resolver
	log  *errlog.Logger

	mu      sync.Mutex
	last    map[string][]resolved // by serverKey: the last good answer
	failing map[string]bool
	applied []upstream.PeerConfig
}

// minRefresh bounds how often a name is asked again (a TTL of 0 or 1s).
const minRefresh = time.Second

// failedRetry is when a name whose lookup failed is asked again.
const failedRetry = 5 * time.Second

func (w *watcher) run(ctx context.Context) {
	for {
		next := w.refresh(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(next):
		}
	}
}

// refresh resolves every server and gives the pool the new peer set. A
// server whose lookup fails keeps its last known addresses. It returns
// when to look again: when the first answer expires.
func (w *watcher) refresh(ctx context.Context) time.Duration {
	next := 30 * time.Second
	var peers []upstream.PeerConfig
	for _, s := range w.cu.Servers {
		if !s.Resolve {
			peers = append(peers, peerFor(s, s.Addr))
			continue
		}
		rs, ttl, err := w.lookup(ctx, s)
		if ctx.Err() != nil {
			return 0
		}
		w.mu.Lock()
		k := serverKey(s)
		if err != nil {
			w.failed(s, err)
			next = min(next, failedRetry)
		} else {
			if w.failing[k] {
				w.log.Printf(errlog.Notice, 0, "upstream \"%s\" server \"%s\" resolves again: %d addresses", w.cu.Name, s.Name, len(rs))
				delete(w.failing, k)
			}
			w.last[k] = rs
			next = min(next, ttl)
		}
		peers = append(peers, resolvedPeers(s, w.last[k])...)
		w.mu.Unlock()
	}
	if !slices.Equal(peers, w.applied) {
		w.pool.SetPeers(peers)
		w.applied = peers
	}
	return max(next, minRefresh)
}

// failed logs a failed lookup once until the name resolves again. The
// caller holds w.mu.
func (w *watcher) failed(s config.UpstreamServer, err error) {
	k := serverKey(s)
	if w.failing == nil {
		w.failing = map[string]bool{}
	}
	if w.failing[k] {
		return
	}
	w.failing[k] = true
	w.log.Printf(errlog.Error, 0, "upstream \"%s\" server \"%s\": %v; its %d last known addresses stay in use", w.cu.Name, s.Name, err, len(w.last[k]))
}

// lookup resolves one server: its A and AAAA records, or with service=
// its SRV records, whose best priority gives the primary peers and the
// others backups, as nginx Plus does.
func (w *watcher) lookup(ctx context.Context, s config.UpstreamServer) ([]resolved, time.Duration, error) {
	if s.Service != "" {
		srvs, ttl, err := w.res.LookupSRV(ctx, s.SRVName())
		if err != nil {
			return nil, 0, err
		}
		var out []resolved
		for _, r := range srvs {
			for _, a := range r.Addrs {
				out = append(out, resolved{addr: net.JoinHostPort(a.String(), strconv.Itoa(int(r.Port))), weight: max(int(r.Weight), 1), backup: r.Priority != srvs[0].Priority})
			}
		}
		return out, ttl, nil
	}
	host, port, err := net.SplitHostPort(s.Name)
	if err != nil {
		host, port = s.Name, "80"
	}
	addrs, ttl, err := w.res.LookupHost(ctx, host)
	if err != nil {
		return nil, 0, err
	}
	out := make([]resolved, len(addrs))
	for i, a := range addrs {
		out[i] = resolved{addr: net.JoinHostPort(a.String(), port)}
	}
	return out, ttl, nil
}

// hasDynamicProxy reports whether a location has proxy_pass with variables.
func hasDynamicProxy(cfg *config.Config) bool {
	found := false
	for _, srv := range cfg.HTTP.Servers {
		srv.Walk(func(loc *config.Location) {
			found = found || (loc.Conf.Proxy != nil && loc.Conf.Proxy.Dynamic != nil)
		})
	}
	return found
}

// stats sums the counters of the resolvers with a status_zone, by zone.
func (d *genDNS) stats() map[string]resolver.Stats {
	if d == nil {
		return nil
	}
	out := map[string]resolver.Stats{}
	for k, r := range d.resolvers {
		if k.rc.Zone != "" {
			out[k.rc.Zone] = out[k.rc.Zone].Add(r.Stats())
		}
	}
	return out
}
