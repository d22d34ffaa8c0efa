package echo

import (
	"bufio"
	_ "embed"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/wsframe"
)

//go:embed page.html
var page string

// Server is a running echo backend. Close stops it and every connection.
type Server struct {
	ln    net.Listener
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// Start listens on addr (e.g. "127.0.0.1:0") and serves until Close.
func Start(addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{ln: ln, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the listener and closes every connection.
func (s *Server) Close() error {
	err := s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			serve(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

func serve(c net.Conn) {
	br := bufio.NewReaderSize(c, http1.ReaderSize)
	for {
		req, err := http1.ReadRequest(br, http1.Limits{})
		if err != nil {
			return
		}
		if req.ContentLength > 0 || req.Chunked {
			io.Copy(io.Discard, req.Body(br))
		}
		if strings.EqualFold(req.Header.Get("Upgrade"), "websocket") {
			key := req.Header.Get("Sec-WebSocket-Key")
			if !wsframe.ValidKey(key) {
				c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
				return
			}
			c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + wsframe.AcceptKey(key) + "\r\n\r\n"))
			echoFrames(c, br)
			return
		}
		status, body, ctype := "200 OK", page, "text/html; charset=utf-8"
		if req.Path != "/" && req.Path != "/index.html" {
			status, body, ctype = "404 Not Found", "not found\n", "text/plain"
		}
		resp := "HTTP/1.1 " + status + "\r\nContent-Type: " + ctype + "\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
		if req.Method != "HEAD" {
			resp += body
		}
		if _, err := c.Write([]byte(resp)); err != nil || req.Close {
			return
		}
	}
}

var errProtocol = errors.New("echo: protocol error")

// echoFrames sends every data frame back unmasked, answers pings, and
// returns the close frame it is sent.
func echoFrames(c net.Conn, br *bufio.Reader) error {
	hdr := make([]byte, wsframe.MaxHeaderLen)
	for {
		n := 2
		if _, err := io.ReadFull(br, hdr[:2]); err != nil {
			return err
		}
		h, need, err := wsframe.ParseHeader(hdr[:n])
		for err == nil && need == 0 {
			want := headerLen(hdr[:2])
			if _, err := io.ReadFull(br, hdr[n:want]); err != nil {
				return err
			}
			n = want
			h, need, err = wsframe.ParseHeader(hdr[:n])
		}
		if err != nil {
			return err
		}
		if h.Length > 16<<20 {
			return errProtocol
		}
		payload := make([]byte, h.Length)
		if _, err := io.ReadFull(br, payload); err != nil {
			return err
		}
		if h.Masked {
			wsframe.MaskBytes(payload, h.Key, 0)
		}
		op := h.Opcode
		switch op {
		case wsframe.OpPing:
			op = wsframe.OpPong
		case wsframe.OpPong:
			continue
		}
		out := wsframe.AppendHeader(nil, wsframe.Header{Fin: h.Fin, Rsv: h.Rsv, Opcode: op, Length: int64(len(payload))})
		out = append(out, payload...)
		if _, err := c.Write(out); err != nil {
			return err
		}
		if op == wsframe.OpClose {
			return nil
		}
	}
}

// headerLen is the full header size that the first two bytes announce.
func headerLen(b []byte) int {
	n := 2
	switch b[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b[1]&0x80 != 0 {
		n += 4
	}
	return n
}
