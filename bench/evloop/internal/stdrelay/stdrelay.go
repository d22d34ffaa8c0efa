// Package stdrelay is the standard-library relay: net.Listener, one
// goroutine per connection per direction, blocking reads and writes on
// net.TCPConn. It copies through a user-space buffer (no splice), as a proxy
// that inspects frames must.
package stdrelay

import (
	"errors"
	"io"
	"log"
	"net"
	"time"

	"github.com/wsgate/wsgate/bench/evloop/internal/head"
)

// bufSize is each direction's copy buffer.
const bufSize = 16 << 10

// Run accepts on listen and relays every connection to backend until the
// listener fails.
func Run(listen, backend string) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	return Serve(ln, backend)
}

// Serve relays every connection accepted on ln to backend.
func Serve(ln net.Listener, backend string) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		go tunnel(c.(*net.TCPConn), backend)
	}
}

// tunnel reads the request head, connects to backend, forwards the head and
// then copies both ways; each side's end of input becomes a shutdown of the
// other side's output, and both sockets close once both directions ended.
func tunnel(c *net.TCPConn, backend string) {
	defer c.Close()
	buf := make([]byte, bufSize)
	first, err := readHead(c, buf)
	if err != nil {
		if errors.Is(err, errTooLong) {
			c.Write(head.BadRequest)
		}
		return
	}
	bc, err := net.Dial("tcp", backend)
	if err != nil {
		log.Printf("std: dial %s: %v", backend, err)
		return
	}
	b := bc.(*net.TCPConn)
	defer b.Close()
	if _, err := b.Write(first); err != nil {
		return
	}
	done := make(chan struct{})
	go func() {
		pump(c, b, make([]byte, bufSize))
		close(done)
	}()
	pump(b, c, buf)
	<-done
}

var errTooLong = errors.New("request head too long")

// readHead reads until buf holds a complete head and returns what was read.
func readHead(c net.Conn, buf []byte) ([]byte, error) {
	n := 0
	for head.End(buf[:n]) < 0 {
		if n == len(buf) {
			return nil, errTooLong
		}
		m, err := c.Read(buf[n:])
		if err != nil {
			return nil, err
		}
		n += m
	}
	return buf[:n], nil
}

// pump copies src to dst until src ends, then shuts dst's output; on an
// error it closes both so the other direction ends too.
func pump(dst, src *net.TCPConn, buf []byte) {
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				src.Close()
				dst.Close()
				return
			}
		}
		if err == io.EOF {
			dst.CloseWrite()
			return
		}
		if err != nil {
			src.Close()
			dst.Close()
			return
		}
	}
}
