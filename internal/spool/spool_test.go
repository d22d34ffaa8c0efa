package spool

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// source hands out data in pieces of random size and counts what it gave.
type source struct {
	data []byte
	rnd  *rand.Rand
	n    atomic.Int64
	err  error // after the data; nil: io.EOF
}

func (s *source) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		if s.err != nil {
			return 0, s.err
		}
		return 0, io.EOF
	}
	k := min(len(p), len(s.data), 1+s.rnd.Intn(3000))
	copy(p, s.data[:k])
	s.data = s.data[k:]
	s.n.Add(int64(k))
	return k, nil
}

func payload(n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(1)).Read(b)
	return b
}

func tempCreate(t *testing.T, made *atomic.Int32) func() (*os.File, error) {
	return func() (*os.File, error) {
		made.Add(1)
		return os.CreateTemp(t.TempDir(), "spool")
	}
}

func TestOrderThroughMemoryAndFile(t *testing.T) {
	for _, cfg := range []Config{
		{Bufs: 2, BufSize: 1024, MaxFile: 1 << 30, WriteSize: 700},
		{Bufs: 8, BufSize: 4096, MaxFile: 10000, WriteSize: 8192},
		{Bufs: 1, BufSize: 1, MaxFile: 0},
		{Bufs: 3, BufSize: 512, MaxFile: 1 << 20, WriteSize: 512, ReadSize: 100},
	} {
		var made atomic.Int32
		cfg.Create = tempCreate(t, &made)
		want := payload(300_000)
		src := &source{data: bytes.Clone(want), rnd: rand.New(rand.NewSource(2))}
		s := New(cfg)
		done := make(chan error, 1)
		go func() { _, err := s.ReadFrom(src); done <- err }()
		var got bytes.Buffer
		rd := rand.New(rand.NewSource(3))
		buf := make([]byte, 5000)
		for {
			n, err := s.Read(buf[:1+rd.Intn(len(buf))])
			got.Write(buf[:n])
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("%+v: body differs (%d bytes of %d)", cfg, got.Len(), len(want))
		}
		if cfg.MaxFile == 0 && made.Load() != 0 {
			t.Fatalf("a file was made with MaxFile 0")
		}
		if sp := s.Spilled(); sp > cfg.MaxFile {
			t.Fatalf("%d bytes spilled, over %d", sp, cfg.MaxFile)
		}
		s.Close()
	}
}

// With room in the file for the whole body, the writer ends before the
// reader takes a byte; memory holds only the buffers.
func TestWriterFinishesAhead(t *testing.T) {
	var made atomic.Int32
	s := New(Config{Bufs: 4, BufSize: 1000, MaxFile: 1 << 20, WriteSize: 4096, Create: tempCreate(t, &made)})
	want := payload(200_000)
	n, err := s.ReadFrom(&source{data: bytes.Clone(want), rnd: rand.New(rand.NewSource(4))})
	if err != nil || n != int64(len(want)) {
		t.Fatalf("ReadFrom = %d, %v", n, err)
	}
	if s.mem > 4 || s.Spilled() < int64(len(want))-4000 || made.Load() != 1 {
		t.Fatalf("mem %d buffers, spilled %d, files %d", s.mem, s.Spilled(), made.Load())
	}
	got, err := io.ReadAll(s)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("ReadAll: %d bytes, %v", len(got), err)
	}
	s.Close()
}

// Without a file the writer stays at most the memory buffers ahead of the
// reader.
func TestNoFileKeepsPace(t *testing.T) {
	const bufs, size = 3, 1000
	s := New(Config{Bufs: bufs, BufSize: size})
	src := &source{data: payload(100_000), rnd: rand.New(rand.NewSource(5))}
	go s.ReadFrom(src)
	var read int64
	buf := make([]byte, 700)
	for {
		n, err := s.Read(buf)
		read += int64(n)
		if ahead := src.n.Load() - read; ahead > bufs*size {
			t.Fatalf("writer %d bytes ahead of the reader", ahead)
		}
		if err == io.EOF {
			break
		}
	}
	if read != 100_000 {
		t.Fatalf("read %d", read)
	}
	s.Close()
}

func TestSourceErrorReachesReader(t *testing.T) {
	boom := errors.New("boom")
	s := New(Config{Bufs: 2, BufSize: 100})
	go s.ReadFrom(&source{data: payload(150), rnd: rand.New(rand.NewSource(6)), err: boom})
	got, err := io.ReadAll(s)
	if !errors.Is(err, boom) || len(got) != 150 {
		t.Fatalf("ReadAll: %d bytes, %v", len(got), err)
	}
	s.Close()
}

func TestAbortReleasesWriter(t *testing.T) {
	s := New(Config{Bufs: 1, BufSize: 10})
	done := make(chan error, 1)
	go func() {
		_, err := s.ReadFrom(&source{data: payload(1000), rnd: rand.New(rand.NewSource(7))})
		done <- err
	}()
	s.Abort()
	if err := <-done; !errors.Is(err, ErrAborted) {
		t.Fatalf("ReadFrom after Abort: %v", err)
	}
	s.Close()
}

// A file that cannot be made leaves the spool to memory: the body still
// arrives whole, at the reader's pace.
func TestCreateFailure(t *testing.T) {
	s := New(Config{Bufs: 2, BufSize: 10, MaxFile: 1000, WriteSize: 10,
		Create: func() (*os.File, error) { return nil, os.ErrPermission }})
	want := payload(500)
	src := &source{data: bytes.Clone(want), rnd: rand.New(rand.NewSource(8))}
	done := make(chan error, 1)
	go func() { _, err := s.ReadFrom(src); done <- err }()
	var got []byte
	buf := make([]byte, 7)
	for {
		n, err := s.Read(buf)
		got = append(got, buf[:n]...)
		if ahead := src.n.Load() - int64(len(got)); ahead > 20 {
			t.Fatalf("writer %d bytes ahead without a file", ahead)
		}
		if err == io.EOF {
			break
		}
	}
	if err := <-done; err != nil || !bytes.Equal(got, want) {
		t.Fatalf("ReadFrom: %v; %d bytes", err, len(got))
	}
	var fe *FileError
	if !errors.As(s.OpenError(), &fe) || fe.Op != "open" || s.Spilled() != 0 {
		t.Fatalf("OpenError %v, spilled %d", s.OpenError(), s.Spilled())
	}
	s.Close()
}

func TestCreateTempLevels(t *testing.T) {
	dir := t.TempDir()
	f, err := CreateTemp(filepath.Join(dir, "proxy_temp"), []int{1, 2}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	name, _ := filepath.Rel(dir, f.Name())
	base := filepath.Base(name)
	want := filepath.Join("proxy_temp", base[9:], base[7:9], base)
	if name != want || len(base) != 10 {
		t.Fatalf("name %s, want %s", name, want)
	}
	st, _ := f.Stat()
	dst, _ := os.Stat(filepath.Dir(f.Name()))
	if st.Mode().Perm() != 0o600 || dst.Mode().Perm() != 0o700 {
		t.Fatalf("modes %v %v", st.Mode(), dst.Mode())
	}
}
