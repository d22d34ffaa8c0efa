package wsframe

import "testing"

// TestUTF8StateRoundTrip: a validation cut in the middle of a character
// goes on after State and UTF8FromState as if uncut.
func TestUTF8StateRoundTrip(t *testing.T) {
	text := []byte("añ€😀")
	for cut := range len(text) + 1 {
		var u UTF8
		if !u.Write(text[:cut]) {
			t.Fatalf("cut %d: invalid prefix", cut)
		}
		v := UTF8FromState(u.State())
		if !v.Write(text[cut:]) || !v.Complete() {
			t.Fatalf("cut %d: the restored state refused the rest", cut)
		}
		w := UTF8FromState(u.State())
		if cut > 0 && !u.Complete() && w.Write([]byte{'a'}) {
			t.Fatalf("cut %d: the restored state took an ASCII byte mid-character", cut)
		}
	}
}
