package tunnel

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/wsframe"
)

// sweepEvery runs the rest of a test with parking's sweep period set to d,
// and puts the tests' period back after it. The sweep goroutine reads the
// period when it starts, so it is made to end (no tunnel may be open)
// before and after.
func sweepEvery(t *testing.T, d time.Duration) {
	t.Helper()
	stopSweep(t)
	old := parkAfter
	parkAfter = d
	t.Cleanup(func() {
		stopSweep(t)
		parkAfter = old
	})
}

func stopSweep(t *testing.T) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		parker.mu.Lock()
		running, wake := parker.running, parker.wake
		parker.mu.Unlock()
		if !running {
			return
		}
		select {
		case wake <- struct{}{}:
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the sweep did not end: tunnels still open")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSkipSeesEnd: a busy direction waits for its source without reading
// to EAGAIN, and still sees an end of stream that came right behind the
// last bytes. The sweep is slowed to an hour, so no direction parks: a
// missed end would never be seen.
func TestSkipSeesEnd(t *testing.T) {
	for _, frames := range []bool{false, true} {
		name := "raw"
		if frames {
			name = "frames"
		}
		t.Run(name, func(t *testing.T) {
			sweepEvery(t, time.Hour)
			msg := []byte("0123456789abcdef")
			if frames {
				msg = wsframe.AppendFrame(nil, wsframe.OpBinary, msg, true, [4]byte{1, 2, 3, 4})
			}
			for range 40 {
				rg := newRig(t, Config{Frames: frames, CloseGrace: 100 * time.Millisecond}, nil, nil)
				for range watchAfter + 2 {
					rg.cli.Write(msg)
					mustEqual(t, "message", readN(t, rg.be, len(msg)), msg)
				}
				rg.cli.Write(msg)
				rg.cli.(*net.TCPConn).CloseWrite()
				mustEqual(t, "last message", readN(t, rg.be, len(msg)), msg)
				expectEnd(t, rg.be) // the end, passed on as it came
				rg.be.Close()
				rg.wait(t)
				rg.cli.Close()
			}
			t.Logf("%d ends seen by the dispatcher while the relay skipped", hangUps.Load())
		})
	}
}

// TestSkipSeesEndBehindData: the client's last bytes and its FIN are all
// queued while the relay is stuck writing to a backend with tiny buffers.
// The FIN's readiness reaches the runtime's poller while the relay is not
// reading, and is dropped when the relay starts its next read (RawRead
// resets it first); the read that finally takes the last bytes takes the
// FIN with them. Without the watch, the relay would then wait for an edge
// that never comes.
func TestSkipSeesEndBehindData(t *testing.T) {
	sweepEvery(t, time.Hour)
	for range 3 {
		cli, cliLeg := tcpPair(t)
		beLeg, be := tcpPair(t)
		beLeg.SetWriteBuffer(16 << 10)
		be.SetReadBuffer(16 << 10)
		rg := startRig(t, cli, cliLeg, beLeg, be, Config{}, nil, nil)
		msg := []byte("0123456789abcdef")
		for range watchAfter + 2 {
			rg.cli.Write(msg)
			readN(t, rg.be, len(msg))
		}
		big := bytes.Repeat([]byte("wsgate!"), 14_100) // 98,700 bytes: the last read is short
		sent := make(chan error, 1)
		go func() {
			_, err := rg.cli.Write(big)
			if err == nil {
				err = rg.cli.(*net.TCPConn).CloseWrite()
			}
			sent <- err
		}()
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // the FIN is in
		rg.be.SetReadDeadline(time.Now().Add(5 * time.Second))
		var got []byte
		buf := make([]byte, 1024)
		for {
			n, err := rg.be.Read(buf)
			got = append(got, buf[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("backend read %d of %d bytes, then %v", len(got), len(big), err)
			}
		}
		mustEqual(t, "relayed", got, big)
		rg.be.Close()
		rg.wait(t)
		rg.cli.Close()
	}
}
