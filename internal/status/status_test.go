package status

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	"github.com/wsgate/wsgate/internal/upstream"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fixedSource Snapshot

func (s fixedSource) Snapshot() Snapshot { return Snapshot(s) }

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func sampleSnapshot() Snapshot {
	s := Snapshot{
		Version: "1.2.3", PID: 4242, Started: t0, Reloads: 3, LastReload: t0.Add(time.Hour),
		Tunnels: 17,
		Upstreams: []Upstream{
			{Name: "chat", Peers: []upstream.PeerState{
				{Addr: "127.0.0.1:9001", Name: "a.local:9001", Weight: 2, Active: 10, Healthy: true, Picks: 100, Failures: 1},
				{Addr: "127.0.0.1:9002", Name: "b.local:9002", Weight: 1, Active: 7, Healthy: true, Fails: 3, Picks: 50, Failures: 9,
					UnavailableUntil: t0.Add(2 * time.Hour)},
				{Addr: "127.0.0.1:9003", Name: "c.local:9003", Weight: 1, Healthy: false, Failures: 4},
				{Addr: "127.0.0.1:9004", Name: "d.local:9004", Weight: 1, Healthy: true, Down: true},
				{Addr: "127.0.0.1:9005", Name: "e.local:9005", Weight: 1, Healthy: true, Backup: true},
			}},
			{Name: "api", Peers: []upstream.PeerState{
				{Addr: "127.0.0.1:8080", Name: "127.0.0.1:8080", Weight: 1, Active: 2, Healthy: true, Picks: 7},
			}},
		},
	}
	s.Connections.Active = 30
	s.Connections.Reading = 2
	s.Connections.Writing = 5
	s.Connections.Waiting = 23
	s.Connections.Accepted = 1000
	s.Connections.Handled = 999
	s.Connections.Requests = 5000
	return s
}

// scrape writes m's metrics and parses them back, as Prometheus would.
func scrape(t testing.TB, m *Metrics, src Source) map[string]*dto.MetricFamily {
	t.Helper()
	var buf bytes.Buffer
	if err := m.WritePrometheus(&buf, src); err != nil {
		t.Fatalf("WritePrometheus: %v", err)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(&buf)
	if err != nil {
		t.Fatalf("parse exposition: %v", err)
	}
	return mfs
}

// find returns the metric of family name whose labels include want.
func find(mfs map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	mf := mfs[name]
	if mf == nil {
		return nil
	}
next:
	for _, m := range mf.GetMetric() {
		got := map[string]string{}
		for _, lp := range m.GetLabel() {
			got[lp.GetName()] = lp.GetValue()
		}
		if len(got) != len(want) {
			continue
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		return m
	}
	return nil
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return math.NaN()
}

func labels(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestWritePrometheusValues(t *testing.T) {
	m := NewMetrics()
	for range 5 {
		m.Handshake("upgraded")
	}
	m.Handshake("rejected")
	m.Handshake("rejected")
	m.Handshake("failed")
	m.TunnelClosed("chat", "127.0.0.1:9001", 2*time.Second, 100, 200, 1000, "client")
	m.TunnelClosed("chat", "127.0.0.1:9001", 90*time.Second, 10, 20, 1000, "client")
	m.TunnelClosed("chat", "127.0.0.1:9002", 2*time.Hour, 1, 2, 0, "proxy")
	m.TunnelClosed("", "", 500*time.Millisecond, 0, 0, 1006, "backend")
	m.Messages(4, 6)
	m.Messages(1, 0)
	m.PeerResponse("chat", "127.0.0.1:9001", 3*time.Millisecond, false)
	m.PeerResponse("chat", "127.0.0.1:9001", 40*time.Millisecond, false)
	m.PeerResponse("chat", "127.0.0.1:9001", 5*time.Second, true)
	m.LimitRejected("perip", "conn")
	m.LimitRejected("perip", "conn")
	m.LimitRejected("rate", "req")
	m.Reload(true)
	m.Reload(false)
	m.Reload(true)

	mfs := scrape(t, m, fixedSource(sampleSnapshot()))

	tests := []struct {
		name   string
		labels map[string]string
		typ    dto.MetricType
		want   float64
	}{
		{"wsgate_handshakes_total", labels("result", "upgraded"), dto.MetricType_COUNTER, 5},
		{"wsgate_handshakes_total", labels("result", "rejected"), dto.MetricType_COUNTER, 2},
		{"wsgate_handshakes_total", labels("result", "failed"), dto.MetricType_COUNTER, 1},
		{"wsgate_tunnel_bytes_total", labels("direction", "client_to_backend"), dto.MetricType_COUNTER, 111},
		{"wsgate_tunnel_bytes_total", labels("direction", "backend_to_client"), dto.MetricType_COUNTER, 222},
		{"wsgate_websocket_messages_total", labels("direction", "client_to_backend"), dto.MetricType_COUNTER, 5},
		{"wsgate_websocket_messages_total", labels("direction", "backend_to_client"), dto.MetricType_COUNTER, 6},
		{"wsgate_tunnel_close_total", labels("code", "1000", "closed_by", "client"), dto.MetricType_COUNTER, 2},
		{"wsgate_tunnel_close_total", labels("code", "none", "closed_by", "proxy"), dto.MetricType_COUNTER, 1},
		{"wsgate_tunnel_close_total", labels("code", "1006", "closed_by", "backend"), dto.MetricType_COUNTER, 1},
		{"wsgate_upstream_peer_tunnels_closed_total", labels("upstream", "chat", "peer", "127.0.0.1:9001"), dto.MetricType_COUNTER, 2},
		{"wsgate_upstream_peer_tunnels_closed_total", labels("upstream", "chat", "peer", "127.0.0.1:9002"), dto.MetricType_COUNTER, 1},
		{"wsgate_limit_rejections_total", labels("zone", "perip", "kind", "conn"), dto.MetricType_COUNTER, 2},
		{"wsgate_limit_rejections_total", labels("zone", "rate", "kind", "req"), dto.MetricType_COUNTER, 1},
		{"wsgate_reloads_total", labels("result", "ok"), dto.MetricType_COUNTER, 2},
		{"wsgate_reloads_total", labels("result", "failed"), dto.MetricType_COUNTER, 1},

		{"wsgate_build_info", labels("version", "1.2.3"), dto.MetricType_GAUGE, 1},
		{"wsgate_start_time_seconds", nil, dto.MetricType_GAUGE, float64(t0.Unix())},
		{"wsgate_last_reload_timestamp_seconds", nil, dto.MetricType_GAUGE, float64(t0.Add(time.Hour).Unix())},
		{"wsgate_connections", labels("state", "active"), dto.MetricType_GAUGE, 30},
		{"wsgate_connections", labels("state", "reading"), dto.MetricType_GAUGE, 2},
		{"wsgate_connections", labels("state", "writing"), dto.MetricType_GAUGE, 5},
		{"wsgate_connections", labels("state", "waiting"), dto.MetricType_GAUGE, 23},
		{"wsgate_connections_accepted_total", nil, dto.MetricType_COUNTER, 1000},
		{"wsgate_connections_handled_total", nil, dto.MetricType_COUNTER, 999},
		{"wsgate_http_requests_total", nil, dto.MetricType_COUNTER, 5000},
		{"wsgate_tunnels_active", nil, dto.MetricType_GAUGE, 17},
		{"wsgate_upstream_peer_tunnels", labels("upstream", "chat", "peer", "127.0.0.1:9001"), dto.MetricType_GAUGE, 10},
		{"wsgate_upstream_peer_tunnels", labels("upstream", "chat", "peer", "127.0.0.1:9002"), dto.MetricType_GAUGE, 7},
		{"wsgate_upstream_peer_tunnels", labels("upstream", "api", "peer", "127.0.0.1:8080"), dto.MetricType_GAUGE, 2},
		{"wsgate_upstream_peer_up", labels("upstream", "chat", "peer", "127.0.0.1:9001"), dto.MetricType_GAUGE, 1},
		{"wsgate_upstream_peer_up", labels("upstream", "chat", "peer", "127.0.0.1:9002"), dto.MetricType_GAUGE, 0},
		{"wsgate_upstream_peer_up", labels("upstream", "chat", "peer", "127.0.0.1:9003"), dto.MetricType_GAUGE, 0},
		{"wsgate_upstream_peer_up", labels("upstream", "chat", "peer", "127.0.0.1:9004"), dto.MetricType_GAUGE, 0},
		{"wsgate_upstream_peer_up", labels("upstream", "chat", "peer", "127.0.0.1:9005"), dto.MetricType_GAUGE, 1},
		{"wsgate_upstream_peer_healthy", labels("upstream", "chat", "peer", "127.0.0.1:9002"), dto.MetricType_GAUGE, 1},
		{"wsgate_upstream_peer_healthy", labels("upstream", "chat", "peer", "127.0.0.1:9003"), dto.MetricType_GAUGE, 0},
		{"wsgate_upstream_peer_fails", labels("upstream", "chat", "peer", "127.0.0.1:9002"), dto.MetricType_GAUGE, 3},
		{"wsgate_upstream_peer_requests_total", labels("upstream", "chat", "peer", "127.0.0.1:9001"), dto.MetricType_COUNTER, 100},
		{"wsgate_upstream_peer_failures_total", labels("upstream", "chat", "peer", "127.0.0.1:9002"), dto.MetricType_COUNTER, 9},
		{"wsgate_upstream_peer_failures_total", labels("upstream", "chat", "peer", "127.0.0.1:9003"), dto.MetricType_COUNTER, 4},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s%v", tt.name, tt.labels), func(t *testing.T) {
			if mf := mfs[tt.name]; mf == nil {
				t.Fatalf("family missing")
			} else if mf.GetType() != tt.typ {
				t.Errorf("type = %v, want %v", mf.GetType(), tt.typ)
			}
			m := find(mfs, tt.name, tt.labels)
			if m == nil {
				t.Fatalf("no series with labels %v", tt.labels)
			}
			if got := value(m); got != tt.want {
				t.Errorf("value = %v, want %v", got, tt.want)
			}
		})
	}

	t.Run("histograms", func(t *testing.T) {
		hists := []struct {
			name    string
			labels  map[string]string
			count   uint64
			sum     float64
			buckets map[float64]uint64 // upper bound: cumulative count
		}{
			{"wsgate_tunnel_duration_seconds", nil, 4, 0.5 + 2 + 90 + 7200,
				map[float64]uint64{1: 1, 10: 2, 60: 2, 300: 3, 3600: 3, 21600: 4, 604800: 4}},
			// The failed attempt is not observed.
			{"wsgate_upstream_response_seconds", labels("upstream", "chat", "peer", "127.0.0.1:9001"), 2, 0.043,
				map[float64]uint64{.001: 0, .005: 1, .025: 1, .05: 2, 60: 2}},
		}
		for _, h := range hists {
			m := find(mfs, h.name, h.labels)
			if m == nil || m.Histogram == nil {
				t.Fatalf("%s%v: no histogram", h.name, h.labels)
			}
			if got := m.Histogram.GetSampleCount(); got != h.count {
				t.Errorf("%s count = %d, want %d", h.name, got, h.count)
			}
			if got := m.Histogram.GetSampleSum(); math.Abs(got-h.sum) > 1e-9 {
				t.Errorf("%s sum = %v, want %v", h.name, got, h.sum)
			}
			seen := 0
			for _, b := range m.Histogram.GetBucket() {
				if want, ok := h.buckets[b.GetUpperBound()]; ok {
					seen++
					if b.GetCumulativeCount() != want {
						t.Errorf("%s bucket le=%v = %d, want %d", h.name, b.GetUpperBound(), b.GetCumulativeCount(), want)
					}
				}
			}
			if seen != len(h.buckets) {
				t.Errorf("%s: found %d of %d expected buckets", h.name, seen, len(h.buckets))
			}
		}
	})

	t.Run("runtime collectors", func(t *testing.T) {
		for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_start_time_seconds"} {
			if mfs[name] == nil {
				t.Errorf("%s missing", name)
			}
		}
	})
}

func TestWritePrometheusNilSource(t *testing.T) {
	m := NewMetrics()
	m.Handshake("upgraded")
	mfs := scrape(t, m, nil)
	if mfs["wsgate_connections"] != nil || mfs["wsgate_tunnels_active"] != nil {
		t.Error("snapshot gauges written without a source")
	}
	if got := find(mfs, "wsgate_handshakes_total", labels("result", "upgraded")); got == nil || value(got) != 1 {
		t.Errorf("handshakes upgraded = %v, want 1", got)
	}
}

// The same address listed twice in an upstream must not produce two series
// with the same labels, which Prometheus rejects.
func TestDuplicatePeersMerge(t *testing.T) {
	s := Snapshot{Upstreams: []Upstream{
		{Name: "u", Peers: []upstream.PeerState{
			{Addr: "127.0.0.1:1", Active: 2, Healthy: true, Picks: 3, Failures: 1, Fails: 1},
			{Addr: "127.0.0.1:1", Active: 5, Healthy: false, Picks: 4, Failures: 2, Fails: 4, Backup: true},
			{Addr: "127.0.0.1:2", Active: 1, Healthy: true},
		}},
	}}
	mfs := scrape(t, NewMetrics(), fixedSource(s))
	peer1 := labels("upstream", "u", "peer", "127.0.0.1:1")
	tests := []struct {
		name string
		want float64
	}{
		{"wsgate_upstream_peer_tunnels", 7},
		{"wsgate_upstream_peer_requests_total", 7},
		{"wsgate_upstream_peer_failures_total", 3},
		{"wsgate_upstream_peer_fails", 4},
		{"wsgate_upstream_peer_up", 1},
		{"wsgate_upstream_peer_healthy", 0},
	}
	for _, tt := range tests {
		if n := len(mfs[tt.name].GetMetric()); n != 2 {
			t.Errorf("%s: %d series, want 2", tt.name, n)
		}
		if m := find(mfs, tt.name, peer1); m == nil || value(m) != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, m, tt.want)
		}
	}
}

func TestCloseCodeLabels(t *testing.T) {
	tests := []struct {
		code uint16
		by   string
		want string
	}{
		{0, "proxy", "none"},
		{1000, "client", "1000"},
		{1001, "backend", "1001"},
		{4000, "client", "4000"},
		{65535, "client", "65535"},
	}
	m := NewMetrics()
	for _, tt := range tests {
		m.TunnelClosed("", "", time.Second, 0, 0, tt.code, tt.by)
	}
	mfs := scrape(t, m, nil)
	for _, tt := range tests {
		if got := find(mfs, "wsgate_tunnel_close_total", labels("code", tt.want, "closed_by", tt.by)); got == nil || value(got) != 1 {
			t.Errorf("code %d by %s: series code=%q = %v, want 1", tt.code, tt.by, tt.want, got)
		}
	}
}

// Label values that peers or reloads control share one series past a
// bound, so a client sending every close code cannot grow the registry.
func TestLabelCardinalityBound(t *testing.T) {
	m := NewMetrics()
	const n = maxCloseCodes + 100
	for i := range n {
		m.TunnelClosed("", "", time.Second, 0, 0, uint16(3000+i), "client")
	}
	for i := range maxResults + 5 {
		m.Handshake(fmt.Sprintf("r%d", i))
	}
	mfs := scrape(t, m, nil)
	closes := mfs["wsgate_tunnel_close_total"].GetMetric()
	if len(closes) != maxCloseCodes+1 {
		t.Errorf("close series = %d, want %d", len(closes), maxCloseCodes+1)
	}
	var total float64
	for _, c := range closes {
		total += value(c)
	}
	if total != n {
		t.Errorf("close total = %v, want %d", total, n)
	}
	other := find(mfs, "wsgate_tunnel_close_total", labels("code", "other", "closed_by", "client"))
	if other == nil || value(other) != n-maxCloseCodes {
		t.Errorf("other series = %v, want %d", other, n-maxCloseCodes)
	}
	if got := len(mfs["wsgate_handshakes_total"].GetMetric()); got != maxResults+1 {
		t.Errorf("handshake series = %d, want %d", got, maxResults+1)
	}
}

func TestPeerStateName(t *testing.T) {
	future := t0.Add(time.Minute)
	tests := []struct {
		name   string
		p      upstream.PeerState
		state  string
		usable bool
	}{
		{"up", upstream.PeerState{Healthy: true}, "up", true},
		{"backup", upstream.PeerState{Healthy: true, Backup: true}, "backup", true},
		{"unavail", upstream.PeerState{Healthy: true, UnavailableUntil: future}, "unavail", false},
		{"unhealthy", upstream.PeerState{Healthy: false}, "unhealthy", false},
		{"unhealthy beats unavail", upstream.PeerState{UnavailableUntil: future}, "unhealthy", false},
		{"draining", upstream.PeerState{Healthy: true, Drain: true, Backup: true}, "draining", false},
		{"down beats all", upstream.PeerState{Down: true, Backup: true, UnavailableUntil: future}, "down", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := peerStateName(tt.p); got != tt.state {
				t.Errorf("state = %q, want %q", got, tt.state)
			}
			if got := usable(tt.p); got != tt.usable {
				t.Errorf("usable = %v, want %v", got, tt.usable)
			}
		})
	}
}

func TestWriteJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJSON(&buf, sampleSnapshot()); err != nil {
		t.Fatal(err)
	}

	// Every documented key is present, whatever its value.
	var raw map[string]any
	if err := json.Unmarshal(buf.Bytes(), &raw); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, buf.Bytes())
	}
	for _, k := range []string{"version", "pid", "started", "reloads", "last_reload", "connections", "tunnels", "upstreams"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("key %q missing", k)
		}
	}
	conns := raw["connections"].(map[string]any)
	for _, k := range []string{"active", "reading", "writing", "waiting", "accepted", "handled", "requests"} {
		if _, ok := conns[k]; !ok {
			t.Errorf("connections.%s missing", k)
		}
	}
	peer0 := raw["upstreams"].(map[string]any)["chat"].(map[string]any)["peers"].([]any)[0].(map[string]any)
	for _, k := range []string{"server", "name", "state", "active", "weight", "fails", "health", "requests", "failures", "unavailable_until"} {
		if _, ok := peer0[k]; !ok {
			t.Errorf("peer.%s missing", k)
		}
	}
	if peer0["unavailable_until"] != nil {
		t.Errorf("unavailable_until = %v, want null for an available peer", peer0["unavailable_until"])
	}

	var doc jsonStatus
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Version != "1.2.3" || doc.PID != 4242 || !doc.Started.Equal(t0) || doc.Reloads != 3 || doc.Tunnels != 17 {
		t.Errorf("header = %+v", doc)
	}
	if doc.LastReload == nil || !doc.LastReload.Equal(t0.Add(time.Hour)) {
		t.Errorf("last_reload = %v", doc.LastReload)
	}
	wantConns := jsonConnections{Active: 30, Reading: 2, Writing: 5, Waiting: 23, Accepted: 1000, Handled: 999, Requests: 5000}
	if doc.Connections != wantConns {
		t.Errorf("connections = %+v, want %+v", doc.Connections, wantConns)
	}
	chat := doc.Upstreams["chat"].Peers
	wantPeers := []struct {
		server, name, state, health string
		active                      int64
		fails                       int
		unavail                     bool
	}{
		{"127.0.0.1:9001", "a.local:9001", "up", "healthy", 10, 0, false},
		{"127.0.0.1:9002", "b.local:9002", "unavail", "healthy", 7, 3, true},
		{"127.0.0.1:9003", "c.local:9003", "unhealthy", "unhealthy", 0, 0, false},
		{"127.0.0.1:9004", "d.local:9004", "down", "healthy", 0, 0, false},
		{"127.0.0.1:9005", "e.local:9005", "backup", "healthy", 0, 0, false},
	}
	if len(chat) != len(wantPeers) {
		t.Fatalf("chat peers = %d, want %d", len(chat), len(wantPeers))
	}
	for i, w := range wantPeers {
		p := chat[i]
		if p.Server != w.server || p.Name != w.name || p.State != w.state || p.Health != w.health ||
			p.Active != w.active || p.Fails != w.fails || (p.UnavailableUntil != nil) != w.unavail {
			t.Errorf("peer %d = %+v, want %+v", i, p, w)
		}
	}
	if p := chat[1]; p.Requests != 50 || p.Failures != 9 || p.Weight != 1 || !p.UnavailableUntil.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("peer 1 counters = %+v", p)
	}
	if got := doc.Upstreams["api"].Peers; len(got) != 1 || got[0].Requests != 7 {
		t.Errorf("api peers = %+v", got)
	}
}

func TestWriteJSONEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJSON(&buf, Snapshot{Upstreams: []Upstream{{Name: "none"}}}); err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(buf.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	if raw["last_reload"] != nil {
		t.Errorf("last_reload = %v, want null", raw["last_reload"])
	}
	// An empty list, not null, so that the dashboard can iterate it.
	peers := raw["upstreams"].(map[string]any)["none"].(map[string]any)["peers"]
	if l, ok := peers.([]any); !ok || len(l) != 0 {
		t.Errorf("peers = %#v, want []", peers)
	}
}

func TestDashboardHTML(t *testing.T) {
	page := string(DashboardHTML())
	for _, bad := range []string{"http://", "https://", "//cdn", "@import", "<link", "src=\""} {
		if strings.Contains(page, bad) {
			t.Errorf("dashboard contains %q: it must not load anything from elsewhere", bad)
		}
	}
	for _, want := range []string{
		`id="tunnels"`, `id="active"`, `id="requests"`, `id="peers"`,
		"<canvas", `location.pathname + "?json"`, "setTimeout(poll, 1000)", "5 * 60 * 1000",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("dashboard lacks %q", want)
		}
	}
}

// countingSource snapshots counters that change while scrapes run.
type countingSource struct{ tunnels, requests atomic.Int64 }

func (c *countingSource) Snapshot() Snapshot {
	s := Snapshot{Tunnels: c.tunnels.Load()}
	s.Connections.Requests = c.requests.Load()
	s.Upstreams = []Upstream{{Name: "u", Peers: []upstream.PeerState{{Addr: "127.0.0.1:1", Healthy: true, Active: c.tunnels.Load()}}}}
	return s
}

func TestConcurrentFeedAndScrape(t *testing.T) {
	const workers, events, scrapes = 8, 2000, 10
	m := NewMetrics()
	src := &countingSource{}
	var wg sync.WaitGroup
	start := make(chan struct{}) // so that feeding and scraping overlap
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-start
		for range scrapes {
			var buf bytes.Buffer
			if err := m.WritePrometheus(&buf, src); err != nil {
				t.Errorf("scrape: %v", err)
				return
			}
		}
	}()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			peer := fmt.Sprintf("127.0.0.1:%d", 9000+w%3)
			for i := range events {
				src.tunnels.Add(1)
				src.requests.Add(1)
				m.Handshake("upgraded")
				m.PeerResponse("u", peer, time.Millisecond, false)
				m.TunnelClosed("u", peer, time.Second, 3, 5, uint16(1000+i%4), "client")
				m.Messages(1, 2)
				m.LimitRejected(fmt.Sprintf("z%d", w%2), "req")
				m.Reload(i%2 == 0)
			}
		}()
	}
	close(start)
	wg.Wait()

	const total = workers * events
	mfs := scrape(t, m, src)
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"wsgate_handshakes_total", labels("result", "upgraded"), total},
		{"wsgate_tunnel_bytes_total", labels("direction", "client_to_backend"), 3 * total},
		{"wsgate_tunnel_bytes_total", labels("direction", "backend_to_client"), 5 * total},
		{"wsgate_websocket_messages_total", labels("direction", "backend_to_client"), 2 * total},
		{"wsgate_tunnel_close_total", labels("code", "1003", "closed_by", "client"), total / 4},
		{"wsgate_limit_rejections_total", labels("zone", "z1", "kind", "req"), total / 2},
		{"wsgate_reloads_total", labels("result", "ok"), total / 2},
		{"wsgate_tunnels_active", nil, total},
		{"wsgate_http_requests_total", nil, total},
		{"wsgate_upstream_peer_tunnels", labels("upstream", "u", "peer", "127.0.0.1:1"), total},
	}
	for _, tt := range tests {
		if m := find(mfs, tt.name, tt.labels); m == nil || value(m) != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, m, tt.want)
		}
	}
	var closed, responses uint64
	for _, mm := range mfs["wsgate_upstream_peer_tunnels_closed_total"].GetMetric() {
		closed += uint64(value(mm))
	}
	for _, mm := range mfs["wsgate_upstream_response_seconds"].GetMetric() {
		responses += mm.GetHistogram().GetSampleCount()
	}
	if closed != total || responses != total {
		t.Errorf("per-peer closed = %d, responses = %d, want %d each", closed, responses, total)
	}
	if got := find(mfs, "wsgate_tunnel_duration_seconds", nil).GetHistogram().GetSampleCount(); got != total {
		t.Errorf("duration count = %d, want %d", got, total)
	}
}

// Recording an event must not allocate once its label values are known:
// it runs on every handshake and tunnel close.
func TestEventsDoNotAllocate(t *testing.T) {
	m := NewMetrics()
	events := []struct {
		name string
		f    func()
	}{
		{"Handshake", func() { m.Handshake("upgraded") }},
		{"TunnelClosed", func() { m.TunnelClosed("chat", "127.0.0.1:9001", time.Minute, 10, 20, 1000, "client") }},
		{"Messages", func() { m.Messages(3, 4) }},
		{"PeerResponse", func() { m.PeerResponse("chat", "127.0.0.1:9001", time.Millisecond, false) }},
		{"LimitRejected", func() { m.LimitRejected("perip", "conn") }},
		{"Reload", func() { m.Reload(true) }},
	}
	for _, e := range events {
		e.f() // first sight of the labels may allocate
		if n := testing.AllocsPerRun(100, e.f); n != 0 {
			t.Errorf("%s: %v allocs per event, want 0", e.name, n)
		}
	}
}

func BenchmarkHandshake(b *testing.B) {
	m := NewMetrics()
	b.ReportAllocs()
	for b.Loop() {
		m.Handshake("upgraded")
	}
}

func BenchmarkTunnelClosed(b *testing.B) {
	m := NewMetrics()
	b.ReportAllocs()
	for b.Loop() {
		m.TunnelClosed("chat", "127.0.0.1:9001", 42*time.Second, 1000, 2000, 1000, "client")
	}
}

func BenchmarkTunnelClosedParallel(b *testing.B) {
	m := NewMetrics()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.TunnelClosed("chat", "127.0.0.1:9001", 42*time.Second, 1000, 2000, 1000, "client")
		}
	})
}

func BenchmarkHandshakeParallel(b *testing.B) {
	m := NewMetrics()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Handshake("upgraded")
		}
	})
}

func BenchmarkWritePrometheus(b *testing.B) {
	m := NewMetrics()
	m.TunnelClosed("chat", "127.0.0.1:9001", time.Second, 1, 1, 1000, "client")
	src := fixedSource(sampleSnapshot())
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if err := m.WritePrometheus(&buf, src); err != nil {
			b.Fatal(err)
		}
	}
}

// A peer's series looked up once (Peer) counts the same as the events that
// name the peer, and the usual close keys land in their own series.
func TestPeerSeries(t *testing.T) {
	m := NewMetrics()
	p := m.Peer("chat", "127.0.0.1:9001")
	p.Responded(3 * time.Millisecond)
	m.PeerResponse("chat", "127.0.0.1:9001", 4*time.Millisecond, false)
	m.TunnelClosedAt(p, time.Second, 1, 2, 1000, "client")
	m.TunnelClosed("chat", "127.0.0.1:9001", time.Second, 1, 2, 1000, "client")
	m.TunnelClosedAt(nil, time.Second, 1, 2, 1015, "proxy")
	m.TunnelClosedAt(nil, time.Second, 1, 2, 1016, "proxy")
	m.TunnelClosedAt(nil, time.Second, 1, 2, 0, "backend")
	mfs := scrape(t, m, nil)
	peer := labels("upstream", "chat", "peer", "127.0.0.1:9001")
	if got := find(mfs, "wsgate_upstream_peer_tunnels_closed_total", peer); got == nil || value(got) != 2 {
		t.Errorf("peer tunnels closed = %v, want 2", got)
	}
	if got := find(mfs, "wsgate_upstream_response_seconds", peer); got == nil || got.GetHistogram().GetSampleCount() != 2 {
		t.Errorf("peer responses = %v, want 2 samples", got)
	}
	for _, c := range []struct {
		code, by string
		want     float64
	}{{"1000", "client", 2}, {"1015", "proxy", 1}, {"1016", "proxy", 1}, {"none", "backend", 1}} {
		if got := find(mfs, "wsgate_tunnel_close_total", labels("code", c.code, "closed_by", c.by)); got == nil || value(got) != c.want {
			t.Errorf("close %s by %s = %v, want %v", c.code, c.by, got, c.want)
		}
	}
}
