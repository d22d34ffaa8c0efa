// Package nbiorelay is the relay on github.com/lesismal/nbio: NPoller =
// GOMAXPROCS pollers, accepting on a net.Listener, reading in the poller
// goroutines; the backend is connected with Engine.DialAsync, a
// non-blocking connect whose completion the poller reports. A backend
// connection lands on the poller its descriptor hashes to, not necessarily
// the client's, so the tunnel's state is guarded by a mutex.
package nbiorelay

import (
	"errors"
	"io"
	"log"
	"runtime"
	"sync"
	"syscall"

	"github.com/lesismal/nbio"

	"github.com/wsgate/wsgate/bench/evloop/internal/head"
)

// tunnel is one client and its backend.
type tunnel struct {
	mu            sync.Mutex
	client, back  *nbio.Conn
	hd            head.Accumulator
	pending       []byte // client bytes (the head first) until the backend connects
	dialing       bool
	clientEOF     bool // the client's input ended while the backend was connecting
	clientClosed  bool
	backendClosed bool
}

// end is a connection's session: its tunnel and which side it is.
type end struct {
	t       *tunnel
	backend bool
}

// Run serves listen until the engine stops.
func Run(listen, backend string) error {
	g := nbio.NewEngine(nbio.Config{Network: "tcp", Addrs: []string{listen}, NPoller: runtime.GOMAXPROCS(0)})
	g.OnData(func(c *nbio.Conn, data []byte) { onData(g, backend, c, data) })
	g.OnClose(onClose)
	if err := g.Start(); err != nil {
		return err
	}
	g.Wait()
	return errors.New("nbio engine stopped")
}

func onData(g *nbio.Engine, backend string, c *nbio.Conn, data []byte) {
	e, _ := c.Session().(*end)
	if e == nil {
		e = &end{t: &tunnel{client: c}}
		c.SetSession(e)
	}
	t := e.t
	t.mu.Lock()
	if e.backend {
		peer := t.client
		t.mu.Unlock()
		peer.Write(data)
		return
	}
	if t.back == nil {
		t.clientBytes(g, backend, data)
		t.mu.Unlock()
		return
	}
	peer := t.back
	t.mu.Unlock()
	peer.Write(data)
}

// clientBytes gathers the head, then dials; bytes that come while the
// backend connects wait in pending. Called with t.mu held.
func (t *tunnel) clientBytes(g *nbio.Engine, backend string, data []byte) {
	if t.dialing {
		t.pending = append(t.pending, data...)
		return
	}
	all, done, tooLong := t.hd.Add(data)
	if tooLong {
		t.client.Write(head.BadRequest)
		t.client.Close()
		return
	}
	if !done {
		return
	}
	t.dialing, t.pending = true, all
	err := g.DialAsync("tcp", backend, func(b *nbio.Conn, err error) { t.connected(b, err) })
	if err != nil {
		log.Printf("nbio: dial: %v", err)
		t.client.Close()
	}
}

// connected runs in the backend's poller once its connect ended.
func (t *tunnel) connected(b *nbio.Conn, err error) {
	if err != nil {
		log.Printf("nbio: connect: %v", err)
		t.client.Close()
		return
	}
	b.SetSession(&end{t: t, backend: true})
	t.mu.Lock()
	t.back = b
	first := t.pending
	t.pending = nil
	gone, eof := t.clientClosed, t.clientEOF
	t.mu.Unlock()
	b.Write(first)
	switch {
	case eof:
		shutWrite(b)
	case gone:
		b.Close()
	}
}

// onClose runs when nbio closed c, which it does on c's end of input too: a
// clean end shuts the peer's output (half-close), anything else closes it.
func onClose(c *nbio.Conn, err error) {
	e, _ := c.Session().(*end)
	if e == nil {
		return
	}
	t := e.t
	t.mu.Lock()
	var peer *nbio.Conn
	var peerClosed bool
	if e.backend {
		t.backendClosed = true
		peer, peerClosed = t.client, t.clientClosed
	} else {
		t.clientClosed = true
		t.clientEOF = err == nil || errors.Is(err, io.EOF)
		peer, peerClosed = t.back, t.backendClosed
	}
	t.mu.Unlock()
	if peer == nil || peerClosed {
		return
	}
	if err == nil || errors.Is(err, io.EOF) {
		shutWrite(peer)
		return
	}
	peer.Close()
}

func shutWrite(c *nbio.Conn) {
	rc, err := c.SyscallConn()
	if err == nil {
		rc.Control(func(fd uintptr) { err = syscall.Shutdown(int(fd), syscall.SHUT_WR) })
	}
	if err != nil {
		c.Close()
	}
}
