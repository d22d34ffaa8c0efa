// Package stats holds the harness's arithmetic: a fixed-size latency
// histogram cheap enough to record every operation, medians over rounds, and
// the least-squares slope used for per-tunnel memory. It knows nothing about
// networks, processes or the targets being measured.
package stats
