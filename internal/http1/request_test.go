package http1

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// readModes feed the same bytes to ReadRequest in the ways a socket can
// deliver them: all at once, one byte per read, and through a bufio buffer
// far smaller than the head (the accumulating path).
var readModes = []struct {
	name string
	new  func(string) *bufio.Reader
}{
	{"whole", func(s string) *bufio.Reader { return bufio.NewReaderSize(strings.NewReader(s), ReaderSize) }},
	{"bytewise", func(s string) *bufio.Reader {
		return bufio.NewReaderSize(iotest.OneByteReader(strings.NewReader(s)), ReaderSize)
	}},
	{"small", func(s string) *bufio.Reader { return bufio.NewReaderSize(strings.NewReader(s), 16) }},
}

// readAll parses s in every read mode, fails the test if the modes
// disagree, and returns the result.
func readAll(t *testing.T, s string, lim Limits) (*Request, error) {
	t.Helper()
	var first *Request
	var firstErr error
	for i, m := range readModes {
		r, err := ReadRequest(m.new(s), lim)
		if i == 0 {
			first, firstErr = r, err
			continue
		}
		if !sameErr(err, firstErr) {
			t.Fatalf("%s: err %v, whole: %v", m.name, err, firstErr)
		}
		if err == nil && !sameRequest(r, first) {
			t.Fatalf("%s: %+v, whole: %+v", m.name, r, first)
		}
	}
	return first, firstErr
}

func sameErr(a, b error) bool {
	var sa, sb *StatusError
	if errors.As(a, &sa) && errors.As(b, &sb) {
		return *sa == *sb
	}
	return a == b
}

func sameRequest(a, b *Request) bool {
	if a.Method != b.Method || a.RequestURI != b.RequestURI || a.Proto != b.Proto ||
		a.Major != b.Major || a.Minor != b.Minor || a.Host != b.Host || a.HostName != b.HostName ||
		a.ContentLength != b.ContentLength || a.Chunked != b.Chunked || a.Close != b.Close ||
		a.Path != b.Path || a.RawQuery != b.RawQuery || a.HeaderBytes != b.HeaderBytes ||
		len(a.Header) != len(b.Header) {
		return false
	}
	for i := range a.Header {
		if a.Header[i] != b.Header[i] {
			return false
		}
	}
	return true
}

const handshake = "GET /chat?room=1 HTTP/1.1\r\n" +
	"Host: Example.COM:8080\r\n" +
	"Upgrade: websocket\r\n" +
	"Connection: keep-alive, Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
	"Sec-WebSocket-Version: 13\r\n" +
	"Origin: http://example.com\r\n" +
	"User-Agent: test\r\n" +
	"\r\n"

func TestReadRequestValid(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		check func(t *testing.T, r *Request)
	}{
		{"handshake", handshake, func(t *testing.T, r *Request) {
			want := Request{Method: "GET", RequestURI: "/chat?room=1", Proto: "HTTP/1.1", Major: 1, Minor: 1,
				Host: "Example.COM:8080", HostName: "example.com", ContentLength: -1,
				Path: "/chat", RawQuery: "room=1", HeaderBytes: len(handshake)}
			got := *r
			got.Header = nil
			if !sameRequest(&got, &want) {
				t.Errorf("got %+v\nwant %+v", got, want)
			}
			if len(r.Header) != 7 || r.Header[1] != (Field{"Upgrade", "websocket"}) {
				t.Errorf("header %v", r.Header)
			}
			if !r.Header.HasToken("connection", "upgrade") {
				t.Error("Connection: Upgrade not seen")
			}
		}},
		{"bare LF", "GET / HTTP/1.1\nHost: a\n\n", func(t *testing.T, r *Request) {
			if r.HostName != "a" || r.HeaderBytes != 24 {
				t.Errorf("%+v", r)
			}
		}},
		{"leading empty lines", "\r\n\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", func(t *testing.T, r *Request) {
			if r.Method != "GET" || r.HeaderBytes != 27 {
				t.Errorf("%+v", r)
			}
		}},
		{"HTTP/1.0 without Host closes", "GET / HTTP/1.0\r\n\r\n", func(t *testing.T, r *Request) {
			if !r.Close || r.Minor != 0 || r.Host != "" || r.HostName != "" {
				t.Errorf("%+v", r)
			}
		}},
		{"HTTP/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", func(t *testing.T, r *Request) {
			if r.Close {
				t.Error("Close set")
			}
		}},
		{"HTTP/1.1 close", "GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nConnection: close\r\n\r\n", func(t *testing.T, r *Request) {
			if !r.Close {
				t.Error("Close not set")
			}
		}},
		{"HTTP/1.2 is 1.x", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", func(t *testing.T, r *Request) {
			if r.Minor != 2 || r.Proto != "HTTP/1.2" {
				t.Errorf("%+v", r)
			}
		}},
		{"absolute form takes host from target", "GET http://Sub.Example.org.:81/p?q HTTP/1.1\r\nHost: other\r\n\r\n", func(t *testing.T, r *Request) {
			if r.HostName != "sub.example.org" || r.Host != "other" || r.Path != "/p" || r.RawQuery != "q" {
				t.Errorf("%+v", r)
			}
		}},
		{"absolute form without path", "GET https://h HTTP/1.1\r\nHost: h\r\n\r\n", func(t *testing.T, r *Request) {
			if r.Path != "/" || r.HostName != "h" {
				t.Errorf("%+v", r)
			}
		}},
		{"absolute form IPv6", "GET http://[::1]:8080/x HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", func(t *testing.T, r *Request) {
			if r.HostName != "[::1]" || r.Path != "/x" {
				t.Errorf("%+v", r)
			}
		}},
		{"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", func(t *testing.T, r *Request) {
			if r.Path != "*" {
				t.Errorf("%+v", r)
			}
		}},
		{"method with _ and -", "M-SEARCH_X / HTTP/1.1\r\nHost: a\r\n\r\n", func(t *testing.T, r *Request) {
			if r.Method != "M-SEARCH_X" {
				t.Errorf("%+v", r)
			}
		}},
		{"host trailing dot and case", "GET / HTTP/1.1\r\nHost: WWW.Example.Com.\r\n\r\n", func(t *testing.T, r *Request) {
			if r.HostName != "www.example.com" || r.Host != "WWW.Example.Com." {
				t.Errorf("%+v", r)
			}
		}},
		{"content length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0005\r\n\r\n", func(t *testing.T, r *Request) {
			if r.ContentLength != 5 || r.Chunked {
				t.Errorf("%+v", r)
			}
		}},
		{"chunked any case", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n", func(t *testing.T, r *Request) {
			if !r.Chunked || r.ContentLength != -1 {
				t.Errorf("%+v", r)
			}
		}},
		{"values trimmed, empty value kept", "GET / HTTP/1.1\r\nHost: a\r\nX-A: \t v \t\r\nX-B:\r\n\r\n", func(t *testing.T, r *Request) {
			if r.Header.Get("x-a") != "v" || !r.Header.Has("X-B") || r.Header.Get("X-B") != "" {
				t.Errorf("%v", r.Header)
			}
		}},
		{"obs-text in value and target", "GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n", func(t *testing.T, r *Request) {
			if r.Path != "/\xc3\xa9" || r.Header.Get("X") != "caf\xc3\xa9" {
				t.Errorf("%+v", r)
			}
		}},
		{"duplicate ordinary headers kept", "GET / HTTP/1.1\r\nHost: a\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n", func(t *testing.T, r *Request) {
			var got []string
			for v := range r.Header.Values("cookie") {
				got = append(got, v)
			}
			if strings.Join(got, ";") != "a=1;b=2" {
				t.Errorf("%v", got)
			}
		}},
		{"underscore in header name", "GET / HTTP/1.1\r\nHost: a\r\nX_Y: 1\r\n\r\n", func(t *testing.T, r *Request) {
			if r.Header.Get("X_Y") != "1" {
				t.Errorf("%v", r.Header)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := readAll(t, tt.in, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, r)
		})
	}
}

func TestReadRequestRejects(t *testing.T) {
	const ok = "GET / HTTP/1.1\r\nHost: a\r\n"
	tests := []struct {
		name   string
		in     string
		status int
		detail string
	}{
		{"lowercase method", "get / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "client sent invalid method"},
		{"digit in method", "GET1 / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "client sent invalid method"},
		{"line starts with space", " GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "client sent invalid method"},
		{"method only", "GET\r\nHost: a\r\n\r\n", 400, "client sent invalid method"},
		{"TLS hello", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400, "client sent invalid method"},
		{"two spaces", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "client sent invalid request"},
		{"HTTP/0.9", "GET /\r\n\r\n", 400, "client sent invalid request"},
		{"trailing space after version", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400, "client sent invalid request"},
		{"lowercase protocol", "GET / http/1.1\r\nHost: a\r\n\r\n", 400, "client sent invalid request"},
		{"version 0.9", "GET / HTTP/0.9\r\nHost: a\r\n\r\n", 400, "client sent invalid request"},
		{"minor too large", "GET / HTTP/1.100\r\nHost: a\r\n\r\n", 400, "client sent invalid request"},
		{"no minor", "GET / HTTP/1.\r\nHost: a\r\n\r\n", 400, "client sent invalid request"},
		{"HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, "client sent unsupported HTTP version"},
		{"HTTP/3.0", "GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505, "client sent unsupported HTTP version"},
		{"HTTP/10.0", "GET / HTTP/10.0\r\nHost: a\r\n\r\n", 505, "client sent unsupported HTTP version"},
		{"bare CR ends line", "GET / HTTP/1.1\rHost: a\r\n\r\n", 400, "client sent invalid request"},
		{"NUL in target", "GET /\x00 HTTP/1.1\r\nHost: a\r\n\r\n", 400, "client sent invalid request"},
		{"DEL in target", "GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n", 400, "client sent invalid request"},
		{"fragment in target", "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", 400, "client sent invalid request"},
		{"star with GET", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400, "client sent invalid request"},
		{"authority form", "CONNECT example.com:443 HTTP/1.1\r\nHost: a\r\n\r\n", 400, "client sent invalid request"},
		{"query only target", "GET ?x HTTP/1.1\r\nHost: a\r\n\r\n", 400, "client sent invalid request"},
		{"userinfo", "GET http://u@h/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, "client sent invalid request"},
		{"scheme without slashes", "GET http:h/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, "client sent invalid request"},
		{"empty URI host", "GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", 400, "client sent invalid host in request line"},
		{"dot dot URI host", "GET http://a..b/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, "client sent invalid host in request line"},
		{"space before colon", ok + "X-A : 1\r\n\r\n", 400, "client sent invalid header line"},
		{"tab before colon", ok + "X-A\t: 1\r\n\r\n", 400, "client sent invalid header line"},
		{"no colon", ok + "X-A 1\r\n\r\n", 400, "client sent invalid header line"},
		{"empty name", ok + ": 1\r\n\r\n", 400, "client sent invalid header line"},
		{"obs-fold", ok + "X-A: 1\r\n 2\r\n\r\n", 400, "client sent invalid header line"},
		{"obs-fold tab", ok + "X-A: 1\r\n\t2\r\n\r\n", 400, "client sent invalid header line"},
		{"non-token name", ok + "X@A: 1\r\n\r\n", 400, "client sent invalid header line"},
		{"NUL in value", ok + "X-A: a\x00b\r\n\r\n", 400, "client sent invalid header line"},
		{"NUL in name", ok + "X\x00A: 1\r\n\r\n", 400, "client sent invalid header line"},
		{"bare CR in value", ok + "X-A: a\rb\r\n\r\n", 400, "client sent invalid header line"},
		{"CTL in value", ok + "X-A: a\x01b\r\n\r\n", 400, "client sent invalid header line"},
		{"DEL in value", ok + "X-A: a\x7fb\r\n\r\n", 400, "client sent invalid header line"},
		{"CL sign", ok + "Content-Length: +5\r\n\r\n", 400, `client sent invalid "Content-Length" header`},
		{"CL negative", ok + "Content-Length: -1\r\n\r\n", 400, `client sent invalid "Content-Length" header`},
		{"CL hex", ok + "Content-Length: 0x5\r\n\r\n", 400, `client sent invalid "Content-Length" header`},
		{"CL list", ok + "Content-Length: 5, 5\r\n\r\n", 400, `client sent invalid "Content-Length" header`},
		{"CL inner space", ok + "Content-Length: 5 5\r\n\r\n", 400, `client sent invalid "Content-Length" header`},
		{"CL empty", ok + "Content-Length:\r\n\r\n", 400, `client sent invalid "Content-Length" header`},
		{"CL overflow", ok + "Content-Length: 9223372036854775808\r\n\r\n", 400, `client sent invalid "Content-Length" header`},
		{"CL duplicate same", ok + "Content-Length: 5\r\nContent-Length: 5\r\n\r\n", 400, "client sent duplicate header line"},
		{"CL duplicate different", ok + "Content-Length: 5\r\ncontent-length: 6\r\n\r\n", 400, "client sent duplicate header line"},
		{"TE duplicate", ok + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "client sent duplicate header line"},
		{"TE gzip", ok + "Transfer-Encoding: gzip\r\n\r\n", 501, `client sent unknown "Transfer-Encoding"`},
		{"TE list", ok + "Transfer-Encoding: gzip, chunked\r\n\r\n", 501, `client sent unknown "Transfer-Encoding"`},
		{"TE identity", ok + "Transfer-Encoding: identity\r\n\r\n", 501, `client sent unknown "Transfer-Encoding"`},
		{"TE on HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, `client sent HTTP/1.0 request with "Transfer-Encoding" header`},
		{"TE and CL", ok + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400, `client sent "Content-Length" and "Transfer-Encoding" headers at the same time`},
		{"CL and TE", ok + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400, `client sent "Content-Length" and "Transfer-Encoding" headers at the same time`},
		{"no Host in 1.1", "GET / HTTP/1.1\r\nX: 1\r\n\r\n", 400, `client sent HTTP/1.1 request without "Host" header`},
		{"absolute form without Host", "GET http://a/ HTTP/1.1\r\n\r\n", 400, `client sent HTTP/1.1 request without "Host" header`},
		{"duplicate Host", ok + "host: a\r\n\r\n", 400, "client sent duplicate host header"},
		{"empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", 400, "client sent invalid host header"},
		{"Host with slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, "client sent invalid host header"},
		{"Host with backslash", "GET / HTTP/1.1\r\nHost: a\\b\r\n\r\n", 400, "client sent invalid host header"},
		{"Host dot dot", "GET / HTTP/1.1\r\nHost: a..b\r\n\r\n", 400, "client sent invalid host header"},
		{"Host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "client sent invalid host header"},
		{"Host only dot", "GET / HTTP/1.1\r\nHost: .\r\n\r\n", 400, "client sent invalid host header"},
		{"Host only port", "GET / HTTP/1.1\r\nHost: :80\r\n\r\n", 400, "client sent invalid host header"},
		{"duplicate Authorization", ok + "Authorization: a\r\nauthorization: a\r\n\r\n", 400, "client sent duplicate header line"},
		{"duplicate If-None-Match", ok + "If-None-Match: a\r\nIf-None-Match: b\r\n\r\n", 400, "client sent duplicate header line"},
		{"TRACE", "TRACE / HTTP/1.1\r\nHost: a\r\n\r\n", 405, "client sent TRACE method"},
		{"earliest error wins", ok + "Bad Name: 1\r\nContent-Length: x\r\n\r\n", 400, "client sent invalid header line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readAll(t, tt.in, Limits{})
			var se *StatusError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a StatusError", err)
			}
			if se.Status != tt.status || se.Detail != tt.detail {
				t.Fatalf("got %d %q, want %d %q", se.Status, se.Detail, tt.status, tt.detail)
			}
			if se.Status == 431 {
				t.Fatal("431 is never sent")
			}
		})
	}
}

func TestReadRequestEOF(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{"", io.EOF},
		{"\r\n\r\n", io.EOF},
		{"G", io.ErrUnexpectedEOF},
		{"GET / HTTP/1.1\r\nHost: a\r\n", io.ErrUnexpectedEOF},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r", io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		if _, err := readAll(t, tt.in, Limits{}); err != tt.want {
			t.Errorf("%q: err = %v, want %v", tt.in, err, tt.want)
		}
	}
}

// line returns a header line of exactly n bytes including CRLF.
func line(name string, n int) string {
	return name + ": " + strings.Repeat("v", n-len(name)-4) + "\r\n"
}

// requestLine returns a request line of exactly n bytes including CRLF.
func requestLine(n int) string {
	return "GET /" + strings.Repeat("a", n-len("GET / HTTP/1.1\r\n")) + " HTTP/1.1\r\n"
}

func TestReadRequestLimits(t *testing.T) {
	big := func(n int) string { // n header lines of 5000 bytes
		var b strings.Builder
		b.WriteString("GET / HTTP/1.1\r\nHost: x\r\n")
		for i := range n {
			b.WriteString(line("X"+string(rune('a'+i)), 5000))
		}
		b.WriteString("\r\n")
		return b.String()
	}
	tests := []struct {
		name   string
		lim    Limits
		in     string
		status int // 0: accepted
		reason string
	}{
		{"request line at limit", Limits{}, requestLine(8192) + "Host: a\r\n\r\n", 0, ""},
		{"request line one over", Limits{}, requestLine(8193) + "Host: a\r\n\r\n", 414, "Request-URI Too Large"},
		{"request line far over", Limits{}, requestLine(70000), 414, "Request-URI Too Large"},
		{"request line bare LF at limit", Limits{}, strings.TrimSuffix(requestLine(8193), "\r\n") + "\nHost: a\n\n", 0, ""},
		{"header line at limit", Limits{}, "GET / HTTP/1.1\r\nHost: a\r\n" + line("Cookie", 8192) + "\r\n", 0, ""},
		{"header line one over", Limits{}, "GET / HTTP/1.1\r\nHost: a\r\n" + line("Cookie", 8193) + "\r\n", 400, ReasonHeaderTooLarge},
		{"four large buffers", Limits{}, big(4), 0, ""},
		{"five large buffers", Limits{}, big(5), 400, ReasonHeaderTooLarge},
		{"whole head in first buffer", Limits{}, "GET / HTTP/1.1\r\nHost: a\r\n" + line("X", 1024-26-2) + "\r\n", 0, ""},
		// Custom sizes: first buffer 64, two large buffers of 128.
		{"small: fits first buffer exactly", Limits{HeaderBufferSize: 64, LargeBuffers: 2, LargeBufferSize: 128}, "GET / HTTP/1.1\r\nHost: a\r\n" + line("X", 64-26-2) + "\r\n", 0, ""},
		{"small: line ends at buffer end, two more buffers", Limits{HeaderBufferSize: 64, LargeBuffers: 2, LargeBufferSize: 128},
			"GET / HTTP/1.1\r\nHost: a\r\n" + line("X", 64-26) + line("Y", 128) + line("Z", 126) + "\r\n", 0, ""},
		{"small: line ends at buffer end, next needs a buffer each", Limits{HeaderBufferSize: 64, LargeBuffers: 2, LargeBufferSize: 128},
			"GET / HTTP/1.1\r\nHost: a\r\n" + line("X", 64-26) + line("Y", 128) + line("Z", 128) + "\r\n", 400, ReasonHeaderTooLarge},
		{"small: too many buffers", Limits{HeaderBufferSize: 64, LargeBuffers: 1, LargeBufferSize: 128}, "GET / HTTP/1.1\r\nHost: a\r\n" + line("X", 100) + line("Y", 100) + "\r\n", 400, ReasonHeaderTooLarge},
		{"small: request line", Limits{HeaderBufferSize: 64, LargeBuffers: 1, LargeBufferSize: 128}, requestLine(129) + "Host: a\r\n\r\n", 414, "Request-URI Too Large"},
		{"small: syntax error before size", Limits{HeaderBufferSize: 64, LargeBuffers: 1, LargeBufferSize: 128}, "GET / HTTP/1.1\r\nHost: a\r\nBad Name: 1\r\n" + line("Y", 300) + "\r\n", 400, "Bad Request"},
		{"small: fits with first buffer and one large", Limits{HeaderBufferSize: 64, LargeBuffers: 1, LargeBufferSize: 128},
			"GET / HTTP/1.1\r\nHost: a\r\n" + line("X", 36) + line("Y", 100) + "\r\n", 0, ""},
		{"small: leading empty lines take first buffer room", Limits{HeaderBufferSize: 64, LargeBuffers: 1, LargeBufferSize: 128},
			strings.Repeat("\r\n", 10) + "GET / HTTP/1.1\r\nHost: a\r\n" + line("X", 36) + line("Y", 100) + "\r\n", 400, ReasonHeaderTooLarge},
		{"small: leading empty lines fill first buffer", Limits{HeaderBufferSize: 64, LargeBuffers: 1, LargeBufferSize: 128}, strings.Repeat("\r\n", 32) + "GET / HTTP/1.1\r\nHost: a\r\n" + line("X", 36) + "\r\n", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readAll(t, tt.in, tt.lim)
			if tt.status == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var se *StatusError
			if !errors.As(err, &se) || se.Status != tt.status || se.Reason != tt.reason {
				t.Fatalf("err = %v (%+v), want %d %q", err, se, tt.status, tt.reason)
			}
		})
	}
}

func TestReadRequestPipelined(t *testing.T) {
	in := "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" +
		"POST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" +
		"\r\nGET /c HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
	for _, m := range readModes {
		t.Run(m.name, func(t *testing.T) {
			br := m.new(in)
			var paths, bodies []string
			for {
				r, err := ReadRequest(br, Limits{})
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				b, err := io.ReadAll(r.Body(br))
				if err != nil {
					t.Fatal(err)
				}
				paths = append(paths, r.Path)
				bodies = append(bodies, string(b))
			}
			if strings.Join(paths, ",") != "/a,/b,/c" || strings.Join(bodies, ",") != "hello,abc," {
				t.Fatalf("paths %v bodies %q", paths, bodies)
			}
		})
	}
}

// TestReadRequestAnswersEarly checks that a head nginx would refuse before
// it is complete is refused while the client keeps the connection open.
func TestReadRequestAnswersEarly(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		status int
	}{
		{"TLS hello on plain port", "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 400},
		{"HTTP/0.9 request", "GET /\r\n", 400},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n", 400},
		{"HTTP/2 version", "GET / HTTP/2.0\r\n", 505},
		{"NUL in partial header", "GET / HTTP/1.1\r\nHost: a\r\nX: \x00", 400},
		{"request line too long", requestLine(9000)[:8500], 414},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			s, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := io.WriteString(c, tt.in); err != nil {
				t.Fatal(err)
			}
			// The client neither sends more nor closes: only the deadline
			// (a failure) would end a reader that waits for the rest.
			s.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err = ReadRequest(bufio.NewReaderSize(s, ReaderSize), Limits{})
			var se *StatusError
			if !errors.As(err, &se) || se.Status != tt.status {
				t.Fatalf("err = %v, want status %d", err, tt.status)
			}
		})
	}
}

func TestReadRequestPassesReadErrors(t *testing.T) {
	boom := errors.New("boom")
	br := bufio.NewReaderSize(io.MultiReader(strings.NewReader("GET / HT"), iotest.ErrReader(boom)), ReaderSize)
	if _, err := ReadRequest(br, Limits{}); err != boom {
		t.Fatalf("err = %v, want %v", err, boom)
	}
}

func TestStatusErrorMessage(t *testing.T) {
	_, err := ReadRequest(bufio.NewReader(strings.NewReader("GET / HTTP/1.1\r\n\r\n")), Limits{})
	if err == nil || err.Error() != `http1: 400 client sent HTTP/1.1 request without "Host" header` {
		t.Fatalf("err = %v", err)
	}
}

// browserHandshake is what a browser sends to open a WebSocket.
const browserHandshake = "GET /ws?token=abc HTTP/1.1\r\n" +
	"Host: example.com:8080\r\n" +
	"Connection: Upgrade\r\n" +
	"Pragma: no-cache\r\n" +
	"Cache-Control: no-cache\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36\r\n" +
	"Upgrade: websocket\r\n" +
	"Origin: https://example.com\r\n" +
	"Sec-WebSocket-Version: 13\r\n" +
	"Accept-Encoding: gzip, deflate, br, zstd\r\n" +
	"Accept-Language: en-US,en;q=0.9\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
	"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" +
	"\r\n"

func BenchmarkReadRequestHandshake(b *testing.B) {
	sr := strings.NewReader(browserHandshake)
	br := bufio.NewReaderSize(sr, ReaderSize)
	b.ReportAllocs()
	b.SetBytes(int64(len(browserHandshake)))
	for b.Loop() {
		sr.Reset(browserHandshake)
		br.Reset(sr)
		r, err := ReadRequest(br, Limits{})
		if err != nil || r.HostName != "example.com" || len(r.Header) != 12 {
			b.Fatal(r, err)
		}
	}
}
