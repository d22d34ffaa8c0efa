package tunnel

import (
	"testing"
	"unsafe"
)

// An idle tunnel's memory is mostly its Tunnel: the struct is laid out to
// fit the runtime's 640-byte size class (the next is 704). An object of
// over 512 bytes that holds pointers carries an 8-byte header in its
// allocation, so the struct itself must stay within 632 bytes. A field
// that pushes it over costs 64 bytes on every tunnel; make room first
// (padding between small fields counts), or put what only a relaying
// direction needs in relayState.
func TestTunnelSizeClass(t *testing.T) {
	const class, header = 640, 8
	if n := unsafe.Sizeof(Tunnel{}); n+header > class {
		t.Fatalf("Tunnel is %d bytes, %d with its allocation header: over the %d-byte size class", n, n+header, class)
	}
}
