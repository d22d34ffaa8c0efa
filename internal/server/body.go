package server

import (
	"errors"
	"io"
	"os"
	"syscall"

	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/proxy"
)

// requestBody is a request body on its way upstream. With
// proxy_request_buffering on (and always for a chunked body to an HTTP/1.0
// backend) it is read whole before any backend is contacted: in memory up
// to client_body_buffer_size, the rest in an unlinked temporary file under
// client_body_temp_path; it is then sent with a Content-Length and can be
// sent again to the next peer. Otherwise it streams from the client, once.
type requestBody struct {
	framing proxy.Body
	mem     []byte
	file    *os.File  // the spill-over: mem first, then the file's contents
	stream  io.Reader // the client's body when it is not buffered
	parts   bodyReader
}

// A nil *requestBody is a request without a body.

func (b *requestBody) chunked() bool  { return b != nil && b.framing.Chunked }
func (b *requestBody) streamed() bool { return b != nil && b.stream != nil }

// reader returns the body from its start, for one try; nil for no body.
func (b *requestBody) reader() io.Reader {
	switch {
	case b == nil:
		return nil
	case b.stream != nil:
		return b.stream
	case b.mem == nil:
		return nil
	}
	b.parts = bodyReader{mem: b.mem, file: b.file}
	if b.file != nil {
		b.file.Seek(0, io.SeekStart)
	}
	return &b.parts
}

func (b *requestBody) close() {
	if b != nil && b.file != nil {
		b.file.Close()
		b.file = nil
	}
}

// bodyReader reads a buffered body: the memory part, then the file.
type bodyReader struct {
	mem  []byte
	file *os.File
}

func (r *bodyReader) Read(p []byte) (int, error) {
	if len(r.mem) > 0 {
		n := copy(p, r.mem)
		r.mem = r.mem[n:]
		return n, nil
	}
	if r.file == nil {
		return 0, io.EOF
	}
	return r.file.Read(p)
}

// prepareBody buffers or streams the request body; a status other than 0
// refuses the request.
func (x *exchange) prepareBody(b *requestBody) int {
	b.framing = proxy.Body{Length: x.req.ContentLength}
	if !x.lc.RequestBuffering && (!x.req.Chunked || x.lc.ProxyHTTPVersion == "1.1") {
		b.stream = x.clientBody()
		b.framing.Chunked = x.req.Chunked
		return 0
	}
	n, status := x.bufferBody(b)
	if status == 0 {
		x.bodyRead = true
		b.framing = proxy.Body{Length: n}
		x.keepBody(b)
	}
	return status
}

// bufferBody reads the whole body, bounded by client_max_body_size, and
// returns its length.
func (x *exchange) bufferBody(b *requestBody) (int64, int) {
	size := x.lc.ClientBodyBuffer
	if x.req.ContentLength >= 0 && x.req.ContentLength < size {
		size = x.req.ContentLength
	}
	r := x.clientBody()
	buf := make([]byte, size+1) // one more: does the body go on?
	n, err := io.ReadFull(r, buf)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return 0, bodyStatus(err)
	}
	b.mem = buf[:n]
	if err != nil {
		return int64(n), 0 // the whole body fits
	}
	return x.spill(b, r)
}

// spill writes the body's rest (after mem) to an unlinked temporary file;
// the client's reader bounds it by client_max_body_size.
func (x *exchange) spill(b *requestBody, r io.Reader) (int64, int) {
	f, err := x.tempFile()
	if err != nil {
		x.logRequest(errlog.Crit, "", "open() client body temporary file failed (%v)", err)
		return 0, 500
	}
	b.file = f
	n, err := io.Copy(f, r)
	var be *bodyError
	switch {
	case errors.As(err, &be):
		return 0, bodyStatus(err)
	case err != nil:
		x.logRequest(errlog.Crit, "", "write() to client body temporary file failed (%v)", err)
		return 0, 500
	}
	return int64(len(b.mem)) + n, 0
}

// tempFile creates a file under client_body_temp_path and unlinks it at
// once, as nginx does: it lives only as long as its descriptor.
func (x *exchange) tempFile() (*os.File, error) {
	dir := x.rt.cfg.Abs(x.lc.ClientBodyTemp)
	f, err := os.CreateTemp(dir, "body")
	if errors.Is(err, os.ErrNotExist) {
		if err = os.MkdirAll(dir, 0o700); err == nil {
			f, err = os.CreateTemp(dir, "body")
		}
	}
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name())
	return f, nil
}

func (x *exchange) tooLarge(n int64) {
	x.logRequest(errlog.Error, "", "client intended to send too large body: %d bytes", n)
	x.close = true
}

// clientBody reads the request body under client_body_timeout, re-armed
// before each read as nginx's timer between two successive reads. Its
// errors are *bodyError: the client's, never a backend's.
func (x *exchange) clientBody() io.Reader {
	left := int64(-1)
	if x.req.Chunked && x.lc.ClientMaxBody > 0 {
		left = x.lc.ClientMaxBody // a Content-Length was checked before
	}
	return &clientBodyReader{r: deadlineReader{r: x.req.Body(x.conn.br), c: x.conn.c, d: x.lc.Client.BodyTimeout}, left: left, length: &x.vc.ReqLength}
}

// clientBodyReader types the client's errors and, for a chunked body,
// enforces client_max_body_size as the body streams.
type clientBodyReader struct {
	r      deadlineReader
	left   int64  // bytes the body may still have; -1: no bound here
	length *int64 // $request_length, which counts the body read, as nginx
}

var errBodyTooLarge = errors.New("client intended to send too large chunked body")

func (c *clientBodyReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.length += int64(n)
	if c.left >= 0 {
		if c.left -= int64(n); c.left < 0 {
			return n + int(c.left), &bodyError{errBodyTooLarge} // nothing past the limit
		}
	}
	if err != nil && err != io.EOF {
		err = &bodyError{err}
	}
	return n, err
}

// bodyError is a failure reading the request body from the client.
type bodyError struct{ err error }

func (e *bodyError) Error() string { return e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

// bodyStatus is the status for a failed request body: 408 after
// client_body_timeout, 499 for a client that left, 400 for a malformed
// body.
func bodyStatus(err error) int {
	switch {
	case errors.Is(err, errBodyTooLarge):
		return 413
	case isTimeout(err):
		return 408
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return 499
	}
	return 400
}

// bodyFailed ends a request whose body could not be read: the status is
// logged, and an answer sent unless the client has left. The connection
// is not reused (the rest of the body is unread).
func (x *exchange) bodyFailed(status int) bool {
	x.close = true
	switch status {
	case 499:
		x.logRequest(errlog.Info, "", "client prematurely closed connection while reading client request body")
	case 408:
		x.logRequest(errlog.Info, "", "client timed out (110: Connection timed out) while reading client request body")
	case 400:
		x.logRequest(errlog.Info, "", "client sent invalid chunked body while reading client request body")
	case 413:
		x.logRequest(errlog.Error, "", "client intended to send too large chunked body")
	}
	if status != 499 {
		return x.errorPage(status)
	}
	x.status, x.vc.Status = 499, 499
	x.done()
	return false
}
