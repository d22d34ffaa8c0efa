package tunnel

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/internal/wsframe"
)

// peer plays a WebSocket endpoint on c: it reads every frame, answers pings
// with pongs when answer is set (masked when mask is set, as a client
// must), and hands every other frame to the returned channel, which is
// closed when c ends. It also returns the pings it saw.
func peer(tb testing.TB, c net.Conn, answer, mask bool) (frames <-chan frame, pings <-chan frame) {
	tb.Helper()
	fc := make(chan frame, 1024)
	pc := make(chan frame, 1024)
	var wmu sync.Mutex
	go func() {
		defer close(fc)
		defer close(pc)
		br := bufio.NewReader(c)
		for {
			f, err := readFrame(br)
			if err != nil {
				return
			}
			if f.h.Opcode != wsframe.OpPing {
				fc <- f
				continue
			}
			select {
			case pc <- f:
			default:
			}
			if answer {
				wmu.Lock()
				c.Write(wsframe.AppendFrame(nil, wsframe.OpPong, f.payload, mask, [4]byte{3, 1, 4, 1}))
				wmu.Unlock()
			}
		}
	}()
	return fc, pc
}

// nextFrame returns the next frame from fc, failing after a while.
func nextFrame(tb testing.TB, fc <-chan frame) frame {
	tb.Helper()
	select {
	case f, ok := <-fc:
		if !ok {
			tb.Fatal("connection ended, want a frame")
		}
		return f
	case <-time.After(5 * time.Second):
		tb.Fatal("no frame")
	}
	return frame{}
}

func wantClose(tb testing.TB, fc <-chan frame, code uint16, masked bool) {
	tb.Helper()
	f := nextFrame(tb, fc)
	if f.h.Opcode != wsframe.OpClose || f.h.Masked != masked || len(f.payload) < 2 || binary.BigEndian.Uint16(f.payload) != code {
		tb.Fatalf("got %+v %x, want close %d masked=%v", f.h, f.payload, code, masked)
	}
}

func wantData(tb testing.TB, fc <-chan frame, payload string) {
	tb.Helper()
	f := nextFrame(tb, fc)
	if f.h.Opcode.IsControl() || string(f.payload) != payload {
		tb.Fatalf("got %+v %q, want data %q", f.h, f.payload, payload)
	}
}

// stillOpen fails if the tunnel ends within d.
func stillOpen(tb testing.TB, rg *rig, d time.Duration) {
	tb.Helper()
	select {
	case res := <-rg.done:
		tb.Fatalf("tunnel closed: %+v", res)
	case <-time.After(d):
	}
}

func text(s string, mask bool) []byte {
	return wsframe.AppendFrame(nil, wsframe.OpText, []byte(s), mask, [4]byte{9, 9, 9, 9})
}

func TestPingTimeout(t *testing.T) {
	const interval, timeout = 100 * time.Millisecond, 100 * time.Millisecond
	for _, dead := range []Side{SideClient, SideBackend} {
		t.Run(dead.String()+" silent", func(t *testing.T) {
			start := time.Now()
			rg := newRig(t, Config{Frames: true, PingInterval: interval, PingTimeout: timeout}, nil, nil)
			// The live leg answers pings; the dead one reads but never answers.
			cliFrames, cliPings := peer(t, rg.cli, dead != SideClient, true)
			beFrames, bePings := peer(t, rg.be, dead != SideBackend, false)
			var res Result
			select {
			case res = <-rg.done:
				rg.res = &res
			case <-time.After(3 * (interval + timeout)):
				t.Fatalf("silent %v not closed within %v", dead, 3*(interval+timeout))
			}
			if el := time.Since(start); el < interval+timeout {
				t.Fatalf("closed after %v, before interval+timeout", el)
			}
			if !errors.Is(res.Err, ErrPingTimeout) || res.ClosedBy != SideProxy || res.DeadSide != dead || res.CloseCode != CodeGoingAway {
				t.Fatalf("result %+v", res)
			}
			// The live leg is told to go away.
			live, liveMasked := cliFrames, false
			if dead == SideClient {
				live, liveMasked = beFrames, true
			}
			wantClose(t, live, CodeGoingAway, liveMasked)
			// The dead leg was pinged as the RFC wants: masked only
			// toward the backend, with wsgate's recognisable payload.
			pings, masked, letter := cliPings, false, byte('c')
			if dead == SideBackend {
				pings, masked, letter = bePings, true, 'b'
			}
			p := <-pings
			if p.h.Masked != masked || len(p.payload) != pingLen || string(p.payload[:3]) != "wsg" || p.payload[3] != letter || binary.BigEndian.Uint32(p.payload[4:]) != 1 {
				t.Fatalf("ping %+v %q", p.h, p.payload)
			}
		})
	}
}

func TestPingTimeoutTLS(t *testing.T) {
	const interval = 60 * time.Millisecond
	rg, cli, be := tlsRig(t, Config{Frames: true, PingInterval: interval, PingTimeout: interval, CloseGrace: 100 * time.Millisecond})
	peer(t, cli, false, true)
	beFrames, _ := peer(t, be, true, false)
	res := rg.wait(t)
	if !errors.Is(res.Err, ErrPingTimeout) || res.DeadSide != SideClient {
		t.Fatalf("result %+v", res)
	}
	wantClose(t, beFrames, CodeGoingAway, true)
}

func TestPingActiveClientNotClosed(t *testing.T) {
	const interval = 60 * time.Millisecond
	rg := newRig(t, Config{Frames: true, PingInterval: interval, PingTimeout: interval, CloseGrace: 100 * time.Millisecond}, nil, nil)
	// The client never answers a ping, but it keeps talking.
	_, cliPings := peer(t, rg.cli, false, true)
	beFrames, _ := peer(t, rg.be, true, false)
	tick := time.NewTicker(interval / 4)
	defer tick.Stop()
	sent := 0
	for end := time.Now().Add(6 * interval); time.Now().Before(end); {
		select {
		case res := <-rg.done:
			t.Fatalf("active client closed: %+v", res)
		case <-tick.C:
		}
		rg.cli.Write(text("tick", true))
		sent++
	}
	for range sent {
		wantData(t, beFrames, "tick")
	}
	select {
	case p := <-cliPings:
		t.Fatalf("an active client was pinged: %q", p.payload)
	default:
	}
	if c, _ := rg.tun.Messages(); c != int64(sent) {
		t.Fatalf("Messages() = %d, want %d", c, sent)
	}
	rg.tun.Shutdown(1000, "")
}

// gorillaClient connects a gorilla/websocket client to a hand-made handshake
// on loopback and returns it with the server's end of its connection.
func gorillaClient(t *testing.T) (*websocket.Conn, net.Conn, []byte) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type accepted struct {
		c       net.Conn
		pending []byte
		err     error
	}
	ch := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			ch <- accepted{err: err}
			return
		}
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil {
			c.Close()
			ch <- accepted{err: err}
			return
		}
		resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
			wsframe.AcceptKey(req.Header.Get("Sec-WebSocket-Key")) + "\r\n\r\n"
		_, err = c.Write([]byte(resp))
		p, _ := br.Peek(br.Buffered())
		ch <- accepted{c, bytes.Clone(p), err}
	}()
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+ln.Addr().String()+"/", nil)
	a := <-ch
	if err != nil || a.err != nil {
		if a.c != nil {
			a.c.Close()
		}
		t.Fatalf("handshake: %v, %v", err, a.err)
	}
	return ws, a.c, a.pending
}

func TestPingAnsweredByWebSocketClient(t *testing.T) {
	const interval = 50 * time.Millisecond
	ws, cliLeg, pending := gorillaClient(t)
	beLeg, be := tcpPair(t)
	// The idle timeout is shorter than the test: only the pongs, which
	// count as activity, keep the tunnel open.
	cfg := Config{Frames: true, PingInterval: interval, PingTimeout: interval, IdleTimeout: 3 * interval, CloseGrace: 100 * time.Millisecond}
	rg := startRig(t, ws.NetConn(), cliLeg, beLeg, be, cfg, pending, nil)
	read := make(chan error, 1)
	go func() {
		// Reading is what runs gorilla's default ping handler.
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				read <- err
				return
			}
		}
	}()
	beFrames, _ := peer(t, be, true, false)
	stillOpen(t, rg, 8*interval)
	fromClient, _ := rg.tun.Stats()
	if fromClient == 0 {
		t.Fatal("the client sent no pong")
	}
	select {
	case f := <-beFrames:
		t.Fatalf("backend got %+v %q: wsgate's pongs must not be relayed", f.h, f.payload)
	default:
	}
	rg.tun.Shutdown(1000, "")
	<-read
	if res := rg.wait(t); res.Err != nil || res.ClosedBy != SideProxy {
		t.Fatalf("result %+v", res)
	}
}

func TestOwnPongsConsumed(t *testing.T) {
	// No timeout: pings are sent and never awaited, so the backend need
	// not answer.
	rg := newRig(t, Config{Frames: true, PingInterval: 30 * time.Millisecond, CloseGrace: 100 * time.Millisecond}, nil, nil)
	beFrames, bePings := peer(t, rg.be, false, false)
	br := bufio.NewReader(rg.cli)
	rg.cli.SetReadDeadline(time.Now().Add(5 * time.Second))
	p, err := readFrame(br)
	if err != nil || p.h.Opcode != wsframe.OpPing || p.h.Masked {
		t.Fatalf("client got %+v, %v", p.h, err)
	}
	// wsgate's pong, split so that the relay must hold it whole, then
	// the client's own ping and pong (one that looks like wsgate's but
	// answers no ping wsgate sent) and a message.
	own := wsframe.AppendFrame(nil, wsframe.OpPong, p.payload, true, [4]byte{1, 2, 3, 4})
	rg.cli.Write(own[:9]) // the whole header and part of the payload
	fake := bytes.Clone(p.payload)
	binary.BigEndian.PutUint32(fake[4:], 1<<31)
	theirs := [][]byte{
		wsframe.AppendFrame(nil, wsframe.OpPing, []byte("mine"), true, [4]byte{5, 6, 7, 8}),
		wsframe.AppendFrame(nil, wsframe.OpPong, fake, true, [4]byte{5, 6, 7, 8}),
		text("after", true),
	}
	// Let the first piece arrive on its own (best effort: either way
	// the relay must drop the whole pong).
	stillOpen(t, rg, 20*time.Millisecond)
	rg.cli.Write(own[9:])
	rg.cli.Write(bytes.Join(theirs, nil))
	for {
		f := nextFrame(t, bePings)
		if string(f.payload) == "mine" {
			break
		}
		if string(f.payload[:4]) != "wsgb" {
			t.Fatalf("backend got ping %q, want the client's", f.payload)
		}
	}
	if f := nextFrame(t, beFrames); f.h.Opcode != wsframe.OpPong || !bytes.Equal(f.payload, fake) {
		t.Fatalf("backend got %+v %q, want the client's pong", f.h, f.payload)
	}
	wantData(t, beFrames, "after")
	// The backend's own ping reaches the client untouched.
	bp := wsframe.AppendFrame(nil, wsframe.OpPing, []byte("be"), false, [4]byte{})
	rg.be.Write(bp)
	for {
		f, err := readFrame(br)
		if err != nil {
			t.Fatal(err)
		}
		if f.h.Opcode == wsframe.OpPing && string(f.payload) == "be" {
			break
		}
		if f.h.Opcode != wsframe.OpPing || string(f.payload[:3]) != "wsg" {
			t.Fatalf("client got %+v %q", f.h, f.payload)
		}
	}
	rg.tun.Shutdown(1000, "")
}

func TestTooBig(t *testing.T) {
	frag := func(op wsframe.Opcode, fin bool, n int, mask bool) []byte {
		h := wsframe.Header{Fin: fin, Opcode: op, Masked: mask, Key: [4]byte{1, 2, 3, 4}, Length: int64(n)}
		return append(wsframe.AppendHeader(nil, h), make([]byte, n)...)
	}
	tests := []struct {
		name   string
		cfg    Config
		sender Side
		ok     func(mask bool) []byte // forwarded
		bad    func(mask bool) []byte // refused
		nOK    int                    // frames in ok
	}{
		{"client frame", Config{MaxFrameSize: 100}, SideClient,
			func(m bool) []byte { return frag(wsframe.OpBinary, true, 100, m) },
			func(m bool) []byte { return frag(wsframe.OpBinary, true, 101, m) }, 1},
		{"backend frame", Config{MaxFrameSize: 1000}, SideBackend,
			func(m bool) []byte { return frag(wsframe.OpText, true, 10, m) },
			func(m bool) []byte { return frag(wsframe.OpBinary, true, 70000, m) }, 1},
		{"client fragmented message", Config{MaxMessageSize: 250}, SideClient,
			func(m bool) []byte {
				b := frag(wsframe.OpText, false, 100, m)
				b = append(b, wsframe.AppendFrame(nil, wsframe.OpPing, make([]byte, 120), m, [4]byte{})...)
				return append(b, frag(wsframe.OpContinuation, false, 100, m)...)
			},
			func(m bool) []byte { return frag(wsframe.OpContinuation, true, 51, m) }, 2}, // peer takes the ping
		{"message limit spans messages correctly", Config{MaxMessageSize: 100}, SideClient,
			func(m bool) []byte {
				b := frag(wsframe.OpText, false, 60, m)
				b = append(b, frag(wsframe.OpContinuation, true, 40, m)...)
				return append(b, frag(wsframe.OpBinary, true, 100, m)...)
			},
			func(m bool) []byte { return frag(wsframe.OpBinary, true, 101, m) }, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Frames = true
			rg := newRig(t, cfg, nil, nil)
			from, to := rg.cli, rg.be
			if tt.sender == SideBackend {
				from, to = rg.be, rg.cli
			}
			mask := tt.sender == SideClient
			toFrames, _ := peer(t, to, false, !mask)
			fromFrames, _ := peer(t, from, false, mask)
			from.Write(append(tt.ok(mask), tt.bad(mask)...))
			for range tt.nOK {
				nextFrame(t, toFrames)
			}
			// The receiver is told to go away; it never sees the
			// refused frame. The sender is told its message is too big.
			wantClose(t, toFrames, CodeGoingAway, mask)
			wantClose(t, fromFrames, CodeTooBig, !mask)
			res := rg.wait(t)
			if !errors.Is(res.Err, ErrTooBig) || res.ClosedBy != SideProxy || !strings.Contains(res.Err.Error(), tt.sender.String()) || res.CloseCode != CodeTooBig {
				t.Fatalf("result %+v", res)
			}
			if _, ok := <-toFrames; ok {
				t.Fatal("receiver got a frame after the close")
			}
		})
	}
}

// testClock is a settable clock for Config.Now.
type testClock struct{ ns atomic.Int64 }

func (c *testClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *testClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func TestMessageRate(t *testing.T) {
	type step struct {
		wait time.Duration // clock advance before the message
		frag bool          // send it as three fragments with a ping between
	}
	burst := func(n int) []step { return make([]step, n) }
	tests := []struct {
		name     string
		backend  bool // the backend sends
		limitBE  bool
		steps    []step
		refused  bool // the last step is refused
		passedOK int  // messages forwarded
	}{
		{"burst then flood", false, false, burst(4), true, 3},
		{"within rate", false, false, []step{{}, {}, {}, {100 * time.Millisecond, false}, {100 * time.Millisecond, true}, {100 * time.Millisecond, false}, {time.Second, false}, {}, {}}, false, 9},
		{"refill of one", false, false, []step{{}, {}, {}, {100 * time.Millisecond, false}, {}}, true, 4},
		{"fragments count once", false, false, []step{{0, true}, {0, true}, {0, true}, {0, true}}, true, 3},
		{"backend unlimited by default", true, false, burst(10), false, 10},
		{"backend limited", true, true, burst(4), true, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &testClock{}
			clk.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
			rateClock = clk.now
			t.Cleanup(func() { rateClock = time.Now })
			rg := newRig(t, Config{Frames: true, CloseGrace: 100 * time.Millisecond, MessageRate: 10, MessageBurst: 3, RateLimitBackend: tt.limitBE}, nil, nil)
			from, to, mask := rg.cli, rg.be, true
			if tt.backend {
				from, to, mask = rg.be, rg.cli, false
			}
			toFrames, _ := peer(t, to, false, !mask)
			fromFrames, _ := peer(t, from, false, mask)
			for i, s := range tt.steps {
				clk.advance(s.wait)
				if s.frag {
					h := wsframe.Header{Opcode: wsframe.OpText, Masked: mask, Length: 1}
					b := append(wsframe.AppendHeader(nil, h), 'a')
					b = append(b, wsframe.AppendFrame(nil, wsframe.OpPing, nil, mask, [4]byte{})...)
					h.Opcode = wsframe.OpContinuation
					b = append(b, append(wsframe.AppendHeader(nil, h), 'b')...)
					h.Fin = true
					b = append(b, append(wsframe.AppendHeader(nil, h), 'c')...)
					from.Write(b)
				} else {
					from.Write(text("m", mask))
				}
				if tt.refused && i == len(tt.steps)-1 {
					break
				}
				// Wait for it to pass before the clock moves again.
				n := 1
				if s.frag {
					n = 3 // peer takes the ping
				}
				for range n {
					nextFrame(t, toFrames)
				}
			}
			c, b := rg.tun.Messages()
			if got := max(c, b); got != int64(tt.passedOK) && !tt.refused {
				t.Fatalf("messages relayed %d, want %d", got, tt.passedOK)
			}
			if !tt.refused {
				stillOpen(t, rg, 10*time.Millisecond)
				rg.tun.Shutdown(1000, "")
				return
			}
			wantClose(t, toFrames, CodeGoingAway, mask)
			wantClose(t, fromFrames, CodePolicyViolation, !mask)
			res := rg.wait(t)
			sender := SideClient
			if tt.backend {
				sender = SideBackend
			}
			if !errors.Is(res.Err, ErrRateLimited) || res.ClosedBy != SideProxy || !strings.Contains(res.Err.Error(), sender.String()) || res.CloseCode != CodePolicyViolation {
				t.Fatalf("result %+v", res)
			}
			if got := max(res.MessagesFromClient, res.MessagesFromBackend); got != int64(tt.passedOK) {
				t.Fatalf("messages relayed %d, want %d", got, tt.passedOK)
			}
		})
	}
}

func TestMessageCounters(t *testing.T) {
	rg := newRig(t, Config{Frames: true}, nil, nil)
	k := [4]byte{4, 3, 2, 1}
	var up []byte
	up = append(up, text("one", true)...)                                                                            // 1
	up = append(up, wsframe.AppendHeader(nil, wsframe.Header{Opcode: wsframe.OpBinary, Masked: true, Length: 2})...) // fragment
	up = append(up, 0, 0)
	up = append(up, wsframe.AppendFrame(nil, wsframe.OpPing, []byte("p"), true, k)...)
	up = append(up, wsframe.AppendHeader(nil, wsframe.Header{Opcode: wsframe.OpContinuation, Masked: true})...) // empty fragment
	up = append(up, wsframe.AppendHeader(nil, wsframe.Header{Fin: true, Opcode: wsframe.OpContinuation, Masked: true, Length: 70000})...)
	up = append(up, make([]byte, 70000)...)                                    // 2
	up = append(up, wsframe.AppendFrame(nil, wsframe.OpText, nil, true, k)...) // 3, empty
	up = append(up, wsframe.AppendFrame(nil, wsframe.OpPong, []byte("q"), true, k)...)
	down := append(text("a", false), text("b", false)...)
	rg.cli.Write(up)
	rg.be.Write(down)
	mustEqual(t, "up", readN(t, rg.be, len(up)), up)
	mustEqual(t, "down", readN(t, rg.cli, len(down)), down)
	if c, b := rg.tun.Messages(); c != 3 || b != 2 {
		t.Fatalf("Messages() = %d, %d; want 3, 2", c, b)
	}
	rg.cli.Write(closeFrame(1000, true))
	readN(t, rg.be, 8)
	rg.be.Write(closeFrame(1000, false))
	res := rg.wait(t)
	if res.MessagesFromClient != 3 || res.MessagesFromBackend != 2 || res.CloseCode != 1000 || res.Err != nil {
		t.Fatalf("result %+v", res)
	}
}

func TestPingWaitsForFrameBoundary(t *testing.T) {
	const interval = 40 * time.Millisecond
	rg := newRig(t, Config{Frames: true, PingInterval: interval, CloseGrace: 100 * time.Millisecond}, nil, nil)
	f := wsframe.AppendFrame(nil, wsframe.OpBinary, bytes.Repeat([]byte("0123456789"), 1000), false, [4]byte{})
	half := len(f) / 2
	rg.be.Write(f[:half])
	mustEqual(t, "first half", readN(t, rg.cli, half), f[:half])
	// The client has been silent for several intervals while its
	// direction sat inside a frame: its ping must wait for the boundary.
	stillOpen(t, rg, 3*interval)
	rg.be.Write(f[half:])
	mustEqual(t, "second half", readN(t, rg.cli, len(f)-half), f[half:])
	rg.cli.SetReadDeadline(time.Now().Add(5 * time.Second))
	p, err := readFrame(bufio.NewReader(rg.cli))
	if err != nil || p.h.Opcode != wsframe.OpPing || string(p.payload[:4]) != "wsgc" {
		t.Fatalf("client got %+v %q, %v; want wsgate's ping", p.h, p.payload, err)
	}
	rg.tun.Shutdown(1000, "")
}

func TestPingStuckWrite(t *testing.T) {
	// A client that reads nothing: the backend's frames fill the socket
	// buffers, so wsgate cannot even write its ping. It is as dead as
	// one that does not answer, without waiting for a send timeout.
	const interval = 50 * time.Millisecond
	rg := newRig(t, Config{Frames: true, PingInterval: interval, PingTimeout: interval, CloseGrace: 100 * time.Millisecond}, nil, nil)
	peer(t, rg.be, true, false)
	msg := wsframe.AppendFrame(nil, wsframe.OpBinary, make([]byte, 64<<10), false, [4]byte{})
	go func() {
		// Fill until the tunnel stops reading; it ends with the tunnel.
		for range 1000 {
			if _, err := rg.be.Write(msg); err != nil {
				return
			}
		}
	}()
	res := rg.wait(t)
	if !errors.Is(res.Err, ErrPingTimeout) || res.DeadSide != SideClient || res.ClosedBy != SideProxy {
		t.Fatalf("result %+v", res)
	}
}
