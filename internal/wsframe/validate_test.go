package wsframe

import (
	"testing"
	"unicode/utf8"
)

func TestUTF8MatchesStdlib(t *testing.T) {
	cases := []string{"", "hello", "héllo wörld", "日本語", "🙂", "\xed\xa0\x80", "\xc0\xaf", "\xe0\x80\xaf",
		"\xf4\x90\x80\x80", "\xf0\x8f\xbf\xbf", "\xff", "a\xc3", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"}
	for _, s := range cases {
		for split := 0; split <= len(s); split++ {
			var u UTF8
			ok := u.Write([]byte(s[:split])) && u.Write([]byte(s[split:])) && u.Complete()
			if ok != utf8.ValidString(s) {
				t.Errorf("%q split at %d: got %v, want %v", s, split, ok, !ok)
			}
		}
	}
}

func TestUTF8Masked(t *testing.T) {
	key := [4]byte{0x11, 0x22, 0x33, 0x44}
	text := []byte("κόσμε, 🙂!")
	masked := append([]byte(nil), text...)
	MaskBytes(masked, key, 0)
	var u UTF8
	if !u.WriteMasked(masked[:5], key, 0) || !u.WriteMasked(masked[5:], key, 5) || !u.Complete() {
		t.Fatal("masked valid text refused")
	}
	masked[2] ^= 0x40
	u = UTF8{}
	if u.WriteMasked(masked, key, 0) && u.Complete() {
		t.Fatal("masked invalid text accepted")
	}
}

func FuzzUTF8(f *testing.F) {
	f.Add([]byte("héllo"), 2)
	f.Fuzz(func(t *testing.T, b []byte, split int) {
		if split < 0 || split > len(b) {
			split = len(b) / 2
		}
		var u UTF8
		ok := u.Write(b[:split]) && u.Write(b[split:]) && u.Complete()
		if ok != utf8.Valid(b) {
			t.Fatalf("%x: got %v", b, ok)
		}
	})
}

func TestParseFramingPassesReservedOpcodes(t *testing.T) {
	for _, b := range [][]byte{{0x83, 0x80, 1, 2, 3, 4}, {0x8B, 0x00}} {
		h, n, err := ParseFraming(b)
		if err != nil || n != len(b) || !h.Opcode.Reserved() {
			t.Fatalf("%x: %+v %d %v", b, h, n, err)
		}
	}
	if _, _, err := ParseFraming([]byte{0x0B, 0}); err != ErrControlFragmented {
		t.Fatalf("fragmented reserved control: %v", err)
	}
	if _, _, err := ParseFraming([]byte{0x8C, 126}); err != ErrControlTooLong {
		t.Fatalf("long reserved control: %v", err)
	}
}

func TestValidCloseCode(t *testing.T) {
	for code, want := range map[uint16]bool{999: false, 1000: true, 1004: false, 1005: false, 1006: false, 1007: true, 1011: true, 1015: false, 2999: false, 3000: true, 4999: true, 5000: false} {
		if ValidCloseCode(code) != want {
			t.Errorf("%d: want %v", code, want)
		}
	}
}
