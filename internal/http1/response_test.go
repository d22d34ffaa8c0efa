package http1

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

func readResponseAll(t *testing.T, s, method string, max int) (*Response, error) {
	t.Helper()
	var first *Response
	var firstErr error
	for i, m := range readModes {
		r, err := ReadResponse(m.new(s), method, max)
		if i == 0 {
			first, firstErr = r, err
			continue
		}
		if !sameErr(err, firstErr) {
			t.Fatalf("%s: err %v, whole: %v", m.name, err, firstErr)
		}
		if err == nil && (r.Status != first.Status || r.Reason != first.Reason || len(r.Header) != len(first.Header)) {
			t.Fatalf("%s: %+v, whole: %+v", m.name, r, first)
		}
	}
	return first, firstErr
}

func TestReadResponse(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		method string
		want   Response // Header and HeaderBytes not compared
		body   string
	}{
		{"ok with length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloXX", "GET",
			Response{Proto: "HTTP/1.1", Major: 1, Minor: 1, Status: 200, Reason: "OK", ContentLength: 5, BodyAllowed: true}, "hello"},
		{"no reason", "HTTP/1.1 204\r\n\r\n", "GET",
			Response{Proto: "HTTP/1.1", Major: 1, Minor: 1, Status: 204, ContentLength: -1}, ""},
		{"empty reason", "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", "GET",
			Response{Proto: "HTTP/1.1", Major: 1, Minor: 1, Status: 404, ContentLength: 0, BodyAllowed: true}, ""},
		{"reason with spaces", "HTTP/1.1 503 Service Temporarily Unavailable\nContent-Length: 1\n\nx", "GET",
			Response{Proto: "HTTP/1.1", Major: 1, Minor: 1, Status: 503, Reason: "Service Temporarily Unavailable", ContentLength: 1, BodyAllowed: true}, "x"},
		{"switching protocols", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x00", "GET",
			Response{Proto: "HTTP/1.1", Major: 1, Minor: 1, Status: 101, Reason: "Switching Protocols", ContentLength: -1}, ""},
		{"continue", "HTTP/1.1 100 Continue\r\n\r\n", "POST",
			Response{Proto: "HTTP/1.1", Major: 1, Minor: 1, Status: 100, Reason: "Continue", ContentLength: -1}, ""},
		{"HEAD has no body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", "HEAD",
			Response{Proto: "HTTP/1.1", Major: 1, Minor: 1, Status: 200, Reason: "OK", ContentLength: 10}, ""},
		{"304 has no body", "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", "GET",
			Response{Proto: "HTTP/1.1", Major: 1, Minor: 1, Status: 304, Reason: "Not Modified", ContentLength: 10}, ""},
		{"close delimited", "HTTP/1.0 200 OK\r\n\r\nall of it", "GET",
			Response{Proto: "HTTP/1.0", Major: 1, Minor: 0, Status: 200, Reason: "OK", ContentLength: -1, BodyAllowed: true, CloseDelimited: true, Close: true}, "all of it"},
		{"close delimited in 1.1", "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\nrest", "GET",
			Response{Proto: "HTTP/1.1", Major: 1, Minor: 1, Status: 200, Reason: "OK", ContentLength: -1, BodyAllowed: true, CloseDelimited: true, Close: true}, "rest"},
		{"1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nhi", "GET",
			Response{Proto: "HTTP/1.0", Major: 1, Minor: 0, Status: 200, Reason: "OK", ContentLength: 2, BodyAllowed: true}, "hi"},
		{"Connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi", "GET",
			Response{Proto: "HTTP/1.1", Major: 1, Minor: 1, Status: 200, Reason: "OK", ContentLength: 2, BodyAllowed: true, Close: true}, "hi"},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", "GET",
			Response{Proto: "HTTP/1.1", Major: 1, Minor: 1, Status: 200, Reason: "OK", ContentLength: -1, Chunked: true, BodyAllowed: true}, "hi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := readResponseAll(t, tt.in, tt.method, 0)
			if err != nil {
				t.Fatal(err)
			}
			got := *r
			got.Header, got.HeaderBytes = nil, 0
			if got.Proto != tt.want.Proto || got.Major != tt.want.Major || got.Minor != tt.want.Minor ||
				got.Status != tt.want.Status || got.Reason != tt.want.Reason || got.ContentLength != tt.want.ContentLength ||
				got.Chunked != tt.want.Chunked || got.BodyAllowed != tt.want.BodyAllowed ||
				got.CloseDelimited != tt.want.CloseDelimited || got.Close != tt.want.Close {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
			br := bufio.NewReader(strings.NewReader(tt.in))
			r, _ = ReadResponse(br, tt.method, 0)
			b, err := io.ReadAll(r.Body(br))
			if err != nil || string(b) != tt.body {
				t.Fatalf("body %q, %v; want %q", b, err, tt.body)
			}
		})
	}
}

func TestReadResponseRejects(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		max    int
		detail string
	}{
		{"two digit status", "HTTP/1.1 20 OK\r\n\r\n", 0, "upstream sent invalid status line"},
		{"four digit status", "HTTP/1.1 2000 OK\r\n\r\n", 0, "upstream sent invalid status line"},
		{"status 099", "HTTP/1.1 099 X\r\n\r\n", 0, "upstream sent invalid status line"},
		{"no space after status", "HTTP/1.1 200OK\r\n\r\n", 0, "upstream sent invalid status line"},
		{"HTTP/2", "HTTP/2 200 OK\r\n\r\n", 0, "upstream sent invalid status line"},
		{"HTTP/2.0", "HTTP/2.0 200 OK\r\n\r\n", 0, "upstream sent invalid status line"},
		{"ICY", "ICY 200 OK\r\n\r\n", 0, "upstream sent invalid status line"},
		{"leading empty line", "\r\nHTTP/1.1 200 OK\r\n\r\n", 0, "upstream sent invalid status line"},
		{"CTL in reason", "HTTP/1.1 200 O\x01K\r\n\r\n", 0, "upstream sent invalid status line"},
		{"bare CR in status line", "HTTP/1.1 200 OK\rX: y\r\n\r\n", 0, "upstream sent invalid status line"},
		{"space before colon", "HTTP/1.1 200 OK\r\nX : y\r\n\r\n", 0, "upstream sent invalid header"},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX: y\r\n z\r\n\r\n", 0, "upstream sent invalid header"},
		{"NUL in value", "HTTP/1.1 200 OK\r\nX: \x00\r\n\r\n", 0, "upstream sent invalid header"},
		{"duplicate length", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", 0, "upstream sent duplicate header line"},
		{"duplicate TE", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 0, "upstream sent duplicate header line"},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: 1a\r\n\r\n", 0, `upstream sent invalid "Content-Length" header`},
		{"unknown TE", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 0, `upstream sent unknown "Transfer-Encoding"`},
		{"TE and CL", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n", 0, `upstream sent "Content-Length" and "Transfer-Encoding" headers at the same time`},
		{"too big by one", "HTTP/1.1 200 OK\r\n" + line("X", 64-17-2+1) + "\r\n", 64, "upstream sent too big header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readResponseAll(t, tt.in, "GET", tt.max)
			var se *StatusError
			if !errors.As(err, &se) || se.Status != 502 || se.Detail != tt.detail {
				t.Fatalf("err = %v, want 502 %q", err, tt.detail)
			}
		})
	}
}

func TestReadResponseLimitBoundary(t *testing.T) {
	in := "HTTP/1.1 200 OK\r\n" + line("X", 64-17-2) + "\r\n"
	if len(in) != 64 {
		t.Fatalf("setup: %d bytes", len(in))
	}
	if _, err := readResponseAll(t, in, "GET", 64); err != nil {
		t.Fatalf("head of exactly the limit: %v", err)
	}
	if _, err := readResponseAll(t, in, "GET", 63); err == nil {
		t.Fatal("head one over the limit accepted")
	}
}

func TestReadResponseEOF(t *testing.T) {
	if _, err := readResponseAll(t, "", "GET", 0); err != io.EOF {
		t.Fatalf("empty: %v", err)
	}
	if _, err := readResponseAll(t, "HTTP/1.1 200 OK\r\n", "GET", 0); err != io.ErrUnexpectedEOF {
		t.Fatalf("truncated: %v", err)
	}
}

func TestCloseDelimitedBodyShort(t *testing.T) {
	br := bufio.NewReader(strings.NewReader("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"))
	r, err := ReadResponse(br, "GET", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(r.Body(br)); err != io.ErrUnexpectedEOF {
		t.Fatalf("err = %v, want ErrUnexpectedEOF", err)
	}
}

// TestHeadAllocations: a head with the header fields of a WebSocket
// handshake costs two allocations, its text and the parsed head with its
// fields; one with more fields than the parsed head has room for costs a
// third, and keeps them all.
func TestHeadAllocations(t *testing.T) {
	const resp = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
	const req = "GET /ws HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: http://example.com\r\n\r\n"
	sr := strings.NewReader("")
	br := bufio.NewReaderSize(sr, ReaderSize)
	allocs := func(head string, read func() int) (float64, int) {
		var n int
		a := testing.AllocsPerRun(50, func() {
			sr.Reset(head)
			br.Reset(sr)
			n = read()
		})
		return a, n
	}
	readResp := func() int {
		r, err := ReadResponse(br, "GET", 0)
		if err != nil {
			t.Fatal(err)
		}
		return len(r.Header)
	}
	readReq := func() int {
		r, err := ReadRequest(br, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		return len(r.Header)
	}
	if a, n := allocs(resp, readResp); a != 2 || n != 3 {
		t.Errorf("a 101 with 3 fields: %v allocations, %d fields; want 2 and 3", a, n)
	}
	if a, n := allocs(req, readReq); a != 2 || n != 6 {
		t.Errorf("a handshake with 6 fields: %v allocations, %d fields; want 2 and 6", a, n)
	}
	many := strings.Replace(resp, "\r\n\r\n", strings.Repeat("\r\nX-A: 1", 7)+"\r\n\r\n", 1)
	if a, n := allocs(many, readResp); a != 3 || n != 10 {
		t.Errorf("a 101 with 10 fields: %v allocations, %d fields; want 3 and 10", a, n)
	}
}
