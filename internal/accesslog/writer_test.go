package accesslog

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wsgate/wsgate/internal/vars"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitFor polls until cond holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func openT(t *testing.T, path string, buf int, flush time.Duration) *Writer {
	t.Helper()
	w, err := OpenWriter(path, buf, flush)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func TestOpenWriterErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		path  string
		buf   int
		flush time.Duration
		err   string
	}{
		{filepath.Join(dir, "a.log"), 0, time.Second, `no buffer is defined for access_log`},
		{filepath.Join(dir, "a.log"), -1, 0, `invalid buffer size -1`},
		{filepath.Join(dir, "a.log"), 1, -time.Second, `invalid flush time -1s`},
		{filepath.Join(dir, "missing", "a.log"), 0, 0, `open() "` + filepath.Join(dir, "missing", "a.log") + `" failed`},
	}
	for _, tt := range tests {
		w, err := OpenWriter(tt.path, tt.buf, tt.flush)
		if err == nil {
			w.Close()
		}
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("OpenWriter(%q, %d, %v) error = %v, want %q", tt.path, tt.buf, tt.flush, err, tt.err)
		}
	}
}

func TestWriterDelivery(t *testing.T) {
	tests := []struct {
		name  string
		buf   int
		flush time.Duration
		lines int
	}{
		// No buffer=: batched, but on disk within DefaultFlush.
		{"unbuffered", 0, 0, 3},
		// flush= delivers a buffer that never fills.
		{"flush interval", 1 << 20, 20 * time.Millisecond, 3},
		// A full buffer is written without waiting for any timer.
		{"buffer full", 256, 0, 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "access.log")
			w := openT(t, path, tt.buf, tt.flush)
			var want strings.Builder
			for i := range tt.lines {
				line := fmt.Sprintf("line %d %s\n", i, strings.Repeat("x", 20))
				w.write([]byte(line))
				want.WriteString(line)
			}
			// A buffer= without flush= keeps its tail until the buffer
			// fills: only whole batches reach the file before Close.
			minLen := want.Len()
			if tt.flush == 0 && tt.buf > 0 {
				minLen = tt.buf
			}
			waitFor(t, "lines on disk", func() bool {
				return len(readFile(t, path)) >= minLen
			})
			if got := readFile(t, path); !strings.HasPrefix(want.String(), got) {
				t.Fatalf("file holds %q, not a prefix of what was written", got)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, path); got != want.String() {
				t.Errorf("after Close the file holds %d bytes, want %d", len(got), want.Len())
			}
		})
	}
}

func TestBufferHoldsUntilClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	w := openT(t, path, 4096, 0)
	w.write([]byte("held\n"))
	// Nothing wakes the writer goroutine for a part-filled buffer without
	// flush=, as in nginx; Reopen and Close write it out.
	if got := readFile(t, path); got != "" {
		t.Fatalf("part-filled buffer reached the file: %q", got)
	}
	if err := w.Reopen(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, path); got != "held\n" {
		t.Fatalf("after Reopen: %q", got)
	}
	w.write([]byte("closing\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, path); got != "held\nclosing\n" {
		t.Fatalf("after Close: %q", got)
	}
}

func TestWriteAfterClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	var errs []error
	w, err := openWriter(path, 0, 0, func(err error) { errs = append(errs, err) })
	if err != nil {
		t.Fatal(err)
	}
	w.write([]byte("before\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	w.write([]byte("after\n"))
	if got := readFile(t, path); got != "before\nafter\n" {
		t.Fatalf("file = %q", got)
	}
	if err := w.Reopen(); err != ErrClosed {
		t.Errorf("Reopen after Close = %v, want ErrClosed", err)
	}
	if len(errs) != 0 {
		t.Errorf("errors reported: %v", errs)
	}
}

func TestStdStreams(t *testing.T) {
	for _, path := range []string{"/dev/stdout", "/dev/stderr"} {
		w, err := OpenWriter(path, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Reopen(); err != nil {
			t.Errorf("Reopen(%s): %v", path, err)
		}
		if err := w.Close(); err != nil {
			t.Errorf("Close(%s): %v", path, err)
		}
	}
	// The process's streams stay open.
	if _, err := os.Stderr.Stat(); err != nil {
		t.Errorf("stderr closed: %v", err)
	}
	if _, err := os.Stdout.Stat(); err != nil {
		t.Errorf("stdout closed: %v", err)
	}
}

// TestReopenConcurrent renames the file under 8 writing goroutines, as
// logrotate does, then reopens: every line lands exactly once, lines that
// were written before Reopen in the old file, lines begun after it in the
// new one.
func TestReopenConcurrent(t *testing.T) {
	for _, buf := range []int{0, 512} {
		t.Run(fmt.Sprintf("buffer=%d", buf), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "access.log")
			rotated := path + ".1"
			flush := time.Duration(0)
			if buf > 0 {
				flush = 5 * time.Millisecond
			}
			w := openT(t, path, buf, flush)

			// Each writer writes at least perWriter lines and goes on until
			// it has written some after the Reopen, so that the rotation
			// happens while all of them write.
			const writers, perWriter, after = 8, 2000, 50
			var phase atomic.Int32 // 0 before Reopen, 1 during, 2 after
			type mark struct{ start, end int32 }
			marks := make([][]mark, writers)
			var written atomic.Int64
			var wg sync.WaitGroup
			for g := range writers {
				wg.Go(func() {
					for i, late := 0, 0; i < perWriter || late < after; i++ {
						s := phase.Load()
						w.write(fmt.Appendf(nil, "g%d i%d\n", g, i))
						marks[g] = append(marks[g], mark{s, phase.Load()})
						written.Add(1)
						if s == 2 {
							late++
						}
					}
				})
			}
			waitFor(t, "a third of the lines", func() bool { return written.Load() > writers*perWriter/3 })
			phase.Store(1)
			if err := os.Rename(path, rotated); err != nil {
				t.Fatal(err)
			}
			if err := w.Reopen(); err != nil {
				t.Fatal(err)
			}
			phase.Store(2)
			wg.Wait()
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}

			where := map[string]string{}
			for _, p := range []string{rotated, path} {
				sc := bufio.NewScanner(bytes.NewReader([]byte(readFile(t, p))))
				for sc.Scan() {
					if prev, dup := where[sc.Text()]; dup {
						t.Fatalf("line %q in %s and %s", sc.Text(), prev, p)
					}
					where[sc.Text()] = p
				}
			}
			if len(where) != int(written.Load()) {
				t.Fatalf("%d distinct lines, want %d", len(where), written.Load())
			}
			var inOld, inNew int
			for g := range writers {
				for i, m := range marks[g] {
					line := fmt.Sprintf("g%d i%d", g, i)
					switch {
					case m.end == 0 && where[line] != rotated:
						t.Fatalf("%s was written before Reopen but is in %s", line, where[line])
					case m.start == 2 && where[line] != path:
						t.Fatalf("%s was written after Reopen but is in %s", line, where[line])
					}
					if where[line] == rotated {
						inOld++
					} else {
						inNew++
					}
				}
			}
			if inOld == 0 || inNew == 0 {
				t.Errorf("old file has %d lines, new %d: the rotation did not split them", inOld, inNew)
			}
		})
	}
}

func TestReopenFailureKeepsOldFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	w := openT(t, filepath.Join(dir, "access.log"), 0, 0)
	w.write([]byte("one\n"))
	moved := dir + ".moved"
	if err := os.Rename(dir, moved); err != nil {
		t.Fatal(err)
	}
	if err := w.Reopen(); err == nil {
		t.Fatal("Reopen into a missing directory succeeded")
	}
	w.write([]byte("two\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(moved, "access.log")); got != "one\ntwo\n" {
		t.Errorf("old file = %q, want both lines", got)
	}
}

// TestBackpressure stands a FIFO nobody reads for a full disk: writers wait
// once a megabyte is pending, Waits counts them, and every line arrives once
// the reader catches up.
func TestBackpressure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	r, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w := openT(t, path, 0, 0)

	line := []byte(strings.Repeat("y", 1023) + "\n")
	const n = 4096 // 4 MiB: far more than the pipe plus the bound
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range n {
			w.write(line)
		}
	}()
	waitFor(t, "a writer to wait", func() bool { return w.Waits() > 0 })
	select {
	case <-done:
		t.Fatal("all lines queued although nothing was read")
	default:
	}

	if err := syscall.SetNonblock(int(r.Fd()), false); err != nil {
		t.Fatal(err)
	}
	got := make(chan int64, 1)
	go func() {
		var total int64
		buf := make([]byte, 64<<10)
		for {
			k, err := r.Read(buf)
			total += int64(k)
			if err != nil {
				got <- total
				return
			}
		}
	}()
	<-done
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if total := <-got; total != n*int64(len(line)) {
		t.Errorf("reader got %d bytes, want %d", total, n*len(line))
	}
}

func TestLogWrite(t *testing.T) {
	tab := vars.NewTable()
	f, err := CompileFormat(tab, EscapeDefault, []string{"$request_method $uri $status"})
	if err != nil {
		t.Fatal(err)
	}
	loggable, err := tab.Compile("$arg_log")
	if err != nil {
		t.Fatal(err)
	}
	multi, err := tab.Compile("${arg_a}${arg_b}")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "access.log")
	w := openT(t, path, 0, 0)
	tests := []struct {
		cond *vars.Template
		args string
		log  bool
	}{
		{nil, "", true},
		{loggable, "", false},
		{loggable, "log=0", false},
		{loggable, "log=1", true},
		{loggable, "log=00", true},
		{loggable, "log=no", true},
		{multi, "a=0", false},
		{multi, "a=0&b=0", true},
		{multi, "b=x", true},
	}
	var want strings.Builder
	for i, tt := range tests {
		l := &Log{W: w, F: f, If: tt.cond}
		c := newCtx(tab, nil)
		c.Args, c.Path, c.Status = tt.args, fmt.Sprintf("/%d", i), 200
		l.Write(c)
		if tt.log {
			fmt.Fprintf(&want, "GET /%d 200\n", i)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, path); got != want.String() {
		t.Errorf("file:\n%s\nwant:\n%s", got, want.String())
	}
}
