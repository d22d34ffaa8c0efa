package http1

import (
	"iter"
	"strings"
)

// Field is one header line. Name keeps the case it was received (or added)
// with; Value has its surrounding whitespace removed.
type Field struct {
	Name, Value string
}

// Header is an ordered list of fields; duplicates are kept in arrival order.
// Lookups compare names ASCII case-insensitively. The zero value is an empty
// header. A Header is not safe for concurrent mutation.
type Header []Field

// Get returns the value of the first field called name, or "".
func (h Header) Get(name string) string {
	for i := range h {
		if equalFold(h[i].Name, name) {
			return h[i].Value
		}
	}
	return ""
}

// Has reports whether a field called name is present.
func (h Header) Has(name string) bool {
	for i := range h {
		if equalFold(h[i].Name, name) {
			return true
		}
	}
	return false
}

// Values yields the values of every field called name, in order.
func (h Header) Values(name string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for i := range h {
			if equalFold(h[i].Name, name) && !yield(h[i].Value) {
				return
			}
		}
	}
}

// HasToken reports whether any field called name holds token in its
// comma-separated list (e.g. "Connection: keep-alive, Upgrade"), compared
// case-insensitively.
func (h Header) HasToken(name, token string) bool {
	for i := range h {
		if equalFold(h[i].Name, name) && hasToken(h[i].Value, token) {
			return true
		}
	}
	return false
}

// Add appends a field. The caller is responsible for name and value being
// valid (no CR, LF or NUL): Header does not re-check what it writes.
func (h *Header) Add(name, value string) {
	*h = append(*h, Field{Name: name, Value: value})
}

// Set replaces the first field called name and removes the others, or
// appends one when there is none.
func (h *Header) Set(name, value string) {
	hh := *h
	for i := range hh {
		if equalFold(hh[i].Name, name) {
			hh[i].Value = value
			rest := hh[i+1:].delKeep(name)
			*h = hh[:i+1+len(rest)]
			return
		}
	}
	*h = append(hh, Field{Name: name, Value: value})
}

// Del removes every field called name, keeping the order of the others.
func (h *Header) Del(name string) {
	*h = (*h).delKeep(name)
}

// delKeep compacts h in place without fields called name and returns the
// shortened slice.
func (h Header) delKeep(name string) Header {
	n := 0
	for i := range h {
		if !equalFold(h[i].Name, name) {
			h[n] = h[i]
			n++
		}
	}
	clear(h[n:])
	return h[:n]
}

// AppendTo appends the fields as "Name: Value\r\n" lines.
func (h Header) AppendTo(dst []byte) []byte {
	for i := range h {
		dst = append(dst, h[i].Name...)
		dst = append(dst, ':', ' ')
		dst = append(dst, h[i].Value...)
		dst = append(dst, '\r', '\n')
	}
	return dst
}

// hasToken reports whether the comma-separated list v contains token.
func hasToken(v, token string) bool {
	for len(v) > 0 {
		var elem string
		if i := strings.IndexByte(v, ','); i >= 0 {
			elem, v = v[:i], v[i+1:]
		} else {
			elem, v = v, ""
		}
		if equalFold(trimOWS(elem), token) {
			return true
		}
	}
	return false
}

func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// equalFold is ASCII-only case folding: header names are tokens, and Unicode
// folding (strings.EqualFold) would let "K" (Kelvin sign) match "k".
func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// tchar marks RFC 9110 token characters.
var tchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// Join returns the values of every field called name joined by sep,
// without allocating when there is at most one (the common case).
func (h Header) Join(name, sep string) string {
	out, n := "", 0
	for _, f := range h {
		if !equalFold(f.Name, name) {
			continue
		}
		if n == 0 {
			out = f.Value
		} else {
			out += sep + f.Value
		}
		n++
	}
	return out
}
