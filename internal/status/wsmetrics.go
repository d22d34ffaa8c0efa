package status

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Per-location WebSocket message metrics, read from a MessageSource at
// scrape time (a Source that also implements MessageSource):
//
//	wsgate_websocket_location_message_bytes{location,upstream,direction}    histogram, payload bytes per data message
//	wsgate_websocket_location_message_interval_seconds{location,upstream,direction} histogram, time between two messages of a tunnel's direction
//	wsgate_websocket_location_session_messages{location,upstream}           histogram, data messages per session, both directions
//	wsgate_websocket_location_sessions_closed_total{location,upstream,code}   counter, by close code ("none", "1000"..."1015", "3000-4999", "other")
//	wsgate_websocket_location_sessions_ended_total{location,upstream,reason}  counter, by $websocket_close_reason
//
// The message histograms are present only for locations that count
// messages (websocket_message_metrics on).

// MessageSource reports the per-location counts.
type MessageSource interface {
	MessageStats() []MessageStats
}

// MessageStats is what the WebSocket sessions of one location, to one
// upstream, have done since the process started. Bucket counts are per
// bucket (not cumulative); a Histogram's Buckets has one more entry than
// its Bounds, the last counting what is above every bound.
type MessageStats struct {
	Location, Upstream string
	Messages           bool         // the message histograms are kept
	Sizes, Intervals   [2]Histogram // [0]: client to backend, [1]: backend to client
	SessionMessages    Histogram    // messages per session
	Codes, Reasons     []LabelCount // sessions by close code, by reason
}

// Histogram is a histogram's per-bucket counts and its sum.
type Histogram struct {
	Bounds  []float64
	Buckets []uint64
	Sum     float64
}

// LabelCount is a counter's value for one label value.
type LabelCount struct {
	Label string
	Count uint64
}

var (
	locLabels       = []string{"location", "upstream"}
	locDirLabels    = []string{"location", "upstream", "direction"}
	directions      = [2]string{"client_to_backend", "backend_to_client"}
	descMessageSize = prometheus.NewDesc("wsgate_websocket_location_message_bytes",
		"Payload bytes on the wire of the WebSocket data messages relayed, by location and upstream.", locDirLabels, nil)
	descInterval = prometheus.NewDesc("wsgate_websocket_location_message_interval_seconds",
		"Time between two data messages of a tunnel's direction, by location and upstream.", locDirLabels, nil)
	descSessionMsgs = prometheus.NewDesc("wsgate_websocket_location_session_messages",
		"Data messages (both directions) of closed WebSocket sessions, by location and upstream.", locLabels, nil)
	descCodes = prometheus.NewDesc("wsgate_websocket_location_sessions_closed_total",
		"Closed WebSocket sessions by first close code, by location and upstream.", append(locLabels[:2:2], "code"), nil)
	descReasons = prometheus.NewDesc("wsgate_websocket_location_sessions_ended_total",
		"Closed WebSocket sessions by why they ended ($websocket_close_reason), by location and upstream.", append(locLabels[:2:2], "reason"), nil)
)

// jsonLocation is a location's entry in the JSON document's
// "websocket_locations": closed sessions, by reason and close code, and,
// with message counts, messages and their payload bytes each way.
type jsonLocation struct {
	Location    string            `json:"location"`
	Upstream    string            `json:"upstream"`
	Sessions    uint64            `json:"sessions"`
	Reasons     map[string]uint64 `json:"reasons"`
	Codes       map[string]uint64 `json:"codes"`
	MessagesIn  *uint64           `json:"messages_in"` // null without message counts
	MessagesOut *uint64           `json:"messages_out"`
	BytesIn     *uint64           `json:"bytes_in"`
	BytesOut    *uint64           `json:"bytes_out"`
}

func jsonLocations(ls []MessageStats) []jsonLocation {
	out := make([]jsonLocation, 0, len(ls))
	for _, s := range ls {
		j := jsonLocation{Location: s.Location, Upstream: s.Upstream, Reasons: counts(s.Reasons), Codes: counts(s.Codes)}
		for _, n := range s.SessionMessages.Buckets {
			j.Sessions += n
		}
		if s.Messages {
			in, out := s.Sizes[0].count(), s.Sizes[1].count()
			bin, bout := uint64(s.Sizes[0].Sum), uint64(s.Sizes[1].Sum)
			j.MessagesIn, j.MessagesOut, j.BytesIn, j.BytesOut = &in, &out, &bin, &bout
		}
		out = append(out, j)
	}
	return out
}

func counts(lc []LabelCount) map[string]uint64 {
	m := make(map[string]uint64, len(lc))
	for _, c := range lc {
		m[c.Label] = c.Count
	}
	return m
}

func (h Histogram) count() uint64 {
	var n uint64
	for _, b := range h.Buckets {
		n += b
	}
	return n
}

// messageCollector exposes a MessageSource.
type messageCollector struct{ src MessageSource }

func (c messageCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descMessageSize, descInterval, descSessionMsgs, descCodes, descReasons} {
		ch <- d
	}
}

func (c messageCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.src.MessageStats() {
		if s.Messages {
			for i, dir := range directions {
				ch <- constHistogram(descMessageSize, s.Sizes[i], s.Location, s.Upstream, dir)
				ch <- constHistogram(descInterval, s.Intervals[i], s.Location, s.Upstream, dir)
			}
		}
		ch <- constHistogram(descSessionMsgs, s.SessionMessages, s.Location, s.Upstream)
		for _, lc := range s.Codes {
			ch <- prometheus.MustNewConstMetric(descCodes, prometheus.CounterValue, float64(lc.Count), s.Location, s.Upstream, lc.Label)
		}
		for _, lc := range s.Reasons {
			ch <- prometheus.MustNewConstMetric(descReasons, prometheus.CounterValue, float64(lc.Count), s.Location, s.Upstream, lc.Label)
		}
	}
}

// constHistogram turns per-bucket counts into Prometheus's cumulative ones.
func constHistogram(d *prometheus.Desc, h Histogram, labels ...string) prometheus.Metric {
	cum := make(map[float64]uint64, len(h.Bounds))
	var n uint64
	for i, b := range h.Bounds {
		if i < len(h.Buckets) {
			n += h.Buckets[i]
		}
		cum[b] = n
	}
	if len(h.Buckets) > len(h.Bounds) {
		n += h.Buckets[len(h.Bounds)]
	}
	return prometheus.MustNewConstHistogram(d, n, h.Sum, cum, labels...)
}
