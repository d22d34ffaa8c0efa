package wsframe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"strconv"
	"testing"
)

func TestParseHeader(t *testing.T) {
	key := [4]byte{1, 2, 3, 4}
	tests := []struct {
		name string
		in   []byte
		want Header
		n    int
		err  error
	}{
		{"empty", nil, Header{}, 0, nil},
		{"one byte", []byte{0x81}, Header{}, 0, nil},
		{"text 5 unmasked", []byte{0x81, 5, 'h'}, Header{Fin: true, Opcode: OpText, Length: 5}, 2, nil},
		{"binary masked", []byte{0x82, 0x83, 1, 2, 3, 4}, Header{Fin: true, Opcode: OpBinary, Masked: true, Key: key, Length: 3}, 6, nil},
		{"masked, key incomplete", []byte{0x82, 0x83, 1, 2, 3}, Header{}, 0, nil},
		{"16-bit length", []byte{0x02, 126, 0x01, 0x00}, Header{Opcode: OpBinary, Length: 256}, 4, nil},
		{"16-bit length incomplete", []byte{0x02, 126, 0x01}, Header{}, 0, nil},
		{"64-bit length", []byte{0x00, 127, 0, 0, 0, 0, 0, 1, 0, 0}, Header{Opcode: OpContinuation, Length: 65536}, 10, nil},
		{"64-bit length incomplete", []byte{0x00, 127, 0, 0, 0, 0, 0, 1, 0}, Header{}, 0, nil},
		{"64-bit masked", []byte{0x80, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4}, Header{Fin: true, Masked: true, Key: key, Length: 65536}, 14, nil},
		{"rsv bits kept", []byte{0xC1, 0}, Header{Fin: true, Rsv: 4, Opcode: OpText}, 2, nil},
		{"all rsv", []byte{0xF2, 0}, Header{Fin: true, Rsv: 7, Opcode: OpBinary}, 2, nil},
		{"non-minimal 16-bit accepted", []byte{0x82, 126, 0, 5}, Header{Fin: true, Opcode: OpBinary, Length: 5}, 4, nil},
		{"close 125", []byte{0x88, 125}, Header{Fin: true, Opcode: OpClose, Length: 125}, 2, nil},
		{"pong empty", []byte{0x8A, 0x80, 9, 9, 9, 9}, Header{Fin: true, Opcode: OpPong, Masked: true, Key: [4]byte{9, 9, 9, 9}}, 6, nil},
		{"reserved opcode 3", []byte{0x83, 0}, Header{}, 0, ErrReservedOpcode},
		{"reserved opcode 7, one byte", []byte{0x87}, Header{}, 0, ErrReservedOpcode},
		{"reserved opcode B", []byte{0x8B, 0}, Header{}, 0, ErrReservedOpcode},
		{"reserved opcode F", []byte{0x8F, 0}, Header{}, 0, ErrReservedOpcode},
		{"ping 126", []byte{0x89, 126, 0, 126}, Header{}, 0, ErrControlTooLong},
		{"close 127 masked", []byte{0x88, 0xFF}, Header{}, 0, ErrControlTooLong},
		{"fragmented ping", []byte{0x09, 0}, Header{}, 0, ErrControlFragmented},
		{"fragmented close, one byte", []byte{0x08}, Header{}, 0, ErrControlFragmented},
		{"64-bit MSB", []byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0}, Header{}, 0, ErrLengthOverflow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, n, err := ParseHeader(tt.in)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if n != tt.n || h != tt.want {
				t.Fatalf("got %+v n=%d, want %+v n=%d", h, n, tt.want, tt.n)
			}
		})
	}
}

func TestAppendHeaderRoundTrip(t *testing.T) {
	lengths := []int64{0, 1, 125, 126, 127, 0xFFFF, 0x10000, 1 << 40, 1<<63 - 1}
	for _, l := range lengths {
		for _, masked := range []bool{false, true} {
			h := Header{Fin: l%2 == 0, Rsv: uint8(l % 8), Opcode: OpBinary, Masked: masked, Key: [4]byte{0xA, 0xB, 0xC, 0xD}, Length: l}
			b := AppendHeader(nil, h)
			if len(b) != HeaderLen(h) {
				t.Errorf("len %d: encoded %d bytes, HeaderLen says %d", l, len(b), HeaderLen(h))
			}
			got, n, err := ParseHeader(b)
			if err != nil || n != len(b) {
				t.Fatalf("len %d masked %v: n=%d err=%v", l, masked, n, err)
			}
			if !masked {
				h.Key = [4]byte{}
			}
			if got != h {
				t.Errorf("round trip: got %+v want %+v", got, h)
			}
			// Every strict prefix is incomplete, never an error.
			for i := range len(b) {
				if _, n, err := ParseHeader(b[:i]); n != 0 || err != nil {
					t.Fatalf("prefix %d of %x: n=%d err=%v", i, b, n, err)
				}
			}
		}
	}
}

func TestMaskBytes(t *testing.T) {
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	r := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{0, 1, 3, 7, 8, 15, 16, 17, 31, 32, 33, 100, 4096} {
		for pos := range 6 {
			b := make([]byte, size)
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			want := bytes.Clone(b)
			for i := range want {
				want[i] ^= key[(pos+i)%4]
			}
			next := MaskBytes(b, key, pos)
			if !bytes.Equal(b, want) {
				t.Fatalf("size %d pos %d: wrong bytes", size, pos)
			}
			if next != (pos+size)%4 {
				t.Fatalf("size %d pos %d: next = %d", size, pos, next)
			}
		}
	}
	// Masking in pieces equals masking at once.
	b := make([]byte, 1000)
	whole := bytes.Clone(b)
	MaskBytes(whole, key, 0)
	p := 0
	for _, cut := range [][2]int{{0, 3}, {3, 40}, {40, 41}, {41, 1000}} {
		p = MaskBytes(b[cut[0]:cut[1]], key, p)
	}
	if !bytes.Equal(b, whole) {
		t.Fatal("piecewise masking differs")
	}
}

func TestAppendFrameAndClose(t *testing.T) {
	key := [4]byte{1, 2, 3, 4}
	payload := []byte("hello")
	f := AppendFrame(nil, OpText, payload, true, key)
	h, n, err := ParseHeader(f)
	if err != nil || n != 6 || !h.Fin || h.Opcode != OpText || !h.Masked || h.Length != 5 {
		t.Fatalf("header %+v n=%d err=%v", h, n, err)
	}
	body := bytes.Clone(f[n:])
	MaskBytes(body, key, 0)
	if string(body) != "hello" || string(payload) != "hello" {
		t.Fatalf("payload %q, input %q", body, payload)
	}

	tests := []struct {
		code   uint16
		reason string
		want   []byte
	}{
		{1001, "", []byte{0x88, 2, 0x03, 0xE9}},
		{1000, "bye", []byte{0x88, 5, 0x03, 0xE8, 'b', 'y', 'e'}},
		{0, "ignored", []byte{0x88, 0}},
	}
	for _, tt := range tests {
		if got := AppendClose(nil, tt.code, tt.reason, false, key); !bytes.Equal(got, tt.want) {
			t.Errorf("AppendClose(%d, %q) = %x, want %x", tt.code, tt.reason, got, tt.want)
		}
	}
	long := AppendClose(nil, 1000, string(bytes.Repeat([]byte{'x'}, 300)), true, key)
	h, n, err = ParseHeader(long)
	if err != nil || h.Length != MaxControlPayload || len(long) != n+MaxControlPayload {
		t.Fatalf("long reason: %+v err=%v len=%d", h, err, len(long))
	}
	body = bytes.Clone(long[n:])
	MaskBytes(body, key, 0)
	if binary.BigEndian.Uint16(body) != 1000 {
		t.Fatalf("masked close code = %d", binary.BigEndian.Uint16(body))
	}
}

func TestKeys(t *testing.T) {
	// RFC 6455, section 1.3.
	if got := AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("AcceptKey = %q", got)
	}
	tests := []struct {
		k    string
		want bool
	}{
		{"dGhlIHNhbXBsZSBub25jZQ==", true},
		{"AAAAAAAAAAAAAAAAAAAAAA==", true},
		{"dGhlIHNhbXBsZSBub25jZQ", false},
		{"dGhlIHNhbXBsZSBub25jZQ=", false},
		{"dGhlIHNhbXBsZSBub25j", false},
		{"dGhlIHNhbXBsZSBub25jZQ!=", false},
		{"dGhlIHNhbXBsZSBub25jZXg=", false}, // 17 bytes
		{"", false},
		{"aGVsbG8gd29ybGQ=", false}, // 11 bytes
	}
	for _, tt := range tests {
		if got := ValidKey(tt.k); got != tt.want {
			t.Errorf("ValidKey(%q) = %v, want %v", tt.k, got, tt.want)
		}
	}
}

func TestIsControl(t *testing.T) {
	for op := Opcode(0); op < 16; op++ {
		if got, want := op.IsControl(), op >= 8; got != want {
			t.Errorf("%d.IsControl() = %v", op, got)
		}
	}
}

// minimal reports whether the header at b[:n] uses the shortest length form.
func minimal(b []byte, h Header) bool {
	switch b[1] & 0x7F {
	case 126:
		return h.Length > 125
	case 127:
		return h.Length > 0xFFFF
	}
	return true
}

func FuzzParseHeader(f *testing.F) {
	f.Add([]byte{0x81, 0x85, 1, 2, 3, 4, 'h', 'e', 'l', 'l', 'o'})
	f.Add([]byte{0x02, 126, 0x01, 0x00})
	f.Add([]byte{0x80, 127, 0, 0, 0, 0, 0, 1, 0, 0})
	f.Add([]byte{0x88, 0x82, 0, 0, 0, 0, 3, 0xE8})
	f.Add([]byte{0x89, 126})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := ParseHeader(b)
		if err != nil || n == 0 {
			if n != 0 {
				t.Fatalf("n=%d with err %v", n, err)
			}
			return
		}
		if n > len(b) || n > MaxHeaderLen || h.Length < 0 {
			t.Fatalf("n=%d len=%d length=%d", n, len(b), h.Length)
		}
		enc := AppendHeader(nil, h)
		if minimal(b, h) {
			if !bytes.Equal(enc, b[:n]) {
				t.Fatalf("round trip %x -> %+v -> %x", b[:n], h, enc)
			}
		}
		h2, n2, err := ParseHeader(enc)
		if err != nil || n2 != len(enc) || h2 != h {
			t.Fatalf("re-parse %x: %+v n=%d err=%v, want %+v", enc, h2, n2, err, h)
		}
	})
}

func BenchmarkParseHeader(b *testing.B) {
	hdr := AppendHeader(nil, Header{Fin: true, Opcode: OpBinary, Masked: true, Key: [4]byte{1, 2, 3, 4}, Length: 300})
	b.SetBytes(int64(len(hdr)))
	for b.Loop() {
		if _, n, err := ParseHeader(hdr); n == 0 || err != nil {
			b.Fatal(n, err)
		}
	}
}

func BenchmarkMaskBytes(b *testing.B) {
	for _, size := range []int{64, 64 << 10} {
		b.Run(strconv.Itoa(size)+"B", func(b *testing.B) {
			buf := make([]byte, size)
			b.SetBytes(int64(size))
			for b.Loop() {
				MaskBytes(buf, [4]byte{1, 2, 3, 4}, 1)
			}
		})
	}
}
