package charset

import (
	"bytes"
	"testing"
)

func koi(t *testing.T) *Map {
	t.Helper()
	m, err := NewMap("koi8-r", "utf-8")
	if err != nil {
		t.Fatal(err)
	}
	// а б в (koi8-r C1 C2 D7), and the euro sign outside the BMP's
	// first page.
	for _, kv := range [][2]string{{"C1", "D0B0"}, {"C2", "D0B1"}, {"D7", "D0B2"}, {"80", "E282AC"}} {
		if err := m.Add(kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func recode(t *testing.T, m *Map, back bool, parts ...string) string {
	t.Helper()
	var out bytes.Buffer
	w := NewWriter(&out, m, back)
	for _, p := range parts {
		if n, err := w.Write([]byte(p)); err != nil || n != len(p) {
			t.Fatalf("Write: %d %v", n, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestToUTF8(t *testing.T) {
	m := koi(t)
	if got := recode(t, m, false, "x\xc1\xc2\xd7\x80\xffy"); got != "xабв€?y" {
		t.Errorf("got %q", got) // an unmapped byte becomes '?', as nginx
	}
}

func TestFromUTF8(t *testing.T) {
	m := koi(t)
	// Every cut of a multi-byte sequence between writes.
	in := "aбв€ж\U0001F600z"
	want := "a\xc2\xd7\x80&#1078;&#128512;z"
	for i := 0; i <= len(in); i++ {
		if got := recode(t, m, true, in[:i], in[i:]); got != want {
			t.Errorf("cut at %d: got %q, want %q", i, got, want)
		}
	}
	if got := recode(t, m, true, "a\xffb\xd0"); got != "a?b" {
		t.Errorf("invalid bytes: got %q", got) // and a sequence the body ends inside, dropped
	}
}

func TestSingleByte(t *testing.T) {
	m, _ := NewMap("koi8-r", "windows-1251")
	if err := m.Add("C1", "E0"); err != nil {
		t.Fatal(err)
	}
	if got := recode(t, m, false, "\xc1\xe0"); got != "\xe0?" {
		t.Errorf("forward %q", got)
	}
	if got := recode(t, m, true, "\xe0"); got != "\xc1" {
		t.Errorf("back %q", got)
	}
	if f, back := Find([]*Map{m}, "Windows-1251", "KOI8-R"); f != m || !back {
		t.Errorf("Find: %v %v", f, back)
	}
}

func TestAddErrors(t *testing.T) {
	m := koi(t)
	for _, kv := range [][2]string{{"C", "D0B0"}, {"ZZ", "D0B0"}, {"C1", "FF"}, {"C1", "F09F9880"}, {"C1", "D0"}} {
		if err := m.Add(kv[0], kv[1]); err == nil {
			t.Errorf("Add(%q, %q) accepted", kv[0], kv[1])
		}
	}
	if _, err := NewMap("utf-8", "koi8-r"); err == nil {
		t.Error("a map from utf-8 accepted")
	}
}
