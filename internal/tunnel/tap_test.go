package tunnel

import (
	"bytes"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/wsframe"
)

// recTap records what a tunnel shows it.
type recTap struct {
	mu      sync.Mutex
	headers [2][]wsframe.Header
	payload [2][]byte
}

func (r *recTap) Frame(dir int, h wsframe.Header) {
	r.mu.Lock()
	r.headers[dir] = append(r.headers[dir], h)
	r.mu.Unlock()
}

func (r *recTap) Payload(dir int, p []byte) {
	r.mu.Lock()
	r.payload[dir] = append(r.payload[dir], p...)
	r.mu.Unlock()
}

// TestTapSeesRelayedFrames: a tap sees every relayed frame's header and
// payload bytes, large ones included (they leave splice for the buffers),
// and nothing once removed.
func TestTapSeesRelayedFrames(t *testing.T) {
	cli, cliLeg := tcpPair(t)
	beLeg, be := tcpPair(t)
	tun := Start(cliLeg, beLeg, nil, nil, Config{Frames: true, CloseGrace: 100 * time.Millisecond})
	defer tun.Shutdown(CodeGoingAway, "")
	rec := &recTap{}
	tun.SetTap(rec)
	sizes := []int{0, 10, 200 << 10}
	var want []byte
	for _, n := range sizes {
		p := bytes.Repeat([]byte{byte(n)}, n)
		msg := wsframe.AppendFrame(nil, wsframe.OpBinary, p, true, [4]byte{1, 2, 3, 4})
		want = append(want, msg[len(msg)-n:]...)
		if _, err := cli.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(be, make([]byte, len(msg))); err != nil {
			t.Fatal(err)
		}
	}
	rec.mu.Lock()
	if len(rec.headers[0]) != len(sizes) || !bytes.Equal(rec.payload[0], want) {
		t.Fatalf("tap saw %d headers and %d payload bytes, want %d and %d", len(rec.headers[0]), len(rec.payload[0]), len(sizes), len(want))
	}
	for i, h := range rec.headers[0] {
		if h.Length != int64(sizes[i]) || !h.Masked || h.Opcode != wsframe.OpBinary {
			t.Fatalf("header %d: %+v", i, h)
		}
	}
	rec.mu.Unlock()
	tun.SetTap(nil)
	msg := wsframe.AppendFrame(nil, wsframe.OpText, []byte("after"), true, [4]byte{})
	cli.Write(msg)
	io.ReadFull(be, make([]byte, len(msg)))
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.headers[0]) != len(sizes) {
		t.Fatal("a removed tap still sees frames")
	}
}

type nopTap struct{}

func (nopTap) Frame(int, wsframe.Header) {}
func (nopTap) Payload(int, []byte)       {}

// BenchmarkRelayTap is the relay of 64-byte messages without a tap (on-demand
// capture off: the data path's only cost is a nil check per frame and per
// payload chunk) and with one that does nothing.
func BenchmarkRelayTap(b *testing.B) {
	for _, mode := range []string{"off", "noop"} {
		b.Run(mode, func(b *testing.B) {
			cli, cliLeg := tcpPair(b)
			beLeg, be := tcpPair(b)
			tun := Start(cliLeg, beLeg, nil, nil, Config{Frames: true, CloseGrace: 100 * time.Millisecond})
			if mode == "noop" {
				tun.SetTap(nopTap{})
			}
			echoed := make(chan struct{})
			go func() {
				defer close(echoed)
				io.Copy(be, be)
			}()
			msg := wsframe.AppendFrame(nil, wsframe.OpBinary, make([]byte, 64), true, [4]byte{1, 2, 3, 4})
			reply := make([]byte, len(msg))
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				cli.Write(msg)
				if _, err := io.ReadFull(cli, reply); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
			cli.Close()
			be.Close()
			tun.Shutdown(CodeGoingAway, "")
			<-echoed
		})
	}
}
