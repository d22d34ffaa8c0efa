package tunnel

import (
	"bytes"
	"sync/atomic"
	"testing"

	"github.com/wsgate/wsgate/internal/wsframe"
)

// TestMeterCounts: a metered tunnel counts known traffic exactly: message
// sizes (a fragmented message once, its fragments summed), the times
// between messages, and the session as it ends.
func TestMeterCounts(t *testing.T) {
	m := &Meter{Messages: true}
	rg := newRig(t, Config{Frames: true, Meter: m}, nil, nil)
	up := bytes.Join([][]byte{
		rawFrame(true, 0, wsframe.OpText, make([]byte, 10), true),
		rawFrame(false, 0, wsframe.OpBinary, make([]byte, 50), true),
		rawFrame(true, 0, wsframe.OpPing, []byte("not a message"), true),
		rawFrame(true, 0, wsframe.OpContinuation, make([]byte, 50), true),
		rawFrame(true, 0, wsframe.OpBinary, make([]byte, 5000), true),
	}, nil)
	rg.cli.Write(up)
	readN(t, rg.be, len(up))
	down := rawFrame(true, 0, wsframe.OpText, make([]byte, 64), false)
	rg.be.Write(down)
	readN(t, rg.cli, len(down))
	rg.cli.Write(closeFrame(1000, true))
	expectClose(t, rg.be, 1000, true)
	rg.be.Write(closeFrame(1000, false))
	expectClose(t, rg.cli, 1000, false)
	rg.wait(t)

	c2b, b2c := &m.Dir[c2b], &m.Dir[b2c]
	if c2b.Messages.Load() != 3 || c2b.Bytes.Load() != 5110 || b2c.Messages.Load() != 1 || b2c.Bytes.Load() != 64 {
		t.Fatalf("messages %d (%d bytes) up, %d (%d bytes) down; want 3 (5110), 1 (64)",
			c2b.Messages.Load(), c2b.Bytes.Load(), b2c.Messages.Load(), b2c.Bytes.Load())
	}
	// 10 -> 64 B, 100 -> 256 B, 5000 -> 16 KiB; 64 -> 64 B.
	for i, want := range map[int]int64{0: 1, 1: 1, 4: 1} {
		if got := c2b.Size[i].Load(); got != want {
			t.Errorf("size bucket %d (up to %d B): %d, want %d", i, SizeBound(i), got, want)
		}
	}
	if b2c.Size[0].Load() != 1 {
		t.Errorf("the backend's 64-byte message is not in the first bucket")
	}
	var gaps, gapsDown int64
	for i := range c2b.Gap {
		gaps += c2b.Gap[i].Load()
		gapsDown += b2c.Gap[i].Load()
	}
	if gaps != 2 || gapsDown != 0 {
		t.Errorf("intervals %d up, %d down; want 2 and 0", gaps, gapsDown)
	}
	if m.Sessions.Load() != 1 || m.SessionMessages[2].Load() != 1 || m.Codes[CodeIndex(1000)].Load() != 1 || m.Reasons[ReasonPeer].Load() != 1 {
		t.Errorf("session counts: %d sessions, buckets %v, code 1000 %d, reason peer %d",
			m.Sessions.Load(), loadAll(m.SessionMessages[:]), m.Codes[CodeIndex(1000)].Load(), m.Reasons[ReasonPeer].Load())
	}
}

func loadAll(a []atomic.Int64) []int64 {
	out := make([]int64, len(a))
	for i := range a {
		out[i] = a[i].Load()
	}
	return out
}

// TestMeterBuckets pins the bucket arithmetic.
func TestMeterBuckets(t *testing.T) {
	for size, want := range map[int64]int{0: 0, 64: 0, 65: 1, 256: 1, 257: 2, 4096: 3, 4097: 4, 16 << 20: 9, 16<<20 + 1: 10, 1 << 40: 10} {
		if got := sizeBucket(size); got != want {
			t.Errorf("sizeBucket(%d) = %d, want %d", size, got, want)
		}
	}
	for i := range SizeBuckets - 1 {
		if sizeBucket(SizeBound(i)) != i || sizeBucket(SizeBound(i)+1) != i+1 {
			t.Errorf("bound %d: %d", i, SizeBound(i))
		}
	}
	for code, want := range map[uint16]int{0: 0, 1000: 1, 1015: 16, 1016: 18, 3000: 17, 4999: 17, 5000: 18} {
		if got := CodeIndex(code); got != want {
			t.Errorf("CodeIndex(%d) = %d, want %d", code, got, want)
		}
	}
}
