package status

import (
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"
)

// PrometheusContentType is the Content-Type of WritePrometheus's output.
const PrometheusContentType = "text/plain; version=0.0.4; charset=utf-8"

// Label values outside the server's control (close codes come from the
// peers; zone and peer names change with reloads) could otherwise grow the
// registry without bound. Past these counts new values share one series.
const (
	maxResults    = 16
	maxCloseCodes = 256
	maxPeers      = 4096
	maxZones      = 1024
	overflowLabel = "other"
)

// Metrics holds the counters the server feeds as events happen and renders
// them, with the gauges of a Snapshot, as Prometheus text. Every method is
// safe for concurrent use; once a label value has been seen, recording an
// event costs a few atomic operations and no allocation. Use NewMetrics;
// the zero value is not usable.
type Metrics struct {
	reg *prometheus.Registry

	handshakes children[string, prometheus.Counter]
	closes     children[closeKey, prometheus.Counter]
	// common caches the close series of the usual keys (see commonClose),
	// which every tunnel's end records: an index in place of a map lookup
	// keeps that path short and its stack shallow, as it runs at the
	// bottom of a relay goroutine's small stack.
	common [len(closeSides)][commonCodes]atomic.Pointer[prometheus.Counter]
	peers  children[peerKey, *PeerSeries]
	limits children[limitKey, prometheus.Counter]

	bytesFromClient, bytesFromBackend prometheus.Counter
	msgsFromClient, msgsFromBackend   prometheus.Counter
	duration                          prometheus.Histogram
	reloadOK, reloadFailed            prometheus.Counter
}

type closeKey struct {
	code  uint16
	by    string
	other bool // past maxCloseCodes
}

type peerKey struct{ upstream, peer string }

type limitKey struct{ zone, kind string }

// PeerSeries is the series of one peer of an upstream: a caller that
// records several events of the same peer looks it up once (Peer).
type PeerSeries struct {
	closed   prometheus.Counter
	response prometheus.Observer
}

// closeSides are the values of closedBy, in the order of Metrics.common.
var closeSides = [...]string{"client", "backend", "proxy"}

// commonCodes is how many close codes Metrics.common holds: none (0) and
// 1000 to 1015.
const commonCodes = 17

// NewMetrics returns a Metrics whose registry also holds the Go runtime and
// process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)

	handshakes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wsgate_handshakes_total",
		Help: "WebSocket handshakes by result: upgraded, rejected by policy, or failed at the upstream.",
	}, []string{"result"})
	bytes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wsgate_tunnel_bytes_total",
		Help: "Bytes relayed by closed WebSocket tunnels.",
	}, []string{"direction"})
	msgs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wsgate_websocket_messages_total",
		Help: "Complete WebSocket data messages relayed by closed tunnels.",
	}, []string{"direction"})
	closes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wsgate_tunnel_close_total",
		Help: `Closed WebSocket tunnels by close code ("none" when no close frame passed) and the side that closed first.`,
	}, []string{"code", "closed_by"})
	m.duration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "wsgate_tunnel_duration_seconds",
		Help:    "Lifetime of closed WebSocket tunnels.",
		Buckets: []float64{1, 10, 60, 300, 1800, 3600, 21600, 86400, 604800},
	})
	peerClosed := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wsgate_upstream_peer_tunnels_closed_total",
		Help: "WebSocket tunnels to the peer that have closed.",
	}, []string{"upstream", "peer"})
	peerResp := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "wsgate_upstream_response_seconds",
		Help:    "Time from sending a request or handshake to the peer until its response head, successful attempts only.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"upstream", "peer"})
	limits := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wsgate_limit_rejections_total",
		Help: "Requests (kind req) and connections (kind conn) rejected by a limit zone.",
	}, []string{"zone", "kind"})
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wsgate_reloads_total",
		Help: "Configuration reloads by result.",
	}, []string{"result"})
	m.reg.MustRegister(handshakes, bytes, msgs, closes, m.duration, peerClosed, peerResp, limits, reloads)

	m.bytesFromClient = bytes.WithLabelValues("client_to_backend")
	m.bytesFromBackend = bytes.WithLabelValues("backend_to_client")
	m.msgsFromClient = msgs.WithLabelValues("client_to_backend")
	m.msgsFromBackend = msgs.WithLabelValues("backend_to_client")
	m.reloadOK = reloads.WithLabelValues("ok")
	m.reloadFailed = reloads.WithLabelValues("failed")

	m.handshakes = children[string, prometheus.Counter]{
		max:      maxResults,
		overflow: func(string) string { return overflowLabel },
		make:     func(r string) prometheus.Counter { return handshakes.WithLabelValues(r) },
	}
	// Present from the first scrape, so that rate() sees every series
	// start at zero.
	for _, r := range []string{"upgraded", "rejected", "failed"} {
		m.handshakes.get(r)
	}
	m.closes = children[closeKey, prometheus.Counter]{
		max:      maxCloseCodes,
		overflow: func(k closeKey) closeKey { return closeKey{by: k.by, other: true} },
		make: func(k closeKey) prometheus.Counter {
			code := overflowLabel
			switch {
			case k.other:
			case k.code == 0:
				code = "none"
			default:
				code = strconv.Itoa(int(k.code))
			}
			return closes.WithLabelValues(code, k.by)
		},
	}
	m.peers = children[peerKey, *PeerSeries]{
		max:      maxPeers,
		overflow: func(peerKey) peerKey { return peerKey{overflowLabel, overflowLabel} },
		make: func(k peerKey) *PeerSeries {
			return &PeerSeries{
				closed:   peerClosed.WithLabelValues(k.upstream, k.peer),
				response: peerResp.WithLabelValues(k.upstream, k.peer),
			}
		},
	}
	m.limits = children[limitKey, prometheus.Counter]{
		max:      maxZones,
		overflow: func(k limitKey) limitKey { return limitKey{overflowLabel, k.kind} },
		make:     func(k limitKey) prometheus.Counter { return limits.WithLabelValues(k.zone, k.kind) },
	}
	return m
}

// Handshake counts one WebSocket handshake: result is "upgraded",
// "rejected" (by policy: limits, ACL, origin, validation) or "failed" (an
// upstream error).
func (m *Metrics) Handshake(result string) { m.handshakes.get(result).Inc() }

// TunnelClosed records a closed tunnel to peer (its "ip:port") of upstream:
// how long it lived, the bytes read from each side, the first close code
// (0 when none passed) and the side that closed first ("client", "backend"
// or "proxy"). An empty upstream skips the per-peer counter.
func (m *Metrics) TunnelClosed(upstream, peer string, d time.Duration, fromClient, fromBackend int64, closeCode uint16, closedBy string) {
	var p *PeerSeries
	if upstream != "" {
		p = m.Peer(upstream, peer)
	}
	m.TunnelClosedAt(p, d, fromClient, fromBackend, closeCode, closedBy)
}

// TunnelClosedAt is TunnelClosed for the peer whose series p the caller
// looked up already; a nil p skips the per-peer counter.
func (m *Metrics) TunnelClosedAt(p *PeerSeries, d time.Duration, fromClient, fromBackend int64, closeCode uint16, closedBy string) {
	m.duration.Observe(d.Seconds())
	addCount(m.bytesFromClient, fromClient)
	addCount(m.bytesFromBackend, fromBackend)
	m.closeCounter(closeCode, closedBy).Inc()
	if p != nil {
		p.closed.Inc()
	}
}

// closeCounter is the close series of code and closedBy, from
// Metrics.common for the usual keys.
func (m *Metrics) closeCounter(code uint16, by string) prometheus.Counter {
	side, i := commonClose(code, by)
	if side < 0 {
		return m.closes.get(closeKey{code: code, by: by})
	}
	if c := m.common[side][i].Load(); c != nil {
		return *c
	}
	c := m.closes.get(closeKey{code: code, by: by})
	m.common[side][i].Store(&c)
	return c
}

// commonClose is the place of a close key in Metrics.common; side is -1
// for a key it does not hold.
func commonClose(code uint16, by string) (side, i int) {
	switch {
	case code == 0:
	case code >= 1000 && code < 1000+commonCodes-1:
		i = int(code) - 999
	default:
		return -1, 0
	}
	for s, name := range closeSides {
		if by == name {
			return s, i
		}
	}
	return -1, 0
}

// Messages counts the complete WebSocket data messages a tunnel relayed,
// reported once as it closes.
func (m *Metrics) Messages(fromClient, fromBackend int64) {
	addCount(m.msgsFromClient, fromClient)
	addCount(m.msgsFromBackend, fromBackend)
}

// PeerResponse records the time peer of upstream took to send its response
// head (to a handshake or an HTTP request). Failed attempts are not
// observed: their time measures a timeout or a refusal, not the backend's
// latency, and PeerState.Failures counts them already.
func (m *Metrics) PeerResponse(upstream, peer string, d time.Duration, failed bool) {
	if failed {
		return
	}
	m.Peer(upstream, peer).Responded(d)
}

// Peer returns the series of peer (its "ip:port") of upstream, for
// Responded and TunnelClosedAt.
func (m *Metrics) Peer(upstream, peer string) *PeerSeries {
	return m.peers.get(peerKey{upstream, peer})
}

// Responded is PeerResponse for a successful attempt at p's peer.
func (p *PeerSeries) Responded(d time.Duration) { p.response.Observe(d.Seconds()) }

// LimitRejected counts a rejection by limit zone; kind is "req" or "conn".
func (m *Metrics) LimitRejected(zone, kind string) {
	m.limits.get(limitKey{zone, kind}).Inc()
}

// Reload counts a configuration reload that succeeded or failed.
func (m *Metrics) Reload(ok bool) {
	if ok {
		m.reloadOK.Inc()
	} else {
		m.reloadFailed.Inc()
	}
}

// WritePrometheus writes every metric in the text exposition format (see
// PrometheusContentType), reading src.Snapshot once for the gauges; src may
// be nil. When gathering reports an error the metrics that were gathered are
// still written and the error is returned, for the caller to log.
func (m *Metrics) WritePrometheus(w io.Writer, src Source) error {
	g := prometheus.Gatherers{m.reg}
	if src != nil {
		// A registry per scrape keeps Source out of Metrics: the server
		// may build its Metrics before the thing that snapshots it.
		r := prometheus.NewRegistry()
		if err := r.Register(snapshotCollector{src}); err != nil {
			return err
		}
		if ms, ok := src.(MessageSource); ok {
			if err := r.Register(messageCollector{ms}); err != nil {
				return err
			}
		}
		g = append(g, r)
	}
	mfs, gerr := g.Gather()
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(w, mf); err != nil {
			return err
		}
	}
	return gerr
}

// addCount adds n, ignoring what a counter must not take: a negative
// count would panic in the client library.
func addCount(c prometheus.Counter, n int64) {
	if n > 0 {
		c.Add(float64(n))
	}
}

// children caches the label children of a vector: WithLabelValues hashes
// and allocates, which the hot path must not. Readers load an immutable map
// without locking; a new label value copies it, which happens a bounded
// number of times.
type children[K comparable, V any] struct {
	m        atomic.Pointer[map[K]V]
	mu       sync.Mutex
	max      int
	overflow func(K) K // the key that stands for every key past max
	make     func(K) V
}

func (c *children[K, V]) get(k K) V {
	if m := c.m.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v
		}
	}
	return c.add(k)
}

func (c *children[K, V]) add(k K) V {
	c.mu.Lock()
	defer c.mu.Unlock()
	var old map[K]V
	if p := c.m.Load(); p != nil {
		old = *p
	}
	if v, ok := old[k]; ok {
		return v
	}
	if len(old) >= c.max {
		k = c.overflow(k)
		if v, ok := old[k]; ok {
			return v
		}
	}
	v := c.make(k)
	m := make(map[K]V, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[k] = v
	c.m.Store(&m)
	return v
}
