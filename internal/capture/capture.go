// Package capture records the WebSocket frames of chosen tunnels to a file,
// on demand: frame headers, timing and direction always, payloads cut to a
// set length when asked. A Capture writes JSON lines or pcapng (see
// pcapng.go) and stops at its bounds (a duration, a number of bytes
// written) or when told. It knows nothing of tunnels or of the api: the
// server hands each matching tunnel a Tap of the capture.
package capture

import (
	"bufio"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/wsgate/wsgate/internal/wsframe"
)

// Formats of a capture file.
const (
	FormatJSONL  = "jsonl"
	FormatPcapng = "pcapng"
)

// MaxPayload is the most payload bytes recorded per frame.
const MaxPayload = 1 << 16

// Spec says which sessions to capture and how.
type Spec struct {
	// Sessions match when every criterion set matches: Key their
	// websocket_session_key, Client their client's address (no port),
	// Location the path of their location.
	Key, Client, Location string
	// Duration and Bytes bound the capture: it stops after Duration, or
	// once its file holds Bytes bytes; zero means no such bound, and at
	// least one must be set.
	Duration time.Duration
	Bytes    int64
	// Payload is how many payload bytes of each frame are recorded
	// (0: headers only; at most MaxPayload).
	Payload int
	// Format is FormatJSONL or FormatPcapng.
	Format string
}

// Check reports what is wrong with s, if anything.
func (s *Spec) Check() error {
	switch {
	case s.Format != FormatJSONL && s.Format != FormatPcapng:
		return errors.New("format must be jsonl or pcapng")
	case s.Duration <= 0 && s.Bytes <= 0:
		return errors.New("a bound is required: duration, bytes or both")
	case s.Duration < 0 || s.Bytes < 0:
		return errors.New("duration and bytes must be positive")
	case s.Payload < 0 || s.Payload > MaxPayload:
		return fmt.Errorf("payload must be 0 to %d", MaxPayload)
	case s.Key == "" && s.Client == "" && s.Location == "":
		return errors.New("a match is required: key, client or location")
	}
	if s.Client != "" {
		if _, err := netip.ParseAddr(s.Client); err != nil {
			return errors.New("client must be an IP address")
		}
	}
	return nil
}

// Session describes a tunnel to a capture.
type Session struct {
	ID             uint64
	Key            string
	Location       string
	Client, Server netip.AddrPort // the client leg's ends
}

// Matches reports whether the capture's spec selects s.
func (s *Spec) Matches(ses *Session) bool {
	if s.Key != "" && s.Key != ses.Key {
		return false
	}
	if s.Client != "" {
		a, _ := netip.ParseAddr(s.Client)
		if a.Unmap() != ses.Client.Addr().Unmap() {
			return false
		}
	}
	return s.Location == "" || s.Location == ses.Location
}

// encoder writes records in a capture's format.
type encoder interface {
	// session announces a tapped session before its first frame.
	session(w *bufio.Writer, s *Session, at time.Time)
	// frame writes a frame record; p holds the recorded payload bytes,
	// unmasked.
	frame(w *bufio.Writer, s *Session, dir int, at time.Time, h wsframe.Header, p []byte)
}

// Capture is a running (or ended) capture.
type Capture struct {
	ID      string
	Spec    Spec
	File    string
	Started time.Time

	mu      sync.Mutex
	f       *os.File
	w       *bufio.Writer
	enc     encoder
	counter *countWriter
	frames  int64
	taps    int
	ended   time.Time
	reason  string
	timer   *time.Timer
	onStop  func(*Capture)
}

// Start creates the capture's file in dir (made if missing) and starts
// the duration bound.
// onStop, if set, runs (on a goroutine of its own) once the capture stops.
func Start(dir, id string, spec Spec, onStop func(*Capture)) (*Capture, error) {
	if err := spec.Check(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	name := filepath.Join(dir, "capture-"+id+"."+spec.Format)
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return nil, err
	}
	c := &Capture{ID: id, Spec: spec, File: name, Started: time.Now(), f: f, onStop: onStop}
	c.counter = &countWriter{f: f}
	c.w = bufio.NewWriterSize(c.counter, 32<<10)
	if spec.Format == FormatPcapng {
		p := &pcapng{}
		p.header(c.w)
		c.enc = p
	} else {
		c.enc = jsonl{}
	}
	if spec.Duration > 0 {
		c.timer = time.AfterFunc(spec.Duration, func() { c.Stop("duration") })
	}
	return c, nil
}

// countWriter counts the bytes that reach the file.
type countWriter struct {
	f *os.File
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.f.Write(p)
	c.n += int64(n)
	return n, err
}

// Stop ends the capture, for reason, flushing and closing its file; later
// calls do nothing.
func (c *Capture) Stop(reason string) {
	c.mu.Lock()
	if c.f == nil {
		c.mu.Unlock()
		return
	}
	c.stopLocked(reason)
	c.mu.Unlock()
	if c.onStop != nil {
		go c.onStop(c)
	}
}

func (c *Capture) stopLocked(reason string) {
	if c.timer != nil {
		c.timer.Stop()
	}
	c.w.Flush()
	c.f.Close()
	c.f = nil
	c.ended, c.reason = time.Now(), reason
}

// Running reports whether the capture still records.
func (c *Capture) Running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.f != nil
}

// Info is the capture's state, as the api shows it.
func (c *Capture) Info() map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := map[string]any{
		"id": c.ID, "file": c.File, "format": c.Spec.Format, "payload": c.Spec.Payload,
		"started": c.Started.UTC().Format(time.RFC3339Nano), "frames": c.frames, "sessions": c.taps,
		"bytes": c.counter.n + int64(c.w.Buffered()), "running": c.f != nil,
		"match": map[string]string{"key": c.Spec.Key, "client": c.Spec.Client, "location": c.Spec.Location},
	}
	if c.Spec.Duration > 0 {
		m["duration_ms"] = c.Spec.Duration.Milliseconds()
	}
	if c.Spec.Bytes > 0 {
		m["max_bytes"] = c.Spec.Bytes
	}
	if c.f == nil {
		m["stopped"] = c.ended.UTC().Format(time.RFC3339Nano)
		m["reason"] = c.reason
	}
	return m
}

// Tap returns the tap that records s's frames into the capture.
func (c *Capture) Tap(s Session) *Tap {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &Tap{c: c, s: s}
	if c.f != nil {
		c.taps++
		c.enc.session(c.w, &t.s, time.Now())
	}
	return t
}

// record writes a frame record, and stops the capture at its byte bound.
func (c *Capture) record(s *Session, dir int, at time.Time, h wsframe.Header, p []byte) {
	c.mu.Lock()
	if c.f == nil {
		c.mu.Unlock()
		return
	}
	c.enc.frame(c.w, s, dir, at, h, p)
	c.frames++
	full := c.Spec.Bytes > 0 && c.counter.n+int64(c.w.Buffered()) >= c.Spec.Bytes
	c.mu.Unlock()
	if full {
		c.Stop("bytes")
	}
}

// Tap records one session's frames; it implements tunnel.Tap.
type Tap struct {
	c    *Capture
	s    Session
	dirs [2]tapDir
}

// tapDir is a direction's frame being recorded.
type tapDir struct {
	on   bool // a header has been seen: payload bytes are its
	h    wsframe.Header
	at   time.Time
	want int    // payload bytes still to record
	p    []byte // recorded payload, unmasked
	pos  int64  // payload offset, for unmasking
}

// Frame records the header of a frame from direction dir (0: client).
func (t *Tap) Frame(dir int, h wsframe.Header) {
	d := &t.dirs[dir]
	d.flush(t, dir)
	d.on, d.h, d.at, d.pos = true, h, time.Now(), 0
	d.want = int(min(int64(t.c.Spec.Payload), h.Length))
	d.p = d.p[:0]
	if d.want == 0 {
		d.flush(t, dir)
	}
}

// Payload records the next payload bytes of direction dir's frame.
func (t *Tap) Payload(dir int, p []byte) {
	d := &t.dirs[dir]
	if !d.on || d.want == 0 {
		return
	}
	k := min(len(p), d.want)
	start := len(d.p)
	d.p = append(d.p, p[:k]...)
	if d.h.Masked {
		wsframe.MaskBytes(d.p[start:], d.h.Key, int(d.pos&3))
	}
	d.pos += int64(k)
	d.want -= k
	if d.want == 0 {
		d.flush(t, dir)
	}
}

// flush writes the direction's pending frame record.
func (d *tapDir) flush(t *Tap, dir int) {
	if !d.on {
		return
	}
	d.on = false
	t.c.record(&t.s, dir, d.at, d.h, d.p)
}
