package http1

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// maxTrailerBytes bounds the trailer section of a chunked body.
const maxTrailerBytes = 16 << 10

var (
	errChunkLine    = fmt.Errorf("%w: bad chunk size line", ErrMalformedChunked)
	errChunkSize    = fmt.Errorf("%w: chunk size too large", ErrMalformedChunked)
	errChunkCRLF    = fmt.Errorf("%w: missing CRLF after chunk data", ErrMalformedChunked)
	errChunkTrailer = fmt.Errorf("%w: bad trailer", ErrMalformedChunked)
	errWriteClosed  = errors.New("http1: write to closed chunked writer")
)

const (
	stSize = iota
	stData
	stCRLF
)

type chunkedReader struct {
	br    *bufio.Reader
	n     int64 // data bytes left in the current chunk
	state int
	err   error   // sticky
	tr    *Header // when set, receives the trailer fields
}

// NewChunkedReader returns a reader that decodes a chunked body from br
// strictly: a chunk size is hex digits only (no sign, no overflow), followed
// by nothing or chunk extensions ("; ..."), then CRLF; chunk data must be
// followed by CRLF; bare LF is refused. Extensions and trailers are
// discarded (NewChunkedReaderTrailer keeps the trailers). It returns io.EOF after the last chunk and its trailers, and an
// error wrapping ErrMalformedChunked (or io.ErrUnexpectedEOF) otherwise. The
// reader is not safe for concurrent use.
func NewChunkedReader(br *bufio.Reader) io.Reader {
	return &chunkedReader{br: br}
}

// NewChunkedReaderTrailer is NewChunkedReader that appends the trailer
// fields, as received, to *tr before it returns io.EOF.
func NewChunkedReaderTrailer(br *bufio.Reader, tr *Header) io.Reader {
	return &chunkedReader{br: br, tr: tr}
}

func (c *chunkedReader) Read(p []byte) (int, error) {
	for c.err == nil {
		switch c.state {
		case stSize:
			c.err = c.readSize()
		case stCRLF:
			c.err = c.readCRLF()
		case stData:
			if len(p) == 0 {
				return 0, nil
			}
			if int64(len(p)) > c.n {
				p = p[:c.n]
			}
			n, err := c.br.Read(p)
			c.n -= int64(n)
			if c.n == 0 {
				c.state = stCRLF
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			c.err = err
			if n > 0 {
				return n, nil
			}
		}
	}
	return 0, c.err
}

func (c *chunkedReader) readCRLF() error {
	b, err := c.br.Peek(2)
	if err != nil {
		return eofUnexpected(err)
	}
	if b[0] != '\r' || b[1] != '\n' {
		return errChunkCRLF
	}
	c.br.Discard(2)
	c.state = stSize
	return nil
}

func (c *chunkedReader) readSize() error {
	line, err := c.readLine()
	if err != nil {
		return err
	}
	var n int64
	i := 0
	for ; i < len(line); i++ {
		d, ok := unhex(line[i])
		if !ok {
			break
		}
		if n > (1<<63-1)>>4 {
			return errChunkSize
		}
		n = n<<4 | int64(d)
	}
	if i == 0 || !validChunkExt(line[i:]) {
		return errChunkLine
	}
	if n == 0 {
		return c.readTrailers()
	}
	c.n, c.state = n, stData
	return nil
}

// readLine returns a CRLF-terminated line without its CRLF; the bufio
// buffer bounds its length.
func (c *chunkedReader) readLine() ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	switch {
	case err == bufio.ErrBufferFull:
		return nil, errChunkLine
	case err != nil:
		return nil, eofUnexpected(err)
	case len(line) < 2 || line[len(line)-2] != '\r':
		return nil, errChunkLine
	}
	return line[:len(line)-2], nil
}

// validChunkExt accepts "" or BWS ";" followed by anything without control
// characters other than HT: the extensions are discarded, so their inner
// syntax does not matter, but CR, LF and NUL must never be let through.
func validChunkExt(ext []byte) bool {
	if len(ext) == 0 {
		return true
	}
	for len(ext) > 0 && (ext[0] == ' ' || ext[0] == '\t') {
		ext = ext[1:]
	}
	if len(ext) == 0 || ext[0] != ';' {
		return false
	}
	for _, c := range ext {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func (c *chunkedReader) readTrailers() error {
	total := 0
	for {
		line, err := c.readLine()
		if err != nil {
			return err
		}
		if len(line) == 0 {
			return io.EOF
		}
		total += len(line) + 2
		if total > maxTrailerBytes {
			return errChunkTrailer
		}
		name, value, ok := parseFieldLine(string(line))
		if !ok {
			return errChunkTrailer
		}
		if c.tr != nil {
			*c.tr = append(*c.tr, Field{Name: name, Value: value})
		}
	}
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func eofUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

type chunkedWriter struct {
	w      io.Writer
	closed bool
	hdr    [18]byte // chunk size line scratch, kept here so Write does not allocate
}

// NewChunkedWriter returns a writer that sends each non-empty Write as one
// chunk to w; Close writes the last chunk and the empty trailer
// ("0\r\n\r\n") and does not close w. Each Write makes three writes to w,
// so w should be buffered. Not safe for concurrent use.
func NewChunkedWriter(w io.Writer) io.WriteCloser {
	return &chunkedWriter{w: w}
}

var crlf = []byte("\r\n")

func (cw *chunkedWriter) Write(p []byte) (int, error) {
	if cw.closed {
		return 0, errWriteClosed
	}
	if len(p) == 0 {
		return 0, nil // an empty chunk would end the body
	}
	h := appendHex(cw.hdr[:0], uint64(len(p)))
	h = append(h, '\r', '\n')
	if _, err := cw.w.Write(h); err != nil {
		return 0, err
	}
	n, err := cw.w.Write(p)
	if err != nil {
		return n, err
	}
	_, err = cw.w.Write(crlf)
	return n, err
}

var lastChunk = []byte("0\r\n\r\n")

func (cw *chunkedWriter) Close() error {
	if cw.closed {
		return nil
	}
	cw.closed = true
	_, err := cw.w.Write(lastChunk)
	return err
}

func appendHex(dst []byte, v uint64) []byte {
	const digits = "0123456789abcdef"
	var b [16]byte
	i := len(b)
	for {
		i--
		b[i] = digits[v&15]
		v >>= 4
		if v == 0 {
			break
		}
	}
	return append(dst, b[i:]...)
}
