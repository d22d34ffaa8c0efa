package subfilter

import (
	"bytes"
	"testing"
)

func run(t *testing.T, find, repl []string, once bool, chunks ...string) string {
	t.Helper()
	var b bytes.Buffer
	w := New(&b, find, repl, once)
	for _, c := range chunks {
		if _, err := w.Write([]byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestReplace(t *testing.T) {
	cases := []struct {
		find, repl []string
		once       bool
		chunks     []string
		want       string
	}{
		{[]string{"foo"}, []string{"bar"}, true, []string{"a foo b FOO c"}, "a bar b FOO c"},
		{[]string{"foo"}, []string{"bar"}, false, []string{"a foo b FOO c"}, "a bar b bar c"},
		{[]string{"foo"}, []string{"bar"}, false, []string{"a f", "o", "o b fo", "o"}, "a bar b bar"},
		{[]string{"ab", "b"}, []string{"1", "2"}, false, []string{"abb"}, "12"},
		{[]string{"</body>"}, []string{"<x></body>"}, true, []string{"<html></bo", "dy></html>"}, "<html><x></body></html>"},
		{[]string{"xyz"}, []string{"!"}, true, []string{"xy"}, "xy"},
	}
	for _, c := range cases {
		if got := run(t, c.find, c.repl, c.once, c.chunks...); got != c.want {
			t.Errorf("%v in %q: %q, want %q", c.find, c.chunks, got, c.want)
		}
	}
}
