package wsproto

import (
	"bytes"
	"errors"
	"testing"
)

func TestHeaderRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		h    Header
		size int // encoded header length
	}{
		{"empty text", Header{Fin: true, Op: OpText}, 2},
		{"125 unmasked", Header{Fin: true, Op: OpBinary, Length: 125}, 2},
		{"126 uses 16-bit length", Header{Fin: true, Op: OpBinary, Length: 126}, 4},
		{"65535 masked", Header{Fin: true, Op: OpBinary, Masked: true, Key: [4]byte{1, 2, 3, 4}, Length: 65535}, 8},
		{"65536 uses 64-bit length", Header{Fin: true, Op: OpBinary, Length: 65536}, 10},
		{"64-bit masked", Header{Op: OpContinuation, Masked: true, Key: [4]byte{9, 8, 7, 6}, Length: 1 << 40}, 14},
		{"close", Header{Fin: true, Op: OpClose, Length: 2}, 2},
		{"non-final binary", Header{Op: OpBinary, Length: 10}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := AppendHeader(nil, tt.h)
			if len(b) != tt.size {
				t.Fatalf("encoded %d bytes, want %d", len(b), tt.size)
			}
			got, n, err := ParseHeader(append(b, 0xAA)) // trailing payload byte must be ignored
			if err != nil || n != tt.size || got != tt.h {
				t.Fatalf("ParseHeader = %+v, %d, %v; want %+v, %d", got, n, err, tt.h, tt.size)
			}
			for i := range b {
				if _, _, err := ParseHeader(b[:i]); !errors.Is(err, ErrShortHeader) {
					t.Fatalf("prefix of %d bytes: err = %v, want ErrShortHeader", i, err)
				}
			}
		})
	}
}

func TestParseHeaderRejects(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
	}{
		{"reserved bit", []byte{0x80 | 0x40 | 0x1, 0x00}},
		{"control frame over 125", []byte{0x80 | 0x9, 126, 0, 126}},
		{"fragmented control frame", []byte{0x8, 0x00}},
		{"64-bit length with top bit", []byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := ParseHeader(tt.b); !errors.Is(err, ErrBadFrame) {
				t.Fatalf("err = %v, want ErrBadFrame", err)
			}
		})
	}
}

func naiveMask(b []byte, key [4]byte, pos int) {
	for i := range b {
		b[i] ^= key[(pos+i)%4]
	}
}

func TestMask(t *testing.T) {
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	for _, size := range []int{0, 1, 3, 4, 7, 8, 15, 16, 17, 63, 64, 1000} {
		for _, pos := range []int{0, 1, 2, 3, 5} {
			src := make([]byte, size)
			for i := range src {
				src[i] = byte(i*7 + 1)
			}
			want := bytes.Clone(src)
			naiveMask(want, key, pos)
			got := bytes.Clone(src)
			if end := Mask(got, key, pos); end != pos+size {
				t.Fatalf("size %d pos %d: returned %d", size, pos, end)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("size %d pos %d: Mask differs from byte-wise masking", size, pos)
			}
			// In pieces, carrying the offset, gives the same bytes.
			pieces := bytes.Clone(src)
			p := pos
			for off := 0; off < size; off += 5 {
				p = Mask(pieces[off:min(off+5, size)], key, p)
			}
			if !bytes.Equal(pieces, want) {
				t.Fatalf("size %d pos %d: piecewise Mask differs", size, pos)
			}
		}
	}
}

func TestAcceptKey(t *testing.T) {
	// RFC 6455 section 1.3's example.
	if got := AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("AcceptKey = %q", got)
	}
}

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name    string
		head    string
		wantErr bool
		want    Request
	}{
		{"upgrade", "GET /ws HTTP/1.1\r\nHost: x\r\nupgrade: WebSocket\r\nSec-WebSocket-Key:  abc \r\n\r\n", false,
			Request{Method: []byte("GET"), Path: []byte("/ws"), Upgrade: true, Key: []byte("abc")}},
		{"plain get", "GET /health HTTP/1.0\r\nHost: x\r\n\r\n", false,
			Request{Method: []byte("GET"), Path: []byte("/health")}},
		{"not http", "HELLO\r\n\r\n", true, Request{}},
		{"bad protocol", "GET / SPDY/3\r\n\r\n", true, Request{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := []byte(tt.head)
			if HeadEnd(b) != len(b) {
				t.Fatalf("HeadEnd = %d, want %d", HeadEnd(b), len(b))
			}
			got, err := ParseRequest(b)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if !bytes.Equal(got.Method, tt.want.Method) || !bytes.Equal(got.Path, tt.want.Path) || got.Upgrade != tt.want.Upgrade || !bytes.Equal(got.Key, tt.want.Key) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	if HeadEnd([]byte("GET / HTTP/1.1\r\nHost: x\r\n")) != -1 {
		t.Fatal("HeadEnd found an end in an incomplete head")
	}
}

func TestCheckUpgradeResponse(t *testing.T) {
	const key = "dGhlIHNhbXBsZSBub25jZQ=="
	var ok []byte
	ok = AppendSwitchingProtocols(ok, []byte(key))
	tests := []struct {
		name    string
		head    string
		wantErr bool
	}{
		{"own server answer", string(ok), false},
		{"case-insensitive header", "HTTP/1.1 101 Switching Protocols\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n", false},
		{"wrong accept", "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: xxxx\r\n\r\n", true},
		{"no accept", "HTTP/1.1 101 Switching Protocols\r\n\r\n", true},
		{"refused", "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckUpgradeResponse([]byte(tt.head), key)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrBadHandshake) {
				t.Fatalf("err = %v, want ErrBadHandshake", err)
			}
		})
	}
}

func BenchmarkMask64K(b *testing.B) {
	buf := make([]byte, 64<<10)
	key := [4]byte{1, 2, 3, 4}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		Mask(buf, key, 1)
	}
}
