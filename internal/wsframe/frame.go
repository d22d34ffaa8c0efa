package wsframe

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
)

// Opcode is a frame's 4-bit opcode.
type Opcode uint8

// Opcodes defined by RFC 6455, section 5.2.
const (
	OpContinuation Opcode = 0x0
	OpText         Opcode = 0x1
	OpBinary       Opcode = 0x2
	OpClose        Opcode = 0x8
	OpPing         Opcode = 0x9
	OpPong         Opcode = 0xA
)

// IsControl reports whether op is a control opcode (close, ping, pong or a
// reserved control opcode).
func (op Opcode) IsControl() bool { return op&0x8 != 0 }

// Reserved reports whether op is not defined by RFC 6455 (0x3-0x7, 0xB-0xF).
func (op Opcode) Reserved() bool { return (op >= 0x3 && op <= 0x7) || op >= 0xB }

// MaxHeaderLen is the longest possible frame header: 2 bytes, an 8-byte
// extended length and a 4-byte masking key.
const MaxHeaderLen = 14

// MaxControlPayload is the largest payload a control frame may carry.
const MaxControlPayload = 125

// Protocol violations reported by ParseHeader.
var (
	ErrReservedOpcode    = errors.New("wsframe: reserved opcode")
	ErrControlTooLong    = errors.New("wsframe: control frame payload over 125 bytes")
	ErrControlFragmented = errors.New("wsframe: fragmented control frame")
	ErrLengthOverflow    = errors.New("wsframe: 64-bit payload length with most significant bit set")
)

// Header is a decoded frame header. Rsv holds the three RSV bits as RSV1<<2 |
// RSV2<<1 | RSV3. Key is meaningful only when Masked.
type Header struct {
	Fin    bool
	Rsv    uint8
	Opcode Opcode
	Masked bool
	Key    [4]byte
	Length int64
}

// ParseHeader decodes the frame header at the start of b. It returns the
// header and its encoded size n. n == 0 with a nil error means b holds only
// part of a header. Violations are reported as early as the bytes allow, so
// a bad header is refused before it is complete. Non-minimal length
// encodings (a 16- or 64-bit length that would fit a shorter form) are
// accepted: RFC 6455 forbids sending them, but refusing them would break
// sloppy peers that other proxies serve.
func ParseHeader(b []byte) (h Header, n int, err error) {
	return parse(b, true)
}

// ParseFraming is ParseHeader for a relay: it enforces only what finding
// frame boundaries needs (a control opcode, reserved ones included, means an
// unfragmented frame of at most 125 bytes; a 64-bit length has its top bit
// clear) and leaves the rest, reserved opcodes among it, to the endpoints.
func ParseFraming(b []byte) (h Header, n int, err error) {
	return parse(b, false)
}

func parse(b []byte, opcodes bool) (h Header, n int, err error) {
	if len(b) == 0 {
		return h, 0, nil
	}
	b0 := b[0]
	h.Fin = b0&0x80 != 0
	h.Rsv = (b0 >> 4) & 0x7
	h.Opcode = Opcode(b0 & 0xF)
	if opcodes && h.Opcode.Reserved() {
		return Header{}, 0, ErrReservedOpcode
	}
	if h.Opcode.IsControl() && !h.Fin {
		return Header{}, 0, ErrControlFragmented
	}
	if len(b) < 2 {
		return Header{}, 0, nil
	}
	b1 := b[1]
	h.Masked = b1&0x80 != 0
	l7 := b1 & 0x7F
	if h.Opcode.IsControl() && l7 > MaxControlPayload {
		return Header{}, 0, ErrControlTooLong
	}
	n = 2
	switch l7 {
	case 126:
		if len(b) < 4 {
			return Header{}, 0, nil
		}
		h.Length = int64(binary.BigEndian.Uint16(b[2:4]))
		n = 4
	case 127:
		if len(b) < 10 {
			return Header{}, 0, nil
		}
		v := binary.BigEndian.Uint64(b[2:10])
		if v>>63 != 0 {
			return Header{}, 0, ErrLengthOverflow
		}
		h.Length = int64(v)
		n = 10
	default:
		h.Length = int64(l7)
	}
	if h.Masked {
		if len(b) < n+4 {
			return Header{}, 0, nil
		}
		copy(h.Key[:], b[n:n+4])
		n += 4
	}
	return h, n, nil
}

// HeaderLen returns the size of h's minimal encoding.
func HeaderLen(h Header) int {
	n := 2
	switch {
	case h.Length > 0xFFFF:
		n = 10
	case h.Length > 125:
		n = 4
	}
	if h.Masked {
		n += 4
	}
	return n
}

// AppendHeader appends h's minimal encoding to dst. A negative Length is
// encoded as 0; bits of Rsv and Opcode beyond their field widths are dropped.
func AppendHeader(dst []byte, h Header) []byte {
	b0 := byte(h.Opcode&0xF) | (h.Rsv&0x7)<<4
	if h.Fin {
		b0 |= 0x80
	}
	var m byte
	if h.Masked {
		m = 0x80
	}
	l := h.Length
	if l < 0 {
		l = 0
	}
	switch {
	case l > 0xFFFF:
		dst = append(dst, b0, m|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(l))
	case l > 125:
		dst = append(dst, b0, m|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(l))
	default:
		dst = append(dst, b0, m|byte(l))
	}
	if h.Masked {
		dst = append(dst, h.Key[:]...)
	}
	return dst
}

// AppendFrame appends a whole, final, unfragmented frame to dst. When mask is
// true the payload is masked with key in the appended copy; payload itself
// is not modified.
func AppendFrame(dst []byte, op Opcode, payload []byte, mask bool, key [4]byte) []byte {
	dst = AppendHeader(dst, Header{Fin: true, Opcode: op, Masked: mask, Key: key, Length: int64(len(payload))})
	start := len(dst)
	dst = append(dst, payload...)
	if mask {
		MaskBytes(dst[start:], key, 0)
	}
	return dst
}

// AppendClose appends a close frame carrying code and reason. The reason is
// cut to fit a control frame's 125 bytes (it may then end mid-rune: callers
// that care keep reasons short). A code of 0 sends an empty close payload.
func AppendClose(dst []byte, code uint16, reason string, mask bool, key [4]byte) []byte {
	var p [MaxControlPayload]byte
	n := 0
	if code != 0 {
		binary.BigEndian.PutUint16(p[:2], code)
		n = 2 + copy(p[2:], reason)
	}
	return AppendFrame(dst, OpClose, p[:n], mask, key)
}

// MaskBytes XORs b in place with key, starting at key offset pos%4, and
// returns the key offset for the bytes that follow b. Masking and unmasking
// are the same operation.
func MaskBytes(b []byte, key [4]byte, pos int) int {
	pos &= 3
	if len(b) >= 16 {
		// Rotate the key so that its byte 0 lines up with b[0], then
		// work 8 bytes at a time.
		var rk [8]byte
		for i := range rk {
			rk[i] = key[(pos+i)&3]
		}
		k := binary.LittleEndian.Uint64(rk[:])
		for len(b) >= 32 {
			binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k)
			binary.LittleEndian.PutUint64(b[8:], binary.LittleEndian.Uint64(b[8:])^k)
			binary.LittleEndian.PutUint64(b[16:], binary.LittleEndian.Uint64(b[16:])^k)
			binary.LittleEndian.PutUint64(b[24:], binary.LittleEndian.Uint64(b[24:])^k)
			b = b[32:]
		}
		for len(b) >= 8 {
			binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k)
			b = b[8:]
		}
	}
	for i := range b {
		b[i] ^= key[pos&3]
		pos++
	}
	return pos & 3
}

// keyGUID is the fixed GUID of RFC 6455, section 1.3.
const keyGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// AcceptKey returns the Sec-WebSocket-Accept value for a client's
// Sec-WebSocket-Key.
func AcceptKey(secWebSocketKey string) string {
	h := sha1.New()
	h.Write([]byte(secWebSocketKey))
	h.Write([]byte(keyGUID))
	var sum [sha1.Size]byte
	return base64.StdEncoding.EncodeToString(h.Sum(sum[:0]))
}

// ValidKey reports whether k is a valid Sec-WebSocket-Key: standard padded
// base64 that decodes to exactly 16 bytes.
func ValidKey(k string) bool {
	if len(k) != 24 {
		return false
	}
	var buf [18]byte
	n, err := base64.StdEncoding.Decode(buf[:], []byte(k))
	return err == nil && n == 16
}
