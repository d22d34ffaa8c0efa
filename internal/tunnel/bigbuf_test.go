package tunnel

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/wsgate/wsgate/internal/wsframe"
)

// TestSizeReads: a direction moves to bigSize buffers when a read fills
// bufSize, stays there while its reads take over half of bufSize, and
// moves back at the first that does not.
func TestSizeReads(t *testing.T) {
	var rs relayState
	steps := []struct {
		n, size int
		big     bool
	}{
		{100, bufSize, false},
		{bufSize - 1, bufSize, false},
		{bufSize, bufSize, true},
		{bigSize, bigSize, true},
		{bufSize/2 + 1, bigSize, true},
		{bufSize / 2, bigSize, false},
		{bufSize, bufSize, true},
		{10, bigSize, false},
	}
	for i, s := range steps {
		rs.sizeReads(s.n, s.size)
		if rs.big != s.big {
			t.Fatalf("step %d: a read of %d into %d: big %v, want %v", i, s.n, s.size, rs.big, s.big)
		}
		if b := rs.readBuf(); (cap(*b) == bigSize) != s.big {
			t.Fatalf("step %d: readBuf gave %d bytes", i, cap(*b))
		} else {
			putBuf(b)
		}
	}
}

// TestBigReadsRelayWhole: 64 KiB frames, which move a direction to big
// buffers, and small ones between them, which move it back, arrive whole
// and in order, with splice out of the way.
func TestBigReadsRelayWhole(t *testing.T) {
	withSpliceMin(t, 1<<40)
	rg := newRig(t, Config{Frames: true}, nil, nil)
	rnd := rand.New(rand.NewPCG(1, 2))
	var want bytes.Buffer
	for k := range 40 {
		size := 64 << 10
		if k%4 == 3 {
			size = 1 + rnd.IntN(200)
		}
		p := make([]byte, size)
		for i := range p {
			p[i] = byte(rnd.Uint32())
		}
		want.Write(wsframe.AppendFrame(nil, wsframe.OpBinary, p, true, [4]byte{9, 8, 7, 6}))
	}
	go rg.cli.Write(want.Bytes())
	mustEqual(t, "relayed stream", readN(t, rg.be, want.Len()), want.Bytes())
}
