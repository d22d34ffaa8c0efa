package splitclients

import "testing"

// Published MurmurHash2 values (seed 0); longer keys of every tail length
// are checked against nginx itself by the differential test.
func TestMurmur2(t *testing.T) {
	cases := map[string]uint32{"": 0, "a": 0x92685f5e}
	for in, want := range cases {
		if got := Murmur2([]byte(in)); got != want {
			t.Errorf("%q: %#x, want %#x", in, got, want)
		}
	}
}

func TestPickAndErrors(t *testing.T) {
	s, err := New([]Part{{"50%", "a"}, {"25.5%", "b"}, {"*", "c"}})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for i := range 2000 {
		seen[s.Pick(string(rune('a'+i%26))+string(rune(i)))]++
	}
	if seen["a"] == 0 || seen["b"] == 0 || seen["c"] == 0 || seen[""] != 0 {
		t.Errorf("buckets: %v", seen)
	}
	for _, bad := range [][]Part{{{"60%", "a"}, {"50%", "b"}}, {{"0%", "a"}}, {{"1.234%", "a"}}, {{"5", "a"}}, {{"x%", "a"}}} {
		if _, err := New(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	only, _ := New([]Part{{"0.01%", "tiny"}})
	if v := only.Pick("zz"); v != "" && v != "tiny" {
		t.Errorf("got %q", v)
	}
}
