package gzipfilter

import (
	"io"
	"strconv"
	"sync"

	"github.com/klauspost/compress/gzip"
)

// Writer compresses a body into w, counting what goes in and out for
// $gzip_ratio. Close ends the gzip stream (it does not close w).
type Writer struct {
	out  countWriter
	gz   *gzip.Writer
	in   int64
	pool *sync.Pool
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// one pool of compressors per level: a gzip.Writer holds a few hundred
// kilobytes of state, which is reused across responses.
var pools [10]sync.Pool

// NewWriter starts a gzip stream at level (1..9) into w.
func NewWriter(w io.Writer, level int) *Writer {
	if level < 1 || level > 9 {
		level = 1
	}
	z := &Writer{out: countWriter{w: w}, pool: &pools[level]}
	if gz, ok := z.pool.Get().(*gzip.Writer); ok {
		gz.Reset(&z.out)
		z.gz = gz
	} else {
		z.gz, _ = gzip.NewWriterLevel(&z.out, level) // the level is valid
	}
	return z
}

// Write compresses p.
func (z *Writer) Write(p []byte) (int, error) {
	n, err := z.gz.Write(p)
	z.in += int64(n)
	return n, err
}

// copyBufs holds ReadFrom's buffers, so that copying a file into the
// compressor allocates nothing per response.
var copyBufs = sync.Pool{New: func() any { return new([32 << 10]byte) }}

// ReadFrom compresses everything r yields.
func (z *Writer) ReadFrom(r io.Reader) (int64, error) {
	buf := copyBufs.Get().(*[32 << 10]byte)
	defer copyBufs.Put(buf)
	var total int64
	for {
		n, err := r.Read(buf[:])
		if n > 0 {
			if _, werr := z.Write(buf[:n]); werr != nil {
				return total, werr
			}
			total += int64(n)
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// WriteString compresses s.
func (z *Writer) WriteString(s string) (int, error) {
	return z.Write([]byte(s))
}

// Flush sends what is compressed so far (a sync flush), as nginx's gzip
// filter on a flush buffer (proxy_buffering off).
func (z *Writer) Flush() error { return z.gz.Flush() }

// Close ends the stream and returns the compressor to its pool.
func (z *Writer) Close() error {
	if z.gz == nil {
		return nil
	}
	err := z.gz.Close()
	z.gz.Reset(io.Discard)
	z.pool.Put(z.gz)
	z.gz = nil
	return err
}

// In and Out are the bytes compressed and the bytes written.
func (z *Writer) In() int64  { return z.in }
func (z *Writer) Out() int64 { return z.out.n }

// Ratio is $gzip_ratio: in/out with two decimals, rounded as nginx; ""
// when nothing went in or out.
func Ratio(in, out int64) string {
	if in == 0 || out == 0 {
		return ""
	}
	whole := in / out
	frac := (in * 100 / out) % 100
	if (in*1000/out)%10 > 4 {
		frac++
		if frac > 99 {
			whole++
			frac = 0
		}
	}
	f := strconv.FormatInt(frac, 10)
	if frac < 10 {
		f = "0" + f
	}
	return strconv.FormatInt(whole, 10) + "." + f
}
