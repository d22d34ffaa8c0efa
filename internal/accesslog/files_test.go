package accesslog

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFilesReloads runs two reloads and an aborted one over a Files set.
func TestFilesReloads(t *testing.T) {
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log"), filepath.Join(dir, "c.log")
	var fs Files
	t.Cleanup(func() { fs.CloseAll() })

	open := func(path string, buf int, flush time.Duration) *Writer {
		t.Helper()
		w, err := fs.Open(path, buf, flush)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}

	// Load 1: a and b; two access_log lines naming a share one Writer.
	a1, a1bis, b1 := open(a, 0, 0), open(a, 0, 0), open(b, 0, 0)
	if a1 != a1bis {
		t.Fatal("two access_log lines for one path got two Writers")
	}
	if err := fs.Commit(); err != nil {
		t.Fatal(err)
	}
	a1.write([]byte("a from load 1\n"))
	b1.write([]byte("b from load 1\n"))

	// Load 2: b (kept, now buffered) and c; a is dropped.
	b2, c2 := open(b, 4096, time.Hour), open(c, 0, 0)
	if b2 != b1 {
		t.Fatal("reload reopened a path it already had")
	}
	b1.write([]byte("b during reload\n"))
	if err := fs.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, a); got != "a from load 1\n" {
		t.Errorf("dropped a.log = %q", got)
	}
	// A tunnel of load 1 that closes after the reload still logs.
	a1.write([]byte("late a\n"))
	if got := readFile(t, a); got != "a from load 1\nlate a\n" {
		t.Errorf("late line to a.log: %q", got)
	}
	b2.write([]byte("b from load 2\n"))
	c2.write([]byte("c from load 2\n"))

	// Load 3 fails: its new file is closed, the live ones stay.
	d := filepath.Join(dir, "d.log")
	d3 := open(d, 0, 0)
	open(b, 4096, time.Hour)
	fs.Abort()
	if err := d3.Reopen(); err != ErrClosed {
		t.Errorf("aborted reload left its file open (Reopen = %v)", err)
	}
	if err := b2.Reopen(); err != nil {
		t.Errorf("aborted reload closed a live file: %v", err)
	}

	if err := fs.CloseAll(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, b); got != "b from load 1\nb during reload\nb from load 2\n" {
		t.Errorf("b.log = %q", got)
	}
	if got := readFile(t, c); got != "c from load 2\n" {
		t.Errorf("c.log = %q", got)
	}
}

func TestFilesConflicts(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.log")
	tests := []struct {
		name   string
		first  [2]int // buffer, flush in ms
		second [2]int
		err    string
	}{
		{"same buffers", [2]int{4096, 1000}, [2]int{4096, 1000}, ""},
		{"buffered then plain", [2]int{4096, 0}, [2]int{0, 0}, ""},
		{"plain then buffered", [2]int{0, 0}, [2]int{4096, 0}, ""},
		{"other size", [2]int{4096, 0}, [2]int{8192, 0}, "already defined with conflicting parameters"},
		{"other flush", [2]int{4096, 1000}, [2]int{4096, 2000}, "already defined with conflicting parameters"},
		{"flush without buffer", [2]int{0, 0}, [2]int{0, 1000}, "no buffer is defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fs Files
			defer fs.CloseAll()
			ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
			if _, err := fs.Open(p, tt.first[0], ms(tt.first[1])); err != nil {
				t.Fatal(err)
			}
			_, err := fs.Open(p, tt.second[0], ms(tt.second[1]))
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Errorf("second Open error = %v, want %q", err, tt.err)
			}
		})
	}
}

func TestFilesReopenAll(t *testing.T) {
	dir := t.TempDir()
	var fs Files
	defer fs.CloseAll()
	paths := []string{filepath.Join(dir, "1.log"), filepath.Join(dir, "2.log")}
	var ws []*Writer
	for _, p := range paths {
		w, err := fs.Open(p, 1<<16, 0)
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	if err := fs.Commit(); err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		w.write([]byte("buffered\n"))
	}
	if err := fs.ReopenAll(); err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		if got := readFile(t, p); got != "buffered\n" {
			t.Errorf("%s after ReopenAll = %q", p, got)
		}
	}
}
