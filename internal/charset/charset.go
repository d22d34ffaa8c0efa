// Package charset recodes response bodies between two charsets by a
// charset_map, as nginx's ngx_http_charset_module does: byte to byte
// between two single-byte charsets, byte to UTF-8 sequence towards UTF-8,
// and from UTF-8 with numeric character references for what the map
// lacks.
package charset

import (
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Map is one charset_map block: From is always a single-byte charset;
// To is another one, or UTF-8.
type Map struct {
	From, To string
	utf8     bool
	fwd      [256][]byte // From byte -> To bytes
	back     [256]byte   // To byte -> From byte, between single-byte charsets
	fromUTF8 map[rune]byte
}

// IsUTF8 reports whether name is UTF-8, as nginx spells it.
func IsUTF8(name string) bool { return strings.EqualFold(name, "utf-8") }

// NewMap starts a map from one charset to another that keeps ASCII and
// makes every other byte '?', as nginx's; Add fills it. From must not be
// UTF-8 (nginx's rule: a map goes from a single-byte charset).
func NewMap(from, to string) (*Map, error) {
	if IsUTF8(from) {
		return nil, fmt.Errorf("the charset_map from \"%s\" must be written from the single-byte charset to \"utf-8\"", from)
	}
	m := &Map{From: from, To: to, utf8: IsUTF8(to)}
	for i := range 256 {
		b := byte(i)
		if b >= utf8.RuneSelf {
			b = '?'
		}
		m.fwd[i] = []byte{b}
		m.back[i] = b
	}
	if m.utf8 {
		m.fromUTF8 = map[rune]byte{}
	}
	return m, nil
}

// Add reads one line of the block: the From byte and what it becomes,
// both in hex (a UTF-8 sequence of up to three bytes towards UTF-8).
func (m *Map) Add(src, dst string) error {
	s, err := strconv.ParseUint(src, 16, 8)
	if err != nil || len(src) != 2 {
		return fmt.Errorf("invalid value \"%s\"", src)
	}
	b, err := hex.DecodeString(dst)
	if !m.utf8 {
		if err != nil || len(b) != 1 {
			return fmt.Errorf("invalid value \"%s\"", dst)
		}
		m.fwd[s] = b
		m.back[b[0]] = byte(s)
		return nil
	}
	r, n := utf8.DecodeRune(b)
	if err != nil || len(b) == 0 || len(b) > 3 || n != len(b) || r == utf8.RuneError {
		return fmt.Errorf("invalid value \"%s\"", dst)
	}
	m.fwd[s] = b
	m.fromUTF8[r] = byte(s)
	return nil
}

// Find returns the map that recodes from src to dst and whether it runs
// backwards (dst is the map's From); nil when none does.
func Find(maps []*Map, src, dst string) (*Map, bool) {
	for _, m := range maps {
		switch {
		case strings.EqualFold(m.From, src) && strings.EqualFold(m.To, dst):
			return m, false
		case strings.EqualFold(m.From, dst) && strings.EqualFold(m.To, src):
			return m, true
		}
	}
	return nil, false
}

// SameLength reports whether recoding keeps the body's length: between
// two single-byte charsets it does, byte for byte.
func (m *Map) SameLength() bool { return !m.utf8 }

// NewWriter returns a writer that recodes through m (backwards when back
// is set) into w. A UTF-8 sequence that the body ends inside is dropped,
// as nginx drops it; Close does not close w.
func NewWriter(w io.Writer, m *Map, back bool) io.WriteCloser {
	return &writer{w: w, m: m, decode: back && m.utf8, back: back}
}

type writer struct {
	w      io.Writer
	m      *Map
	back   bool
	decode bool   // from UTF-8
	held   []byte // the start of a UTF-8 sequence cut by the last Write
	buf    []byte // reused output
}

func (c *writer) Write(p []byte) (int, error) {
	out := c.buf[:0]
	switch {
	case c.decode:
		out = c.fromUTF8(out, p)
	case c.back:
		for _, b := range p {
			out = append(out, c.m.back[b])
		}
	default:
		for _, b := range p {
			out = append(out, c.m.fwd[b]...)
		}
	}
	c.buf = out
	if _, err := c.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// fromUTF8 appends p recoded from UTF-8: ASCII as is, a mapped character
// as its byte, any other as "&#N;", an invalid byte as '?' (nginx also
// swallows the byte that shows a sequence invalid, even ASCII; wsgate
// keeps it). A sequence cut at the end of p waits for the next Write.
func (c *writer) fromUTF8(out, p []byte) []byte {
	if len(c.held) > 0 {
		p = append(c.held, p...)
		c.held = nil
	}
	for len(p) > 0 {
		if p[0] < utf8.RuneSelf {
			out = append(out, p[0])
			p = p[1:]
			continue
		}
		if !utf8.FullRune(p) {
			c.held = append([]byte(nil), p...)
			break
		}
		r, n := utf8.DecodeRune(p)
		p = p[n:]
		switch b, ok := c.m.fromUTF8[r]; {
		case r == utf8.RuneError && n == 1:
			out = append(out, '?')
		case ok:
			out = append(out, b)
		default:
			out = append(out, "&#"...)
			out = strconv.AppendInt(out, int64(r), 10)
			out = append(out, ';')
		}
	}
	return out
}

func (c *writer) Close() error {
	c.held = nil
	return nil
}
