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

func FuzzReadRequest(f *testing.F) {
	for _, s := range []string{
		handshake, browserHandshake,
		"GET / HTTP/1.0\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
		"POST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"GET http://[::1]:80/x?y HTTP/1.1\nHost: h\n\n",
		"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
		"\r\nGET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	small := Limits{HeaderBufferSize: 32, LargeBuffers: 2, LargeBufferSize: 64}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := string(data)
		for _, lim := range []Limits{{}, small} {
			r, err := readAll(t, s, lim) // all read modes agree
			if err != nil {
				var se *StatusError
				if !errors.As(err, &se) && err != io.EOF && err != io.ErrUnexpectedEOF {
					t.Fatalf("unexpected error type %T %v", err, err)
				}
				if se != nil && se.Status == 431 {
					t.Fatal("431")
				}
				continue
			}
			if r.ContentLength >= 0 && r.Chunked {
				t.Fatalf("both Content-Length and chunked: %+v", r)
			}
			if strings.ContainsAny(r.Method+r.Target+r.Proto, " \r\n\x00") || strings.ContainsAny(r.URI, "\r\n\x00") {
				t.Fatalf("separator inside a request-line element: %+v", r)
			}
			// Written back out, the head must parse to the same thing.
			var b []byte
			b = append(b, r.Method+" "+r.Target+" "+r.Proto+"\r\n"...)
			b = r.Header.AppendTo(b)
			b = append(b, "\r\n"...)
			r2, err := ReadRequest(bufio.NewReader(bytes.NewReader(b)), Limits{LargeBufferSize: 1 << 20})
			if err != nil {
				t.Fatalf("re-parse of %q: %v", b, err)
			}
			if r2.Method != r.Method || r2.RequestURI != r.RequestURI || r2.URI != r.URI || r2.Proto != r.Proto ||
				r2.HostName != r.HostName || r2.ContentLength != r.ContentLength || r2.Chunked != r.Chunked ||
				len(r2.Header) != len(r.Header) {
				t.Fatalf("re-parse differs:\n%+v\n%+v", r, r2)
			}
			for i := range r.Header {
				if r.Header[i] != r2.Header[i] {
					t.Fatalf("header %d: %q vs %q", i, r.Header[i], r2.Header[i])
				}
			}
		}
	})
}

func FuzzChunked(f *testing.F) {
	for _, s := range []string{
		"5\r\nhello\r\n0\r\n\r\n",
		"3;ext=1\r\nabc\r\n1\r\nd\r\n0\r\nX-T: 1\r\n\r\n",
		"000A\r\n0123456789\r\n0\r\n\r\n",
		"7fffffffffffffff\r\n",
		"5\nhello\n0\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		whole, errW := io.ReadAll(NewChunkedReader(bufio.NewReader(bytes.NewReader(data))))
		bytewise, errB := io.ReadAll(NewChunkedReader(bufio.NewReader(iotest.OneByteReader(bytes.NewReader(data)))))
		if !bytes.Equal(whole, bytewise) || errW != errB {
			t.Fatalf("whole %q %v, bytewise %q %v", whole, errW, bytewise, errB)
		}
		if errW != nil {
			if errW != io.ErrUnexpectedEOF && !errors.Is(errW, ErrMalformedChunked) {
				t.Fatalf("unexpected error %v", errW)
			}
			return
		}
		// A body that decodes must survive our own encoding.
		var enc bytes.Buffer
		w := NewChunkedWriter(&enc)
		w.Write(whole)
		w.Close()
		again, err := io.ReadAll(NewChunkedReader(bufio.NewReader(&enc)))
		if err != nil || !bytes.Equal(again, whole) {
			t.Fatalf("re-encode: %q %v", again, err)
		}
	})
}

func FuzzReadResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\nbody",
		"HTTP/1.1 200\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, head bool) {
		method := "GET"
		if head {
			method = "HEAD"
		}
		r, err := readResponseAll(t, string(data), method, 256)
		if err != nil {
			return
		}
		if r.ContentLength >= 0 && r.Chunked {
			t.Fatalf("both Content-Length and chunked: %+v", r)
		}
		if r.CloseDelimited && (!r.BodyAllowed || !r.Close) {
			t.Fatalf("inconsistent framing: %+v", r)
		}
	})
}

// FuzzRequestBody reads a request body as the proxy does, after its head:
// chunked (sizes, extensions, trailers) or by Content-Length. Every read
// mode must give the same bytes and the same error; an error is a
// malformed body or a body cut short, never anything else; a body never
// goes past its Content-Length; a chunked body that decodes survives our
// own encoding.
func FuzzRequestBody(f *testing.F) {
	const chunkedHead = "POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	for _, s := range []string{
		chunkedHead + "5\r\nhello\r\n0\r\n\r\n",
		chunkedHead + "3;ext=1;q=\"a b\"\r\nabc\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\n",
		chunkedHead + "0\r\nbad trailer\r\n\r\n",
		chunkedHead + "zz\r\n",
		chunkedHead + "-1\r\n",
		chunkedHead + "fffffffffffffffff\r\n",
		chunkedHead + "5\r\nhelloXX\r\n0\r\n\r\n",
		chunkedHead + "5\r\nhel",
		chunkedHead + "5 \r\nhello\r\n0\r\n\r\n",
		chunkedHead + "5\nhello\n0\n\n",
		"POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n",
		"POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n0123456789",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var bodies [][]byte
		var errs []error
		var cl int64
		var chunked bool
		for _, m := range readModes[:2] { // a body is read with a ReaderSize buffer
			br := m.new(string(data))
			r, err := ReadRequest(br, Limits{})
			if err != nil {
				return // the head's own fuzz target covers this
			}
			cl, chunked = r.ContentLength, r.Chunked
			body, err := io.ReadAll(r.Body(br))
			bodies, errs = append(bodies, body), append(errs, err)
		}
		for i := 1; i < len(bodies); i++ {
			if !bytes.Equal(bodies[i], bodies[0]) || errs[i] != errs[0] {
				t.Fatalf("%s: %q %v, whole: %q %v", readModes[i].name, bodies[i], errs[i], bodies[0], errs[0])
			}
		}
		body, err := bodies[0], errs[0]
		if err != nil && err != io.ErrUnexpectedEOF && !errors.Is(err, ErrMalformedChunked) {
			t.Fatalf("unexpected body error %T %v", err, err)
		}
		if !chunked {
			if cl >= 0 && int64(len(body)) > cl || err == nil && cl >= 0 && int64(len(body)) != cl {
				t.Fatalf("Content-Length %d gave %d bytes (%v)", cl, len(body), err)
			}
			return
		}
		if err == nil {
			var enc bytes.Buffer
			w := NewChunkedWriter(&enc)
			w.Write(body)
			w.Close()
			again, err := io.ReadAll(NewChunkedReader(bufio.NewReader(&enc)))
			if err != nil || !bytes.Equal(again, body) {
				t.Fatalf("re-encode: %q %v", again, err)
			}
		}
	})
}
