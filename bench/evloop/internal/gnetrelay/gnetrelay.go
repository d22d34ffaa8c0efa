// Package gnetrelay is the relay on github.com/panjf2000/gnet/v2: one event
// loop per GOMAXPROCS accepts and reads; the backend connection is made by
// gnet's EventLoop.Register, which dials with net.Dial on a worker goroutine
// (gnet has no in-loop connect), duplicates the descriptor and enrolls the
// copy in the client's loop, where OnOpen writes the head.
package gnetrelay

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"runtime"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/bench/evloop/internal/head"
)

// side is one connection's state, its gnet context. Only its loop touches it.
type side struct {
	peer    gnet.Conn
	peerS   *side
	hd      head.Accumulator
	first   []byte // backend: the head and what followed, written on open
	backend bool
	closed  bool
}

type handler struct {
	gnet.BuiltinEventEngine
	backend *net.TCPAddr
}

// Run serves listen until gnet fails.
func Run(listen, backend string) error {
	ba, err := net.ResolveTCPAddr("tcp", backend)
	if err != nil {
		return err
	}
	return gnet.Run(&handler{backend: ba}, "tcp://"+listen,
		gnet.WithMulticore(true), gnet.WithNumEventLoop(runtime.GOMAXPROCS(0)),
		gnet.WithReusePort(true), gnet.WithTCPNoDelay(gnet.TCPNoDelay))
}

func (h *handler) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	if s, ok := c.Context().(*side); ok && s.backend {
		if s.peerS.closed {
			return nil, gnet.Close
		}
		s.peerS.peer = c
		first := s.first
		s.first = nil
		return first, gnet.None
	}
	c.SetContext(&side{})
	return nil, gnet.None
}

func (h *handler) OnTraffic(c gnet.Conn) gnet.Action {
	s := c.Context().(*side)
	data, _ := c.Next(-1)
	if s.peerS == nil {
		return h.headBytes(c, s, data)
	}
	if s.peer == nil { // backend still connecting
		if !s.backend {
			s.peerS.first = append(s.peerS.first, data...)
		}
		return gnet.None
	}
	if s.peerS.closed {
		return gnet.None
	}
	if _, err := s.peer.Write(data); err != nil {
		return gnet.Close
	}
	return gnet.None
}

// headBytes gathers the client's head; once complete it asks gnet for the
// backend connection in this loop.
func (h *handler) headBytes(c gnet.Conn, s *side, data []byte) gnet.Action {
	all, done, tooLong := s.hd.Add(data)
	if tooLong {
		c.Write(head.BadRequest)
		return gnet.Close
	}
	if !done {
		return gnet.None
	}
	bs := &side{peerS: s, peer: c, first: all, backend: true}
	s.peerS = bs
	ctx := gnet.NewContext(context.Background(), bs)
	res, err := c.EventLoop().Register(ctx, h.backend)
	if err != nil {
		log.Printf("gnet: register: %v", err)
		return gnet.Close
	}
	go func() { // gnet reports a failed dial only here
		if r := <-res; r.Err != nil {
			log.Printf("gnet: dial: %v", r.Err)
			c.Close()
		}
	}()
	return gnet.None
}

// OnClose runs when gnet closed c, which it does on c's end of input too:
// a clean end shuts the peer's output (half-close), anything else closes it.
func (h *handler) OnClose(c gnet.Conn, err error) gnet.Action {
	s, ok := c.Context().(*side)
	if !ok {
		return gnet.None
	}
	s.closed = true
	if s.peer == nil || s.peerS == nil || s.peerS.closed {
		return gnet.None
	}
	if errors.Is(err, io.EOF) && s.peer.OutboundBuffered() == 0 {
		if unix.Shutdown(s.peer.Fd(), unix.SHUT_WR) == nil {
			return gnet.None
		}
	}
	s.peer.Close()
	return gnet.None
}
