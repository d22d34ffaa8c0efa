package tunnel

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/wsframe"
)

// TestStartEndRaces: tunnels whose peers reset, close, half-close or send
// a close frame, and whose server closes them, all at the moment they
// start, in every order the scheduler finds: each tunnel reports its end
// exactly once (startRig's OnClose check), closing it does not hang, and
// its goroutines are gone (the package's leak check).
func TestStartEndRaces(t *testing.T) {
	const n = 300
	r := rand.New(rand.NewPCG(1, 2))
	var wg sync.WaitGroup
	for k := range n {
		cli, cliLeg := tcpPair(t)
		beLeg, be := tcpPair(t)
		actions := []func(){
			func() { cli.SetLinger(0); cli.Close() },
			func() { cli.Close() },
			func() { cli.CloseWrite() },
			func() { be.SetLinger(0); be.Close() },
			func() { be.Close() },
			func() { be.CloseWrite() },
			func() {
				key := [4]byte{1, 2, 3, 4}
				cli.Write(wsframe.AppendFrame(nil, wsframe.OpClose, []byte{0x03, 0xe8}, true, key))
			},
			func() { be.Write(wsframe.AppendFrame(nil, wsframe.OpClose, []byte{0x03, 0xe8}, false, [4]byte{})) },
		}
		a, b := actions[r.IntN(len(actions))], actions[r.IntN(len(actions))]
		first := k%2 == 0
		if first {
			a() // before the tunnel starts
		}
		rg := startRig(t, cli, cliLeg, beLeg, be, Config{Frames: k%3 != 0, IdleTimeout: time.Minute}, nil, nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !first {
				a()
			}
			b()
			if k%4 == 0 {
				rg.tun.Close(ReasonShutdown, CodeGoingAway, "going away")
			}
			// Whatever is left open closes now: the tunnel must end.
			cli.Close()
			be.Close()
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("closing the tunnels hung")
	}
	// startRig's cleanups wait for every tunnel's single report.
}
