package tunnel

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// A Meter counts, for the tunnels that share it (a location's, to one
// upstream), the sessions that ended (their messages, close codes and
// reasons) and, when Config.Meter.Messages is set, every data message: its
// payload size and the time since the previous message in its direction.
// Recording is a few atomic adds; a message also costs a clock read. The
// counts only grow; readers load them at any time.
type Meter struct {
	// Messages turns on the per-message counts (MessageSizes, Gaps). Set
	// before the Meter is first used.
	Messages bool

	Dir      [2]MeterDir // [0]: client to backend, [1]: backend to client
	Sessions atomic.Int64
	// SessionMessages counts sessions by their data messages (both
	// directions), in the buckets of SessionMessageBound.
	SessionMessages [SessionBuckets]atomic.Int64
	// Codes counts sessions by their CloseCode: CodeIndex.
	Codes [CodeBuckets]atomic.Int64
	// Reasons counts sessions by Result.Reason.
	Reasons [ReasonCount]atomic.Int64
}

// MeterDir is one direction's message counts.
type MeterDir struct {
	Messages atomic.Int64 // data messages (with Meter.Messages)
	Bytes    atomic.Int64 // their payload bytes on the wire
	// Size counts messages by payload size, in the buckets of SizeBound.
	Size [SizeBuckets]atomic.Int64
	// Gap counts the times between two messages of a tunnel's direction,
	// in the buckets of GapBound.
	Gap [GapBuckets]atomic.Int64
}

// Bucket counts; the last bucket of each has no upper bound.
const (
	SizeBuckets    = 11 // 64 B, 256 B, ... 16 MiB, more
	GapBuckets     = 8  // 1 ms, 10 ms, 100 ms, 1 s, 10 s, 1 min, 10 min, more
	SessionBuckets = 8  // 0, 1, 10, 100, 1k, 10k, 100k messages, more
	CodeBuckets    = 19 // none, 1000-1015, 3000-4999, other
	ReasonCount    = int(ReasonReauth) + 1
)

// SizeBound is the upper bound, in bytes, of size bucket i < SizeBuckets-1.
func SizeBound(i int) int64 { return 64 << (2 * i) }

var gapBounds = [GapBuckets - 1]time.Duration{time.Millisecond, 10 * time.Millisecond, 100 * time.Millisecond,
	time.Second, 10 * time.Second, time.Minute, 10 * time.Minute}

// GapBound is the upper bound of gap bucket i < GapBuckets-1.
func GapBound(i int) time.Duration { return gapBounds[i] }

// SessionMessageBound is the upper bound of session bucket i < SessionBuckets-1.
func SessionMessageBound(i int) int64 {
	b := int64(0)
	for range i {
		b = max(b*10, 1)
	}
	return b
}

// CodeIndex is the Codes bucket of a close code: 0 for none, 1 to 16 for
// 1000 to 1015, 17 for 3000 to 4999, 18 for any other.
func CodeIndex(code uint16) int {
	switch {
	case code == 0:
		return 0
	case code >= 1000 && code <= 1015:
		return 1 + int(code-1000)
	case code >= 3000 && code <= 4999:
		return 17
	}
	return 18
}

func sizeBucket(n int64) int {
	if n <= 64 {
		return 0
	}
	return min((bits.Len64(uint64(n-1))-5)/2, SizeBuckets-1)
}

func gapBucket(d time.Duration) int {
	for i, b := range gapBounds {
		if d <= b {
			return i
		}
	}
	return GapBuckets - 1
}

// message counts a data message of size payload bytes that ended at now
// (since the tunnel's start); last is the end of the direction's previous
// message, 0 for none.
func (m *MeterDir) message(size int64, now, last int64) {
	m.Messages.Add(1)
	m.Bytes.Add(size)
	m.Size[sizeBucket(size)].Add(1)
	if last != 0 {
		m.Gap[gapBucket(time.Duration(now-last))].Add(1)
	}
}

// session counts an ended session.
func (m *Meter) session(r *Result) {
	m.Sessions.Add(1)
	n := r.MessagesFromClient + r.MessagesFromBackend
	i := 0
	for i < SessionBuckets-1 && n > SessionMessageBound(i) {
		i++
	}
	m.SessionMessages[i].Add(1)
	m.Codes[CodeIndex(r.CloseCode)].Add(1)
	if int(r.Reason) < ReasonCount {
		m.Reasons[r.Reason].Add(1)
	}
}

// countMsg counts a complete data message relayed by direction i.
func (d *dir) countMsg() {
	d.msgs.Add(1)
	if x := d.x; x != nil && x.meter != nil {
		now := max(int64(time.Since(d.t.start)), 1)
		x.meter.message(x.msgSize, now, x.lastMsg)
		x.lastMsg = now
	}
}
