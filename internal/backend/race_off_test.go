//go:build !race

package backend

// raceBuild reports a -race build, in which sync.Pool drops a quarter of
// what it is given, so pooled objects are made again.
const raceBuild = false
