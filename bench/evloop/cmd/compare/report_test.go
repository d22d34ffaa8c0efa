package main

import (
	"math"
	"testing"
)

func TestParseStrace(t *testing.T) {
	table := `% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 40.00    0.004000           4      1000       120 read
 30.00    0.003000           3      1000           write
 30.00    0.003000          30       100           connect
------ ----------- ----------- --------- --------- ----------------
100.00    0.010000           4      2100       120 total
`
	got := parseStrace([]byte(table))
	want := map[string]float64{"read": 1000, "write": 1000, "connect": 100, "total": 2100}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %v, want %v", k, got[k], v)
		}
	}
}

func TestMedian(t *testing.T) {
	m := &measured{Vals: map[string]map[string][]float64{}}
	for _, v := range []float64{5, 1, 3, 100} {
		m.add("x", figHS, v)
	}
	if got := m.median("x", figHS); got != 4 {
		t.Fatalf("median of 1 3 5 100: %v, want 4", got)
	}
	if got := m.median("y", figHS); !math.IsNaN(got) {
		t.Fatalf("median of nothing: %v, want NaN", got)
	}
}
