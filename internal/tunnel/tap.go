package tunnel

import "github.com/wsgate/wsgate/internal/wsframe"

// Tap observes the frames a tracked tunnel relays (on-demand capture). Its
// methods run on the relay goroutine of direction dir (0: the client's
// frames, 1: the backend's), or on the dispatcher relaying for it (loop.go),
// so they must not block. Frames wsgate itself
// writes (its pings and closes) and frames it refuses are not shown.
type Tap interface {
	// Frame is called as the header h of a relayed frame is read.
	Frame(dir int, h wsframe.Header)
	// Payload is called with the next payload bytes of that frame, as
	// they are relayed (masked when the sender masked them).
	Payload(dir int, p []byte)
}

type tapRef struct{ tap Tap }

// SetTap starts (tap non-nil) or stops observing the tunnel's frames; a
// tap set mid-frame sees frames from the next header on. With a tap, large
// payloads move through wsgate's buffers rather than by splice. Without
// one, the relay pays an atomic load per frame and per payload chunk.
func (t *Tunnel) SetTap(tap Tap) {
	if tap == nil {
		t.tap.Store(nil)
		return
	}
	t.tap.Store(&tapRef{tap})
}
