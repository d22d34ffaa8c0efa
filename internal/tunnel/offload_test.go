package tunnel

import (
	"bytes"
	"testing"
	"time"

	"github.com/klauspost/compress/flate"
	"github.com/wsgate/wsgate/internal/wsdeflate"
	"github.com/wsgate/wsgate/internal/wsframe"
)

// TestParkedOffloaded: a tunnel whose client leg has compression offloaded
// parks when idle, as any other (the wrapper lets the relay wait on the
// socket beneath it), and relays compressed messages inflated before and
// after parking.
func TestParkedOffloaded(t *testing.T) {
	cli, cliLeg := tcpPair(t)
	beLeg, be := tcpPair(t)
	leg := wsdeflate.Wrap(cliLeg, nil, wsdeflate.Config{Client: true})
	tun := Start(leg, beLeg, nil, nil, Config{Frames: true, IdleTimeout: time.Minute, CloseGrace: 100 * time.Millisecond})
	defer tun.Shutdown(CodeGoingAway, "")
	send := func(msg []byte) {
		t.Helper()
		var z bytes.Buffer
		w, _ := flate.NewWriter(&z, 5)
		w.Write(msg)
		w.Flush()
		p := bytes.TrimSuffix(z.Bytes(), []byte{0, 0, 0xff, 0xff})
		f := wsframe.AppendHeader(nil, wsframe.Header{Fin: true, Rsv: 4, Opcode: wsframe.OpText, Masked: true, Key: [4]byte{9, 8, 7, 6}, Length: int64(len(p))})
		start := len(f)
		f = append(f, p...)
		wsframe.MaskBytes(f[start:], [4]byte{9, 8, 7, 6}, 0)
		cli.Write(f)
		be.SetReadDeadline(time.Now().Add(10 * time.Second))
		var hd [14]byte
		readInto(t, be, hd[:2])
		n := int(hd[1] & 0x7F)
		if hd[1]&0x80 == 0 || hd[0] != 0x81 || n > 125 {
			t.Fatalf("header %x: want a masked, final, plain text frame", hd[:2])
		}
		readInto(t, be, hd[2:6])
		got := make([]byte, n)
		readInto(t, be, got)
		wsframe.MaskBytes(got, [4]byte(hd[2:6]), 0)
		if !bytes.Equal(got, msg) {
			t.Fatalf("backend got %q, want %q", got, msg)
		}
	}
	send([]byte("before parking, before parking"))
	waitParked(t, tun)
	send([]byte("after parking, after parking"))
}

func readInto(t *testing.T, c interface{ Read([]byte) (int, error) }, b []byte) {
	t.Helper()
	for off := 0; off < len(b); {
		n, err := c.Read(b[off:])
		if err != nil {
			t.Fatal(err)
		}
		off += n
	}
}
