package server

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// The client leg of a WebSocket over HTTP/2 or HTTP/3, once the pipeline
// has upgraded it: the stream itself, as a net.Conn for the tunnel.
//
// Both adapters keep the tunnel's contract for a connection it owns: Read
// and Write may run at once (one reader, one writer: the tunnel serialises
// its writes), Close may come during either and ends the stream, and
// CloseWrite ends what wsgate sends while the client may still send.
// Addresses are the real connection's.

// writeGuard orders a stream's end after the write in progress: the
// protocols' libraries must not be written after (HTTP/2) or during
// (HTTP/3) the end of the stream, which Close may decide at any moment.
type writeGuard struct {
	mu      sync.Mutex
	writing bool
	ended   bool // no write may start
	owed    bool // the end waits for the write in progress to return
}

// begin reports whether a write may start.
func (g *writeGuard) begin() bool {
	g.mu.Lock()
	ok := !g.ended
	g.writing = ok
	g.mu.Unlock()
	return ok
}

// finish ends a write; it reports whether the stream's end was decided
// meanwhile, for the writer to carry out.
func (g *writeGuard) finish() (owed bool) {
	g.mu.Lock()
	g.writing = false
	owed, g.owed = g.owed, false
	g.mu.Unlock()
	return owed
}

// end stops writes. first is false if the stream had ended already; now
// is false when a write runs, whose finish then carries the end out.
func (g *writeGuard) end() (first, now bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ended {
		return false, false
	}
	g.ended = true
	g.owed = g.writing
	return true, !g.writing
}

// h2Conn is an HTTP/2 stream as a connection: reads from the request
// body, writes to the response, each flushed as a DATA frame. x/net ends
// the stream when its handler returns, so the handler waits on done,
// closed once the stream's end is decided (Close or CloseWrite) and no
// write runs; it then returns, and x/net sends END_STREAM, followed by
// RST_STREAM(NO_ERROR) when the client has not ended its side.
type h2Conn struct {
	w             http.ResponseWriter
	fl            interface{ FlushError() error }
	rc            *http.ResponseController
	body          io.ReadCloser
	local, remote net.Addr
	g             writeGuard
	done          chan struct{}
	closed        chan struct{} // closed by Close
	closeOnce     sync.Once

	// Under g.mu.
	gone    bool        // the handler has returned: w and rc are dead
	wdl     time.Time   // the write deadline; zero for none
	wtimer  *time.Timer // fires at sched, to check wdl
	sched   time.Time
	aborted bool // the deadline passed during a write: the stream was reset
}

func newH2Conn(w http.ResponseWriter, r *http.Request, local, remote net.Addr) *h2Conn {
	fl, _ := w.(interface{ FlushError() error })
	return &h2Conn{w: w, fl: fl, rc: http.NewResponseController(w), body: r.Body, local: local, remote: remote, done: make(chan struct{}), closed: make(chan struct{})}
}

// wait holds the stream's handler until the stream's end is decided and
// no write runs; after it, nothing touches w.
func (c *h2Conn) wait() {
	<-c.done
	c.g.mu.Lock()
	c.gone = true
	if c.wtimer != nil {
		c.wtimer.Stop()
	}
	c.g.mu.Unlock()
}

// Read reads what the client sends. After CloseWrite, x/net resets the
// stream as its handler returns, which breaks the body: that is the end
// of the stream wsgate asked for, an io.EOF. A reset for a write deadline
// breaks it too: the failure is the write's, which the tunnel reports and
// then closes the connection, so the read waits for that Close.
func (c *h2Conn) Read(p []byte) (int, error) {
	n, err := c.body.Read(p)
	if err == nil || err == io.EOF || errors.Is(err, os.ErrDeadlineExceeded) {
		return n, err
	}
	c.g.mu.Lock()
	closedWrite, aborted := c.g.ended, c.aborted
	c.g.mu.Unlock()
	switch {
	case closedWrite:
		err = io.EOF
	case aborted:
		<-c.closed
		err = net.ErrClosed
	}
	return n, err
}

// WaitRead waits for the client's data, or the end Read would report
// (tunnel.ReadWaiter): the body's pipe answers an empty read once it
// holds data.
func (c *h2Conn) WaitRead() error {
	_, err := c.Read(nil)
	return err
}

// Write sends p as DATA and flushes it. A write that outlasts the write
// deadline has the stream reset (x/net's own deadline does the same) and
// returns os.ErrDeadlineExceeded.
func (c *h2Conn) Write(p []byte) (int, error) {
	if !c.g.begin() {
		return 0, net.ErrClosed
	}
	c.g.mu.Lock()
	late := !c.wdl.IsZero() && !time.Now().Before(c.wdl)
	c.g.mu.Unlock()
	var n int
	err := os.ErrDeadlineExceeded
	if !late {
		n, err = c.w.Write(p)
		if err == nil && c.fl != nil {
			err = c.fl.FlushError()
		}
	}
	c.g.mu.Lock()
	if err != nil && c.aborted {
		err = os.ErrDeadlineExceeded
	}
	c.g.mu.Unlock()
	if c.g.finish() {
		close(c.done)
	}
	return n, err
}

// CloseWrite ends the stream's response: the handler returns. The client
// sees the end of the stream; what it still sends is refused by x/net's
// reset, and reads then end.
func (c *h2Conn) CloseWrite() error {
	if first, now := c.g.end(); first && now {
		close(c.done)
	}
	return nil
}

// Close ends the stream. A write in progress is cut off, as closing a
// socket cuts off a write on it: the stream is reset.
func (c *h2Conn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	first, now := c.g.end()
	c.body.Close() // ends a Read in progress
	if !first {
		return nil
	}
	if now {
		close(c.done)
		return nil
	}
	c.g.mu.Lock()
	if !c.gone {
		c.aborted = true
		c.rc.SetWriteDeadline(aLongTimeAgo)
	}
	c.g.mu.Unlock()
	return nil
}

// SetReadDeadline passes the deadline to x/net, where its passing breaks
// the request body for good: the tunnel sets a client read deadline only
// as it closes.
func (c *h2Conn) SetReadDeadline(t time.Time) error {
	c.g.mu.Lock()
	defer c.g.mu.Unlock()
	if c.gone {
		return net.ErrClosed
	}
	return c.rc.SetReadDeadline(t)
}

// SetWriteDeadline keeps the deadline here: the tunnel sets and lifts one
// around every write, and each change of x/net's is a message to the
// connection's goroutine and a timer. One timer of wsgate's checks it and
// resets the stream only when it passes during a write; a write that
// starts after it fails at once.
func (c *h2Conn) SetWriteDeadline(t time.Time) error {
	c.g.mu.Lock()
	defer c.g.mu.Unlock()
	c.wdl = t
	if t.IsZero() || c.gone {
		return nil
	}
	d := time.Until(t)
	if d <= 0 {
		c.expireLocked()
		return nil
	}
	switch {
	case c.wtimer == nil:
		c.wtimer = time.AfterFunc(d, c.checkDeadline)
	case c.sched.IsZero() || t.Before(c.sched):
		c.wtimer.Reset(d)
	default:
		return nil // the timer fires first and re-arms for t
	}
	c.sched = t
	return nil
}

func (c *h2Conn) SetDeadline(t time.Time) error {
	c.SetWriteDeadline(t)
	return c.SetReadDeadline(t)
}

// checkDeadline runs on the timer.
func (c *h2Conn) checkDeadline() {
	c.g.mu.Lock()
	defer c.g.mu.Unlock()
	c.sched = time.Time{}
	if c.wdl.IsZero() || c.gone {
		return
	}
	if d := time.Until(c.wdl); d > 0 {
		c.sched = c.wdl
		c.wtimer.Reset(d)
		return
	}
	c.expireLocked()
}

// expireLocked resets the stream if a write is blocked past the deadline.
func (c *h2Conn) expireLocked() {
	if c.g.writing && !c.aborted {
		c.aborted = true
		c.rc.SetWriteDeadline(aLongTimeAgo)
	}
}

func (c *h2Conn) LocalAddr() net.Addr  { return c.local }
func (c *h2Conn) RemoteAddr() net.Addr { return c.remote }

// aLongTimeAgo is a deadline that has passed.
var aLongTimeAgo = time.Unix(1, 0)

// h3Conn is an HTTP/3 stream taken over from quic-go's server (its
// handler has returned): reads and writes are DATA frames on it, and its
// deadlines are quic-go's. Close ends it as quic-go's server ends a
// request's stream (STOP_SENDING with H3_NO_ERROR, then FIN), or resets
// it when a write was cut off.
type h3Conn struct {
	str           *http3.Stream
	local, remote net.Addr
	g             writeGuard
	failed        bool // the last write failed: FIN would end a DATA frame short
}

func (c *h3Conn) Read(p []byte) (int, error) { return c.str.Read(p) }

// WaitRead waits for the next DATA frame's header, or the end Read would
// report (tunnel.ReadWaiter): quic-go's stream parses frame headers on an
// empty read too.
func (c *h3Conn) WaitRead() error {
	_, err := c.str.Read(nil)
	return err
}

func (c *h3Conn) Write(p []byte) (int, error) {
	if !c.g.begin() {
		return 0, net.ErrClosed
	}
	n, err := c.str.Write(p)
	c.failed = err != nil
	if c.g.finish() {
		c.endSend()
	}
	return n, err
}

// endSend ends the send side: FIN, or a reset after a failed write.
func (c *h3Conn) endSend() {
	if c.failed {
		c.str.CancelWrite(quic.StreamErrorCode(http3.ErrCodeRequestCanceled))
		return
	}
	c.str.Close()
}

// CloseWrite sends FIN: the client may go on sending.
func (c *h3Conn) CloseWrite() error {
	if first, now := c.g.end(); first && now {
		c.endSend()
	}
	return nil
}

func (c *h3Conn) Close() error {
	c.str.CancelRead(quic.StreamErrorCode(http3.ErrCodeNoError))
	first, now := c.g.end()
	switch {
	case now:
		c.endSend()
	case first:
		c.str.SetWriteDeadline(aLongTimeAgo) // the writer ends the stream
	}
	return nil
}

func (c *h3Conn) SetDeadline(t time.Time) error      { return c.str.SetDeadline(t) }
func (c *h3Conn) SetReadDeadline(t time.Time) error  { return c.str.SetReadDeadline(t) }
func (c *h3Conn) SetWriteDeadline(t time.Time) error { return c.str.SetWriteDeadline(t) }
func (c *h3Conn) LocalAddr() net.Addr                { return c.local }
func (c *h3Conn) RemoteAddr() net.Addr               { return c.remote }
