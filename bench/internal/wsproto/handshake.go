package wsproto

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"errors"
)

const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// ErrBadHandshake means an opening handshake could not be understood.
var ErrBadHandshake = errors.New("wsproto: bad handshake")

// AcceptKey returns the Sec-WebSocket-Accept value that answers key.
func AcceptKey(key string) string {
	h := sha1.New()
	h.Write([]byte(key))
	h.Write([]byte(acceptGUID))
	var sum [sha1.Size]byte
	return base64.StdEncoding.EncodeToString(h.Sum(sum[:0]))
}

// Request is what the echo server needs from an HTTP/1.1 request head.
// Its byte slices alias the buffer given to ParseRequest.
type Request struct {
	Method  []byte
	Path    []byte
	Upgrade bool   // Upgrade: websocket was present
	Key     []byte // Sec-WebSocket-Key, nil if absent
}

// HeadEnd returns the length of the HTTP head at the start of b, including
// its blank line, or -1 if b does not hold a whole head yet.
func HeadEnd(b []byte) int {
	i := bytes.Index(b, []byte("\r\n\r\n"))
	if i < 0 {
		return -1
	}
	return i + 4
}

// ParseRequest parses a complete request head (as delimited by HeadEnd).
func ParseRequest(head []byte) (Request, error) {
	var r Request
	line, rest, ok := bytes.Cut(head, []byte("\r\n"))
	if !ok {
		return r, ErrBadHandshake
	}
	var proto []byte
	r.Method, line, ok = bytes.Cut(line, []byte(" "))
	if ok {
		r.Path, proto, ok = bytes.Cut(line, []byte(" "))
	}
	if !ok || !bytes.HasPrefix(proto, []byte("HTTP/1.")) {
		return r, ErrBadHandshake
	}
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Upgrade")):
			r.Upgrade = bytes.EqualFold(value, []byte("websocket"))
		case bytes.EqualFold(name, []byte("Sec-WebSocket-Key")):
			r.Key = value
		}
	}
	return r, nil
}

// AppendSwitchingProtocols appends the server's 101 answer to key.
func AppendSwitchingProtocols(dst, key []byte) []byte {
	dst = append(dst, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	dst = append(dst, AcceptKey(string(key))...)
	return append(dst, "\r\n\r\n"...)
}

// AppendUpgradeRequest appends a client's opening handshake for path on host.
func AppendUpgradeRequest(dst []byte, host, path, key string) []byte {
	dst = append(dst, "GET "...)
	dst = append(dst, path...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, host...)
	dst = append(dst, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "...)
	dst = append(dst, key...)
	return append(dst, "\r\nSec-WebSocket-Version: 13\r\n\r\n"...)
}

// CheckUpgradeResponse verifies a complete response head answers key with 101
// and the right Sec-WebSocket-Accept.
func CheckUpgradeResponse(head []byte, key string) error {
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 101")) {
		return errors.Join(ErrBadHandshake, errors.New(string(line)))
	}
	want := AcceptKey(key)
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, value, ok := bytes.Cut(line, []byte(":"))
		if ok && bytes.EqualFold(name, []byte("Sec-WebSocket-Accept")) {
			if string(bytes.TrimSpace(value)) == want {
				return nil
			}
			return errors.Join(ErrBadHandshake, errors.New("wrong Sec-WebSocket-Accept"))
		}
	}
	return errors.Join(ErrBadHandshake, errors.New("no Sec-WebSocket-Accept"))
}
