package load

import (
	"bytes"
	"time"

	"github.com/wsgate/wsgate/bench/internal/stats"
	"github.com/wsgate/wsgate/bench/internal/wsproto"
)

// maxInFlight bounds the messages one paced connection may have sent
// without their echo; a target that falls that far behind fails the run.
const maxInFlight = 4096

// pacedWorker sends Size-byte messages on c on a fixed schedule of
// Rate/Workers per second, offset by id so the connections interleave, and
// reads the echoes on a second goroutine. Latency runs from the scheduled
// send time, not the actual one, so a stalled sender still counts the delay
// it caused (no coordinated omission).
func (r *run) pacedWorker(c *wsproto.Client, id int, h *stats.Histogram) uint64 {
	defer c.Close()
	interval := time.Duration(float64(time.Second) * float64(r.cfg.Workers) / float64(r.cfg.Rate))
	want := make([]byte, r.cfg.Size)
	for i := range want {
		want[i] = byte('a' + i%26)
	}
	masked := bytes.Clone(want)
	c.Premask(masked)
	sent := make(chan time.Time, maxInFlight)
	done := make(chan uint64)
	go func() { done <- r.pacedReader(c, want, sent, h) }()
	next := time.Now().Add(interval * time.Duration(id) / time.Duration(r.cfg.Workers))
	for r.phase.Load() != phaseDone {
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		select {
		case sent <- next:
		default:
			r.fail(errBehind)
			c.Conn.Close()
			close(sent)
			return <-done
		}
		if err := c.WritePremasked(wsproto.OpBinary, masked); err != nil {
			r.fail(err)
			c.Conn.Close() // unblocks the reader
			break
		}
		next = next.Add(interval)
	}
	close(sent)
	return <-done
}

// pacedReader matches each echo on c with its scheduled send time, in
// order, until sent is closed and drained or the connection fails.
func (r *run) pacedReader(c *wsproto.Client, want []byte, sent <-chan time.Time, h *stats.Histogram) uint64 {
	buf := make([]byte, len(want))
	var n uint64
	var slowest time.Duration
	defer func() {
		r.mu.Lock()
		r.max = max(r.max, slowest)
		r.mu.Unlock()
	}()
	for at := range sent {
		hd, got, err := c.ReadMessage(buf)
		if err != nil {
			if r.phase.Load() != phaseDone {
				r.fail(err)
			}
			return n
		}
		lat := time.Since(at)
		if hd.Op != wsproto.OpBinary || !bytes.Equal(got, want) {
			r.fail(errMismatch)
			return n
		}
		if r.phase.Load() == phaseMeasure {
			h.Record(lat)
			slowest = max(slowest, lat)
			n++
		}
	}
	return n
}
