package status

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsgate/wsgate/internal/resolver"
	"github.com/wsgate/wsgate/internal/upstream"
)

// Snapshot is what the server reports at one instant. It is a plain value:
// the package only reads it.
type Snapshot struct {
	Version    string
	PID        int
	Started    time.Time
	Reloads    int64
	LastReload time.Time // zero before the first reload
	// Connections are stub_status's counts: Active, Reading, Writing and
	// Waiting are gauges; Accepted, Handled and Requests only grow.
	Connections struct{ Active, Reading, Writing, Waiting, Accepted, Handled, Requests int64 }
	Tunnels     int64 // open WebSocket tunnels
	Upstreams   []Upstream
	Locations   []MessageStats // WebSocket counts per location and upstream
	// Resolvers are the counters of the resolvers with a status_zone, by
	// zone.
	Resolvers map[string]resolver.Stats
}

// Upstream is one upstream block and the state of its peers.
type Upstream struct {
	Name  string
	Peers []upstream.PeerState
}

// Source produces Snapshots. Snapshot is called at every scrape, possibly
// from several goroutines at once, and must not block for long.
type Source interface {
	Snapshot() Snapshot
}

// peerStateName is the state an operator reads first, most serious first:
// a configured down outranks a failing health check, which outranks
// max_fails.
func peerStateName(p upstream.PeerState) string {
	switch {
	case p.Down:
		return "down"
	case !p.Healthy:
		return "unhealthy"
	case !p.UnavailableUntil.IsZero():
		return "unavail"
	case p.Drain:
		return "draining" // nginx Plus's name
	case p.Backup:
		return "backup"
	}
	return "up"
}

// usable reports whether the balancer may choose p (max_conns aside, which
// a snapshot cannot know; a draining peer takes only its bound requests).
func usable(p upstream.PeerState) bool {
	return !p.Down && !p.Drain && p.Healthy && p.UnavailableUntil.IsZero()
}

var (
	peerLabels = []string{"upstream", "peer"}

	descBuildInfo  = prometheus.NewDesc("wsgate_build_info", "Always 1; the version is a label.", []string{"version"}, nil)
	descStarted    = prometheus.NewDesc("wsgate_start_time_seconds", "Unix time the server started.", nil, nil)
	descLastReload = prometheus.NewDesc("wsgate_last_reload_timestamp_seconds", "Unix time of the last configuration reload; 0 before any.", nil, nil)
	descConns      = prometheus.NewDesc("wsgate_connections", "Client connections by state, as stub_status counts them: an open WebSocket is one.", []string{"state"}, nil)
	descAccepted   = prometheus.NewDesc("wsgate_connections_accepted_total", "Client connections accepted.", nil, nil)
	descHandled    = prometheus.NewDesc("wsgate_connections_handled_total", "Client connections handled (accepted and not dropped by worker_connections).", nil, nil)
	descRequests   = prometheus.NewDesc("wsgate_http_requests_total", "Client requests, WebSocket handshakes included.", nil, nil)
	descTunnels    = prometheus.NewDesc("wsgate_tunnels_active", "Open WebSocket tunnels.", nil, nil)
	descPeerActive = prometheus.NewDesc("wsgate_upstream_peer_tunnels", "Requests and tunnels in progress on the peer.", peerLabels, nil)
	descPeerUp     = prometheus.NewDesc("wsgate_upstream_peer_up", "1 when the balancer may choose the peer: not down, healthy, not disabled by max_fails.", peerLabels, nil)
	descPeerHealth = prometheus.NewDesc("wsgate_upstream_peer_healthy", "1 unless active health checks find the peer failing.", peerLabels, nil)
	descPeerFails  = prometheus.NewDesc("wsgate_upstream_peer_fails", "nginx's max_fails counter: failures since the last success after a fail_timeout.", peerLabels, nil)
	descPeerReqs   = prometheus.NewDesc("wsgate_upstream_peer_requests_total", "Times the balancer chose the peer.", peerLabels, nil)
	descPeerFailed = prometheus.NewDesc("wsgate_upstream_peer_failures_total", "Failed attempts on the peer (connect, handshake or response errors).", peerLabels, nil)
)

// snapshotCollector turns one Snapshot into const metrics at scrape time.
type snapshotCollector struct{ src Source }

func (c snapshotCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descBuildInfo, descStarted, descLastReload, descConns, descAccepted, descHandled, descRequests,
		descTunnels, descPeerActive, descPeerUp, descPeerHealth, descPeerFails, descPeerReqs, descPeerFailed,
	} {
		ch <- d
	}
}

func (c snapshotCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.src.Snapshot()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge(descBuildInfo, 1, s.Version)
	gauge(descStarted, unixSeconds(s.Started))
	gauge(descLastReload, unixSeconds(s.LastReload))
	cn := s.Connections
	gauge(descConns, float64(cn.Active), "active")
	gauge(descConns, float64(cn.Reading), "reading")
	gauge(descConns, float64(cn.Writing), "writing")
	gauge(descConns, float64(cn.Waiting), "waiting")
	counter(descAccepted, float64(cn.Accepted))
	counter(descHandled, float64(cn.Handled))
	counter(descRequests, float64(cn.Requests))
	gauge(descTunnels, float64(s.Tunnels))

	for _, p := range mergePeers(s.Upstreams) {
		gauge(descPeerActive, float64(p.active), p.upstream, p.peer)
		gauge(descPeerUp, boolValue(p.up), p.upstream, p.peer)
		gauge(descPeerHealth, boolValue(p.healthy), p.upstream, p.peer)
		gauge(descPeerFails, float64(p.fails), p.upstream, p.peer)
		counter(descPeerReqs, float64(p.requests), p.upstream, p.peer)
		counter(descPeerFailed, float64(p.failures), p.upstream, p.peer)
	}
}

type peerSeries struct {
	upstream, peer     string
	active             int64
	fails              int
	requests, failures uint64
	up, healthy        bool
}

// mergePeers folds peers that share an upstream and an address (the same
// server listed twice, or as a backup too) into one series: Prometheus
// rejects two series with the same labels.
func mergePeers(ups []Upstream) []peerSeries {
	var out []peerSeries
	index := map[peerKey]int{}
	for _, u := range ups {
		for _, p := range u.Peers {
			k := peerKey{u.Name, p.Addr}
			i, ok := index[k]
			if !ok {
				index[k] = len(out)
				out = append(out, peerSeries{
					upstream: u.Name, peer: p.Addr,
					active: p.Active, fails: p.Fails, requests: p.Picks, failures: p.Failures,
					up: usable(p), healthy: p.Healthy,
				})
				continue
			}
			s := &out[i]
			s.active += p.Active
			s.fails = max(s.fails, p.Fails)
			s.requests += p.Picks
			s.failures += p.Failures
			s.up = s.up || usable(p)
			s.healthy = s.healthy && p.Healthy
		}
	}
	return out
}

func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
