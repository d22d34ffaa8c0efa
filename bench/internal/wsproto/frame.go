package wsproto

import (
	"encoding/binary"
	"errors"
)

// Opcode is a WebSocket frame opcode (RFC 6455 section 5.2).
type Opcode byte

// Opcodes used by the harness.
const (
	OpContinuation Opcode = 0x0
	OpText         Opcode = 0x1
	OpBinary       Opcode = 0x2
	OpClose        Opcode = 0x8
	OpPing         Opcode = 0x9
	OpPong         Opcode = 0xA
)

// ErrShortHeader means the buffer does not yet hold a whole frame header.
var ErrShortHeader = errors.New("wsproto: short frame header")

// ErrBadFrame means a frame header violates RFC 6455 in a way the harness refuses.
var ErrBadFrame = errors.New("wsproto: malformed frame header")

// Header is a decoded frame header. The zero value is a non-final
// continuation frame with an empty, unmasked payload.
type Header struct {
	Fin    bool
	Op     Opcode
	Masked bool
	Key    [4]byte
	Length int64
}

// AppendHeader appends the wire form of h to dst and returns the extended slice.
func AppendHeader(dst []byte, h Header) []byte {
	b0 := byte(h.Op) & 0x0F
	if h.Fin {
		b0 |= 0x80
	}
	var m byte
	if h.Masked {
		m = 0x80
	}
	switch {
	case h.Length < 126:
		dst = append(dst, b0, m|byte(h.Length))
	case h.Length <= 0xFFFF:
		dst = append(dst, b0, m|126, byte(h.Length>>8), byte(h.Length))
	default:
		dst = append(dst, b0, m|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(h.Length))
	}
	if h.Masked {
		dst = append(dst, h.Key[:]...)
	}
	return dst
}

// ParseHeader decodes the frame header at the start of b and returns it with
// its length in bytes. It returns ErrShortHeader when b is too short, so a
// reader can fetch more bytes and call it again.
func ParseHeader(b []byte) (Header, int, error) {
	if len(b) < 2 {
		return Header{}, 0, ErrShortHeader
	}
	h := Header{Fin: b[0]&0x80 != 0, Op: Opcode(b[0] & 0x0F), Masked: b[1]&0x80 != 0}
	if b[0]&0x70 != 0 {
		return Header{}, 0, ErrBadFrame // no extension was negotiated
	}
	n := 2
	switch l := b[1] & 0x7F; l {
	case 126:
		if len(b) < 4 {
			return Header{}, 0, ErrShortHeader
		}
		h.Length = int64(binary.BigEndian.Uint16(b[2:]))
		n = 4
	case 127:
		if len(b) < 10 {
			return Header{}, 0, ErrShortHeader
		}
		v := binary.BigEndian.Uint64(b[2:])
		if v>>63 != 0 {
			return Header{}, 0, ErrBadFrame
		}
		h.Length = int64(v)
		n = 10
	default:
		h.Length = int64(l)
	}
	if h.Op >= 0x8 && (h.Length > 125 || !h.Fin) {
		return Header{}, 0, ErrBadFrame // control frames are short and whole
	}
	if h.Masked {
		if len(b) < n+4 {
			return Header{}, 0, ErrShortHeader
		}
		copy(h.Key[:], b[n:n+4])
		n += 4
	}
	return h, n, nil
}

// Mask XORs b in place with key, starting at offset pos of the payload, and
// returns the offset after b so a payload can be (un)masked in pieces.
func Mask(b []byte, key [4]byte, pos int) int {
	if len(b) == 0 {
		return pos
	}
	k := uint32(key[0]) | uint32(key[1])<<8 | uint32(key[2])<<16 | uint32(key[3])<<24
	// Rotate so the word lines up with pos; little-endian byte 0 is key[pos%4].
	r := uint(pos&3) * 8
	k = k>>r | k<<(32-r)
	i := 0
	if len(b) >= 16 {
		k8 := uint64(k) | uint64(k)<<32
		for ; i+8 <= len(b); i += 8 {
			binary.LittleEndian.PutUint64(b[i:], binary.LittleEndian.Uint64(b[i:])^k8)
		}
	}
	for ; i < len(b); i++ {
		b[i] ^= byte(k >> (uint(i&3) * 8))
	}
	return pos + len(b)
}
