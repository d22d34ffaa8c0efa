package tunnel

import (
	"encoding/binary"
	"errors"

	"github.com/wsgate/wsgate/internal/wsframe"
)

// Strict validation (Config.Strict): what RFC 6455 asks an endpoint to
// check, done at the proxy. Off by default, when these frames pass to the
// endpoint that must judge them, as on a direct connection.

// Violations that strict validation reports.
var (
	errReservedOpcode = errors.New("reserved opcode")
	errRSV            = errors.New("RSV bits that no extension uses")
	errMask           = errors.New("wrong masking for its direction")
	errSequence       = errors.New("data frame out of sequence")
	errCloseLength    = errors.New("close frame with a 1-byte payload")
	errCloseCode      = errors.New("invalid close code")
	errUTF8           = errors.New("invalid UTF-8")
)

// strictHeader checks the header h of n bytes at the start of rest; evEnd
// lets the frame through, evPartial asks for its close code first.
func (d *dir) strictHeader(h wsframe.Header, rest []byte, n int) (event, error) {
	x := d.x
	bad := func(code uint16, err error) (event, error) {
		x.vcode = code
		return evInvalid, err
	}
	switch {
	case h.Opcode.Reserved():
		return bad(CodeProtocolError, errReservedOpcode)
	case h.Masked != (d.idx == c2b):
		return bad(CodeProtocolError, errMask)
	case h.Rsv&^d.t.cfg.AllowRSV != 0, h.Rsv != 0 && h.Opcode.IsControl():
		return bad(CodeProtocolError, errRSV)
	}
	x.frameLen = h.Length
	// The payload bytes at hand are checked now, so that a frame whose
	// text is invalid there is refused whole rather than cut short.
	avail := rest[n:min(int64(len(rest)), int64(n)+h.Length)]
	whole := int64(len(avail)) == h.Length
	if h.Opcode == wsframe.OpClose {
		x.reason = wsframe.UTF8{}
		if len(avail) > 2 {
			u := x.reason
			if !u.WriteMasked(avail[2:], h.Key, 2) || whole && !u.Complete() {
				return bad(CodeInvalidData, errUTF8)
			}
		}
		switch {
		case h.Length == 1:
			return bad(CodeProtocolError, errCloseLength)
		case h.Length >= 2 && len(rest) < n+2:
			return evPartial, nil // at most 8 bytes: held
		case h.Length >= 2:
			var c [2]byte
			copy(c[:], rest[n:n+2])
			wsframe.MaskBytes(c[:], h.Key, 0)
			if h.Masked && !wsframe.ValidCloseCode(binary.BigEndian.Uint16(c[:])) ||
				!h.Masked && !wsframe.ValidCloseCode(binary.BigEndian.Uint16(rest[n:n+2])) {
				return bad(CodeProtocolError, errCloseCode)
			}
		}
		return evEnd, nil
	}
	if h.Opcode.IsControl() {
		return evEnd, nil
	}
	cont := h.Opcode == wsframe.OpContinuation
	if cont != x.inMsg {
		return bad(CodeProtocolError, errSequence)
	}
	if !cont {
		x.inText = h.Opcode == wsframe.OpText && h.Rsv&4 == 0
		x.text = wsframe.UTF8{}
	}
	x.inMsg = !h.Fin
	if x.inText {
		u := x.text
		if !u.WriteMasked(avail, h.Key, 0) || h.Fin && whole && !u.Complete() {
			return bad(CodeInvalidData, errUTF8)
		}
	}
	return evEnd, nil
}

// strictPayload checks p, the next payload bytes of the current frame,
// before they are forwarded: the text of a text message and the reason of
// a close frame must be UTF-8, and end on a character boundary.
func (d *dir) strictPayload(p []byte) error {
	x := d.x
	off := x.frameLen - d.remaining
	end := int64(len(p)) == d.remaining
	var u *wsframe.UTF8
	switch {
	case d.op == wsframe.OpClose:
		if skip := min(max(2-off, 0), int64(len(p))); skip > 0 {
			p, off = p[skip:], off+skip
		}
		u = &x.reason
	case !d.op.IsControl() && x.inText:
		u = &x.text
		end = end && d.finData
	default:
		return nil
	}
	if !u.WriteMasked(p, d.key, off) || (end && !u.Complete()) {
		x.vcode = CodeInvalidData
		return errUTF8
	}
	return nil
}
