// Command heapspans reads a Go heap dump (runtime/debug.WriteHeapDump; a
// wsgate built with -tags pprof serves one at /debug/heapdump) and prints,
// for each size class, the live objects, the spans that hold them and how
// full those spans are: where the heap in use exceeds the live heap
// because long-lived objects share spans with freed ones.
//
//	heapspans [-min KiB] DUMP
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
)

func main() {
	minHoles := flag.Int("min", 64, "list only the classes whose spans hold at least this many KiB more than their live objects")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: heapspans [-min KiB] DUMP")
		os.Exit(2)
	}
	f, err := os.Open(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer f.Close()
	classes, err := read(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		fmt.Fprintln(os.Stderr, "heapspans:", err)
		os.Exit(1)
	}
	report(os.Stdout, classes, uint64(*minHoles)<<10)
}

// class is what the dump shows of one object size.
type class struct {
	size, spanBytes uint64
	objects, spans  uint64
}

func (c *class) live() uint64  { return c.objects * c.size }
func (c *class) inUse() uint64 { return c.spans * c.spanBytes }

func report(w io.Writer, classes []*class, minHoles uint64) {
	var live, inUse uint64
	fmt.Fprintf(w, "%8s %9s %7s %10s %10s %6s\n", "size", "objects", "spans", "live KiB", "spans KiB", "full")
	for _, c := range classes {
		live += c.live()
		inUse += c.inUse()
		if c.inUse()-c.live() >= minHoles {
			fmt.Fprintf(w, "%8d %9d %7d %10d %10d %5.1f%%\n", c.size, c.objects, c.spans, c.live()>>10, c.inUse()>>10, 100*float64(c.live())/float64(c.inUse()))
		}
	}
	fmt.Fprintf(w, "live %d KiB in %d KiB of spans: %d KiB of holes\n", live>>10, inUse>>10, (inUse-live)>>10)
}

// The heap dump's record tags (runtime/heapdump.go) that come before and
// among its objects.
const (
	tagEOF    = 0
	tagObject = 1
	tagType   = 3
	tagParams = 6
	tagItab   = 8
)

// read returns the classes of the dump's objects, by size. The runtime
// dumps its in-use spans one after another, each span's live objects in
// address order; a span starts at a page boundary, so an object is in
// the span of the one before it when both have the same size and it lies
// within that span's bytes.
func read(r *bufio.Reader) ([]*class, error) {
	d := dump{r: r}
	if hdr, err := r.ReadString('\n'); err != nil || hdr != "go1.7 heap dump\n" {
		return nil, fmt.Errorf("not a Go heap dump (%q)", hdr)
	}
	bySize := map[uint64]*class{}
	var prevSize, spanStart uint64
	for d.err == nil {
		switch tag := d.uint(); tag {
		case tagObject:
			addr := d.uint()
			size := d.uint()
			d.skip(size)
			for d.err == nil && d.uint() != 0 { // pointer fields: kind, offset
				d.uint()
			}
			c := bySize[size]
			if c == nil {
				c = &class{size: size, spanBytes: spanBytes(size)}
				bySize[size] = c
			}
			c.objects++
			if size != prevSize || addr < spanStart || addr+size > spanStart+c.spanBytes {
				c.spans++
				spanStart = addr &^ (pageSize - 1)
			}
			prevSize = size
		case tagType:
			d.uint()
			d.uint()
			d.skip(d.uint())
			d.uint()
		case tagItab:
			d.uint()
			d.uint()
		case tagParams:
			d.uint()
			d.uint()
			d.uint()
			d.uint()
			d.skip(d.uint())
			d.skip(d.uint())
			d.uint()
		default: // past the objects (or the end)
			if d.err == nil && len(bySize) == 0 {
				return nil, fmt.Errorf("record %d before any object", tag)
			}
			var out []*class
			for _, c := range bySize {
				out = append(out, c)
			}
			slices.SortFunc(out, func(a, b *class) int { return int(a.size) - int(b.size) })
			return out, nil
		}
	}
	return nil, d.err
}

type dump struct {
	r   *bufio.Reader
	err error
}

func (d *dump) uint() uint64 {
	if d.err != nil {
		return 0
	}
	var v uint64
	for shift := 0; ; shift += 7 {
		b, err := d.r.ReadByte()
		if err != nil {
			d.err = truncated(err)
			return 0
		}
		v |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return v
		}
	}
}

func (d *dump) skip(n uint64) {
	if d.err != nil {
		return
	}
	if _, err := d.r.Discard(int(n)); err != nil {
		d.err = truncated(err)
	}
}

func truncated(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

const pageSize = 8192

// spanBytes is the span size of the runtime's size class for objects of
// size bytes (internal/runtime/gc/sizeclasses.go, Go 1.26); a larger
// object has a span of its own.
func spanBytes(size uint64) uint64 {
	for _, c := range multiPage {
		if c.size == size {
			return c.span
		}
	}
	if size > 32<<10 || size > pageSize {
		return (size + pageSize - 1) &^ (pageSize - 1)
	}
	return pageSize
}

// multiPage are the classes of 32 KiB or less whose spans take more than
// one page.
var multiPage = []struct{ size, span uint64 }{
	{1408, 16384}, {1792, 16384}, {2304, 16384}, {3072, 24576}, {3200, 16384},
	{3456, 24576}, {4864, 24576}, {5376, 16384}, {6144, 24576}, {6528, 32768},
	{6784, 40960}, {6912, 49152}, {9472, 57344}, {9728, 49152}, {10240, 40960},
	{10880, 32768}, {12288, 24576}, {13568, 40960}, {14336, 57344}, {18432, 73728},
	{19072, 57344}, {20480, 40960}, {21760, 65536}, {27264, 81920}, {28672, 57344},
}
