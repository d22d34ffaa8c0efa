package wsdeflate

import (
	"bytes"
	"sync"

	"github.com/klauspost/compress/flate"
	"github.com/wsgate/wsgate/internal/wsframe"
)

// The write side: plain frames from the relay, their data messages
// deflated with the stateless compressor. A message's bytes are buffered
// until its frame ends (or flushAt bytes are held), then deflated and sent
// as a fragment, so a sender's fragments still go out as they come.
// Control frames pass untouched, at once. A message whose single fragment
// would not shrink is sent uncompressed, as RFC 7692 allows.

type writer struct {
	c *Conn

	hdr  [wsframe.MaxHeaderLen]byte // a header not yet complete
	hn   int
	raw  bool // the framing is lost: bytes pass unparsed
	pass bool // the current frame passes untouched

	// The current frame.
	remaining int64
	fin       bool
	masked    bool
	key       [4]byte
	pos       int

	// The current message.
	inMsg   bool
	op      wsframe.Opcode
	started bool    // a fragment of it has gone out
	data    *[]byte // its plain bytes not yet deflated; pooled
	dict    []byte  // what precedes data: the compressor's window
	hist    []byte  // OutTakeover: the window kept between messages
}

var outPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// headRoom is the room a fragment's header takes before its payload.
var headRoom [wsframe.MaxHeaderLen]byte

func (w *writer) write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		var err error
		switch {
		case w.raw:
			_, err = w.c.Conn.Write(p)
			p = nil
		case w.remaining > 0:
			p, err = w.payload(p)
		default:
			p, err = w.header(p)
		}
		if err != nil {
			return total - len(p), err
		}
	}
	return total, nil
}

// header takes header bytes from p and returns what follows them.
func (w *writer) header(p []byte) ([]byte, error) {
	k := copy(w.hdr[w.hn:], p)
	h, n, err := wsframe.ParseFraming(w.hdr[:w.hn+k])
	if err != nil {
		// The relay refuses such a header before it writes it;
		// whatever comes passes as it is.
		w.raw = true
		_, err := w.c.Conn.Write(w.hdr[:w.hn])
		w.hn = 0
		return p, err
	}
	if n == 0 {
		w.hn += k
		return p[k:], nil
	}
	p = p[n-w.hn:]
	w.hn = 0
	w.remaining, w.fin, w.masked, w.key, w.pos = h.Length, h.Fin, h.Masked, h.Key, 0
	cont := h.Opcode == wsframe.OpContinuation
	w.pass = h.Opcode.IsControl() || h.Rsv != 0 || (cont && !w.inMsg) || (!cont && w.inMsg)
	if w.pass {
		// Frames that are not a plain message's are the peer's to judge.
		_, err := w.c.Conn.Write(w.hdr[:n])
		return p, err
	}
	if !cont {
		w.inMsg, w.op, w.started = true, h.Opcode, false
		w.dict = w.hist
	}
	if w.data == nil {
		w.data = dataPool.Get().(*[]byte)
	}
	if h.Length == 0 {
		return p, w.frameEnd()
	}
	return p, nil
}

// payload takes payload bytes from p and returns what follows them.
func (w *writer) payload(p []byte) ([]byte, error) {
	k := int(min(w.remaining, int64(len(p))))
	w.remaining -= int64(k)
	if w.pass {
		_, err := w.c.Conn.Write(p[:k])
		return p[k:], err
	}
	for q := p[:k]; len(q) > 0; {
		d := *w.data
		m := min(len(q), cap(d)-len(d))
		start := len(d)
		d = append(d, q[:m]...)
		if w.masked {
			w.pos = wsframe.MaskBytes(d[start:], w.key, w.pos)
		}
		*w.data = d
		q = q[m:]
		if len(d) == cap(d) {
			if err := w.send(false); err != nil {
				return p[k:], err
			}
		}
	}
	if w.remaining == 0 {
		return p[k:], w.frameEnd()
	}
	return p[k:], nil
}

// frameEnd sends what a message's frame brought, when it ends.
func (w *writer) frameEnd() error {
	if !w.fin && len(*w.data) == 0 {
		return nil
	}
	return w.send(w.fin)
}

// send deflates the buffered bytes and writes them as a fragment; final
// ends the message.
func (w *writer) send(final bool) error {
	cfg := &w.c.cfg
	data := *w.data
	out := outPool.Get().(*bytes.Buffer)
	defer outPool.Put(out)
	out.Reset()
	out.Write(headRoom[:])
	deflate(out, data, w.dict, cfg.OutBits, cfg.Level)
	payload := out.Bytes()[wsframe.MaxHeaderLen:]
	if final {
		payload = payload[:len(payload)-len(syncTail)]
	}
	h := wsframe.Header{Fin: final, Opcode: wsframe.OpContinuation, Masked: !cfg.Client}
	plain := final && !w.started && len(payload) >= len(data)
	if plain {
		payload = append(payload[:0], data...) // no gain: sent as it is
		h.Opcode = w.op
	} else if !w.started {
		h.Opcode, h.Rsv = w.op, 4
	}
	h.Length = int64(len(payload))
	if h.Masked {
		h.Key = newKey()
		wsframe.MaskBytes(payload, h.Key, 0)
	}
	hl := wsframe.HeaderLen(h)
	start := wsframe.MaxHeaderLen - hl
	frame := out.Bytes()[start : wsframe.MaxHeaderLen+len(payload)]
	wsframe.AppendHeader(frame[:0], h)
	w.started = true
	if !plain && cfg.OutTakeover {
		// Without context takeover the fragments of a message are
		// deflated each on its own: a dictionary would cost the
		// stateless compressor a copy of it and the fragment.
		w.dict = appendTail(w.dict, data, historyLen(cfg.OutBits))
	}
	*w.data = data[:0]
	if final {
		w.endMessage()
	}
	_, err := w.c.Conn.Write(frame)
	return err
}

func (w *writer) endMessage() {
	if w.c.cfg.OutTakeover {
		w.hist = w.dict
	}
	w.dict = nil
	w.inMsg = false
	if w.data != nil {
		*w.data = (*w.data)[:0]
		dataPool.Put(w.data)
		w.data = nil
	}
}

func (w *writer) release() {
	w.endMessage()
	w.hist = nil
}

// writers pools compressors by level (index 1 to 9).
var writers [10]sync.Pool

func getWriter(level int) *flate.Writer {
	if w, ok := writers[level].Get().(*flate.Writer); ok {
		return w
	}
	w, _ := flate.NewWriter(nil, level)
	return w
}

// deflate appends data's compressed form, after dict, to out; it ends on
// a sync flush (syncTail). Back-references reach at most 2^bits bytes.
// level picks a pooled compressor of that level; 0 the stateless one.
func deflate(out *bytes.Buffer, data, dict []byte, bits, level int) {
	if level > 0 && bits >= MaxWindowBits {
		w := getWriter(level)
		w.ResetDict(out, dict)
		w.Write(data)
		w.Flush()
		w.ResetDict(nil, nil)
		writers[level].Put(w)
		return
	}
	if bits >= MaxWindowBits {
		flate.StatelessDeflate(out, data, false, dict)
		return
	}
	piece := 1 << (bits - 1)
	if len(dict) > piece {
		dict = dict[len(dict)-piece:]
	}
	if len(data) == 0 {
		flate.StatelessDeflate(out, nil, false, nil)
	}
	for len(data) > 0 {
		k := min(piece, len(data))
		flate.StatelessDeflate(out, data[:k], false, dict)
		dict, data = data[:k], data[k:]
	}
}
