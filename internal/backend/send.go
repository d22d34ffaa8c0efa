package backend

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/sockio"
)

// Phase is where a peer failed, in nginx's words for the error log.
type Phase uint8

const (
	Connecting  Phase = iota // "connecting to upstream"
	Sending                  // "sending request to upstream"
	Reading                  // "reading response header from upstream"
	Handshaking              // "SSL handshaking to upstream"
)

func (p Phase) String() string {
	switch p {
	case Connecting:
		return "connecting to upstream"
	case Sending:
		return "sending request to upstream"
	case Handshaking:
		return "SSL handshaking to upstream"
	}
	return "reading response header from upstream"
}

// Error is a failure of the peer: its connection could not be made, took
// no request, or gave no valid response head.
type Error struct {
	Phase Phase
	Err   error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Request is what Send writes to the peer.
type Request struct {
	Head []byte
	// Body is read to io.EOF after the head; nil sends no body. Its errors
	// are returned by Send unchanged.
	Body    io.Reader
	Chunked bool // send Body with the chunked coding (the head says so)
	// KeepAlive lets a drained connection go back to the pool (an
	// HTTP/1.1 request whose head does not say "Connection: close").
	KeepAlive   bool
	Method      string // the request's method, for the response's framing
	HeadLimit   int    // proxy_buffer_size: the largest response head
	SendTimeout time.Duration
	ReadTimeout time.Duration
}

// Send writes r and returns the response head (a 101 or a final answer;
// 100 Continue and other informational answers are skipped). On a
// connection from the pool that fails as a peer's closed idle connection
// does, before any of the body was read, the request goes again over a
// fresh connection, once. After a nil error the read deadline is
// proxy_read_timeout from the last write.
func (c *Conn) Send(r *Request) (*http1.Response, error) {
	if c.t.Idle != nil {
		c.keepAlive = r.KeepAlive && !asksClose(r.Head)
	}
	resp, bodyRead, err := c.exchange(r)
	if err != nil && c.uses > 0 && !bodyRead && stale(err) {
		if err = c.redial(); err == nil {
			resp, _, err = c.exchange(r)
		}
	}
	return resp, err
}

// exchange is one go of Send over the current connection; bodyRead reports
// that the body's reading had begun.
func (c *Conn) exchange(r *Request) (resp *http1.Response, bodyRead bool, err error) {
	if sc := rawConn(c.tc); c.uses == 0 && r.Body == nil && sc != nil {
		err = c.sendAwait(r, sc)
	} else {
		bodyRead, err = c.write(r)
	}
	if err != nil {
		return nil, bodyRead, err
	}
	resp, err = c.readHead(r)
	return resp, r.Body != nil, err
}

// write sends the head and the body, each write under send_timeout, then
// arms proxy_read_timeout.
func (c *Conn) write(r *Request) (bodyRead bool, err error) {
	c.tc.SetWriteDeadline(time.Now().Add(r.SendTimeout))
	if _, err := c.tc.Write(r.Head); err != nil {
		return false, &Error{Phase: Sending, Err: err}
	}
	if r.Body != nil {
		if err := sendBody(&sendWriter{c: c.tc, d: r.SendTimeout}, r); err != nil {
			return true, err
		}
	}
	c.tc.SetWriteDeadline(time.Time{})
	c.tc.SetReadDeadline(time.Now().Add(r.ReadTimeout))
	return r.Body != nil, nil
}

// readHead reads the response head under proxy_read_timeout.
func (c *Conn) readHead(r *Request) (*http1.Response, error) {
	for {
		resp, err := http1.ReadResponse(c.br, r.Method, r.HeadLimit)
		if err != nil {
			return nil, &Error{Phase: Reading, Err: err}
		}
		if resp.Status < 100 || resp.Status >= 200 || resp.Status == 101 {
			return resp, nil
		}
	}
}

// sendWriter writes to the peer, re-arming send_timeout before each write
// as nginx's timer between two successive writes; its errors are the
// peer's.
type sendWriter struct {
	c net.Conn
	d time.Duration
}

func (w *sendWriter) Write(p []byte) (int, error) {
	w.c.SetWriteDeadline(time.Now().Add(w.d))
	n, err := w.c.Write(p)
	if err != nil {
		return n, &Error{Phase: Sending, Err: err}
	}
	return n, nil
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// sendBody copies r.Body to w; an error of r.Body comes back unchanged.
func sendBody(w *sendWriter, r *Request) error {
	var dst io.Writer = w
	var cw io.WriteCloser
	if r.Chunked {
		cw = http1.NewChunkedWriter(w)
		dst = cw
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	for {
		n, rerr := r.Body.Read(buf)
		if n > 0 {
			if _, err := dst.Write(buf[:n]); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	if cw != nil {
		return cw.Close()
	}
	return nil
}

// sendAwait sends a request without a body on a fresh connection, then
// waits until the answer begins to arrive, all within one RawConn read. A
// Write then a Read would try the read at once and, the backend not having
// answered yet, get EAGAIN: a wasted system call per request. Waiting
// inside the same RawConn read cannot miss the answer, as the poller's read
// readiness is reset before the head is written. The head needs no
// send_timeout when the socket takes it whole, as a new socket's empty
// buffer does; any rest goes through Write under send_timeout. The wait is
// under proxy_read_timeout; if it ends in an error (a timeout, a closed
// socket), the read that follows reports it.
func (c *Conn) sendAwait(r *Request, sc syscall.Conn) error {
	bc := c.tc
	bc.SetReadDeadline(time.Now().Add(r.ReadTimeout))
	rc, err := sc.SyscallConn()
	if err != nil {
		return &Error{Phase: Sending, Err: err}
	}
	w := headWriters.Get().(*headWriter)
	w.head, w.sent = r.Head, false
	rc.Read(w.fn)
	rest, werr := w.head, w.err
	w.head, w.err = nil, nil
	headWriters.Put(w)
	if werr != nil {
		return &Error{Phase: Sending, Err: werr}
	}
	if len(rest) > 0 {
		bc.SetWriteDeadline(time.Now().Add(r.SendTimeout))
		_, err := bc.Write(rest)
		bc.SetWriteDeadline(time.Time{})
		bc.SetReadDeadline(time.Now().Add(r.ReadTimeout))
		if err != nil {
			return &Error{Phase: Sending, Err: err}
		}
	}
	return nil
}

// headWriter is sendAwait's RawConn callback and its state. A method
// value passed to the RawConn escapes to the heap, so the writers come
// from a pool, each with ready bound once in fn.
type headWriter struct {
	head []byte // what is still to be written
	sent bool   // head is written: a call now means the answer is here
	err  error
	fn   func(fd uintptr) bool
}

var headWriters = sync.Pool{New: func() any {
	w := new(headWriter)
	w.fn = w.ready
	return w
}}

func (w *headWriter) ready(fd uintptr) bool {
	if w.sent {
		return true // readable (or a spurious wakeup: the read that follows waits again)
	}
	for len(w.head) > 0 {
		n, err := sockio.Send(int(fd), w.head)
		switch {
		case err == syscall.EINTR:
		case err == syscall.EAGAIN:
			return true // the socket's buffer is full: the caller writes the rest
		case err != nil:
			w.err = os.NewSyscallError("write", err)
			return true
		default:
			w.head = w.head[n:]
		}
	}
	w.sent = true
	return false // wait for the answer
}

// asksClose reports whether a request head says "Connection: close".
func asksClose(head []byte) bool {
	for rest := head; len(rest) > 0; {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		k, v, ok := bytes.Cut(line, []byte(":"))
		if ok && bytes.EqualFold(bytes.TrimSpace(k), []byte("Connection")) && bytes.Contains(bytes.ToLower(v), []byte("close")) {
			return true
		}
	}
	return false
}

// IsPeer reports whether err is a failure of the peer rather than of the
// request body's source.
func IsPeer(err error) bool {
	var e *Error
	return errors.As(err, &e)
}
