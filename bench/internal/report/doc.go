// Package report turns one harness run's figures into docs/benchmarks.md and
// its PNG chart: tables with ratios against direct and nginx from the same
// run, the goals check, and grouped bar charts drawn with image/png. It only
// formats what it is given: it must not run, measure or know how the figures
// were obtained.
package report
