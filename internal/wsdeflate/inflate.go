package wsdeflate

import (
	"bytes"
	"errors"
	"io"
	"iter"
	"sync"

	"github.com/klauspost/compress/flate"
	"github.com/wsgate/wsgate/internal/wsframe"
)

// The read side: frames from the leg, with compressed messages inflated
// into plain fragments of at most chunkSize bytes. A fragment goes out as
// soon as it is full, or as the inflater runs out of input, so nothing
// waits on the leg's next bytes.
//
// The inflater runs as a coroutine (iter.Pull) for the length of a
// message: it asks for input when it needs it, and a read of the leg that
// times out (the relay uses read deadlines to park and to wake) leaves it
// suspended where it was, which a decompressor fed by a failing reader
// would not survive.

// violation is a header the relay refuses as a protocol violation (a ping
// announcing a 126-byte payload): the relay closes the leg with 1002, the
// other side with 1001, and drops the leg's later bytes.
var violation = []byte{0x89, 0x7E}

// syncTail ends every compressed message (RFC 7692, section 7.2.2).
var syncTail = []byte{0x00, 0x00, 0xff, 0xff}

type reader struct {
	c   *Conn
	buf *[]byte // pooled; nil when no input is held
	in  []byte  // input not yet used, within *buf
	err error   // a read error held back while input remained
	out []byte  // bytes ready for the caller
	// fill is filler owed after an over-limit header, which the relay
	// refuses and drops with its payload.
	fill  int64
	raw   bool // the framing is lost or refused: bytes pass unparsed
	ended bool // the message ends once out is read

	// The current frame.
	remaining int64
	pass      bool // its payload passes untouched
	fin       bool
	masked    bool
	key       [4]byte
	pos       int

	// The current compressed message; z is nil outside one.
	z        *inflation
	op       wsframe.Opcode // the message's opcode
	started  bool           // a fragment of it has gone out
	drop     bool           // its remaining compressed bytes are dropped
	msgOut   int64          // inflated bytes so far
	frameOut int64          // inflated bytes of the current frame
	hist     []byte         // InTakeover: the peer's window of past messages
}

func (r *reader) read(b []byte) (int, error) {
	for {
		if len(r.out) > 0 {
			n := copy(b, r.out)
			r.out = r.out[n:]
			if len(r.out) == 0 {
				r.out = nil // no hold on a buffer given back
			}
			if r.out == nil && r.z != nil {
				r.z.n = 0 // the fragment in the chunk is out
				if r.ended {
					r.endMessage()
				}
			}
			return n, nil
		}
		if r.fill > 0 {
			n := int(min(int64(len(b)), r.fill))
			clear(b[:n])
			r.fill -= int64(n)
			return n, nil
		}
		if err := r.step(); err != nil {
			return 0, err
		}
	}
}

// step makes progress: it produces output, uses input, or reads the leg.
func (r *reader) step() error {
	if z := r.z; z != nil && !z.ended && (len(z.src) > 0 || z.eof) {
		r.inflate()
		return nil
	}
	if len(r.in) == 0 {
		return r.fillIn()
	}
	if r.raw {
		r.out, r.in = r.in, nil
		return nil
	}
	if r.remaining > 0 {
		r.payload()
		return nil
	}
	return r.header()
}

// fillIn reads the leg after the bytes still held (a partial header).
func (r *reader) fillIn() error {
	if r.err != nil {
		err := r.err
		r.err = nil
		return err
	}
	if r.buf == nil {
		r.buf = getIn()
	}
	h := copy(*r.buf, r.in)
	n, err := r.c.Conn.Read((*r.buf)[h:])
	r.in = (*r.buf)[:h+n]
	if h+n == 0 {
		inPool.Put(r.buf)
		r.buf, r.in = nil, nil
	}
	if n > 0 {
		r.err = err
		return nil
	}
	if err == nil {
		return nil
	}
	return err
}

// header reads the frame header at the start of r.in.
func (r *reader) header() error {
	h, n, err := wsframe.ParseFraming(r.in)
	if err != nil {
		r.raw = true // the relay sees the same violation, and refuses it
		return nil
	}
	if n == 0 {
		return r.fillIn()
	}
	raw := r.in[:n]
	r.in = r.in[n:]
	r.remaining, r.fin, r.masked, r.key, r.pos = h.Length, h.Fin, h.Masked, h.Key, 0
	cont := h.Opcode == wsframe.OpContinuation
	switch {
	case h.Opcode.IsControl(), r.z == nil && (cont || h.Rsv == 0):
		r.pass = true
		r.out = raw
		return nil
	case r.z == nil && h.Rsv == 4:
		// A whole message at hand needs no coroutine: its input
		// cannot run out before its end.
		r.startMessage(h.Opcode, h.Fin && int64(len(r.in)) >= h.Length)
	case r.z == nil, !cont, h.Rsv != 0:
		// RSV bits of another extension, a new message inside a
		// compressed one, or RSV1 on a continuation frame.
		r.refuse()
		return nil
	}
	r.pass = false
	r.frameOut = 0
	if r.remaining == 0 {
		r.frameEnd()
	}
	return nil
}

// refuse hands the relay a protocol violation and stops parsing.
func (r *reader) refuse() {
	r.out = violation
	r.raw = true
	r.endMessage()
}

// payload uses the next bytes of the current frame's payload.
func (r *reader) payload() {
	k := int(min(r.remaining, int64(len(r.in))))
	p := r.in[:k]
	r.in = r.in[k:]
	r.remaining -= int64(k)
	if r.pass {
		r.out = p
		return
	}
	if !r.drop {
		if r.masked {
			r.pos = wsframe.MaskBytes(p, r.key, r.pos)
		}
		r.z.src = p
	}
	if r.remaining == 0 {
		r.frameEnd()
	}
}

// frameEnd follows the end of a compressed message's frame.
func (r *reader) frameEnd() {
	if !r.fin {
		return
	}
	if r.drop {
		if z := r.z; z.chunk != nil {
			z.n = 0
			r.emit(true) // the stream ended early: the message ends here
		} else {
			r.endMessage() // refused over a limit
		}
		return
	}
	r.z.eof = true
}

// inflate runs the inflater until it fills a fragment, needs input or
// ends, and sends out what it made.
func (r *reader) inflate() {
	z := r.z
	ev, ok := z.next()
	switch {
	case !ok:
		z.ended = true
		if !errors.Is(z.err, io.EOF) && !errors.Is(z.err, io.ErrUnexpectedEOF) {
			r.refuse() // corrupt compressed data
			return
		}
		if !z.eof {
			// The stream ended before the message: what follows is
			// dropped, and the message ends with its last frame.
			r.emit(false)
			r.drop, z.src = true, nil
			return
		}
		r.emit(true)
	case ev == evOut:
		r.emit(false)
	case z.n > 0:
		r.emit(false) // out of input: what is made goes now
	}
}

// emit sends the inflated bytes held in the chunk as a fragment, final
// ending the message; limits are checked first.
func (r *reader) emit(final bool) {
	z := r.z
	n := int64(z.n)
	if n == 0 && !final {
		return
	}
	cfg := &r.c.cfg
	if over := r.overBy(n); over > 0 {
		r.overLimit(over)
		return
	}
	r.msgOut += n
	r.frameOut += n
	chunk := (*z.chunk)[wsframe.MaxHeaderLen : wsframe.MaxHeaderLen+z.n]
	if cfg.InTakeover {
		r.hist = appendTail(r.hist, chunk, 1<<cfg.InBits)
	}
	h := wsframe.Header{Fin: final, Opcode: wsframe.OpContinuation, Masked: cfg.Client, Length: n}
	if !r.started {
		h.Opcode = r.op
		r.started = true
	}
	if h.Masked {
		h.Key = newKey()
		wsframe.MaskBytes(chunk, h.Key, 0)
	}
	hl := wsframe.HeaderLen(h)
	start := wsframe.MaxHeaderLen - hl
	wsframe.AppendHeader((*z.chunk)[start:start], h)
	r.out = (*z.chunk)[start : wsframe.MaxHeaderLen+z.n]
	r.ended = final
}

// overBy returns the length of a fragment over the limits that n more
// inflated bytes would break, or 0.
func (r *reader) overBy(n int64) int64 {
	cfg := &r.c.cfg
	if cfg.MaxFrameSize > 0 && r.frameOut+n > cfg.MaxFrameSize {
		return cfg.MaxFrameSize + 1
	}
	if cfg.MaxMessageSize > 0 && r.msgOut+n > cfg.MaxMessageSize {
		return cfg.MaxMessageSize - r.msgOut + 1
	}
	return 0
}

// overLimit stops inflating the message and hands the relay the header of
// a fragment of length over, which breaks its limits; filler follows as
// its payload.
func (r *reader) overLimit(over int64) {
	h := wsframe.Header{Opcode: wsframe.OpContinuation, Masked: r.c.cfg.Client, Length: over}
	if !r.started {
		h.Opcode = r.op
	}
	if h.Masked {
		h.Key = newKey()
	}
	r.out = wsframe.AppendHeader(nil, h)
	r.fill = over
	r.drop = true
	if r.z.stop != nil {
		r.z.stop()
	}
	r.z.release()
	r.z = &inflation{ended: true} // the message goes on, dropped
	if r.remaining == 0 && r.fin {
		r.endMessage()
	}
}

func (r *reader) startMessage(op wsframe.Opcode, whole bool) {
	r.op, r.started, r.drop, r.msgOut = op, false, false, 0
	r.z = newInflation(r.hist, whole)
}

// endMessage lets go of the message's inflater and buffers.
func (r *reader) endMessage() {
	if z := r.z; z != nil {
		if z.stop != nil {
			z.stop()
		}
		z.release()
		r.z = nil
	}
	r.drop, r.ended = false, false
	if !r.c.cfg.InTakeover {
		r.hist = nil
	}
}

// release lets go of everything the reader holds.
func (r *reader) release() {
	r.endMessage()
	if r.buf != nil {
		inPool.Put(r.buf)
		r.buf, r.in = nil, nil
	}
	r.out = nil
}

// Events of the inflater coroutine.
type event uint8

const (
	evOut  event = iota // the chunk is full
	evNeed              // src is used up
)

// inflation is a compressed message being inflated.
type inflation struct {
	src   []byte // compressed bytes given and not yet taken
	tail  bool   // syncTail has been given
	eof   bool   // the message's last byte has been given
	ended bool   // the inflater has returned
	err   error  // why it returned
	chunk *[]byte
	n     int // inflated bytes in the chunk, after MaxHeaderLen
	fr    io.ReadCloser
	br    bytes.Reader // the input of an inline inflater: in
	in    *[]byte
	dict  []byte // an inline inflater's dictionary, until it starts
	yield func(event) bool
	next  func() (event, bool)
	stop  func()
}

var (
	inflaters  sync.Pool
	inlinePool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}
)

// newInflation starts inflating a message after dict. whole says the
// message's input is all at hand, so that the inflater runs inline.
func newInflation(dict []byte, whole bool) *inflation {
	z := &inflation{chunk: chunkPool.Get().(*[]byte)}
	if whole {
		// The decompressor is set up on the payload at the first call.
		z.next, z.dict = z.inline, dict
		return z
	}
	z.fr = getInflater(z, dict)
	z.next, z.stop = iter.Pull(z.run)
	return z
}

func getInflater(r io.Reader, dict []byte) io.ReadCloser {
	if f, ok := inflaters.Get().(io.ReadCloser); ok {
		f.(flate.Resetter).Reset(r, dict)
		return f
	}
	return flate.NewReaderDict(r, dict)
}

// inline is next for a message whose input is all given before the
// inflater runs: it never waits for input, so it needs no coroutine, and
// the decompressor reads the payload as a bytes.Reader (its fast path).
// The payload is copied with the sync tail after it (the decompressor
// needs the tail to finish the last block).
func (z *inflation) inline() (event, bool) {
	if z.fr == nil {
		z.in = inlinePool.Get().(*[]byte)
		*z.in = append(append((*z.in)[:0], z.src...), syncTail...)
		z.br.Reset(*z.in)
		z.src = nil
		z.fr = getInflater(&z.br, z.dict)
		z.dict = nil
	}
	for {
		m, err := z.fr.Read((*z.chunk)[wsframe.MaxHeaderLen+z.n:])
		z.n += m
		if err != nil {
			z.err = err
			return 0, false
		}
		if z.n == chunkSize {
			return evOut, true
		}
	}
}

func (z *inflation) run(yield func(event) bool) {
	z.yield = yield
	for {
		m, err := z.fr.Read((*z.chunk)[wsframe.MaxHeaderLen+z.n:])
		z.n += m
		if err != nil {
			z.err = err
			return
		}
		if z.n == chunkSize && !yield(evOut) {
			return
		}
	}
}

func (z *inflation) release() {
	if z.in != nil {
		z.br.Reset(nil)
		inlinePool.Put(z.in)
		z.in = nil
	}
	if z.fr != nil {
		inflaters.Put(z.fr)
		z.fr = nil
	}
	if z.chunk != nil {
		chunkPool.Put(z.chunk)
		z.chunk = nil
	}
}

// errStopped ends an inflater whose message is abandoned.
var errStopped = errors.New("wsdeflate: message abandoned")

// more waits, suspended, until src has bytes; false at the message's end.
func (z *inflation) more() (bool, error) {
	for len(z.src) == 0 {
		if z.eof {
			if z.tail {
				return false, nil
			}
			z.src, z.tail = syncTail, true
			continue
		}
		if z.yield == nil || !z.yield(evNeed) {
			return false, errStopped
		}
	}
	return true, nil
}

// ReadByte feeds the decompressor.
func (z *inflation) ReadByte() (byte, error) {
	if ok, err := z.more(); !ok {
		return 0, eofOr(err)
	}
	b := z.src[0]
	z.src = z.src[1:]
	return b, nil
}

// Read feeds the decompressor.
func (z *inflation) Read(p []byte) (int, error) {
	if ok, err := z.more(); !ok {
		return 0, eofOr(err)
	}
	n := copy(p, z.src)
	z.src = z.src[n:]
	return n, nil
}

func eofOr(err error) error {
	if err != nil {
		return err
	}
	return io.EOF
}
