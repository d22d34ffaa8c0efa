//go:build race

package server

// raceBuild reports a -race build, whose stacks and allocations are
// larger than a release build's.
const raceBuild = true
