package http1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestChunkedReader(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
		err  error // nil: io.ReadAll succeeds
	}{
		{"one chunk", "5\r\nhello\r\n0\r\n\r\n", "hello", nil},
		{"several chunks", "3\r\nabc\r\n1\r\nd\r\n0\r\n\r\n", "abcd", nil},
		{"upper hex and leading zeros", "000A\r\n0123456789\r\n00\r\n\r\n", "0123456789", nil},
		{"extensions", "5;name=val;x\r\nhello\r\n0;last\r\n\r\n", "hello", nil},
		{"extension after BWS", "5 ;a\r\nhello\r\n0\r\n\r\n", "hello", nil},
		{"trailers", "1\r\nx\r\n0\r\nX-Sum: 1\r\nX-B: 2\r\n\r\n", "x", nil},
		{"empty body", "0\r\n\r\n", "", nil},
		{"bare LF after size", "5\nhello\r\n0\r\n\r\n", "", errChunkLine},
		{"bare LF after data", "5\r\nhello\n0\r\n\r\n", "hello", errChunkCRLF},
		{"missing CRLF after data", "5\r\nhelloX\r\n0\r\n\r\n", "hello", errChunkCRLF},
		{"space after size", "5 \r\nhello\r\n0\r\n\r\n", "", errChunkLine},
		{"junk after size", "5x\r\nhello\r\n0\r\n\r\n", "", errChunkLine},
		{"sign", "+5\r\nhello\r\n0\r\n\r\n", "", errChunkLine},
		{"minus", "-5\r\nhello\r\n0\r\n\r\n", "", errChunkLine},
		{"0x prefix", "0x5\r\nhello\r\n0\r\n\r\n", "", errChunkLine},
		{"empty size", "\r\nhello\r\n0\r\n\r\n", "", errChunkLine},
		{"overflow", "8000000000000000\r\n", "", errChunkSize},
		{"long overflow", "fffffffffffffffff\r\n", "", errChunkSize},
		{"largest size", "7fffffffffffffff\r\nab", "ab", io.ErrUnexpectedEOF},
		{"NUL in extension", "5;a\x00\r\nhello\r\n0\r\n\r\n", "", errChunkLine},
		{"bad trailer", "0\r\nBad Trailer: 1\r\n\r\n", "", errChunkTrailer},
		{"trailer bare LF end", "0\r\nX: 1\r\n\n", "", errChunkLine},
		{"truncated data", "5\r\nhel", "hel", io.ErrUnexpectedEOF},
		{"truncated size", "5", "", io.ErrUnexpectedEOF},
		{"truncated before last chunk", "5\r\nhello\r\n", "hello", io.ErrUnexpectedEOF},
		{"truncated trailer", "0\r\n", "", io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		// Not the 16-byte reader: a chunk line longer than the bufio buffer
		// is refused by design.
		for _, m := range readModes[:2] {
			t.Run(tt.name+"/"+m.name, func(t *testing.T) {
				got, err := io.ReadAll(NewChunkedReader(m.new(tt.in)))
				if string(got) != tt.want || err != tt.err {
					t.Fatalf("got %q, %v; want %q, %v", got, err, tt.want, tt.err)
				}
				if err != nil && err != io.ErrUnexpectedEOF && !errors.Is(err, ErrMalformedChunked) {
					t.Fatalf("%v does not wrap ErrMalformedChunked", err)
				}
			})
		}
	}
}

func TestChunkedReaderLeavesNextMessage(t *testing.T) {
	br := bufio.NewReader(strings.NewReader("2\r\nhi\r\n0\r\n\r\nNEXT"))
	if b, err := io.ReadAll(NewChunkedReader(br)); err != nil || string(b) != "hi" {
		t.Fatalf("%q %v", b, err)
	}
	if rest, _ := io.ReadAll(br); string(rest) != "NEXT" {
		t.Fatalf("rest %q", rest)
	}
}

// A response's chunked body keeps its trailer fields, in order, once read
// to its end.
func TestResponseTrailer(t *testing.T) {
	br := bufio.NewReader(strings.NewReader("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"2\r\nhi\r\n0\r\nX-Sum:  ab \r\nX-B: 1\r\nx-sum: cd\r\n\r\nNEXT"))
	resp, err := ReadResponse(br, "GET", 0)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(resp.Body(br)); err != nil || string(b) != "hi" {
		t.Fatalf("%q %v", b, err)
	}
	want := Header{{"X-Sum", "ab"}, {"X-B", "1"}, {"x-sum", "cd"}}
	if len(resp.Trailer) != len(want) {
		t.Fatalf("Trailer = %q, want %q", resp.Trailer, want)
	}
	for i := range want {
		if resp.Trailer[i] != want[i] {
			t.Fatalf("Trailer = %q, want %q", resp.Trailer, want)
		}
	}
	if rest, _ := io.ReadAll(br); string(rest) != "NEXT" {
		t.Fatalf("rest %q", rest)
	}
}

func TestChunkedReaderTrailerLimit(t *testing.T) {
	in := "0\r\n" + strings.Repeat(line("X", 100), maxTrailerBytes/100+1) + "\r\n"
	if _, err := io.ReadAll(NewChunkedReader(bufio.NewReader(strings.NewReader(in)))); err != errChunkTrailer {
		t.Fatalf("err = %v", err)
	}
}

func TestChunkedWriter(t *testing.T) {
	var buf bytes.Buffer
	w := NewChunkedWriter(&buf)
	for _, s := range []string{"hello", "", strings.Repeat("x", 300)} {
		if n, err := io.WriteString(w, s); n != len(s) || err != nil {
			t.Fatalf("write %d: %d %v", len(s), n, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want := "5\r\nhello\r\n12c\r\n" + strings.Repeat("x", 300) + "\r\n0\r\n\r\n"
	if buf.String() != want {
		t.Fatalf("got %q", buf.String())
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Fatal("write after close accepted")
	}
	got, err := io.ReadAll(NewChunkedReader(bufio.NewReader(iotest.HalfReader(&buf))))
	if err != nil || string(got) != "hello"+strings.Repeat("x", 300) {
		t.Fatalf("round trip: %q %v", got, err)
	}
}

func TestBodyReader(t *testing.T) {
	tests := []struct {
		name    string
		cl      int64
		chunked bool
		closeD  bool
		in      string
		want    string
		err     error
	}{
		{"length", 3, false, false, "abcdef", "abc", nil},
		{"zero length", 0, false, false, "abc", "", nil},
		{"short", 5, false, false, "abc", "abc", io.ErrUnexpectedEOF},
		{"chunked wins", -1, true, false, "1\r\na\r\n0\r\n\r\nxyz", "a", nil},
		{"close delimited", -1, false, true, "to the end", "to the end", nil},
		{"none", -1, false, false, "abc", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := io.ReadAll(BodyReader(bufio.NewReader(strings.NewReader(tt.in)), tt.cl, tt.chunked, tt.closeD))
			if string(got) != tt.want || err != tt.err {
				t.Fatalf("got %q %v; want %q %v", got, err, tt.want, tt.err)
			}
		})
	}
}

func BenchmarkChunkedWriter(b *testing.B) {
	w := NewChunkedWriter(io.Discard)
	p := make([]byte, 4096)
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		w.Write(p)
	}
}
