package head

import (
	"strings"
	"testing"
)

func TestEnd(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27},
		{"GET / HTTP/1.1\r\nHost: x\r\n\r\nrest", 27},
		{"GET / HTTP/1.1\r\nHost: x\r\n", -1},
		{"", -1},
	} {
		if got := End([]byte(tc.in)); got != tc.want {
			t.Errorf("End(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestAccumulator(t *testing.T) {
	var a Accumulator
	if _, done, tooLong := a.Add([]byte("GET / HTTP/1.1\r\nHost: x\r")); done || tooLong {
		t.Fatal("half a head reported done or too long")
	}
	all, done, _ := a.Add([]byte("\n\r\nabc"))
	if !done || string(all) != "GET / HTTP/1.1\r\nHost: x\r\n\r\nabc" {
		t.Fatalf("got %q, %v", all, done)
	}
	var b Accumulator
	_, done, tooLong := b.Add([]byte(strings.Repeat("a", Max)))
	if done || !tooLong {
		t.Fatalf("Max bytes without an end: done %v, tooLong %v", done, tooLong)
	}
}
