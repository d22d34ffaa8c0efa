package echo

import (
	"errors"
	"io"
	"net"
	"sync"

	"github.com/wsgate/wsgate/bench/internal/wsproto"
)

// Connections start with small buffers, so thousands of idle tunnels cost the
// backend little, and grow them once for the first large frame.
const (
	smallBuf = 4 << 10
	bufSize  = 16 << 10
)

// Server echoes WebSocket frames on the listeners given to Serve. Its zero
// value is ready to use; it is safe for concurrent use. Close stops every
// Serve call and closes every connection.
type Server struct {
	mu     sync.Mutex
	lns    map[net.Listener]struct{}
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("echo: server closed")

// Serve accepts connections on ln until ln fails or Close is called. It
// takes ownership of ln.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	if s.lns == nil {
		s.lns = make(map[net.Listener]struct{})
		s.conns = make(map[net.Conn]struct{})
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return ErrServerClosed
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.handle(c)
	}
}

// Close stops the listeners and connections and waits for their goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for ln := range s.lns {
		ln.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func (s *Server) handle(c net.Conn) {
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.wg.Done()
	}()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	rb := make([]byte, 0, 4096)
	for {
		if n := wsproto.HeadEnd(rb); n >= 0 {
			req, err := wsproto.ParseRequest(rb[:n])
			if err != nil {
				c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
				return
			}
			if !req.Upgrade || len(req.Key) == 0 {
				if string(req.Method) == "GET" && string(req.Path) == "/health" {
					c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"))
				} else {
					c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
				}
				return
			}
			wb := wsproto.AppendSwitchingProtocols(make([]byte, 0, smallBuf), req.Key)
			if _, err := c.Write(wb); err != nil {
				return
			}
			// Keep whatever the client pipelined after its head.
			rest := copy(rb[:cap(rb)], rb[n:])
			relay(c, rb[:cap(rb)], rest, wb[:0])
			return
		}
		if len(rb) == cap(rb) {
			c.Write([]byte("HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
			return
		}
		m, err := c.Read(rb[len(rb):cap(rb)])
		rb = rb[:len(rb)+m]
		if err != nil {
			return
		}
	}
}

// Frames echoes the WebSocket frames a client sends on c (masked, after
// the handshake), answering pings and the close frame, until the client
// closes or a frame is invalid; each write is one or more whole answers.
// It is the echo backend's relay for a stream that carries a WebSocket
// without an HTTP/1.1 handshake of its own (an HTTP/2 or HTTP/3 tunnel).
func Frames(c io.ReadWriter) {
	relay(c, make([]byte, smallBuf), 0, make([]byte, 0, smallBuf))
}

// relay echoes frames until the peer closes. rb holds n bytes already read;
// wb is an empty slice with spare capacity for outgoing bytes. Payloads are
// streamed through both buffers, so a frame may be larger than either.
func relay(c io.ReadWriter, rb []byte, n int, wb []byte) {
	r := 0 // start of unread bytes in rb[:n]
	fill := func() bool {
		if r > 0 {
			n = copy(rb, rb[r:n])
			r = 0
		}
		m, err := c.Read(rb[n:])
		n += m
		return m > 0 || err == nil
	}
	flush := func() bool {
		if len(wb) == 0 {
			return true
		}
		_, err := c.Write(wb)
		wb = wb[:0]
		return err == nil
	}
	for {
		h, hl, err := wsproto.ParseHeader(rb[r:n])
		if errors.Is(err, wsproto.ErrShortHeader) {
			// Nothing complete is buffered: answer what we have before blocking.
			if !flush() || !fill() {
				return
			}
			continue
		}
		if err != nil || !h.Masked {
			return
		}
		r += hl
		switch h.Op {
		case wsproto.OpClose, wsproto.OpPing:
			for int64(n-r) < h.Length {
				if !fill() {
					return
				}
			}
			p := rb[r : r+int(h.Length)]
			r += int(h.Length)
			wsproto.Mask(p, h.Key, 0)
			op := wsproto.OpPong
			if h.Op == wsproto.OpClose {
				op = wsproto.OpClose
			}
			wb = wsproto.AppendHeader(wb, wsproto.Header{Fin: true, Op: op, Length: int64(len(p))})
			wb = append(wb, p...)
			if op == wsproto.OpClose {
				flush()
				return
			}
			continue
		case wsproto.OpPong:
			for left := h.Length; left > 0; {
				if r == n && !fill() {
					return
				}
				k := min(int64(n-r), left)
				r += int(k)
				left -= k
			}
			continue
		}
		if h.Length > smallBuf/2 && len(rb) < bufSize {
			nrb := make([]byte, bufSize)
			n = copy(nrb, rb[r:n])
			rb, r = nrb, 0
			nwb := make([]byte, len(wb), bufSize)
			copy(nwb, wb)
			wb = nwb
		}
		wb = wsproto.AppendHeader(wb, wsproto.Header{Fin: h.Fin, Op: h.Op, Length: h.Length})
		left, pos := h.Length, 0
		for left > 0 {
			if r == n && (!flush() || !fill()) {
				return
			}
			k := min(int64(n-r), left, int64(cap(wb)-len(wb)))
			if k == 0 {
				if !flush() {
					return
				}
				continue
			}
			start := len(wb)
			wb = append(wb, rb[r:r+int(k)]...)
			pos = wsproto.Mask(wb[start:], h.Key, pos)
			r += int(k)
			left -= k
		}
	}
}
