package http1

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

// TestRefusedHeadKeepsWhatWasParsed: a refused or cut-short head still
// yields what the logs need: the request line, valid or as received.
func TestRefusedHeadKeepsWhatWasParsed(t *testing.T) {
	errCut := errors.New("cut")
	for _, tt := range []struct {
		name, head string
		cut        bool   // the reader fails with errCut after head
		line, raw  string // want Method+" "+Target+" "+Proto, or Line
	}{
		{"bad header", "GET /a HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n", false, "GET /a HTTP/1.1", ""},
		{"bad uri", "GET /a%00 HTTP/1.1\r\nHost: x\r\n\r\n", false, "GET /a%00 HTTP/1.1", ""},
		{"bad line", "\x01 / HTTP/1.1\r\nHost: x\r\n\r\n", false, "", "\x01 / HTTP/1.1"},
		{"cut after the line", "GET http://h/b HTTP/1.1\r\nHost: x\r\n", true, "GET http://h/b HTTP/1.1", ""},
		{"cut inside the line", "GET /b HT", true, "", ""},
	} {
		var src io.Reader = strings.NewReader(tt.head)
		if tt.cut {
			src = io.MultiReader(src, errReader{errCut})
		}
		r, err := ReadRequest(bufio.NewReaderSize(src, ReaderSize), Limits{})
		if err == nil {
			t.Errorf("%s: no error", tt.name)
			continue
		}
		if tt.line == "" && tt.raw == "" {
			if r != nil && (r.Proto != "" || r.Line != "") {
				t.Errorf("%s: %+v, want nothing", tt.name, r)
			}
			continue
		}
		if r == nil {
			t.Errorf("%s: nil request (%v)", tt.name, err)
			continue
		}
		if got := r.Method + " " + r.Target + " " + r.Proto; tt.line != "" && got != tt.line {
			t.Errorf("%s: request line %q, want %q", tt.name, got, tt.line)
		}
		if r.Line != tt.raw {
			t.Errorf("%s: Line %q, want %q", tt.name, r.Line, tt.raw)
		}
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
