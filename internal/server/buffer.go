package server

import (
	"errors"
	"io"
	"os"
	"sync"

	"github.com/wsgate/wsgate/internal/backend"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/spool"
)

// The proxy_buffering on path of a response body, as nginx's event pipe:
// a goroutine reads the body from the backend into a spool (proxy_buffers
// in memory, then a temporary file under proxy_temp_path up to
// proxy_max_temp_file_size) and releases the backend connection (to the
// keepalive cache when the body was read whole) the moment the body is
// in; the request's goroutine meanwhile writes the spool to the client
// at the client's pace. With proxy_max_temp_file_size 0 the backend is
// read only as fast as the client takes the body.

// spools reports whether the response body goes through a spool: with
// buffering on, unless the whole body has come with the head already.
func (x *exchange) spools(bc *backend.Conn, resp *http1.Response) bool {
	if !x.buffering() {
		return false
	}
	return resp.ContentLength < 0 || int64(bc.Reader().Buffered()) < resp.ContentLength
}

// spoolBody relays the body from src (the backend's) to dst (the
// client's) through a spool, releasing bc as soon as src is read. It
// returns the bytes written to dst, the first failure (the backend's, the
// temporary file's or the client's) and whether src was read whole. bc
// belongs to the reading goroutine until spoolBody returns; the caller's
// later Release of it does nothing.
func (x *exchange) spoolBody(bc *backend.Conn, resp *http1.Response, src io.Reader, dst io.Writer) (n int64, whole bool, err error) {
	var tempName string // set by the reading goroutine, read once it is done
	sp := spool.New(x.spoolConfig(&tempName))
	nc := bc.Net()
	var mu sync.Mutex
	read, closed := false, false // the goroutine is done with nc; nc was closed under it
	done := make(chan error, 1)
	go func() {
		_, err := sp.ReadFrom(src)
		mu.Lock()
		read = true
		if err == nil && !closed {
			bc.Drained(resp) // with `keepalive`, back to the cache
		}
		mu.Unlock()
		bc.Release(false)
		done <- err
	}()
	n, err = io.Copy(dst, sp)
	if err != nil && x.lc.ProxyBuf.Stores() {
		io.Copy(io.Discard, sp) // the client is gone, the copy on disk is not: read on, as nginx
	}
	if err != nil {
		// The client is gone (or the body failed): stop reading the
		// backend, whose connection cannot be reused mid-body.
		sp.Abort()
		mu.Lock()
		if !read {
			nc.Close()
			closed = true
		}
		mu.Unlock()
	}
	rerr := <-done
	x.spoolDone(sp, tempName, rerr)
	return n, rerr == nil, err
}

// spoolDone closes the spool and logs what nginx logs of its file.
func (x *exchange) spoolDone(sp *spool.Spool, tempName string, rerr error) {
	if tempName != "" {
		x.logRequest(errlog.Warn, x.upstreamOut.addr, "an upstream response is buffered to a temporary file %s while reading upstream", tempName)
	}
	var fe *spool.FileError
	if errors.As(rerr, &fe) || errors.As(sp.OpenError(), &fe) {
		x.logRequest(errlog.Crit, x.upstreamOut.addr, "%s() proxy temporary file under \"%s\" failed (%v)", fe.Op, x.rt.cfg.Abs(x.lc.ProxyBuf.TempPath), fe.Err)
	}
	sp.Close()
}

// spoolConfig sizes the spool from the location: proxy_buffers,
// proxy_busy_buffers_size, proxy_max_temp_file_size and
// proxy_temp_file_write_size; the temporary file's name goes to *name.
func (x *exchange) spoolConfig(name *string) spool.Config {
	b := &x.lc.ProxyBuf
	dir, levels := x.rt.cfg.Abs(b.TempPath), b.TempLevels
	return spool.Config{
		Bufs: x.lc.Buffers[0], BufSize: x.lc.Buffers[1],
		MaxFile: b.MaxTempFile, WriteSize: int(b.TempWriteSize), ReadSize: int(b.BusySize),
		Create: func() (*os.File, error) {
			f, err := unlinkedTemp(dir, levels)
			if err == nil {
				*name = f.Name()
			}
			return f, err
		},
	}
}

// unlinkedTemp creates a proxy temporary file and unlinks it at once, as
// nginx does: it lives as long as its descriptor, so nothing is left
// behind, even after a crash.
func unlinkedTemp(dir string, levels []int) (*os.File, error) {
	f, err := spool.CreateTemp(dir, levels, 0o600)
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name())
	return f, nil
}
