package tunnel

import (
	"testing"
	"unsafe"
)

// An idle tunnel's memory is mostly its Tunnel: the struct is laid out to
// fit the runtime's 896-byte size class (the next is 1,024). An object of
// over 512 bytes that holds pointers carries an 8-byte header in its
// allocation, so the struct itself must stay within 888 bytes. A field
// that pushes it over costs 128 bytes on every tunnel; make room first
// (padding between small fields counts).
func TestTunnelSizeClass(t *testing.T) {
	const class, header = 896, 8
	if n := unsafe.Sizeof(Tunnel{}); n+header > class {
		t.Fatalf("Tunnel is %d bytes, %d with its allocation header: over the %d-byte size class", n, n+header, class)
	}
}
