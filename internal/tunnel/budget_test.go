package tunnel

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/wsframe"
)

// withFDLimit makes the tunnel see limit as RLIMIT_NOFILE until the test ends.
func withFDLimit(t *testing.T, limit int64) {
	old := readFDLimit
	readFDLimit = func() int64 { return limit }
	fdLimit.Store(0)
	t.Cleanup(func() {
		readFDLimit = old
		fdLimit.Store(0)
	})
}

// TestPipeBudgetReserve: pipes are counted against the descriptor limit
// minus the reserve and the slack, two descriptors each.
func TestPipeBudgetReserve(t *testing.T) {
	withFDLimit(t, 1000)
	base := pipeFDs.Load()
	tun := &Tunnel{cfg: confOf(&Config{FDReserve: int(1000 - fdSlack - base - 2)})} // room for one pipe
	if !tun.pipeRoom() || !tun.reservePipe() {
		t.Fatal("the first pipe does not fit")
	}
	if tun.pipeRoom() || tun.reservePipe() {
		t.Fatal("a second pipe fits a budget of one")
	}
	pipeFDs.Add(-2)
	if !tun.reservePipe() {
		t.Fatal("a released pipe's room is not given back")
	}
	pipeFDs.Add(-2)
}

// TestPipeBudgetFallsBackToCopy: with no descriptor to spare for a pipe
// (a reserve that takes the whole limit), or one pipe for two busy
// directions, large frames still cross byte for byte: what cannot
// splice is copied, and no pipe outlives the budget.
func TestPipeBudgetFallsBackToCopy(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789abcdef"), 16<<10) // 256 KiB
	up := wsframe.AppendFrame(nil, wsframe.OpBinary, payload, true, [4]byte{1, 2, 3, 4})
	down := wsframe.AppendFrame(nil, wsframe.OpBinary, payload, false, [4]byte{})
	for _, tc := range []struct {
		name  string
		pipes int64
	}{{"no pipe", 0}, {"one pipe", 1}} {
		t.Run(tc.name, func(t *testing.T) {
			withFDLimit(t, 1000)
			base := pipeFDs.Load()
			reserve := int(1000 - fdSlack - base - 2*tc.pipes)
			rg := newRig(t, Config{Frames: true, FDReserve: reserve}, nil, nil)
			rounds := spliced.Load()
			var wg sync.WaitGroup
			for range 3 {
				wg.Add(2)
				go func() { defer wg.Done(); rg.cli.Write(up) }()
				go func() { defer wg.Done(); rg.be.Write(down) }()
				mustEqual(t, "up", readN(t, rg.be, len(up)), up)
				mustEqual(t, "down", readN(t, rg.cli, len(down)), down)
				wg.Wait()
				if n := pipeFDs.Load() - base; n > 2*tc.pipes {
					t.Fatalf("pipes hold %d descriptors, budget %d", n, 2*tc.pipes)
				}
			}
			// A relay counts a message once its last byte is written, which
			// may be just after the reader above has it.
			deadline := time.Now().Add(10 * time.Second)
			for c, b := rg.tun.Messages(); c != 3 || b != 3; c, b = rg.tun.Messages() {
				if time.Now().After(deadline) {
					t.Fatalf("messages %d/%d, want 3/3", c, b)
				}
				time.Sleep(time.Millisecond)
			}
			switch got := spliced.Load() - rounds; {
			case tc.pipes == 0 && got != 0:
				t.Fatalf("%d splice rounds without a pipe to spare", got)
			case tc.pipes > 0 && got == 0:
				t.Fatal("no payload went by splice with a pipe to spare")
			}
			rg.cli.Close()
			rg.wait(t)
			if n := pipeFDs.Load(); n != base {
				t.Fatalf("pipes hold %d descriptors after the tunnel, %d before", n, base)
			}
		})
	}
}
