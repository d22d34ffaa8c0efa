package tunnel

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/wsframe"
)

// moveConn gives c's socket a new descriptor and closes c, as a handover to
// another process does: the peer sees nothing.
func moveConn(tb testing.TB, c net.Conn) net.Conn {
	tb.Helper()
	f, err := c.(interface {
		File() (*os.File, error)
	}).File()
	if err != nil {
		tb.Fatal(err)
	}
	c.Close()
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		tb.Fatal(err)
	}
	return nc
}

// streamFrames writes n numbered messages to c (masked toward a backend),
// of sizes that exercise small reads, fragmented messages, splice and
// headers split across writes.
func streamFrames(c net.Conn, n int, mask bool, errs chan<- error) {
	bw := bufio.NewWriterSize(c, 4096)
	for i := range n {
		size := 8 + (i*37)%200
		if i%50 == 7 {
			size = 70000 // spliced
		}
		p := make([]byte, size)
		binary.BigEndian.PutUint32(p, uint32(i))
		key := [4]byte{byte(i), 1, 2, 3}
		if i%9 == 4 {
			// A fragmented message: text start, continuation end.
			f := wsframe.AppendFrame(nil, wsframe.OpBinary, p[:4], mask, key)
			f[0] &^= 0x80 // not FIN
			bw.Write(f)
			f = wsframe.AppendFrame(nil, wsframe.OpContinuation, p[4:], mask, key)
			bw.Write(f)
		} else {
			bw.Write(wsframe.AppendFrame(nil, wsframe.OpBinary, p, mask, key))
		}
		if i%3 == 0 {
			if err := bw.Flush(); err != nil {
				errs <- err
				return
			}
		}
	}
	errs <- bw.Flush()
}

// checkFrames reads n numbered messages from c, in order.
func checkFrames(c net.Conn, n int, errs chan<- error) {
	br := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	var msg []byte
	for i := 0; i < n; {
		f, err := readFrame(br)
		if err != nil {
			errs <- err
			return
		}
		msg = append(msg, f.payload...)
		if !f.h.Fin {
			continue
		}
		if got := binary.BigEndian.Uint32(msg); got != uint32(i) {
			errs <- fmt.Errorf("message %d arrived as number %d", i, got)
			return
		}
		msg = msg[:0]
		i++
	}
	errs <- nil
}

// TestDetachResumeStreams hands a tunnel carrying two busy streams over
// again and again, each time to new descriptors of its sockets: every
// message arrives whole and in order, and only the last tunnel reports
// the session's end, with every message counted.
func TestDetachResumeStreams(t *testing.T) {
	const n = 3000
	cli, cliLeg := tcpPair(t)
	beLeg, be := tcpPair(t)
	var (
		mu     sync.Mutex
		closes []Result
	)
	cfg := Config{Frames: true, PingInterval: time.Hour, MaxMessageSize: 1 << 20,
		OnClose: CloseFunc(func(r Result) { mu.Lock(); closes = append(closes, r); mu.Unlock() })}
	tun := Start(cliLeg, beLeg, nil, nil, cfg)
	errs := make(chan error, 4)
	go streamFrames(cli, n, true, errs)
	go streamFrames(be, n, false, errs)
	go checkFrames(be, n, errs)
	go checkFrames(cli, n, errs)
	done := 0
	moves := 0
	for done < 4 {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatal(err)
			}
			done++
			continue
		default:
		}
		p, err := tun.Detach(5 * time.Second)
		if err != nil {
			t.Fatalf("detach %d: %v", moves, err)
		}
		moves++
		c, b := moveConn(t, p.Client), moveConn(t, p.Backend)
		tun = Resume(c, b, &p.State, p.State.Settings.Config(nil, cfg.OnClose))
		time.Sleep(time.Millisecond)
	}
	if moves < 3 {
		t.Fatalf("only %d handovers while the streams ran", moves)
	}
	cli.Write(closeFrame(1000, true))
	expectClose(t, be, 1000, true)
	be.Write(closeFrame(1000, false))
	expectClose(t, cli, 1000, false)
	cli.Close()
	be.Close()
	tun.Shutdown(1001, "")
	mu.Lock()
	defer mu.Unlock()
	if len(closes) != 1 {
		t.Fatalf("%d session ends reported, want 1", len(closes))
	}
	if r := closes[0]; r.MessagesFromClient != n || r.MessagesFromBackend != n || r.CloseCode != 1000 {
		t.Fatalf("result %+v, want %d messages each way and code 1000", r, n)
	}
	t.Logf("%d handovers", moves)
}

// TestDetachIdle hands over a tunnel whose directions have parked.
func TestDetachIdle(t *testing.T) {
	r := newRig(t, Config{Frames: true}, nil, nil)
	r.cli.Write(wsframe.AppendFrame(nil, wsframe.OpText, []byte("hi"), true, [4]byte{1, 2, 3, 4}))
	readN(t, r.be, 8)
	waitParked(t, r.tun)
	p, err := r.tun.Detach(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !p.State.AtBoundary || p.State.Dirs[0].Messages != 1 {
		t.Fatalf("state %+v", p.State)
	}
	done := make(chan Result, 1)
	tun := Resume(moveConn(t, p.Client), moveConn(t, p.Backend), &p.State, p.State.Settings.Config(nil, CloseFunc(func(res Result) { done <- res })))
	r.be.Write(wsframe.AppendFrame(nil, wsframe.OpText, []byte("yo"), false, [4]byte{}))
	mustEqual(t, "relayed after the handover", readN(t, r.cli, 4), wsframe.AppendFrame(nil, wsframe.OpText, []byte("yo"), false, [4]byte{}))
	tun.Shutdown(1001, "")
	var res Result
	select {
	case res = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the resumed tunnel did not report its end")
	}
	if res.MessagesFromClient != 1 || res.MessagesFromBackend != 1 {
		t.Fatalf("result %+v", res)
	}
	// The first tunnel never reports: the rig's wait would see a call.
	if n := r.calls.Load(); n != 0 {
		t.Fatalf("the detached tunnel reported its end %d times", n)
	}
	r.res = &res
}

// TestDetachClosing refuses a tunnel that is closing.
func TestDetachClosing(t *testing.T) {
	r := newRig(t, Config{Frames: true}, nil, nil)
	go r.tun.Shutdown(1001, "")
	expectClose(t, r.cli, 1001, false)
	if _, err := r.tun.Detach(time.Second); err == nil {
		t.Fatal("a closing tunnel was detached")
	}
}

// TestDetachGivesUp: a direction that cannot pause in time (its write is
// blocked on a backend that does not read) fails the handover, and the
// tunnel relays on as before, both ways.
func TestDetachGivesUp(t *testing.T) {
	r := newRig(t, Config{Frames: true}, nil, nil)
	const n = 1000
	payload := make([]byte, 64<<10)
	errs := make(chan error, 1)
	go func() {
		for i := range n {
			if _, err := r.cli.Write(wsframe.AppendFrame(nil, wsframe.OpBinary, payload, true, [4]byte{byte(i), 2, 3, 4})); err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}()
	// Until the backend's buffers are full: nothing more is read.
	for last := int64(-1); ; {
		time.Sleep(200 * time.Millisecond)
		got, _ := r.tun.Stats()
		if got == last {
			break
		}
		last = got
	}
	if p, err := r.tun.Detach(300 * time.Millisecond); err == nil {
		t.Fatalf("detached a tunnel whose direction is blocked in a write: %+v", p.State.Dirs[0])
	}
	br := bufio.NewReader(r.be)
	r.be.SetReadDeadline(time.Now().Add(20 * time.Second))
	for i := range n {
		f, err := readFrame(br)
		if err != nil || len(f.payload) != len(payload) {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	r.be.Write(wsframe.AppendFrame(nil, wsframe.OpText, []byte("back"), false, [4]byte{}))
	mustEqual(t, "the other way", readN(t, r.cli, 6), wsframe.AppendFrame(nil, wsframe.OpText, []byte("back"), false, [4]byte{}))
}

// TestDetachMidFrame: a sender that stalls in the middle of a frame (and
// of a header) does not hold the handover up past boundaryWait: the
// tunnel moves with its position in the frame, and the frame completes
// through the new tunnel, byte for byte.
func TestDetachMidFrame(t *testing.T) {
	r := newRig(t, Config{Frames: true, MaxMessageSize: 1 << 20}, nil, nil)
	payload := make([]byte, 3000)
	for i := range payload {
		payload[i] = byte(i)
	}
	frame := wsframe.AppendFrame(nil, wsframe.OpBinary, payload, true, [4]byte{9, 8, 7, 6})
	next := wsframe.AppendFrame(nil, wsframe.OpText, []byte("next"), true, [4]byte{1, 1, 1, 1})
	r.cli.Write(frame[:1000])
	got := readN(t, r.be, 1000)
	// The backend stops in the middle of a header.
	r.be.Write(next[:1])
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, fromBackend := r.tun.Stats(); fromBackend == 1 {
			break
		}
		if time.Now().After(end) {
			t.Fatal("the relay did not read the backend's byte")
		}
	}
	p, err := r.tun.Detach(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if p.State.AtBoundary || p.State.Dirs[0].Remaining == 0 || len(p.State.Dirs[1].Held) != 1 {
		t.Fatalf("state %+v", p.State)
	}
	done := make(chan Result, 1)
	tun := Resume(moveConn(t, p.Client), moveConn(t, p.Backend), &p.State, p.State.Settings.Config(nil, CloseFunc(func(res Result) { done <- res })))
	r.cli.Write(frame[1000:])
	mustEqual(t, "the frame across the handover", append(got, readN(t, r.be, len(frame)-1000)...), frame)
	r.be.Write(next[1:])
	mustEqual(t, "the header across the handover", readN(t, r.cli, len(next)), next)
	tun.Shutdown(1001, "")
	select {
	case res := <-done:
		if res.MessagesFromClient != 1 || res.MessagesFromBackend != 1 {
			t.Fatalf("result %+v", res)
		}
		r.res = &res
	case <-time.After(10 * time.Second):
		t.Fatal("the resumed tunnel did not report its end")
	}
}
