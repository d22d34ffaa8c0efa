package accesslog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultFlush is how long a line may wait in memory when access_log has
// no buffer=: the writer still batches, so the request path makes no
// system call, but lines reach the file promptly.
const DefaultFlush = 100 * time.Millisecond

// defaultBatch is the batch that triggers an immediate write without
// buffer=; minPending is the least memory a writer may hold before Write
// waits.
const (
	defaultBatch = 64 << 10
	minPending   = 1 << 20
)

// ErrClosed is returned by Reopen on a closed Writer.
var ErrClosed = errors.New("accesslog: writer closed")

// Writer is one open log file, shared by every access_log that names its
// path. Lines are appended to memory and written by the Writer's own
// goroutine: when buffer= bytes are pending, after flush= (DefaultFlush
// without buffer=), and on Reopen and Close. When more than the larger of
// 4*buffer and 1 MiB is pending, a writing goroutine waits for the disk
// (counted by Waits) rather than drop the line.
//
// A Writer is safe for concurrent use. Create it with OpenWriter or
// Files.Open; the zero value is not usable. After Close, lines still
// reach the file, appended synchronously, so that connections that
// outlive the reload which removed their log lose nothing.
type Writer struct {
	path string

	mu       sync.Mutex
	taken    sync.Cond // signalled when the goroutine takes the pending lines
	pending  []byte
	spare    []byte
	batch    int           // write as soon as this much is pending
	limit    int           // Write waits while this much is pending
	delay    time.Duration // the longest a line waits; 0: until batch is full
	armed    bool
	closed   bool
	timer    *time.Timer
	waits    atomic.Int64
	onError  func(error)
	kick     chan struct{}
	ctl      chan ctlReq
	done     chan struct{}
	closeErr error

	// Owned by the goroutine.
	out     io.Writer
	file    *os.File // nil for the standard streams, which are never closed
	errTime time.Time
}

type ctlReq struct {
	reopen bool // else close
	reply  chan error
}

// OpenWriter opens path for appending (creating it) and starts its writer
// goroutine. bufSize and flush are access_log's buffer= and flush=
// (0 when absent); "/dev/stdout" and "/dev/stderr" write to the process's
// streams. A relative path is opened relative to the working directory.
func OpenWriter(path string, bufSize int, flush time.Duration) (*Writer, error) {
	return openWriter(path, bufSize, flush, nil)
}

func openWriter(path string, bufSize int, flush time.Duration, onError func(error)) (*Writer, error) {
	if err := checkParams(path, bufSize, flush); err != nil {
		return nil, err
	}
	out, f, err := openPath(path)
	if err != nil {
		return nil, err
	}
	w := &Writer{
		path:    path,
		onError: onError,
		out:     out,
		file:    f,
		kick:    make(chan struct{}, 1),
		ctl:     make(chan ctlReq),
		done:    make(chan struct{}),
	}
	w.taken.L = &w.mu
	w.setParams(bufSize, flush)
	w.timer = time.AfterFunc(time.Hour, w.wake)
	w.timer.Stop()
	go w.run()
	return w, nil
}

func checkParams(path string, bufSize int, flush time.Duration) error {
	if bufSize < 0 {
		return fmt.Errorf("invalid buffer size %d", bufSize)
	}
	if flush < 0 {
		return fmt.Errorf("invalid flush time %v", flush)
	}
	if flush > 0 && bufSize == 0 {
		return fmt.Errorf("no buffer is defined for access_log %q", path)
	}
	return nil
}

func openPath(path string) (io.Writer, *os.File, error) {
	switch path {
	case "/dev/stdout":
		return os.Stdout, nil, nil
	case "/dev/stderr", "stderr":
		return os.Stderr, nil, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("open() %q failed (%w)", path, err)
	}
	return f, f, nil
}

// setParams applies buffer= and flush=; a reload may change them on a
// Writer it keeps.
func (w *Writer) setParams(bufSize int, flush time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.batch, w.delay = bufSize, flush
	if bufSize == 0 {
		w.batch, w.delay = defaultBatch, DefaultFlush
	}
	w.limit = max(4*w.batch, minPending)
	w.taken.Broadcast() // a larger limit may release waiters
}

// Path returns the path the Writer was opened with.
func (w *Writer) Path() string { return w.path }

// Waits reports how many lines had to wait because the file fell behind.
func (w *Writer) Waits() int64 { return w.waits.Load() }

func (w *Writer) wake() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// write queues one complete line (with its newline). p is copied.
func (w *Writer) write(p []byte) {
	w.mu.Lock()
	if len(w.pending) > 0 && len(w.pending)+len(p) > w.limit && !w.closed {
		w.waits.Add(1)
		for len(w.pending) > 0 && len(w.pending)+len(p) > w.limit && !w.closed {
			w.wake()
			w.taken.Wait()
		}
	}
	if w.closed {
		w.mu.Unlock()
		w.writeClosed(p)
		return
	}
	w.pending = append(w.pending, p...)
	if len(w.pending) >= w.batch {
		w.wake()
	} else if !w.armed && w.delay > 0 {
		w.armed = true
		w.timer.Reset(w.delay)
	}
	w.mu.Unlock()
}

// writeClosed appends p directly: slow, but only lines of a log that a
// reload removed while their connection lived take this path.
func (w *Writer) writeClosed(p []byte) {
	out, f, err := openPath(w.path)
	if err == nil {
		_, err = out.Write(p)
		if f != nil {
			f.Close()
		}
	}
	if err != nil && w.onError != nil {
		w.onError(fmt.Errorf("write() to %q failed (%w)", w.path, err))
	}
}

// take hands the pending lines to the goroutine and releases waiters.
func (w *Writer) take() []byte {
	w.mu.Lock()
	b := w.pending
	w.pending = w.spare[:0]
	w.spare = nil
	w.armed = false
	w.taken.Broadcast()
	w.mu.Unlock()
	return b
}

// give returns a written batch's memory for reuse; a batch grown by a
// burst is dropped rather than held forever.
func (w *Writer) give(b []byte) {
	w.mu.Lock()
	if cap(b) <= 2*w.limit {
		w.spare = b[:0]
	}
	w.mu.Unlock()
}

func (w *Writer) run() {
	defer close(w.done)
	for {
		select {
		case <-w.kick:
			w.flush()
		case r := <-w.ctl:
			if r.reopen {
				r.reply <- w.reopen()
				continue
			}
			w.flush()
			var err error
			if w.file != nil {
				err = w.file.Close()
			}
			r.reply <- err
			return
		}
	}
}

func (w *Writer) flush() {
	b := w.take()
	if len(b) > 0 {
		if _, err := w.out.Write(b); err != nil {
			w.report(err)
		}
	}
	w.give(b)
}

// report passes a write error on, at most once a minute, as nginx does.
func (w *Writer) report(err error) {
	now := time.Now()
	if w.onError == nil || now.Sub(w.errTime) < time.Minute {
		return
	}
	w.errTime = now
	w.onError(fmt.Errorf("write() to %q failed (%w)", w.path, err))
}

func (w *Writer) reopen() error {
	if w.file == nil {
		w.flush()
		return nil
	}
	out, f, err := openPath(w.path)
	// Lines queued before the reopen belong to the old file.
	w.flush()
	if err != nil {
		return err
	}
	old := w.file
	w.out, w.file = out, f
	return old.Close()
}

// Reopen writes the pending lines to the current file, then reopens the
// path (USR1, after logrotate renamed the file). If the path cannot be
// opened the old file is kept, so no line is lost, and the error returned.
func (w *Writer) Reopen() error {
	return w.control(true)
}

// Close writes the pending lines, closes the file and stops the goroutine.
// It is idempotent.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.done
		return nil
	}
	w.closed = true
	w.taken.Broadcast()
	w.mu.Unlock()
	w.timer.Stop()
	return w.control(false)
}

func (w *Writer) control(reopen bool) error {
	reply := make(chan error, 1)
	select {
	case w.ctl <- ctlReq{reopen: reopen, reply: reply}:
		return <-reply
	case <-w.done:
		return ErrClosed
	}
}
