package proxyproto

import (
	"bufio"
	"net/netip"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	v2 := string(AppendV2(nil, netip.MustParseAddrPort("198.51.100.7:4000"), netip.MustParseAddrPort("10.0.0.1:443")))
	v26 := string(AppendV2(nil, netip.MustParseAddrPort("[2001:db8::7]:4000"), netip.MustParseAddrPort("[2001:db8::1]:443")))
	tests := []struct {
		in, src, rest string
		err           bool
	}{
		{"PROXY TCP4 198.51.100.7 10.0.0.1 4000 443\r\nGET /", "198.51.100.7:4000", "GET /", false},
		{"PROXY TCP6 2001:db8::7 2001:db8::1 4000 443\r\nGET /", "[2001:db8::7]:4000", "GET /", false},
		{"PROXY UNKNOWN\r\nGET /", "invalid AddrPort", "GET /", false},
		{v2 + "GET /", "198.51.100.7:4000", "GET /", false},
		{v26 + "GET /", "[2001:db8::7]:4000", "GET /", false},
		{"PROXY TCP4 198.51.100.7 10.0.0.1 4000\r\n", "", "", true},
		{"PROXY TCP4 2001:db8::7 10.0.0.1 4000 443\r\n", "", "", true},
		{"PROXY TCP4 198.51.100.7 10.0.0.1 04000 443\r\n", "", "", true},
		{"PROXY TCP4 198.51.100.7 10.0.0.1 4000 443\n", "", "", true},
		{"GET / HTTP/1.1\r\n", "", "", true},
		{"PROXY " + strings.Repeat("x", 200) + "\r\n", "", "", true},
		{"\r\n\r\n\x00\r\nQUIT\n\x22\x11\x00\x0c" + strings.Repeat("\x00", 12), "", "", true},
	}
	for _, tt := range tests {
		br := bufio.NewReaderSize(strings.NewReader(tt.in), 256)
		h, err := Read(br)
		if (err != nil) != tt.err {
			t.Errorf("%q: err %v", tt.in, err)
			continue
		}
		if tt.err {
			continue
		}
		if h.Source.String() != tt.src {
			t.Errorf("%q: source %s, want %s", tt.in, h.Source, tt.src)
		}
		rest, _ := br.Peek(br.Buffered())
		if string(rest) != tt.rest {
			t.Errorf("%q: left %q", tt.in, rest)
		}
	}
}

func FuzzRead(f *testing.F) {
	f.Add([]byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"))
	f.Add(AppendV2(nil, netip.MustParseAddrPort("1.2.3.4:1"), netip.MustParseAddrPort("5.6.7.8:2")))
	f.Fuzz(func(t *testing.T, b []byte) {
		Read(bufio.NewReaderSize(strings.NewReader(string(b)), 256))
	})
}
