package stats

import (
	"math"
	"testing"
	"time"
)

func TestHistogramQuantile(t *testing.T) {
	var h Histogram
	if !math.IsNaN(h.Quantile(0.5)) {
		t.Fatal("empty histogram has a median")
	}
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	var slow Histogram
	slow.Record(50 * time.Millisecond) // coarse buckets
	slow.Record(10 * time.Second)      // clamped to the last bucket
	h.Merge(&slow)
	tests := []struct {
		q        float64
		min, max float64
	}{
		{0.5, 500, 503},
		{0.9, 900, 903},
		{0.99, 990, 993},
		{1, coarseLimit - coarseStep, coarseLimit + coarseStep},
	}
	for _, tt := range tests {
		if got := h.Quantile(tt.q); got < tt.min || got > tt.max {
			t.Errorf("Quantile(%v) = %v, want in [%v, %v]", tt.q, got, tt.min, tt.max)
		}
	}
	if h.Count() != 1002 {
		t.Fatalf("Count = %d", h.Count())
	}
}

func TestSummarize(t *testing.T) {
	tests := []struct {
		in            []float64
		med, min, max float64
		n             int
	}{
		{[]float64{3, 1, 2}, 2, 1, 3, 3},
		{[]float64{4, 1, 3, 2}, 2.5, 1, 4, 4},
		{[]float64{5, math.NaN()}, 5, 5, 5, 1},
	}
	for _, tt := range tests {
		s := Summarize(tt.in)
		if s.Median != tt.med || s.Min != tt.min || s.Max != tt.max || s.N != tt.n {
			t.Errorf("Summarize(%v) = %+v", tt.in, s)
		}
	}
	if s := Summarize(nil); s.N != 0 || !math.IsNaN(s.Median) {
		t.Errorf("Summarize(nil) = %+v", s)
	}
}

func TestSlope(t *testing.T) {
	tests := []struct {
		name string
		x, y []float64
		want float64
	}{
		{"exact line", []float64{0, 2000, 4000}, []float64{1000, 1000 + 2000*17.5, 1000 + 4000*17.5}, 17.5},
		{"noisy", []float64{0, 1, 2, 3}, []float64{0, 1.1, 1.9, 3}, 0.98},
		{"one point", []float64{1}, []float64{1}, math.NaN()},
		{"no spread", []float64{2, 2}, []float64{1, 3}, math.NaN()},
	}
	for _, tt := range tests {
		got := Slope(tt.x, tt.y)
		if math.IsNaN(tt.want) != math.IsNaN(got) || (!math.IsNaN(got) && math.Abs(got-tt.want) > 1e-9) {
			t.Errorf("%s: Slope = %v, want %v", tt.name, got, tt.want)
		}
	}
}
