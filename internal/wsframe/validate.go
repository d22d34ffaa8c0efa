package wsframe

// ValidCloseCode reports whether code may be sent in a close frame (RFC 6455,
// section 7.4): 1000-1003, 1007-1011 (1012-1014 are registered since), and
// the ranges for libraries and applications, 3000-4999.
func ValidCloseCode(code uint16) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// UTF8 validates UTF-8 text that arrives in pieces. The zero value is at the
// start of a text; feed it each piece in order with Write, and check
// Complete at the end.
type UTF8 struct {
	need   uint8 // continuation bytes still expected
	lo, hi uint8 // bounds of the next continuation byte
}

// Write validates the next piece of text, reporting false as soon as the
// bytes so far cannot start a valid UTF-8 text (overlong forms, surrogates
// and code points over U+10FFFF are invalid).
func (u *UTF8) Write(p []byte) bool {
	for _, c := range p {
		if !u.next(c) {
			return false
		}
	}
	return true
}

// WriteMasked is Write for payload bytes masked with key, the first of
// which is at offset pos of its frame's payload; p is left untouched.
func (u *UTF8) WriteMasked(p []byte, key [4]byte, pos int64) bool {
	for i, c := range p {
		if !u.next(c ^ key[(pos+int64(i))&3]) {
			return false
		}
	}
	return true
}

// Complete reports whether the text ends on a character boundary.
func (u *UTF8) Complete() bool { return u.need == 0 }

func (u *UTF8) next(c byte) bool {
	if u.need > 0 {
		if c < u.lo || c > u.hi {
			return false
		}
		u.need--
		u.lo, u.hi = 0x80, 0xBF
		return true
	}
	u.lo, u.hi = 0x80, 0xBF
	switch {
	case c < 0x80:
	case c >= 0xC2 && c <= 0xDF:
		u.need = 1
	case c == 0xE0:
		u.need, u.lo = 2, 0xA0
	case c == 0xED:
		u.need, u.hi = 2, 0x9F
	case c >= 0xE1 && c <= 0xEF:
		u.need = 2
	case c == 0xF0:
		u.need, u.lo = 3, 0x90
	case c >= 0xF1 && c <= 0xF3:
		u.need = 3
	case c == 0xF4:
		u.need, u.hi = 3, 0x8F
	default:
		return false
	}
	return true
}
