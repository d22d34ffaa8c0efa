package spool

import (
	"errors"
	"io"
	"os"
	"sync"
)

// Config sizes a Spool.
type Config struct {
	Bufs    int // memory buffers (proxy_buffers number), at least 1
	BufSize int // bytes in each (proxy_buffers size), at least 1
	// MaxFile bounds the bytes written to the temporary file over the
	// spool's life (proxy_max_temp_file_size); 0 keeps everything in
	// memory, so the writer goes at the reader's pace.
	MaxFile int64
	// WriteSize is the most bytes one write to the file carries
	// (proxy_temp_file_write_size); at least 1 when MaxFile > 0.
	WriteSize int
	// ReadSize is the most bytes one Read hands out while the writer
	// still writes (proxy_busy_buffers_size); 0: no bound.
	ReadSize int
	// Create opens the temporary file at the first overflow.
	Create func() (*os.File, error)
}

// ErrAborted is ReadFrom's error after Abort.
var ErrAborted = errors.New("spool: reader gone")

// Spool is one response body on its way. Its zero value is not usable;
// see New.
type Spool struct {
	cfg  Config
	mu   sync.Mutex
	cond sync.Cond

	segs    []seg // in order; the reader takes from the front
	mem     int   // memory segments held
	file    *os.File
	fileEnd int64 // bytes written to the file
	scratch []byte

	ended   bool  // the writer is done
	err     error // its error; nil: clean end
	aborted bool
	spilled int64 // bytes that went through the file
	openErr error // the file could not be made: see OpenError
}

// seg is a run of the body: in a memory buffer (buf[pos:end]) or in the
// file (off, n).
type seg struct {
	buf      []byte
	pos, end int
	sealed   bool // the writer fills it no more
	off, n   int64
}

// New returns an empty spool sized by cfg.
func New(cfg Config) *Spool {
	cfg.Bufs, cfg.BufSize = max(cfg.Bufs, 1), max(cfg.BufSize, 1)
	if cfg.MaxFile > 0 {
		cfg.WriteSize = max(cfg.WriteSize, 1)
	}
	s := &Spool{cfg: cfg}
	s.cond.L = &s.mu
	return s
}

// Spilled reports how many bytes went through the temporary file.
func (s *Spool) Spilled() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.spilled
}

// OpenError is the failure to make the temporary file, after which the
// spool kept to memory; nil when none.
func (s *Spool) OpenError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.openErr
}

// ReadFrom copies r into the spool until r ends (nil error) or fails,
// waiting while memory and file are both full. It marks the end for the
// reader before it returns.
func (s *Spool) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	for {
		n, err := s.step(r)
		total += int64(n)
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			s.finish(err)
			return total, err
		}
	}
}

func (s *Spool) finish(err error) {
	s.mu.Lock()
	s.ended, s.err = true, err
	if len(s.segs) > 0 {
		s.segs[len(s.segs)-1].sealed = true
	}
	s.cond.Broadcast()
	s.mu.Unlock()
}

// step reads once from r into memory when a buffer is free, else into the
// file when it may grow.
func (s *Spool) step(r io.Reader) (int, error) {
	s.mu.Lock()
	for !s.aborted && !s.memRoom() && !s.fileRoom() {
		s.cond.Wait()
	}
	if s.aborted {
		s.mu.Unlock()
		return 0, ErrAborted
	}
	if s.memRoom() {
		return s.toMemory(r) // unlocks
	}
	s.mu.Unlock()
	return s.toFile(r)
}

// memRoom reports whether the last buffer has room or a new one may be
// taken.
func (s *Spool) memRoom() bool {
	if t := s.tail(); t != nil && t.buf != nil && !t.sealed {
		return true
	}
	return s.mem < s.cfg.Bufs
}

// fileRoom reports whether the file may grow; called with mu held (a
// failed Create sets MaxFile to 0).
func (s *Spool) fileRoom() bool { return s.fileEnd < s.cfg.MaxFile }

func (s *Spool) tail() *seg {
	if len(s.segs) == 0 {
		return nil
	}
	return &s.segs[len(s.segs)-1]
}

// toMemory reads into the last buffer's free space or a new buffer. It is
// called with mu held and releases it; the reader only touches bytes
// before end, the writer only those after it.
func (s *Spool) toMemory(r io.Reader) (int, error) {
	t := s.tail()
	if t == nil || t.buf == nil || t.sealed {
		if t != nil {
			t.sealed = true
		}
		s.segs = append(s.segs, seg{buf: getBuf(s.cfg.BufSize)})
		s.mem++
		t = s.tail()
	}
	free := t.buf[t.end:]
	s.mu.Unlock()
	n, err := r.Read(free)
	s.mu.Lock()
	t = s.tail() // still the writer's: the reader drops only sealed segments
	t.end += n
	if t.end == len(t.buf) {
		t.sealed = true
	}
	if n > 0 {
		s.cond.Broadcast()
	}
	s.mu.Unlock()
	return n, err
}

// toFile reads up to WriteSize bytes and appends them to the file.
func (s *Spool) toFile(r io.Reader) (int, error) {
	if s.file == nil {
		f, err := s.cfg.Create()
		s.mu.Lock()
		if err != nil {
			// Memory only from now on: the writer goes at the reader's pace.
			s.openErr, s.cfg.MaxFile = &FileError{Op: "open", Err: err}, 0
			s.mu.Unlock()
			return 0, nil
		}
		s.file = f
		s.mu.Unlock()
	}
	if s.scratch == nil {
		s.scratch = make([]byte, s.cfg.WriteSize)
	}
	s.mu.Lock()
	room := min(int64(len(s.scratch)), s.cfg.MaxFile-s.fileEnd)
	s.mu.Unlock()
	n, err := r.Read(s.scratch[:room])
	if n > 0 {
		if _, werr := s.file.WriteAt(s.scratch[:n], s.fileEnd); werr != nil {
			return 0, &FileError{Op: "write", Err: werr}
		}
		s.mu.Lock()
		if t := s.tail(); t != nil {
			t.sealed = true
		}
		s.segs = append(s.segs, seg{off: s.fileEnd, n: int64(n), sealed: true})
		s.fileEnd += int64(n)
		s.spilled += int64(n)
		s.cond.Broadcast()
		s.mu.Unlock()
	}
	return n, err
}

// FileError is a failure of the temporary file.
type FileError struct {
	Op  string // "open", "write" or "read"
	Err error
}

func (e *FileError) Error() string { return e.Op + " temporary file: " + e.Err.Error() }
func (e *FileError) Unwrap() error { return e.Err }

// Read hands out the next bytes, waiting for the writer when none are
// held.
func (s *Spool) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		s.dropSpent()
		if len(s.segs) > 0 && s.segs[0].size() > 0 {
			break
		}
		if s.ended {
			if s.err != nil {
				return 0, s.err
			}
			return 0, io.EOF
		}
		s.cond.Wait()
	}
	if lim := s.cfg.ReadSize; lim > 0 && !s.ended && len(p) > lim {
		p = p[:lim]
	}
	h := &s.segs[0]
	if h.buf != nil {
		n := copy(p, h.buf[h.pos:h.end])
		h.pos += n
		return n, nil
	}
	want := int(min(int64(len(p)), h.n))
	off := h.off
	s.mu.Unlock()
	n, err := s.file.ReadAt(p[:want], off)
	s.mu.Lock()
	h = &s.segs[0]
	h.off += int64(n)
	h.n -= int64(n)
	if n < want && err != nil {
		return n, &FileError{Op: "read", Err: err}
	}
	return n, nil
}

func (g *seg) size() int64 {
	if g.buf != nil {
		return int64(g.end - g.pos)
	}
	return g.n
}

// dropSpent removes the spent segments at the front, giving their
// buffers back and waking a writer waiting for room.
func (s *Spool) dropSpent() {
	i := 0
	for i < len(s.segs) && s.segs[i].sealed && s.segs[i].size() == 0 {
		if b := s.segs[i].buf; b != nil {
			putBuf(b)
			s.mem--
		}
		s.segs[i] = seg{}
		i++
	}
	if i > 0 {
		s.segs = s.segs[i:]
		s.cond.Broadcast()
	}
}

// Abort stops the writer at its next step: the reader is gone.
func (s *Spool) Abort() {
	s.mu.Lock()
	s.aborted = true
	s.cond.Broadcast()
	s.mu.Unlock()
}

// Close gives the buffers back and closes the file. It must follow the
// end of ReadFrom.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.segs {
		if b := s.segs[i].buf; b != nil {
			putBuf(b)
		}
	}
	s.segs, s.mem = nil, 0
	if s.file == nil {
		return nil
	}
	err := s.file.Close()
	s.file = nil
	return err
}

// bufPools holds memory buffers by size: configs use few sizes.
var bufPools sync.Map // int -> *sync.Pool

func getBuf(size int) []byte {
	p, _ := bufPools.LoadOrStore(size, &sync.Pool{})
	if b, ok := p.(*sync.Pool).Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, size)
}

func putBuf(b []byte) {
	if p, ok := bufPools.Load(cap(b)); ok {
		b = b[:cap(b)]
		p.(*sync.Pool).Put(&b)
	}
}
