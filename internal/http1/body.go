package http1

import (
	"bufio"
	"io"
)

// BodyReader returns a reader for a message body that follows a head in br:
// chunked, or contentLength bytes, or (closeDelimited) everything up to EOF,
// or nothing. A body cut short reports io.ErrUnexpectedEOF. The reader is
// not safe for concurrent use; br must not be read by anyone else meanwhile.
func BodyReader(br *bufio.Reader, contentLength int64, chunked, closeDelimited bool) io.Reader {
	switch {
	case chunked:
		return NewChunkedReader(br)
	case contentLength > 0:
		return &lengthReader{r: br, n: contentLength}
	case contentLength == 0:
		return noBody{}
	case closeDelimited:
		return br
	default:
		return noBody{}
	}
}

type noBody struct{}

func (noBody) Read([]byte) (int, error) { return 0, io.EOF }

// lengthReader is io.LimitReader that tells a short body from a complete one.
type lengthReader struct {
	r io.Reader
	n int64
}

func (l *lengthReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	if err == io.EOF && l.n > 0 {
		err = io.ErrUnexpectedEOF
	}
	if err == nil && l.n == 0 {
		err = io.EOF
	}
	return n, err
}
