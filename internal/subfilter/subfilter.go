// Package subfilter replaces strings in a response body as it streams, as
// nginx's ngx_http_sub_module: case-insensitive (ASCII) matches, the
// leftmost first, the first configured string winning at one position,
// each string replaced once or everywhere.
package subfilter

import (
	"bytes"
	"io"
)

// Writer rewrites what is written to it into an underlying writer. It
// holds back at most the longest search string minus one byte; Close
// writes that tail.
type Writer struct {
	w       io.Writer
	find    [][]byte // lowercased
	repl    [][]byte
	once    bool
	done    []bool // once: the string was replaced
	pending []byte
	maxLen  int
}

// New returns a writer into w replacing find[i] by repl[i].
func New(w io.Writer, find, repl []string, once bool) *Writer {
	sw := &Writer{w: w, once: once, done: make([]bool, len(find))}
	for i, f := range find {
		sw.find = append(sw.find, bytes.ToLower([]byte(f)))
		sw.repl = append(sw.repl, []byte(repl[i]))
		sw.maxLen = max(sw.maxLen, len(f))
	}
	return sw
}

// Write takes p, writing out everything that can no longer be part of a
// match.
func (sw *Writer) Write(p []byte) (int, error) {
	sw.pending = append(sw.pending, p...)
	if err := sw.flush(false); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close writes the held-back tail.
func (sw *Writer) Close() error { return sw.flush(true) }

// flush replaces the matches in pending and writes out the part no later
// byte can change; at the end, all of it.
func (sw *Writer) flush(final bool) error {
	var out []byte
	start := 0
	lower := bytes.ToLower(sw.pending)
	for {
		at, which := sw.next(lower, start)
		if which < 0 {
			break
		}
		out = append(out, sw.pending[start:at]...)
		out = append(out, sw.repl[which]...)
		start = at + len(sw.find[which])
		if sw.once {
			sw.done[which] = true
		}
	}
	keep := len(sw.pending)
	if !final {
		keep = max(start, len(sw.pending)-(sw.maxLen-1))
		if sw.allDone() {
			keep = len(sw.pending)
		}
	}
	if keep < start {
		keep = start
	}
	out = append(out, sw.pending[start:keep]...)
	sw.pending = append(sw.pending[:0], sw.pending[keep:]...)
	if len(out) == 0 {
		return nil
	}
	_, err := sw.w.Write(out)
	return err
}

// next finds the leftmost complete match at or after from; at one
// position the first configured string wins.
func (sw *Writer) next(lower []byte, from int) (int, int) {
	best, which := -1, -1
	for i, f := range sw.find {
		if sw.done[i] || len(f) == 0 {
			continue
		}
		j := bytes.Index(lower[from:], f)
		if j >= 0 && (best < 0 || from+j < best) {
			best, which = from+j, i
		}
	}
	return best, which
}

func (sw *Writer) allDone() bool {
	for _, d := range sw.done {
		if !d {
			return false
		}
	}
	return true
}
