package tunnel

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/wsframe"
)

// withSpliceMin sets spliceMin for one test (TestMain splices every
// payload remainder, which keeps a frame split across reads off the
// dispatcher's path).
func withSpliceMin(t *testing.T, n int64) {
	old := spliceMin
	spliceMin = n
	t.Cleanup(func() { spliceMin = old })
}

// parkedRig starts a plain-frames tunnel and waits until both directions
// are parked.
func parkedRig(t *testing.T, cfg Config) *rig {
	rg := newRig(t, cfg, nil, nil)
	// A tunnel starts parked for its first arrival only, which goes to a
	// goroutine: a message each way hands both directions to theirs, and
	// the sweep parks them again.
	up := wsframe.AppendFrame(nil, wsframe.OpText, []byte("hello"), true, [4]byte{1, 2, 3, 4})
	rg.cli.Write(up)
	mustEqual(t, "to backend", readN(t, rg.be, len(up)), up)
	down := wsframe.AppendFrame(nil, wsframe.OpText, []byte("hello"), false, [4]byte{})
	rg.be.Write(down)
	mustEqual(t, "to client", readN(t, rg.cli, len(down)), down)
	deadline := time.Now().Add(10 * time.Second)
	for i := range rg.tun.dirs {
		d := &rg.tun.dirs[i]
		for !d.parked.Load() || d.flags.Load()&fNew != 0 {
			if time.Now().After(deadline) {
				t.Fatal("tunnel directions did not park after their first message")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return rg
}

// waitAtLeast waits until counter reaches n, failing after a generous
// deadline.
func waitAtLeast(t *testing.T, counter *atomic.Int64, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for counter.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("count %d, want %d", counter.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestLoopRelaysWithoutGoroutine: once parked, a tunnel's messages are
// relayed by the dispatcher, byte for byte, and no relay goroutine starts.
func TestLoopRelaysWithoutGoroutine(t *testing.T) {
	rg := parkedRig(t, Config{Frames: true})
	relays, handoffs := loopRelays.Load(), loopHandoffs.Load()
	c0, b0 := rg.tun.Messages()
	key := [4]byte{9, 8, 7, 6}
	const n = 50
	for k := range n {
		msg := []byte(fmt.Sprintf("message %d", k))
		up := wsframe.AppendFrame(nil, wsframe.OpText, msg, true, key)
		rg.cli.Write(up)
		mustEqual(t, "to backend", readN(t, rg.be, len(up)), up)
		down := wsframe.AppendFrame(nil, wsframe.OpBinary, msg, false, key)
		rg.be.Write(down)
		mustEqual(t, "to client", readN(t, rg.cli, len(down)), down)
	}
	// The count follows the send that the peer has seen.
	waitAtLeast(t, &loopRelays, relays+2*n)
	if got, h := loopRelays.Load()-relays, loopHandoffs.Load()-handoffs; got != 2*n || h != 0 {
		t.Fatalf("%d messages relayed by the dispatcher, want %d; %d relay goroutines started", got, 2*n, h)
	}
	if !rg.tun.dirs[c2b].parked.Load() || !rg.tun.dirs[b2c].parked.Load() {
		t.Fatal("directions not parked after relaying in place")
	}
	if c, b := rg.tun.Messages(); c-c0 != n || b-b0 != n {
		t.Fatalf("messages %d/%d, want %d/%d", c-c0, b-b0, n, n)
	}
}

// TestLoopRelayAllocatesNothing: relaying a message in place allocates
// nothing on the heap. The dispatcher relays the messages of every tunnel
// that has been quiet for a sweep, which is most of a fleet of mostly idle
// WebSockets. A -race build's pools drop a quarter of what they are given,
// so there it is held to under half of what a heap allocation per call
// made (ten per round trip); CI also runs it without -race.
func TestLoopRelayAllocatesNothing(t *testing.T) {
	rg := parkedRig(t, Config{Frames: true})
	key := [4]byte{9, 8, 7, 6}
	up := wsframe.AppendFrame(nil, wsframe.OpText, []byte("ping"), true, key)
	down := wsframe.AppendFrame(nil, wsframe.OpBinary, []byte("pong"), false, key)
	gotUp, gotDown := make([]byte, len(up)), make([]byte, len(down))
	roundTrip := func() {
		if _, err := rg.cli.Write(up); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(rg.be, gotUp); err != nil {
			t.Fatal(err)
		}
		if _, err := rg.be.Write(down); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(rg.cli, gotDown); err != nil {
			t.Fatal(err)
		}
	}
	roundTrip() // the pools' first objects
	const n = 200
	relays, handoffs := loopRelays.Load(), loopHandoffs.Load()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for range n {
		roundTrip()
	}
	runtime.ReadMemStats(&m1)
	waitAtLeast(t, &loopRelays, relays+2*n)
	if h := loopHandoffs.Load() - handoffs; h != 0 {
		t.Fatalf("%d relay goroutines started; the dispatcher should relay every message", h)
	}
	mustEqual(t, "to backend", gotUp, up)
	mustEqual(t, "to client", gotDown, down)
	per := float64(m1.Mallocs-m0.Mallocs) / n
	limit := 0.1 // other goroutines' rare allocations
	if raceBuild {
		limit = 5
	}
	t.Logf("%.2f heap allocations per round trip (two messages relayed in place)", per)
	if per > limit {
		t.Errorf("%.2f heap allocations per round trip relayed in place, want at most %g", per, limit)
	}
}

// TestLoopBusyParksEarly: a direction relayed by its goroutine that keeps
// emptying its socket parks before any sweep, and its next messages cost
// no goroutine.
func TestLoopBusyParksEarly(t *testing.T) {
	sweepEvery(t, time.Hour)
	earlyPark.Store(true)
	t.Cleanup(func() { earlyPark.Store(false) })
	rg := newRig(t, Config{Frames: true}, nil, nil)
	key := [4]byte{1, 2, 3, 4}
	msg := wsframe.AppendFrame(nil, wsframe.OpBinary, []byte("ping-pong"), true, key)
	// The first message hands the direction, parked since the start, to
	// its goroutine.
	rg.cli.Write(msg)
	mustEqual(t, "to backend", readN(t, rg.be, len(msg)), msg)
	deadline := time.Now().Add(10 * time.Second)
	for !rg.tun.dirs[c2b].parked.Load() {
		if time.Now().After(deadline) {
			t.Fatal("a busy direction did not park early")
		}
		rg.cli.Write(msg)
		mustEqual(t, "to backend", readN(t, rg.be, len(msg)), msg)
	}
	relays := loopRelays.Load()
	base := runtime.NumGoroutine()
	for range 20 {
		rg.cli.Write(msg)
		mustEqual(t, "to backend", readN(t, rg.be, len(msg)), msg)
	}
	waitAtLeast(t, &loopRelays, relays+20)
	if got := loopRelays.Load() - relays; got != 20 {
		t.Fatalf("%d of 20 messages relayed by the dispatcher", got)
	}
	if g := runtime.NumGoroutine(); g > base {
		t.Fatalf("%d goroutines, %d before", g, base)
	}
}

// TestLoopSlowReader: the dispatcher meets a destination that takes only
// part of what it has: the relay goroutine writes the rest, and the
// stream arrives whole and in order.
func TestLoopSlowReader(t *testing.T) {
	withSpliceMin(t, 16<<10)
	cli, cliLeg := tcpPair(t)
	beLeg, be := tcpPair(t)
	beLeg.SetWriteBuffer(4 << 10)
	rg := startRig(t, cli, cliLeg, beLeg, be, Config{Frames: true}, nil, nil)
	waitParked(t, rg.tun)
	owed := loopOwed.Load()
	key := [4]byte{5, 5, 5, 5}
	var want bytes.Buffer
	frames := make([][]byte, 2000)
	for k := range frames {
		p := bytes.Repeat([]byte{byte(k)}, 900)
		frames[k] = wsframe.AppendFrame(nil, wsframe.OpBinary, p, true, key)
		want.Write(frames[k])
	}
	// One frame at a time, each read by the dispatcher before the next
	// is sent, until a send from the dispatcher meets a full socket: the
	// backend does not read yet.
	k := 0
	deadline := time.Now().Add(20 * time.Second)
	for ; k < len(frames) && loopOwed.Load() == owed; k++ {
		before, _ := rg.tun.Stats()
		if _, err := rg.cli.Write(frames[k]); err != nil {
			t.Fatal(err)
		}
		for read, _ := rg.tun.Stats(); read < before+int64(len(frames[k])); read, _ = rg.tun.Stats() {
			if time.Now().After(deadline) {
				t.Fatalf("frame %d not read", k)
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
	if loopOwed.Load() == owed {
		t.Fatal("no send from the dispatcher was left to a goroutine")
	}
	errc := make(chan error, 1)
	go func() {
		for _, f := range frames[k:] {
			if _, err := rg.cli.Write(f); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	mustEqual(t, "to backend", readN(t, rg.be, want.Len()), want.Bytes())
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if c, _ := rg.tun.Messages(); c != 2000 {
		t.Fatalf("%d messages, want 2000", c)
	}
}

// TestLoopLargeFrameSplices: a frame too large for the dispatcher goes to
// the relay goroutine, whose splice carries its payload.
func TestLoopLargeFrameSplices(t *testing.T) {
	withSpliceMin(t, 16<<10)
	rg := parkedRig(t, Config{Frames: true})
	before := spliced.Load()
	p := make([]byte, 512<<10)
	for k := range p {
		p[k] = byte(k * 7)
	}
	big := wsframe.AppendFrame(nil, wsframe.OpBinary, p, false, [4]byte{})
	go rg.be.Write(big)
	mustEqual(t, "to client", readN(t, rg.cli, len(big)), big)
	if spliced.Load() == before {
		t.Fatal("the large payload did not go by splice")
	}
	// And small messages after it, back in the dispatcher.
	waitParked(t, rg.tun)
	small := wsframe.AppendFrame(nil, wsframe.OpText, []byte("after"), false, [4]byte{})
	relays := loopRelays.Load()
	rg.be.Write(small)
	mustEqual(t, "to client", readN(t, rg.cli, len(small)), small)
	waitAtLeast(t, &loopRelays, relays+1)
}

// TestLoopShutdownWhileRelaying: a deliberate close while the dispatcher
// relays a stream of messages: every message before the close frame
// arrives whole, the close frames go out, and the tunnel ends.
func TestLoopShutdownWhileRelaying(t *testing.T) {
	withSpliceMin(t, 16<<10)
	rg := parkedRig(t, Config{Frames: true, CloseGrace: time.Second})
	key := [4]byte{3, 1, 4, 1}
	msg := wsframe.AppendFrame(nil, wsframe.OpText, []byte("0123456789"), true, key)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := rg.cli.Write(msg); err != nil {
				return
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	// Read the backend side until its close frame: all whole text frames.
	got := make(chan error, 1)
	go func() {
		br := bufio.NewReader(rg.be)
		rg.be.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			f, err := readFrame(br)
			if err != nil {
				got <- err
				return
			}
			if f.h.Opcode == wsframe.OpClose {
				got <- nil
				return
			}
			if f.h.Opcode != wsframe.OpText || string(f.payload) != "0123456789" {
				got <- fmt.Errorf("frame %v %q", f.h.Opcode, f.payload)
				return
			}
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for relays := loopRelays.Load(); loopRelays.Load() < relays+20; {
		if time.Now().After(deadline) {
			t.Fatal("the dispatcher relayed nothing")
		}
		time.Sleep(time.Millisecond)
	}
	shut := make(chan struct{})
	go func() {
		rg.tun.Shutdown(CodeGoingAway, "bye")
		close(shut)
	}()
	expectClose(t, rg.cli, CodeGoingAway, false)
	close(stop)
	wg.Wait()
	rg.cli.Write(closeFrame(CodeGoingAway, true))
	if err := <-got; err != nil {
		t.Fatalf("backend stream: %v", err)
	}
	rg.be.Write(closeFrame(CodeGoingAway, false))
	select {
	case <-shut:
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return")
	}
	if res := rg.wait(t); res.ClosedBy != SideProxy || res.CloseCode != CodeGoingAway {
		t.Fatalf("result %+v", res)
	}
}

// TestLoopBothWays: messages both ways at once, with the dispatcher and
// relay goroutines trading each direction, arrive whole and in order.
func TestLoopBothWays(t *testing.T) {
	withSpliceMin(t, 16<<10)
	rg := parkedRig(t, Config{Frames: true})
	relays := loopRelays.Load()
	c0, b0 := rg.tun.Messages()
	const n = 3000
	stream := func(mask bool) []byte {
		var b bytes.Buffer
		for k := range n {
			p := []byte(fmt.Sprintf("%v-%d-%s", mask, k, bytes.Repeat([]byte{'x'}, k%300)))
			b.Write(wsframe.AppendFrame(nil, wsframe.OpBinary, p, mask, [4]byte{byte(k), 1, 2, 3}))
		}
		return b.Bytes()
	}
	up, down := stream(true), stream(false)
	var wg sync.WaitGroup
	send := func(c net.Conn, b []byte) {
		defer wg.Done()
		for len(b) > 0 {
			k := min(len(b), 1+len(b)%700)
			if _, err := c.Write(b[:k]); err != nil {
				return
			}
			b = b[k:]
		}
	}
	wg.Add(2)
	go send(rg.cli, up)
	go send(rg.be, down)
	var gotUp, gotDown []byte
	wg.Add(2)
	go func() { defer wg.Done(); gotUp = readUpTo(rg.be, len(up)) }()
	go func() { defer wg.Done(); gotDown = readUpTo(rg.cli, len(down)) }()
	wg.Wait()
	mustEqual(t, "to backend", gotUp, up)
	mustEqual(t, "to client", gotDown, down)
	if c, b := rg.tun.Messages(); c-c0 != n || b-b0 != n {
		t.Fatalf("messages %d/%d, want %d/%d", c-c0, b-b0, n, n)
	}
	if loopRelays.Load() == relays {
		t.Fatal("the dispatcher relayed nothing")
	}
}

// readUpTo reads n bytes from c, or what came within the deadline.
func readUpTo(c net.Conn, n int) []byte {
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	b := make([]byte, n)
	k := 0
	for k < n {
		m, err := c.Read(b[k:])
		k += m
		if err != nil {
			break
		}
	}
	return b[:k]
}

// TestLoopOff: with relaying in place off, a parked direction wakes a
// goroutine per message, as before.
func TestLoopOff(t *testing.T) {
	loopOff.Store(true)
	t.Cleanup(func() { loopOff.Store(false) })
	rg := parkedRig(t, Config{Frames: true})
	relays := loopRelays.Load()
	msg := wsframe.AppendFrame(nil, wsframe.OpText, []byte("x"), true, [4]byte{})
	rg.cli.Write(msg)
	mustEqual(t, "to backend", readN(t, rg.be, len(msg)), msg)
	if loopRelays.Load() != relays {
		t.Fatal("relayed in place while off")
	}
}
