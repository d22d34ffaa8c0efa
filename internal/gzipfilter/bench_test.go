package gzipfilter

import (
	stdgzip "compress/gzip"
	"fmt"
	"io"
	"strings"
	"testing"
)

// benchBody is a 16 KiB HTML-like page, what gzip usually compresses.
var benchBody = func() []byte {
	var b strings.Builder
	for i := 0; b.Len() < 16<<10; i++ {
		fmt.Fprintf(&b, "<tr><td class=\"n\">%d</td><td><a href=\"/item/%d\">item %d</a></td><td>%x</td></tr>\n", i, i*7, i, i*2654435761)
	}
	return []byte(b.String())
}()

// BenchmarkResponse compresses one response body per iteration with the
// pooled writer the server uses (github.com/klauspost/compress/gzip).
func BenchmarkResponse(b *testing.B) {
	for _, level := range []int{1, 6} {
		b.Run(fmt.Sprintf("klauspost/level%d", level), func(b *testing.B) {
			b.SetBytes(int64(len(benchBody)))
			b.ReportAllocs()
			for b.Loop() {
				z := NewWriter(io.Discard, level)
				z.Write(benchBody)
				z.Close()
			}
		})
		b.Run(fmt.Sprintf("stdlib/level%d", level), func(b *testing.B) {
			b.SetBytes(int64(len(benchBody)))
			b.ReportAllocs()
			zw, _ := stdgzip.NewWriterLevel(io.Discard, level)
			for b.Loop() {
				zw.Reset(io.Discard)
				zw.Write(benchBody)
				zw.Close()
			}
		})
	}
}
