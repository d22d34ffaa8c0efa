package tunnel

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/wsframe"
	"golang.org/x/sys/unix"
)

// A tracked tunnel must look like a direct connection to both peers: these
// tests check exactly what each peer receives, and in what order.

// rawFrame builds any frame, valid or not; payload is given unmasked.
func rawFrame(fin bool, rsv uint8, op wsframe.Opcode, payload []byte, mask bool) []byte {
	h := wsframe.Header{Fin: fin, Rsv: rsv, Opcode: op, Masked: mask, Length: int64(len(payload))}
	if mask {
		h.Key = [4]byte{9, 8, 7, 6}
	}
	b := wsframe.AppendHeader(nil, h)
	p := bytes.Clone(payload)
	if mask {
		wsframe.MaskBytes(p, h.Key, 0)
	}
	return append(b, p...)
}

func closePayload(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

// readAll reads c to its end, which must come within the deadline.
func readAll(tb testing.TB, c net.Conn) []byte {
	tb.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, io.EOF) && !isReset(err) {
		tb.Fatalf("reading to the end: %v", err)
	}
	return got
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

// trackModes runs f with frame tracking off, on, and on with limits (the
// per-direction state that limits need), which must all look the same to
// the peers.
func trackModes(t *testing.T, f func(t *testing.T, cfg Config)) {
	for _, m := range []struct {
		name string
		cfg  Config
	}{
		{"pipe", Config{}},
		{"frames", Config{Frames: true}},
		{"frames+limits", Config{Frames: true, MaxMessageSize: 1 << 20, PingInterval: time.Hour}},
	} {
		t.Run(m.name, func(t *testing.T) { f(t, m.cfg) })
	}
}

// TestPeerEndMirrored: a peer that ends its connection without a close
// frame (it crashed) is mirrored: the other peer gets what was sent, then
// the end of its stream, and no close frame of wsgate's.
func TestPeerEndMirrored(t *testing.T) {
	trackModes(t, func(t *testing.T, cfg Config) {
		for _, side := range []Side{SideClient, SideBackend} {
			rg := newRig(t, cfg, nil, nil)
			gone, other := rg.cli, rg.be
			if side == SideBackend {
				gone, other = rg.be, rg.cli
			}
			msg := rawFrame(true, 0, wsframe.OpText, []byte("last words"), side == SideClient)
			gone.Write(msg)
			gone.Close()
			mustEqual(t, "the other peer got", readAll(t, other), msg)
			other.Close()
			res := rg.wait(t)
			if res.ClosedBy != side || res.CloseCode != 0 || res.Reason != ReasonPeer || res.Err != nil {
				t.Fatalf("%v ended: result %+v", side, res)
			}
		}
	})
}

// TestRefusedCloseMirrored: a client sends a close frame with a code that
// may not be sent; the backend fails the connection (ends it without
// answering), and so must the client's.
func TestRefusedCloseMirrored(t *testing.T) {
	trackModes(t, func(t *testing.T, cfg Config) {
		rg := newRig(t, cfg, nil, nil)
		bad := rawFrame(true, 0, wsframe.OpClose, closePayload(1005, ""), true)
		rg.cli.Write(bad)
		mustEqual(t, "backend got", readN(t, rg.be, len(bad)), bad)
		rg.be.Close()
		if got := readAll(t, rg.cli); len(got) != 0 {
			t.Fatalf("client got %x after the backend failed the connection, want nothing", got)
		}
		rg.cli.Close()
		if res := rg.wait(t); cfg.Frames && res.CloseCode != 1005 {
			t.Fatalf("result %+v", res)
		}
	})
}

// TestEndpointFramesPass: frames that are the endpoints' to judge pass
// untouched, both ways, in order.
func TestEndpointFramesPass(t *testing.T) {
	trackModes(t, func(t *testing.T, cfg Config) {
		rg := newRig(t, cfg, nil, nil)
		up := bytes.Join([][]byte{
			rawFrame(true, 0, wsframe.OpText, []byte("hello"), true),
			rawFrame(true, 0, 0x3, []byte("reserved"), true),
			rawFrame(true, 4, wsframe.OpText, []byte("rsv1"), true),
			rawFrame(true, 0, wsframe.OpText, []byte("unmasked"), false),
			rawFrame(true, 0, wsframe.OpText, []byte("bad \xff utf-8"), true),
			rawFrame(false, 0, wsframe.OpText, []byte("a"), true),
			rawFrame(true, 0, wsframe.OpBinary, []byte("interleaved"), true),
			rawFrame(true, 0, wsframe.OpContinuation, []byte("orphan"), true),
			rawFrame(true, 0, 0xB, []byte("reserved control"), true),
			rawFrame(true, 0, wsframe.OpClose, closePayload(999, "\xc0"), true),
		}, nil)
		down := bytes.Join([][]byte{
			rawFrame(true, 0, wsframe.OpText, []byte("masked by a server"), true),
			rawFrame(true, 2, 0x7, []byte("reserved, RSV2"), false),
			rawFrame(true, 0, wsframe.OpText, []byte("\xed\xa0\x80"), false),
			rawFrame(true, 0, wsframe.OpClose, []byte{3}, false),
		}, nil)
		rg.cli.Write(up)
		rg.be.Write(down)
		mustEqual(t, "backend got", readN(t, rg.be, len(up)), up)
		mustEqual(t, "client got", readN(t, rg.cli, len(down)), down)
		rg.be.Close()
		rg.cli.Close()
		if res := rg.wait(t); res.Err != nil && !errors.Is(res.Err, net.ErrClosed) && cfg.Frames {
			t.Fatalf("result %+v", res)
		}
	})
}

// strictBackend echoes nothing: it writes msgs, then, once wsgate's close
// has come, answers it after them, as a strict server does.
func strictBackend(t *testing.T, be net.Conn, msgs []byte) <-chan error {
	done := make(chan error, 1)
	var wrote sync.WaitGroup
	wrote.Add(1)
	go func() {
		defer wrote.Done()
		be.Write(msgs)
	}()
	go func() {
		br := bufio.NewReader(be)
		for {
			f, err := readFrame(br)
			if err != nil {
				done <- err
				return
			}
			if f.h.Opcode == wsframe.OpClose {
				wrote.Wait()
				_, err := be.Write(rawFrame(true, 0, wsframe.OpClose, f.payload, false))
				done <- err
				return
			}
		}
	}()
	return done
}

// TestLimitCloseAfterSentFrames: a client goes over a limit while the
// backend's frames to it are still on their way (the client is not
// reading). The client gets every one of them, then its close 1009; the
// backend gets 1001 and never the offending frame.
func TestLimitCloseAfterSentFrames(t *testing.T) {
	rg := newRig(t, Config{Frames: true, MaxMessageSize: 1024, CloseGrace: 5 * time.Second}, nil, nil)
	var msgs []byte
	for i := range 1024 { // under the limit, which holds both ways
		msgs = append(msgs, rawFrame(true, 0, wsframe.OpBinary, bytes.Repeat([]byte{byte(i)}, 1000), false)...)
	}
	answered := strictBackend(t, rg.be, msgs)
	rg.cli.Write(rawFrame(true, 0, wsframe.OpBinary, make([]byte, 2048), true))
	rg.cli.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(rg.cli)
	mustEqual(t, "frames before the close", readFull(t, br, len(msgs)), msgs)
	f, err := readFrame(br)
	if err != nil || f.h.Opcode != wsframe.OpClose || binary.BigEndian.Uint16(f.payload) != CodeTooBig {
		t.Fatalf("after the frames: %+v %v, want close 1009", f, err)
	}
	if err := <-answered; err != nil {
		t.Fatalf("backend: %v", err)
	}
	rg.cli.Write(rawFrame(true, 0, wsframe.OpClose, closePayload(CodeTooBig, ""), true))
	expectEnd(t, rg.cli)
	res := rg.wait(t)
	if !errors.Is(res.Err, ErrTooBig) || res.ClosedBy != SideProxy || res.CloseCode != CodeTooBig || res.Reason != ReasonLimit {
		t.Fatalf("result %+v", res)
	}
}

func readFull(tb testing.TB, r io.Reader, n int) []byte {
	tb.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		tb.Fatalf("reading %d bytes: %v", n, err)
	}
	return b
}

// TestLimitCloseLingers: a client still sending a message over the limit
// when wsgate closes it gets the close frame whole: wsgate reads and drops
// what it sends instead of resetting the connection under it.
func TestLimitCloseLingers(t *testing.T) {
	for range 3 {
		rg := newRig(t, Config{Frames: true, MaxMessageSize: 1 << 20}, nil, nil)
		answered := strictBackend(t, rg.be, nil)
		big := rawFrame(true, 0, wsframe.OpBinary, make([]byte, 16<<20), true)
		wrote := make(chan error, 1)
		go func() {
			_, err := rg.cli.Write(big)
			if err == nil {
				_, err = rg.cli.Write(rawFrame(true, 0, wsframe.OpClose, closePayload(CodeTooBig, ""), true))
			}
			wrote <- err
		}()
		expectClose(t, rg.cli, CodeTooBig, false)
		if err := <-wrote; err != nil {
			t.Fatalf("client write: %v", err)
		}
		if err := <-answered; err != nil {
			t.Fatalf("backend: %v", err)
		}
		expectEnd(t, rg.cli)
		if res := rg.wait(t); !errors.Is(res.Err, ErrTooBig) || res.CloseCode != CodeTooBig {
			t.Fatalf("result %+v", res)
		}
	}
}

// TestStrictValidation: with Strict, a frame that breaks RFC 6455 is not
// forwarded; what came before it is, the offender gets its close code after
// what the other peer had sent, and the other peer 1001.
func TestStrictValidation(t *testing.T) {
	good := rawFrame(true, 0, wsframe.OpText, []byte("ok"), true)
	tests := []struct {
		name string
		bad  []byte
		code uint16
	}{
		{"reserved opcode", rawFrame(true, 0, 0x3, nil, true), CodeProtocolError},
		{"unmasked", rawFrame(true, 0, wsframe.OpText, []byte("x"), false), CodeProtocolError},
		{"RSV1 without extension", rawFrame(true, 4, wsframe.OpText, []byte("x"), true), CodeProtocolError},
		{"orphan continuation", rawFrame(true, 0, wsframe.OpContinuation, []byte("x"), true), CodeProtocolError},
		{"interleaved", append(rawFrame(false, 0, wsframe.OpText, []byte("a"), true), rawFrame(true, 0, wsframe.OpText, []byte("b"), true)...), CodeProtocolError},
		{"close code 1005", rawFrame(true, 0, wsframe.OpClose, closePayload(1005, ""), true), CodeProtocolError},
		{"close of one byte", rawFrame(true, 0, wsframe.OpClose, []byte{3}, true), CodeProtocolError},
		{"invalid UTF-8", rawFrame(true, 0, wsframe.OpText, []byte("a\xffb"), true), CodeInvalidData},
		{"truncated UTF-8", append(rawFrame(false, 0, wsframe.OpText, []byte("\xc3"), true), rawFrame(true, 0, wsframe.OpContinuation, nil, true)...), CodeInvalidData},
		{"close reason", rawFrame(true, 0, wsframe.OpClose, closePayload(1000, "\xc0\xaf"), true), CodeInvalidData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rg := newRig(t, Config{Frames: true, Strict: true}, nil, nil)
			echo := rawFrame(true, 0, wsframe.OpText, []byte("echo"), false)
			answered := strictBackend(t, rg.be, echo)
			rg.cli.Write(append(bytes.Clone(good), tt.bad...))
			br := bufio.NewReader(rg.cli)
			rg.cli.SetReadDeadline(time.Now().Add(10 * time.Second))
			mustEqual(t, "the backend's frame first", readFull(t, br, len(echo)), echo)
			f, err := readFrame(br)
			if err != nil || f.h.Opcode != wsframe.OpClose || binary.BigEndian.Uint16(f.payload) != tt.code {
				t.Fatalf("got %+v %v, want close %d", f, err, tt.code)
			}
			if err := <-answered; err != nil {
				t.Fatalf("backend: %v", err)
			}
			rg.cli.Write(rawFrame(true, 0, wsframe.OpClose, closePayload(tt.code, ""), true))
			rg.cli.Close()
			res := rg.wait(t)
			if !errors.Is(res.Err, ErrProtocol) || res.ClosedBy != SideClient || res.Reason != ReasonProtocol {
				t.Fatalf("result %+v", res)
			}
		})
	}
}

// TestStrictPassesValid: strict validation lets valid traffic through
// byte for byte: text split inside a character, compressed frames when an
// extension uses RSV1, control frames inside a fragmented message.
func TestStrictPassesValid(t *testing.T) {
	rg := newRig(t, Config{Frames: true, Strict: true, AllowRSV: 4}, nil, nil)
	up := bytes.Join([][]byte{
		rawFrame(false, 0, wsframe.OpText, []byte("h\xc3"), true),
		rawFrame(true, 0, wsframe.OpPing, []byte("p"), true),
		rawFrame(true, 0, wsframe.OpContinuation, []byte("\xa9llo 🙂"), true),
		rawFrame(true, 4, wsframe.OpText, []byte{0xff, 0x00}, true),
		rawFrame(true, 0, wsframe.OpBinary, []byte{0xff}, true),
		rawFrame(true, 0, wsframe.OpClose, closePayload(4000, "bye ✓"), true),
	}, nil)
	rg.cli.Write(up)
	mustEqual(t, "backend got", readN(t, rg.be, len(up)), up)
	rg.be.Write(rawFrame(true, 0, wsframe.OpClose, closePayload(4000, ""), false))
	readN(t, rg.cli, 4)
	expectEnd(t, rg.cli)
	if res := rg.wait(t); res.Err != nil || res.ClosedBy != SideClient || res.CloseCode != 4000 {
		t.Fatalf("result %+v", res)
	}
}

// TestMaxSession: a tunnel is closed once it has been open MaxSession, with
// the configured code to both peers.
func TestMaxSession(t *testing.T) {
	start := time.Now()
	rg := newRig(t, Config{Frames: true, MaxSession: 300 * time.Millisecond, SessionCode: 4001}, nil, nil)
	expectClose(t, rg.cli, 4001, false)
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("closed after %v, before its lifetime", d)
	}
	expectClose(t, rg.be, 4001, true)
	rg.cli.Close()
	rg.be.Close()
	if res := rg.wait(t); res.Reason != ReasonLifetime || !errors.Is(res.Err, ErrLifetime) || res.CloseCode != 4001 {
		t.Fatalf("result %+v", res)
	}
}

// TestShutdownDeliversWhatWasSent: a shutdown while the backend's frames
// queue toward a client that is not reading yet: the client gets every
// byte wsgate had read from the backend when it decided, in whole frames,
// then its close frame.
func TestShutdownDeliversWhatWasSent(t *testing.T) {
	// Small buffers toward the client, so that the relay blocks writing
	// to it with data in hand.
	cli, cliLeg := tcpPair(t)
	beLeg, be := tcpPair(t)
	cli.SetReadBuffer(8 << 10)
	cliLeg.SetWriteBuffer(8 << 10)
	rg := startRig(t, cli, cliLeg, beLeg, be, Config{Frames: true, CloseGrace: 5 * time.Second}, nil, nil)
	const frames, size = 2048, 1024
	var msgs []byte
	for i := range frames {
		msgs = append(msgs, rawFrame(true, 0, wsframe.OpBinary, bytes.Repeat([]byte{byte(i)}, size), false)...)
	}
	go rg.be.Write(msgs)
	deadline := time.Now().Add(10 * time.Second)
	for _, n := rg.tun.Stats(); n < 48<<10; _, n = rg.tun.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("the tunnel read %d bytes of the backend's", n)
		}
		time.Sleep(time.Millisecond)
	}
	// What wsgate has read, and what waits in its socket, has been sent.
	// The count may miss bytes that arrive between the two reads; the
	// check below allows for one frame.
	_, read := rg.tun.Stats()
	queued := 0
	if rc, err := beLeg.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { queued, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
	}
	sent := read + int64(queued)
	done := make(chan struct{})
	go func() { defer close(done); rg.tun.Shutdown(CodeGoingAway, "bye") }()
	br := bufio.NewReader(rg.cli)
	rg.cli.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := 0
	for {
		f, err := readFrame(br)
		if err != nil {
			t.Fatalf("after %d frames: %v", got, err)
		}
		if f.h.Opcode == wsframe.OpClose {
			if binary.BigEndian.Uint16(f.payload) != CodeGoingAway {
				t.Fatalf("close %x", f.payload)
			}
			break
		}
		if len(f.payload) != size || f.payload[0] != byte(got) {
			t.Fatalf("frame %d: %d bytes of %d, want %d of %d", got, len(f.payload), f.payload[0], size, byte(got))
		}
		got++
	}
	if int64(got*(size+4)) < sent-(size+4) {
		t.Fatalf("the client got %d frames (%d bytes); %d had been sent to wsgate", got, got*(size+4), sent)
	}
	rg.cli.Write(closeFrame(CodeGoingAway, true))
	go io.Copy(io.Discard, rg.be)
	rg.be.Write(closeFrame(CodeGoingAway, false))
	<-done
	if res := rg.wait(t); res.Reason != ReasonShutdown || res.ClosedBy != SideProxy {
		t.Fatalf("result %+v", res)
	}
}

// TestCloseDeliversWhatClientSendsUntilItAnswers: a close wsgate decides
// (a rebalance here) reaches the client first; a message the client sends
// before it has read that close, then its answer, both reach the backend,
// whose close frame comes after the message.
func TestCloseDeliversWhatClientSendsUntilItAnswers(t *testing.T) {
	rg := newRig(t, Config{Frames: true, CloseGrace: 5 * time.Second}, nil, nil)
	done := make(chan struct{})
	go func() { defer close(done); rg.tun.Close(ReasonRebalance, 1012, "rebalancing") }()
	cbr := bufio.NewReader(rg.cli)
	rg.cli.SetReadDeadline(time.Now().Add(10 * time.Second))
	f, err := readFrame(cbr)
	if err != nil || f.h.Opcode != wsframe.OpClose || binary.BigEndian.Uint16(f.payload) != 1012 {
		t.Fatalf("the client got %+v, %v; want close 1012", f.h, err)
	}
	// Written as if before the client had read the close.
	rg.cli.Write(rawFrame(true, 0, wsframe.OpText, []byte("late"), true))
	rg.cli.Write(closeFrame(1012, true))
	bbr := bufio.NewReader(rg.be)
	rg.be.SetReadDeadline(time.Now().Add(10 * time.Second))
	f, err = readFrame(bbr)
	if err != nil || f.h.Opcode != wsframe.OpText || string(f.payload) != "late" {
		t.Fatalf("the backend's first frame: %+v %q, %v; want the client's message", f.h, f.payload, err)
	}
	f, err = readFrame(bbr)
	if err != nil || f.h.Opcode != wsframe.OpClose || binary.BigEndian.Uint16(f.payload) != 1012 {
		t.Fatalf("the backend's second frame: %+v, %v; want close 1012", f.h, err)
	}
	rg.be.Write(closeFrame(1012, false))
	<-done
	if res := rg.wait(t); res.Reason != ReasonRebalance || res.ClosedBy != SideProxy {
		t.Fatalf("result %+v", res)
	}
}

// TestFirstCloseRecorded: the close frame passed on first is the one a
// tunnel reports, even when its answer comes back at once. A backend that
// answers the client's close as soon as it reads it races the client's
// direction, which must have recorded the close before passing it on.
func TestFirstCloseRecorded(t *testing.T) {
	for range 200 {
		rg := newRig(t, Config{Frames: true}, nil, nil)
		rg.cli.Write(closeFrame(4000, true))
		readN(t, rg.be, len(closeFrame(4000, true)))
		rg.be.Write(closeFrame(4001, false))
		readN(t, rg.cli, len(closeFrame(4001, false)))
		if res := rg.wait(t); res.ClosedBy != SideClient || res.CloseCode != 4000 {
			t.Fatalf("result %+v, want the client's close 4000", res)
		}
		rg.cli.Close()
		rg.be.Close()
	}
}
