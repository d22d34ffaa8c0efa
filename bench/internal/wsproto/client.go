package wsproto

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
)

// Client is the client end of one WebSocket connection. It is not safe for
// concurrent use; the caller owns it and must Close it. The zero value is not
// usable: make one with Handshake.
type Client struct {
	Conn net.Conn
	key  [4]byte
	rbuf []byte // buffered bytes read past the last frame
	rn   int    // start of unread bytes in rbuf
	wbuf []byte
}

// Handshake performs the opening handshake over conn for path on host. On
// error the caller still owns conn and must close it.
func Handshake(conn net.Conn, host, path string) (*Client, error) {
	var raw [16]byte
	rand.Read(raw[:])
	key := base64.StdEncoding.EncodeToString(raw[:])
	c := &Client{Conn: conn, rbuf: make([]byte, 0, 1024)}
	copy(c.key[:], raw[:4])
	c.wbuf = AppendUpgradeRequest(make([]byte, 0, 256), host, path, key)
	if _, err := conn.Write(c.wbuf); err != nil {
		return nil, err
	}
	for {
		if n := HeadEnd(c.rbuf); n >= 0 {
			if err := CheckUpgradeResponse(c.rbuf[:n], key); err != nil {
				return nil, err
			}
			c.rn = n
			return c, nil
		}
		if len(c.rbuf) == cap(c.rbuf) {
			return nil, fmt.Errorf("%w: response head too long", ErrBadHandshake)
		}
		m, err := conn.Read(c.rbuf[len(c.rbuf):cap(c.rbuf)])
		c.rbuf = c.rbuf[:len(c.rbuf)+m]
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

// NewClient wraps conn, a stream on which a WebSocket was already opened
// (an RFC 8441 or RFC 9220 extended CONNECT), as a client end.
func NewClient(conn net.Conn) *Client {
	var raw [4]byte
	rand.Read(raw[:])
	return &Client{Conn: conn, key: raw, rbuf: make([]byte, 0, 1024), wbuf: make([]byte, 0, 256)}
}

// Premask masks payload in place with the connection's key, so a payload
// sent many times is masked once; send it with WritePremasked.
func (c *Client) Premask(payload []byte) { Mask(payload, c.key, 0) }

// WritePremasked sends one final frame whose payload was masked by Premask.
func (c *Client) WritePremasked(op Opcode, masked []byte) error {
	h := AppendHeader(c.wbuf[:0], Header{Fin: true, Op: op, Masked: true, Key: c.key, Length: int64(len(masked))})
	if len(masked) <= 4096 {
		// One write per small message: the proxy sees one segment.
		c.wbuf = append(h, masked...)
		_, err := c.Conn.Write(c.wbuf)
		return err
	}
	c.wbuf = h
	bufs := net.Buffers{h, masked}
	_, err := bufs.WriteTo(c.Conn)
	return err
}

// WriteMessage masks a copy of payload and sends it as one final frame.
func (c *Client) WriteMessage(op Opcode, payload []byte) error {
	h := AppendHeader(c.wbuf[:0], Header{Fin: true, Op: op, Masked: true, Key: c.key, Length: int64(len(payload))})
	n := len(h)
	c.wbuf = append(h, payload...)
	Mask(c.wbuf[n:], c.key, 0)
	_, err := c.Conn.Write(c.wbuf)
	return err
}

// ReadMessage reads one whole unmasked frame into buf (grown if needed) and
// returns its header and payload, which aliases buf. Fragmented messages are
// returned frame by frame.
func (c *Client) ReadMessage(buf []byte) (Header, []byte, error) {
	for {
		h, n, err := ParseHeader(c.rbuf[c.rn:])
		if err == nil {
			if h.Masked {
				return h, nil, fmt.Errorf("%w: server frame is masked", ErrBadFrame)
			}
			c.rn += n
			if h.Length > 1<<30 {
				return h, nil, fmt.Errorf("%w: frame too long", ErrBadFrame)
			}
			l := int(h.Length)
			if cap(buf) < l {
				buf = make([]byte, l)
			}
			buf = buf[:l]
			got := copy(buf, c.rbuf[c.rn:])
			c.rn += got
			if got < l {
				if _, err := io.ReadFull(c.Conn, buf[got:]); err != nil {
					return h, nil, err
				}
			}
			return h, buf, nil
		}
		if !errors.Is(err, ErrShortHeader) {
			return h, nil, err
		}
		// Compact, then read more; the header is at most 14 bytes.
		k := copy(c.rbuf[:cap(c.rbuf)], c.rbuf[c.rn:])
		c.rbuf, c.rn = c.rbuf[:k], 0
		m, err := c.Conn.Read(c.rbuf[k:cap(c.rbuf)])
		c.rbuf = c.rbuf[:k+m]
		if err != nil && m == 0 {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return Header{}, nil, err
		}
	}
}

// Close sends a close frame (1000) without waiting for the answer, then
// closes the connection.
func (c *Client) Close() error {
	werr := c.WriteMessage(OpClose, []byte{0x03, 0xE8})
	cerr := c.Conn.Close()
	if cerr != nil {
		return cerr
	}
	return werr
}
