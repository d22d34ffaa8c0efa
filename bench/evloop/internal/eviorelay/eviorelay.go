// Package eviorelay is the relay on github.com/tidwall/evio. evio serves
// accepted connections only: it cannot connect out, register a foreign
// socket, or shut a socket's output, and its Conn does not expose the
// descriptor. So the client side runs in evio's loops (NumLoops =
// GOMAXPROCS) while the backend side is a net.Conn: dialed by a goroutine,
// read by a goroutine that hands the bytes to the loop with Conn.Wake, and
// written inline from the loop (a slow backend stalls the loop).
package eviorelay

import (
	"io"
	"log"
	"net"
	"runtime"
	"sync"

	"github.com/tidwall/evio"

	"github.com/wsgate/wsgate/bench/evloop/internal/head"
)

// tunnel is one client and its backend connection.
type tunnel struct {
	hd head.Accumulator // loop only

	mu       sync.Mutex
	back     *net.TCPConn
	pending  []byte // client bytes for the backend until it connects
	toClient []byte // backend bytes for the client until the loop takes them
	backEOF  bool   // the backend's output ended: close the client
	closed   bool   // the client is gone
	dialing  bool
}

// Run serves listen until evio fails.
func Run(listen, backend string) error {
	var ev evio.Events
	ev.NumLoops = runtime.GOMAXPROCS(0)
	ev.LoadBalance = evio.RoundRobin
	ev.Opened = func(c evio.Conn) ([]byte, evio.Options, evio.Action) {
		c.SetContext(&tunnel{})
		return nil, evio.Options{ReuseInputBuffer: true}, evio.None
	}
	ev.Data = func(c evio.Conn, in []byte) ([]byte, evio.Action) {
		t := c.Context().(*tunnel)
		if in == nil {
			return t.wake()
		}
		return t.clientBytes(c, backend, in)
	}
	ev.Closed = func(c evio.Conn, err error) evio.Action {
		c.Context().(*tunnel).clientGone(err)
		return evio.None
	}
	return evio.Serve(ev, "tcp://"+listen+"?reuseport=true")
}

// wake hands the loop what the backend sent; once the backend's output
// ended, evio closes the client after writing it (it has no half-close).
func (t *tunnel) wake() ([]byte, evio.Action) {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := t.toClient
	t.toClient = nil
	if t.backEOF {
		return out, evio.Close
	}
	return out, evio.None
}

func (t *tunnel) clientBytes(c evio.Conn, backend string, in []byte) ([]byte, evio.Action) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if b := t.back; b != nil {
		// The write blocks the loop, but not with mu held: the backend's
		// reader needs mu to hand over what the backend echoes meanwhile.
		t.mu.Unlock()
		_, err := b.Write(in)
		t.mu.Lock()
		if err != nil {
			return nil, evio.Close
		}
		return nil, evio.None
	}
	if t.dialing {
		t.pending = append(t.pending, in...)
		return nil, evio.None
	}
	all, done, tooLong := t.hd.Add(in)
	if tooLong {
		return head.BadRequest, evio.Close
	}
	if done {
		t.dialing, t.pending = true, all
		go t.dial(c, backend)
	}
	return nil, evio.None
}

// dial connects the backend, writes what the client sent so far, and then
// reads the backend until it ends.
func (t *tunnel) dial(c evio.Conn, backend string) {
	nc, err := net.Dial("tcp", backend)
	if err != nil {
		log.Printf("evio: dial: %v", err)
		t.backendDone(c)
		return
	}
	b := nc.(*net.TCPConn)
	defer b.Close()
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	_, err = b.Write(t.pending)
	t.pending, t.back = nil, b
	t.mu.Unlock()
	if err == nil {
		t.readBackend(c, b)
	}
	t.backendDone(c)
}

func (t *tunnel) readBackend(c evio.Conn, b *net.TCPConn) {
	buf := make([]byte, 16<<10)
	for {
		n, err := b.Read(buf)
		if n > 0 {
			t.mu.Lock()
			gone := t.closed
			t.toClient = append(t.toClient, buf[:n]...)
			t.mu.Unlock()
			if gone {
				return
			}
			c.Wake()
		}
		if err != nil {
			return
		}
	}
}

func (t *tunnel) backendDone(c evio.Conn) {
	t.mu.Lock()
	t.backEOF = true
	gone := t.closed
	t.mu.Unlock()
	if !gone {
		c.Wake()
	}
}

// clientGone runs when evio closed the client, which it does on the
// client's end of input too: a clean end shuts the backend's output, an
// error closes it.
func (t *tunnel) clientGone(err error) {
	t.mu.Lock()
	t.closed = true
	b := t.back
	t.mu.Unlock()
	if b == nil {
		return
	}
	if err == nil || err == io.EOF {
		b.CloseWrite()
		return
	}
	b.Close()
}
