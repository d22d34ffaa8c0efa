package stats

import (
	"math"
	"slices"
	"time"
)

// Histogram buckets: 1 µs wide up to fineLimit, then 100 µs wide up to
// coarseLimit; anything slower lands in the last bucket.
const (
	fineLimit   = 10_000    // µs
	coarseStep  = 100       // µs
	coarseLimit = 2_000_000 // µs
	nBuckets    = fineLimit + (coarseLimit-fineLimit)/coarseStep + 1
)

// Histogram counts latencies with 1 µs resolution below 10 ms and 100 µs
// resolution up to 2 s. The zero value is empty and ready; it is not safe for
// concurrent use: give each worker its own and Merge them.
type Histogram struct {
	counts []uint32
	n      uint64
}

func bucket(us int64) int {
	switch {
	case us < 0:
		return 0
	case us < fineLimit:
		return int(us)
	case us < coarseLimit:
		return fineLimit + int((us-fineLimit)/coarseStep)
	default:
		return nBuckets - 1
	}
}

func bucketValue(i int) float64 {
	if i < fineLimit {
		return float64(i) + 0.5
	}
	return float64(fineLimit+(i-fineLimit)*coarseStep) + coarseStep/2
}

// Record adds one observation.
func (h *Histogram) Record(d time.Duration) {
	if h.counts == nil {
		h.counts = make([]uint32, nBuckets)
	}
	h.counts[bucket(d.Microseconds())]++
	h.n++
}

// Count returns the number of observations.
func (h *Histogram) Count() uint64 { return h.n }

// Merge adds o's observations to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	if h.counts == nil {
		h.counts = make([]uint32, nBuckets)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// Quantile returns the q-quantile (0 < q <= 1) in microseconds, or NaN if
// the histogram is empty.
func (h *Histogram) Quantile(q float64) float64 {
	if h.n == 0 {
		return math.NaN()
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += uint64(c)
		if seen >= rank {
			return bucketValue(i)
		}
	}
	return bucketValue(nBuckets - 1)
}

// Summary is the median and range of one figure over rounds.
type Summary struct {
	Median, Min, Max float64
	N                int
}

// Summarize returns the median, minimum and maximum of xs, ignoring NaNs.
// N is zero when nothing is left.
func Summarize(xs []float64) Summary {
	v := make([]float64, 0, len(xs))
	for _, x := range xs {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return Summary{Median: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	}
	slices.Sort(v)
	m := v[len(v)/2]
	if len(v)%2 == 0 {
		m = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return Summary{Median: m, Min: v[0], Max: v[len(v)-1], N: len(v)}
}

// Slope returns the least-squares slope of y over x, or NaN when x has fewer
// than two distinct values.
func Slope(x, y []float64) float64 {
	n := min(len(x), len(y))
	if n < 2 {
		return math.NaN()
	}
	var mx, my float64
	for i := range n {
		mx += x[i]
		my += y[i]
	}
	mx /= float64(n)
	my /= float64(n)
	var sxy, sxx float64
	for i := range n {
		sxy += (x[i] - mx) * (y[i] - my)
		sxx += (x[i] - mx) * (x[i] - mx)
	}
	if sxx == 0 {
		return math.NaN()
	}
	return sxy / sxx
}
