package server

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/upstream"
)

// Run-time upstream changes (nginx Plus's /api/9/http/upstreams/NAME/servers).
// An upstream with a zone has a server list that the api may change
// without a reload. The list starts as the configuration's (for an
// upstream with state, the state file's); with a cluster store, the
// store's copy, once there is one, replaces it on every instance. A change
// builds the upstream's pool anew from the list, sharing the state of the
// peers it keeps, as a reload does, and drains the tunnels of the peers it
// removed.

// apiServer is one server of an upstream, in nginx Plus's api shape.
type apiServer struct {
	ID          int    `json:"id"`
	Server      string `json:"server"`
	Weight      int    `json:"weight"`
	MaxConns    int    `json:"max_conns"`
	MaxFails    int    `json:"max_fails"`
	FailTimeout string `json:"fail_timeout"`
	SlowStart   string `json:"slow_start"`
	Route       string `json:"route"`
	Service     string `json:"service"`
	Backup      bool   `json:"backup"`
	Down        bool   `json:"down"`
	Drain       bool   `json:"drain"`
}

// upstreamDoc is an upstream's run-time server list, as the store keeps it.
type upstreamDoc struct {
	NextID  int         `json:"next_id"`
	Servers []apiServer `json:"servers"`
}

// dynUpstream is the list an upstream runs with.
type dynUpstream struct {
	version int64 // the store's version it came from; 0: the configuration
	doc     upstreamDoc
}

// dynUpstreams are the run-time lists of the upstreams with a zone. Its
// mutex is taken before the server's.
type dynUpstreams struct {
	mu sync.Mutex
	m  map[string]*dynUpstream
}

// fromConfig is the list a configuration gives an upstream.
func fromConfig(cu *config.Upstream) upstreamDoc {
	var d upstreamDoc
	for _, s := range cu.Servers {
		d.Servers = append(d.Servers, apiServer{
			ID: d.NextID, Server: s.Addr, Weight: s.Weight, MaxConns: s.MaxConns, MaxFails: s.MaxFails,
			FailTimeout: fmtDuration(s.FailTimeout), SlowStart: fmtDuration(s.SlowStart),
			Route: s.Route, Backup: s.Backup, Down: s.Down, Drain: s.Drain,
		})
		d.NextID++
	}
	return d
}

func fmtDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d/time.Millisecond)
}

// serverConfig converts an api server to the configuration's form.
func (a apiServer) serverConfig() config.UpstreamServer {
	ft, _ := config.ParseDuration(a.FailTimeout)
	ss, _ := config.ParseDuration(a.SlowStart)
	return config.UpstreamServer{Name: a.Server, Addr: a.Server, Weight: a.Weight, MaxFails: a.MaxFails,
		FailTimeout: ft, Backup: a.Backup, Down: a.Down, MaxConns: a.MaxConns, SlowStart: ss, Drain: a.Drain, Route: a.Route}
}

// resetUpstreams takes the lists of rt's upstreams with a zone from its
// configuration, except those that came from the cluster store, which
// stay authoritative and are applied to rt again. s.dyn.mu and s.mu are
// held.
func (s *Server) resetUpstreams(rt *generation) {
	d := &s.dyn
	old := d.m
	d.m = map[string]*dynUpstream{}
	if rt.cfg.HTTP == nil {
		return
	}
	for _, cu := range rt.cfg.HTTP.Upstreams {
		if cu.Zone == "" {
			continue
		}
		if o := old[cu.Name]; o != nil && o.version > 0 && s.cluster.Load() != nil {
			d.m[cu.Name] = o
			s.swapPool(cu.Name, o.doc)
			continue
		}
		d.m[cu.Name] = &dynUpstream{doc: fromConfig(cu)}
	}
}

// SetUpstreamServers replaces the servers of the upstream name in the
// running configuration without a reload: its pool is rebuilt from list,
// keeping the state of the peers it keeps, and the tunnels of the peers it
// drops are drained as a reload drains them (close 1001, spread over
// websocket_drain_period). It is the one way the peers of a running
// upstream change; the api calls it. s.mu must not be held.
func (s *Server) SetUpstreamServers(name string, list []config.UpstreamServer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setPool(name, list)
}

// swapPool applies doc to the running pool of name; s.mu is held.
func (s *Server) swapPool(name string, doc upstreamDoc) {
	list := make([]config.UpstreamServer, len(doc.Servers))
	for i, a := range doc.Servers {
		list[i] = a.serverConfig()
	}
	s.setPool(name, list)
}

// setPool is SetUpstreamServers with s.mu held.
func (s *Server) setPool(name string, list []config.UpstreamServer) {
	rt := s.rt.Load()
	if rt == nil || s.closing {
		return
	}
	var cus []*config.Upstream
	var old *upstream.Upstream
	for cu, p := range rt.pools {
		if cu.Name == name {
			cus, old = append(cus, cu), p
		}
	}
	if old == nil {
		return // no location proxies to it: nothing runs with its peers
	}
	c := *cus[0]
	c.Servers = list
	pc := poolConfig(&c)
	pc.Logf = func(format string, args ...any) { rt.log.Printf(errlog.Warn, 0, format, args...) }
	pool := upstream.New(pc, old)
	next := rt.withPool(cus, pool)
	pool.Start()
	s.rt.Store(next)
	old.Close()
	s.drainRemoved(next)
}

// withPool is rt with pool in place of the pool of cus: the rest (logs,
// listeners, zones) is shared, and stays rt's to release.
func (rt *generation) withPool(cus []*config.Upstream, pool *upstream.Upstream) *generation {
	next := *rt
	next.pools = make(map[*config.Upstream]*upstream.Upstream, len(rt.pools))
	for cu, p := range rt.pools {
		next.pools[cu] = p
	}
	for _, cu := range cus {
		next.pools[cu] = pool
	}
	return &next
}

// upstreamFromStore applies a list another instance wrote to the store
// when it is newer than the one running. It is the store's watcher.
func (s *Server) upstreamFromStore(name string, version int64, raw []byte) {
	var doc upstreamDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		s.log.Load().Printf(errlog.Error, 0, "cluster store: upstream \"%s\": unreadable server list: %v", name, err)
		return
	}
	d := &s.dyn
	d.mu.Lock()
	defer d.mu.Unlock()
	du := d.m[name]
	if du == nil || du.version >= version {
		return
	}
	du.version, du.doc = version, doc
	s.mu.Lock()
	s.swapPool(name, doc)
	s.mu.Unlock()
	s.saveState(name, doc)
}

// saveState writes doc to the upstream's state file, if it has one, as
// nginx Plus writes it: one server line per server. d.mu is held, which
// orders the writes.
func (s *Server) saveState(name string, doc upstreamDoc) {
	rt := s.rt.Load()
	if rt == nil || rt.cfg.HTTP == nil {
		return
	}
	for _, cu := range rt.cfg.HTTP.Upstreams {
		if cu.Name != name || cu.State == "" {
			continue
		}
		if err := writeState(cu.State, doc); err != nil {
			rt.log.Printf(errlog.Error, 0, "upstream \"%s\": writing state file: %v", name, err)
		}
	}
}

// writeState replaces path with doc's server lines, atomically.
func writeState(path string, doc upstreamDoc) error {
	var b strings.Builder
	for _, a := range doc.Servers {
		fmt.Fprintf(&b, "server %s weight=%d max_fails=%d fail_timeout=%s", a.Server, a.Weight, a.MaxFails, a.FailTimeout)
		if a.MaxConns > 0 {
			fmt.Fprintf(&b, " max_conns=%d", a.MaxConns)
		}
		if a.SlowStart != "" && a.SlowStart != "0s" {
			fmt.Fprintf(&b, " slow_start=%s", a.SlowStart)
		}
		if a.Route != "" {
			fmt.Fprintf(&b, " route=%s", a.Route)
		}
		for _, f := range []struct {
			on   bool
			name string
		}{{a.Backup, "backup"}, {a.Down, "down"}, {a.Drain, "drain"}} {
			if f.on {
				b.WriteString(" " + f.name)
			}
		}
		b.WriteString(";\n")
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".state-*")
	if err != nil {
		return err
	}
	if _, err := tmp.WriteString(b.String()); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}
