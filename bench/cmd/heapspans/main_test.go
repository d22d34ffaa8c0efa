package main

import (
	"bufio"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// TestSpans dumps this process's heap after keeping one object in four
// of a run of 352-byte ones (23 to a span): the class shows at least
// those objects, in spans about a quarter full, and no class holds more
// live bytes than its spans.
func TestSpans(t *testing.T) {
	const n = 23 * 400
	all := make([]*[352]byte, n)
	for i := range all {
		all[i] = new([352]byte)
	}
	kept := make([]*[352]byte, 0, n/4)
	for i := 0; i < n; i += 4 {
		kept = append(kept, all[i])
	}
	all = nil
	runtime.GC()
	path := filepath.Join(t.TempDir(), "heap.dump")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	debug.WriteHeapDump(f.Fd())
	f.Close()
	runtime.KeepAlive(kept)

	f, err = os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	classes, err := read(bufio.NewReader(f))
	if err != nil {
		t.Fatal(err)
	}
	var c352 *class
	for _, c := range classes {
		if c.live() > c.inUse() {
			t.Errorf("%d-byte class: %d live bytes in %d bytes of spans", c.size, c.live(), c.inUse())
		}
		if c.size == 352 {
			c352 = c
		}
	}
	if c352 == nil || c352.objects < n/4 {
		t.Fatalf("352-byte class: %+v, want at least %d objects", c352, n/4)
	}
	if full := float64(c352.live()) / float64(c352.inUse()); full < 0.2 || full > 0.4 {
		t.Errorf("352-byte class: %d objects in %d spans, %.0f%% full; want about a quarter", c352.objects, c352.spans, 100*full)
	}
	var b strings.Builder
	report(&b, classes, 64<<10)
	if !strings.Contains(b.String(), "\n     352 ") || !strings.Contains(b.String(), "KiB of holes") {
		t.Errorf("report:\n%s", b.String())
	}
}

// TestNotADump: anything else is refused with an error.
func TestNotADump(t *testing.T) {
	if _, err := read(bufio.NewReader(strings.NewReader("hello\n"))); err == nil {
		t.Fatal("no error for a file that is not a heap dump")
	}
}
