package server

import (
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/status"
	"github.com/wsgate/wsgate/internal/tunnel"
)

// maxMeters bounds the per-location meters: locations and upstream names
// come from configurations, which reloads may change without end. Past it,
// new pairs share one meter labelled "other".
const maxMeters = 1024

type meterKey struct{ loc, ups string }

// meterSet holds a tunnel.Meter per location and upstream, for the life of
// the process, so that the counts survive reloads as counters must.
type meterSet struct {
	mu sync.Mutex
	m  map[meterKey]*tunnel.Meter
}

// get returns the meter of loc's tunnels to upstream ups. messages turns
// on the per-message counts of a new meter, and of one that had them off
// (a reload turned them on); turning them off leaves them on until restart.
func (s *meterSet) get(loc *config.Location, ups string, messages bool) *tunnel.Meter {
	k := meterKey{strings.TrimSpace(locKey(loc)), ups}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.m[k]
	if m == nil {
		if s.m == nil {
			s.m = make(map[meterKey]*tunnel.Meter)
		}
		if len(s.m) >= maxMeters {
			k = meterKey{overflowLabel, overflowLabel}
			m = s.m[k]
		}
		if m == nil {
			m = &tunnel.Meter{Messages: messages}
			s.m[k] = m
		}
	}
	if messages && !m.Messages {
		// A new meter for the new setting; the old one's counts stay.
		old := m
		m = &tunnel.Meter{Messages: true}
		mergeSessions(m, old)
		s.m[k] = m
	}
	return m
}

const overflowLabel = "other"

// mergeSessions carries old's session counts into m, which no tunnel uses
// yet. Sessions still open on old are counted there when they end, and are
// lost to the scrape: a reload that turns the message counts on is rare.
func mergeSessions(m, old *tunnel.Meter) {
	m.Sessions.Store(old.Sessions.Load())
	for i := range m.SessionMessages {
		m.SessionMessages[i].Store(old.SessionMessages[i].Load())
	}
	for i := range m.Codes {
		m.Codes[i].Store(old.Codes[i].Load())
	}
	for i := range m.Reasons {
		m.Reasons[i].Store(old.Reasons[i].Load())
	}
}

// MessageStats reports the per-location counts for the metrics endpoint.
func (s *Server) MessageStats() []status.MessageStats {
	s.meters.mu.Lock()
	keys := make([]meterKey, 0, len(s.meters.m))
	meters := make(map[meterKey]*tunnel.Meter, len(s.meters.m))
	for k, m := range s.meters.m {
		keys = append(keys, k)
		meters[k] = m
	}
	s.meters.mu.Unlock()
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].loc < keys[j].loc || keys[i].loc == keys[j].loc && keys[i].ups < keys[j].ups
	})
	out := make([]status.MessageStats, 0, len(keys))
	for _, k := range keys {
		out = append(out, meterStats(k, meters[k]))
	}
	return out
}

var (
	sizeBounds, gapBounds, sessionBounds = bounds()
	codeLabels                           = func() [tunnel.CodeBuckets]string {
		var l [tunnel.CodeBuckets]string
		l[0], l[17], l[18] = "none", "3000-4999", "other"
		for i := 1; i <= 16; i++ {
			l[i] = strconv.Itoa(999 + i)
		}
		return l
	}()
)

func bounds() (size, gap, session []float64) {
	for i := range tunnel.SizeBuckets - 1 {
		size = append(size, float64(tunnel.SizeBound(i)))
	}
	for i := range tunnel.GapBuckets - 1 {
		gap = append(gap, tunnel.GapBound(i).Seconds())
	}
	for i := range tunnel.SessionBuckets - 1 {
		session = append(session, float64(tunnel.SessionMessageBound(i)))
	}
	return
}

func meterStats(k meterKey, m *tunnel.Meter) status.MessageStats {
	st := status.MessageStats{Location: k.loc, Upstream: k.ups, Messages: m.Messages}
	for i := range m.Dir {
		d := &m.Dir[i]
		st.Sizes[i] = status.Histogram{Bounds: sizeBounds, Buckets: loads(d.Size[:]), Sum: float64(d.Bytes.Load())}
		st.Intervals[i] = status.Histogram{Bounds: gapBounds, Buckets: loads(d.Gap[:])}
	}
	st.SessionMessages = status.Histogram{Bounds: sessionBounds, Buckets: loads(m.SessionMessages[:])}
	for i := range m.Codes {
		if n := m.Codes[i].Load(); n > 0 {
			st.Codes = append(st.Codes, status.LabelCount{Label: codeLabels[i], Count: uint64(n)})
		}
	}
	for i := range m.Reasons {
		if n := m.Reasons[i].Load(); n > 0 {
			st.Reasons = append(st.Reasons, status.LabelCount{Label: tunnel.Reason(i).String(), Count: uint64(n)})
		}
	}
	return st
}

func loads(a []atomic.Int64) []uint64 {
	out := make([]uint64, len(a))
	for i := range a {
		out[i] = uint64(a[i].Load())
	}
	return out
}
