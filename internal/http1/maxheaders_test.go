package http1

import (
	"bufio"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestMaxHeaders: max_headers header lines pass, one more is nginx's 400
// "Request Header Or Cookie Too Large"; the default is 1000; a negative
// limit (max_headers 0) refuses any header line.
func TestMaxHeaders(t *testing.T) {
	head := func(n int) string {
		var b strings.Builder
		b.WriteString("GET / HTTP/1.1\r\nHost: h\r\n")
		for i := 1; i < n; i++ {
			fmt.Fprintf(&b, "X-%d: v\r\n", i)
		}
		return b.String() + "\r\n"
	}
	for _, tt := range []struct {
		max, n int
		ok     bool
	}{
		{3, 3, true}, {3, 4, false}, {0, 1000, true}, {0, 1001, false}, {-1, 1, false},
	} {
		lim := Limits{MaxHeaders: tt.max, LargeBufferSize: 64 << 10}
		_, err := ReadRequest(bufio.NewReaderSize(strings.NewReader(head(tt.n)), ReaderSize), lim)
		var se *StatusError
		switch {
		case tt.ok && err != nil:
			t.Errorf("max %d, %d lines: %v", tt.max, tt.n, err)
		case !tt.ok && (!errors.As(err, &se) || se.Status != 400 || se.Reason != ReasonHeaderTooLarge || se.Detail != "client sent too many header lines"):
			t.Errorf("max %d, %d lines: %v, want 400 too many header lines", tt.max, tt.n, err)
		}
	}
	if _, err := ReadRequest(bufio.NewReader(strings.NewReader("GET / HTTP/1.0\r\n\r\n")), Limits{MaxHeaders: -1}); err != nil {
		t.Errorf("a request without header lines under max_headers 0: %v", err)
	}
}
