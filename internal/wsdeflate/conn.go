package wsdeflate

import (
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"

	"github.com/wsgate/wsgate/internal/wsframe"
)

// Config describes a wrapped leg.
type Config struct {
	Params
	// Client says the leg is the client (websocket_compression on): frames
	// read from it go to a backend, so wsgate masks the frames it makes of
	// them, and frames written to it are unmasked. Otherwise the leg is the
	// backend (websocket_compression backend) and the reverse holds.
	Client bool
	// MaxFrameSize and MaxMessageSize bound the decompressed payload of
	// a frame and of a message read from the leg; zero means no limit.
	// Inflating stops at the limit, and the relay above is handed a
	// frame over it, which it refuses as it refuses any frame over its
	// limits (close 1009 to the leg). Give the relay the same limits.
	MaxFrameSize, MaxMessageSize int64
	// Level, 1 to 9, deflates with a compressor of that level, taken
	// from a pool for each fragment and given back at once; 0 (the
	// default) uses the stateless compressor, the fastest. A window
	// below 15 bits always uses the stateless one.
	Level int
}

// Conn is a leg's connection with permessage-deflate offloaded: Read
// returns the leg's frames with their messages inflated, and Write takes
// plain frames and sends their messages deflated. Reads must not run
// concurrently with each other, nor writes with each other; Close may
// run at any time.
type Conn struct {
	net.Conn
	cfg    Config
	closed atomic.Bool
	rmu    sync.Mutex
	r      reader
	wmu    sync.Mutex
	w      writer
}

// Wrap returns c with permessage-deflate offloaded as cfg says. pending
// holds bytes already read from c (after its handshake); Wrap copies them.
func Wrap(c net.Conn, pending []byte, cfg Config) *Conn {
	if cfg.InBits == 0 {
		cfg.InBits = MaxWindowBits
	}
	if cfg.OutBits == 0 {
		cfg.OutBits = MaxWindowBits
	}
	wc := &Conn{Conn: c, cfg: cfg}
	wc.r.c, wc.w.c = wc, wc
	if len(pending) > 0 {
		wc.r.buf = getIn()
		wc.r.in = (*wc.r.buf)[:copy(*wc.r.buf, pending)]
	}
	return wc
}

// NetConn returns the wrapped connection, whose readability tells that
// Read has something to do once it has returned a timeout.
func (c *Conn) NetConn() net.Conn { return c.Conn }

// CloseWrite half-closes the wrapped connection; it fails, leaving the
// connection open, when that cannot be half-closed.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errNoHalfClose
}

var errNoHalfClose = errors.New("wsdeflate: the connection cannot be half-closed")

// Close closes the connection and lets go of any message in progress.
func (c *Conn) Close() error {
	c.closed.Store(true)
	err := c.Conn.Close()
	if c.rmu.TryLock() {
		c.r.release()
		c.rmu.Unlock()
	}
	if c.wmu.TryLock() {
		c.w.release()
		c.wmu.Unlock()
	}
	return err
}

// Read implements net.Conn.
func (c *Conn) Read(b []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	n, err := c.r.read(b)
	if err != nil && c.closed.Load() {
		c.r.release()
	}
	return n, err
}

// Write implements net.Conn.
func (c *Conn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	n, err := c.w.write(b)
	if err != nil && c.closed.Load() {
		c.w.release()
	}
	return n, err
}

// Buffers. Each is taken for a message or a read, and given back as soon
// as it is done with, so an idle connection holds none.
const (
	inSize    = 32 << 10 // reads from the leg
	chunkSize = 16 << 10 // an inflated fragment's payload
	flushAt   = 32 << 10 // uncompressed bytes a message buffers before they are deflated
)

var (
	inPool    = sync.Pool{New: func() any { b := make([]byte, inSize); return &b }}
	chunkPool = sync.Pool{New: func() any { b := make([]byte, wsframe.MaxHeaderLen+chunkSize); return &b }}
	dataPool  = sync.Pool{New: func() any { b := make([]byte, 0, flushAt); return &b }}
)

func getIn() *[]byte { return inPool.Get().(*[]byte) }

func newKey() [4]byte {
	k := rand.Uint32()
	return [4]byte{byte(k), byte(k >> 8), byte(k >> 16), byte(k >> 24)}
}

// appendTail returns the last limit bytes of hist followed by p, reusing
// hist's storage.
func appendTail(hist, p []byte, limit int) []byte {
	if len(p) >= limit {
		return append(hist[:0], p[len(p)-limit:]...)
	}
	if over := len(hist) + len(p) - limit; over > 0 {
		hist = append(hist[:0], hist[over:]...)
	}
	return append(hist, p...)
}
