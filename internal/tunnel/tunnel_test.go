package tunnel

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/wsframe"
)

// genFrames returns a random, valid frame stream: fragmented messages with
// control frames between fragments, all opcodes, payloads up to maxPayload.
func genFrames(r *mrand.Rand, n int, maxPayload int, mask bool) []byte {
	var out []byte
	for range n {
		frags := 1 + r.IntN(3)
		op := wsframe.OpText
		if r.IntN(2) == 0 {
			op = wsframe.OpBinary
		}
		for f := range frags {
			size := r.IntN(200)
			switch r.IntN(10) {
			case 0:
				size = r.IntN(maxPayload + 1)
			case 1:
				size = 126 + r.IntN(70000)
			case 2:
				size = 0
			}
			size = min(size, maxPayload)
			p := make([]byte, size)
			for i := range p {
				p[i] = byte(r.Uint32())
			}
			fop := op
			if f > 0 {
				fop = wsframe.OpContinuation
			}
			h := wsframe.Header{Fin: f == frags-1, Opcode: fop, Masked: mask, Length: int64(size), Rsv: uint8(r.IntN(2) << 2)}
			if mask {
				k := r.Uint32()
				h.Key = [4]byte{byte(k), byte(k >> 8), byte(k >> 16), byte(k >> 24)}
			}
			out = wsframe.AppendHeader(out, h)
			out = append(out, p...) // payload bytes are opaque to the relay
			if r.IntN(4) == 0 {
				cop := wsframe.OpPing
				if r.IntN(2) == 0 {
					cop = wsframe.OpPong
				}
				out = wsframe.AppendFrame(out, cop, p[:min(len(p), 125)], mask, [4]byte{1, 2, 3, 4})
			}
		}
	}
	return out
}

// writeChunks writes b to c in random pieces.
func writeChunks(r *mrand.Rand, c net.Conn, b []byte) error {
	for len(b) > 0 {
		n := min(len(b), 1+r.IntN(40000))
		if _, err := c.Write(b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// generous turns on every WebSocket-aware feature at limits that a valid
// stream from genFrames never reaches.
var generous = Config{
	Frames:           true,
	IdleTimeout:      time.Hour,
	PingInterval:     time.Hour,
	PingTimeout:      time.Hour,
	MaxFrameSize:     2 << 20,
	MaxMessageSize:   8 << 20,
	MessageRate:      1e6,
	MessageBurst:     1000,
	RateLimitBackend: true,
}

func TestRelayProperty(t *testing.T) {
	for _, mode := range []string{"frames", "pipe", "limits"} {
		frames := mode != "pipe"
		for seed := uint64(1); seed <= 6; seed++ {
			name := mode
			cfg := Config{Frames: frames}
			if mode == "limits" {
				cfg = generous
			}
			t.Run(name, func(t *testing.T) {
				rnd := mrand.New(mrand.NewPCG(seed, 99))
				maxP := 4 << 10
				if seed%3 == 0 {
					maxP = 1 << 20
				}
				up := genFrames(rnd, 10+rnd.IntN(30), maxP, true)
				down := genFrames(rnd, 10+rnd.IntN(30), maxP, false)
				if mode == "limits" {
					// Pongs shaped like answers to wsgate's pings,
					// which wsgate never sent: relayed untouched.
					up = append(decoyPongs(true), up...)
					down = append(down, decoyPongs(false)...)
				}
				up = append(up, closeFrame(1000, true)...)
				down = append(down, closeFrame(1000, false)...)
				rg := newRig(t, cfg, nil, nil)
				var wg sync.WaitGroup
				wg.Add(2)
				var gotUp, gotDown []byte
				go func() {
					defer wg.Done()
					gotUp, _ = io.ReadAll(rg.be)
				}()
				go func() {
					defer wg.Done()
					gotDown, _ = io.ReadAll(rg.cli)
				}()
				w1 := mrand.New(mrand.NewPCG(seed, 1))
				w2 := mrand.New(mrand.NewPCG(seed, 2))
				errc := make(chan error, 2)
				go func() { errc <- writeChunks(w1, rg.cli, up) }()
				go func() { errc <- writeChunks(w2, rg.be, down) }()
				for range 2 {
					if err := <-errc; err != nil {
						t.Fatal(err)
					}
				}
				if !frames {
					// A byte pipe ends with half-closes.
					rg.cli.(*net.TCPConn).CloseWrite()
					rg.be.(*net.TCPConn).CloseWrite()
				}
				wg.Wait()
				mustEqual(t, "client to backend", gotUp, up)
				mustEqual(t, "backend to client", gotDown, down)
				res := rg.wait(t)
				if res.FromClient != int64(len(up)) || res.FromBackend != int64(len(down)) {
					t.Fatalf("counts %d/%d, want %d/%d", res.FromClient, res.FromBackend, len(up), len(down))
				}
				if frames && res.CloseCode != 1000 {
					t.Fatalf("close code %d", res.CloseCode)
				}
				if frames && (res.MessagesFromClient != countMessages(up) || res.MessagesFromBackend != countMessages(down)) {
					t.Fatalf("messages %d/%d, want %d/%d", res.MessagesFromClient, res.MessagesFromBackend, countMessages(up), countMessages(down))
				}
				if res.Err != nil {
					t.Fatalf("err %v", res.Err)
				}
			})
		}
	}
}

func TestPendingFirst(t *testing.T) {
	cp := wsframe.AppendFrame(nil, wsframe.OpText, []byte("early client"), true, [4]byte{1, 2, 3, 4})
	bp := wsframe.AppendFrame(nil, wsframe.OpText, []byte("early backend"), false, [4]byte{})
	wantUp := append(bytes.Clone(cp), wsframe.AppendFrame(nil, wsframe.OpBinary, []byte("later"), true, [4]byte{5, 6, 7, 8})...)
	wantDown := append(bytes.Clone(bp), wsframe.AppendFrame(nil, wsframe.OpBinary, []byte("later"), false, [4]byte{})...)
	for _, frames := range []bool{true, false} {
		rg := newRig(t, Config{Frames: frames, CloseGrace: 100 * time.Millisecond}, cp[:len(cp):len(cp)], bp)
		// Start copied the pending bytes: scribbling on them changes nothing.
		cpCopy, bpCopy := bytes.Clone(cp), bytes.Clone(bp)
		for i := range cp {
			cp[i] = 0
		}
		for i := range bp {
			bp[i] = 0
		}
		rg.cli.Write(wantUp[len(cp):])
		rg.be.Write(wantDown[len(bp):])
		mustEqual(t, "backend got", readN(t, rg.be, len(wantUp)), wantUp)
		mustEqual(t, "client got", readN(t, rg.cli, len(wantDown)), wantDown)
		copy(cp, cpCopy)
		copy(bp, bpCopy)
		if c, b := rg.tun.Stats(); c != int64(len(wantUp)) || b != int64(len(wantDown)) {
			t.Fatalf("stats %d/%d", c, b)
		}
		rg.tun.Shutdown(1001, "")
	}
}

func TestLarge(t *testing.T) {
	const size = 10 << 20
	for _, frames := range []bool{true, false} {
		rg := newRig(t, Config{Frames: frames, CloseGrace: 100 * time.Millisecond}, nil, nil)
		rnd := mrand.New(mrand.NewPCG(3, 4))
		payload := make([]byte, size)
		for i := range payload {
			payload[i] = byte(rnd.Uint32())
		}
		up := wsframe.AppendHeader(nil, wsframe.Header{Fin: true, Opcode: wsframe.OpBinary, Masked: true, Length: size})
		up = append(up, payload...)
		down := wsframe.AppendHeader(nil, wsframe.Header{Fin: true, Opcode: wsframe.OpBinary, Length: size})
		down = append(down, payload...)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); rg.cli.Write(up) }()
		go func() { defer wg.Done(); rg.be.Write(down) }()
		mustEqual(t, "up", readN(t, rg.be, len(up)), up)
		mustEqual(t, "down", readN(t, rg.cli, len(down)), down)
		wg.Wait()
		rg.tun.Shutdown(1001, "")
	}
}

// idleModes runs f with IdleTimeout kept by a timer, then by the parking
// sweep (which, in these tests, runs every 20 ms).
func idleModes(t *testing.T, f func(t *testing.T, cfg Config) *rig, cfg Config) {
	for _, swept := range []bool{false, true} {
		name := "timer"
		if swept {
			name = "sweep"
		}
		t.Run(name, func(t *testing.T) {
			if swept {
				old := sweptIdleMin
				sweptIdleMin = time.Nanosecond
				defer func() { sweptIdleMin = old }()
			}
			rg := f(t, cfg)
			if rg.tun.swept != swept || (rg.tun.tick == nil) != swept {
				t.Fatalf("swept %v, timer %v; want the %s", rg.tun.swept, rg.tun.tick != nil, name)
			}
		})
	}
}

func TestIdleTimeout(t *testing.T) {
	idleModes(t, testIdleTimeout, Config{Frames: true, IdleTimeout: 100 * time.Millisecond})
}

func testIdleTimeout(t *testing.T, cfg Config) *rig {
	start := time.Now()
	rg := newRig(t, cfg, nil, nil)
	expectClose(t, rg.cli, CodeGoingAway, false)
	expectClose(t, rg.be, CodeGoingAway, true)
	res := rg.wait(t)
	if !errors.Is(res.Err, ErrIdleTimeout) || res.ClosedBy != SideProxy || res.CloseCode != CodeGoingAway {
		t.Fatalf("result %+v", res)
	}
	if d := time.Since(start); d < cfg.IdleTimeout {
		t.Fatalf("closed after %v, before the %v timeout", d, cfg.IdleTimeout)
	}
	expectEnd(t, rg.cli)
	expectEnd(t, rg.be)
	return rg
}

func TestIdleTimeoutRearmed(t *testing.T) {
	idleModes(t, testIdleTimeoutRearmed, Config{Frames: true, IdleTimeout: 150 * time.Millisecond})
}

func testIdleTimeoutRearmed(t *testing.T, cfg Config) *rig {
	idle := cfg.IdleTimeout
	rg := newRig(t, cfg, nil, nil)
	ping := wsframe.AppendFrame(nil, wsframe.OpPing, []byte("x"), true, [4]byte{1, 2, 3, 4})
	pong := wsframe.AppendFrame(nil, wsframe.OpPong, []byte("x"), false, [4]byte{})
	start := time.Now()
	// Alternate directions so that each side alone is quiet for longer
	// than the timeout; only activity in either direction keeps it open.
	tick := time.NewTicker(idle / 3)
	defer tick.Stop()
	for i := 0; time.Since(start) < 4*idle; i++ {
		<-tick.C
		select {
		case res := <-rg.done:
			t.Fatalf("closed while active after %v: %+v", time.Since(start), res)
		default:
		}
		if i%2 == 0 {
			rg.cli.Write(ping)
			readN(t, rg.be, len(ping))
		} else {
			rg.be.Write(pong)
			readN(t, rg.cli, len(pong))
		}
	}
	expectClose(t, rg.cli, CodeGoingAway, false)
	if res := rg.wait(t); !errors.Is(res.Err, ErrIdleTimeout) {
		t.Fatalf("result %+v", res)
	}
	return rg
}

func TestShutdownMidFrame(t *testing.T) {
	rg := newRig(t, Config{Frames: true}, nil, nil)
	payload := bytes.Repeat([]byte("abcdefgh"), 1000)
	f := wsframe.AppendFrame(nil, wsframe.OpBinary, payload, true, [4]byte{9, 8, 7, 6})
	half := len(f) / 2
	rg.cli.Write(f[:half])
	readN(t, rg.be, half) // the first half has been relayed
	shut := make(chan struct{})
	go func() {
		rg.tun.Shutdown(1012, "restart")
		close(shut)
	}()
	// The client side is idle: its close comes at once.
	br := bufio.NewReader(rg.cli)
	rg.cli.SetReadDeadline(time.Now().Add(5 * time.Second))
	cf, err := readFrame(br)
	if err != nil || cf.h.Opcode != wsframe.OpClose || cf.h.Masked || string(cf.payload[2:]) != "restart" || cf.payload[0] != 0x03 || cf.payload[1] != 0xF4 {
		t.Fatalf("client got %+v %q, %v", cf.h, cf.payload, err)
	}
	// The backend is mid-frame: the rest of the frame must come first.
	rg.cli.Write(f[half:])
	mustEqual(t, "rest of frame", readN(t, rg.be, len(f)-half), f[half:])
	expectClose(t, rg.be, 1012, true)
	// Both peers answer; the tunnel then ends before the grace runs out.
	rg.cli.Write(closeFrame(1012, true))
	rg.be.Write(closeFrame(1012, false))
	select {
	case <-shut:
	case <-time.After(1500 * time.Millisecond):
		t.Fatal("Shutdown did not return after both peers answered")
	}
	res := rg.wait(t)
	if res.ClosedBy != SideProxy || res.CloseCode != 1012 || res.Err != nil {
		t.Fatalf("result %+v", res)
	}
	expectEnd(t, rg.cli)
}

func TestShutdownSilentPeers(t *testing.T) {
	rg := newRig(t, Config{Frames: true, CloseGrace: 200 * time.Millisecond}, nil, nil)
	var wg sync.WaitGroup
	for range 3 { // concurrent and repeated calls
		wg.Add(1)
		go func() { defer wg.Done(); rg.tun.Shutdown(1001, "") }()
	}
	wg.Wait()
	expectClose(t, rg.cli, 1001, false)
	expectClose(t, rg.be, 1001, true)
	expectEnd(t, rg.cli)
	rg.tun.Shutdown(1000, "") // after the end: returns at once
	if res := rg.wait(t); res.ClosedBy != SideProxy || res.CloseCode != 1001 {
		t.Fatalf("result %+v", res)
	}
}

func TestShutdownPipe(t *testing.T) {
	rg := newRig(t, Config{}, nil, nil)
	rg.tun.Shutdown(1001, "")
	expectEnd(t, rg.cli)
	expectEnd(t, rg.be)
	if res := rg.wait(t); res.ClosedBy != SideProxy || res.CloseCode != 0 {
		t.Fatalf("result %+v", res)
	}
}

func TestBackendReset(t *testing.T) {
	for _, frames := range []bool{true, false} {
		rg := newRig(t, Config{Frames: frames}, nil, nil)
		msg := wsframe.AppendFrame(nil, wsframe.OpText, []byte("hi"), false, [4]byte{})
		rg.be.Write(msg)
		readN(t, rg.cli, len(msg))
		rg.be.(*net.TCPConn).SetLinger(0)
		rg.be.Close()
		// The client sees the end or a reset, as the backend's own
		// client would; no close frame of wsgate's, never a hang.
		rg.cli.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(rg.cli)
		if errors.Is(err, net.ErrClosed) || isTimeout(err) {
			t.Fatalf("client read: %v", err)
		}
		if len(got) != 0 {
			t.Fatalf("client got %x", got)
		}
		res := rg.wait(t)
		if res.ClosedBy != SideBackend {
			t.Fatalf("result %+v", res)
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestHalfClosePipe(t *testing.T) {
	rg := newRig(t, Config{}, nil, nil)
	rg.cli.Write([]byte("request"))
	rg.cli.(*net.TCPConn).CloseWrite()
	rg.be.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(rg.be)
	if err != nil || string(got) != "request" {
		t.Fatalf("backend got %q, %v", got, err)
	}
	// The other direction still runs.
	rg.be.Write([]byte("response"))
	mustEqual(t, "response", readN(t, rg.cli, 8), []byte("response"))
	rg.be.(*net.TCPConn).CloseWrite()
	expectEnd(t, rg.cli)
	if res := rg.wait(t); res.ClosedBy != SideClient || res.Err != nil {
		t.Fatalf("result %+v", res)
	}
}

func TestHalfCloseAfterCloseFrame(t *testing.T) {
	rg := newRig(t, Config{Frames: true}, nil, nil)
	cf := closeFrame(1000, true)
	rg.cli.Write(cf)
	rg.cli.(*net.TCPConn).CloseWrite()
	rg.be.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(rg.be)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "backend got", got, cf)
	// The backend may still send before its own close.
	msg := wsframe.AppendFrame(nil, wsframe.OpText, []byte("last words"), false, [4]byte{})
	reply := append(bytes.Clone(msg), closeFrame(1000, false)...)
	rg.be.Write(reply)
	mustEqual(t, "client got", readN(t, rg.cli, len(reply)), reply)
	expectEnd(t, rg.cli)
	if res := rg.wait(t); res.ClosedBy != SideClient || res.CloseCode != 1000 || res.Err != nil {
		t.Fatalf("result %+v", res)
	}
}

func TestEOFWithoutClose(t *testing.T) {
	rg := newRig(t, Config{Frames: true}, nil, nil)
	rg.cli.(*net.TCPConn).CloseWrite()
	expectEnd(t, rg.be) // mirrored: no close frame of wsgate's
	rg.be.Close()
	if res := rg.wait(t); res.ClosedBy != SideClient || res.CloseCode != 0 || res.Reason != ReasonPeer {
		t.Fatalf("result %+v", res)
	}
}

func TestProtocolViolation(t *testing.T) {
	tests := []struct {
		name string
		bad  []byte
	}{
		{"long ping", []byte{0x89, 0xFE, 0, 200}},
		{"64-bit length overflow", []byte{0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0}},
		{"fragmented close", []byte{0x08, 0x80}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rg := newRig(t, Config{Frames: true}, nil, nil)
			good := wsframe.AppendFrame(nil, wsframe.OpText, []byte("ok"), true, [4]byte{1, 1, 1, 1})
			rg.cli.Write(append(bytes.Clone(good), tt.bad...))
			mustEqual(t, "frames before the violation", readN(t, rg.be, len(good)), good)
			expectClose(t, rg.be, CodeGoingAway, true)
			expectClose(t, rg.cli, CodeProtocolError, false)
			// The offender is read (and dropped) until it ends.
			rg.be.Write(closeFrame(CodeGoingAway, false))
			rg.cli.Write(closeFrame(CodeProtocolError, true))
			rg.cli.Close()
			res := rg.wait(t)
			if !errors.Is(res.Err, ErrProtocol) || res.ClosedBy != SideClient || res.CloseCode != CodeGoingAway || res.Reason != ReasonProtocol {
				t.Fatalf("result %+v", res)
			}
		})
	}
}

func TestPipeIgnoresFrames(t *testing.T) {
	rg := newRig(t, Config{}, nil, nil)
	junk := []byte{0x83, 0xFF, 1, 2, 3, 0x89, 0x7E, 'G', 'E', 'T'}
	rg.cli.Write(junk)
	mustEqual(t, "junk", readN(t, rg.be, len(junk)), junk)
}

func TestSendTimeout(t *testing.T) {
	rg := newRig(t, Config{Frames: true, SendTimeout: 200 * time.Millisecond}, nil, nil)
	// The backend never reads: the client's frames fill the buffers until
	// a write to the backend stays blocked past the send timeout.
	big := wsframe.AppendFrame(nil, wsframe.OpBinary, make([]byte, 1<<20), true, [4]byte{1, 2, 3, 4})
	go func() {
		for {
			if _, err := rg.cli.Write(big); err != nil {
				return
			}
		}
	}()
	res := rg.wait(t)
	if !errors.Is(res.Err, ErrSendTimeout) || res.ClosedBy != SideProxy {
		t.Fatalf("result %+v", res)
	}
	// The client was at a boundary on its side: it is told to go away.
	expectClose(t, rg.cli, CodeGoingAway, false)
}

// selfSigned returns a TLS config pair for loopback tests.
func selfSigned(t *testing.T) (*tls.Config, *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	srv := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	cli := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	return srv, cli
}

// tlsRig is newRig over TLS legs, which take the relay's generic path.
func tlsRig(t *testing.T, cfg Config) (r *rig, cli, be *tls.Conn) {
	t.Helper()
	srvCfg, cliCfg := selfSigned(t)
	a, b := tcpPair(t)
	c, d := tcpPair(t)
	cli, cliLeg := tls.Client(a, cliCfg), tls.Server(b, srvCfg)
	beLeg, be := tls.Client(c, cliCfg), tls.Server(d, srvCfg)
	var wg sync.WaitGroup
	for _, conn := range []*tls.Conn{cli, cliLeg, beLeg, be} {
		wg.Add(1)
		go func() { defer wg.Done(); conn.Handshake() }()
	}
	wg.Wait()
	return startRig(t, cli, cliLeg, beLeg, be, cfg, nil, nil), cli, be
}

func TestTLSLegs(t *testing.T) {
	for _, cfg := range []Config{{Frames: true}, generous} {
		testTLSLegs(t, cfg)
	}
}

func testTLSLegs(t *testing.T, cfg Config) {
	rg, cli, be := tlsRig(t, cfg)
	rnd := mrand.New(mrand.NewPCG(5, 6))
	up := append(genFrames(rnd, 20, 64<<10, true), closeFrame(1000, true)...)
	down := append(genFrames(rnd, 20, 64<<10, false), closeFrame(1000, false)...)
	go writeChunks(mrand.New(mrand.NewPCG(1, 1)), cli, up)
	go writeChunks(mrand.New(mrand.NewPCG(2, 2)), be, down)
	mustEqual(t, "up", readN(t, be, len(up)), up)
	mustEqual(t, "down", readN(t, cli, len(down)), down)
	res := rg.wait(t)
	if res.CloseCode != 1000 || res.Err != nil || res.FromClient != int64(len(up)) {
		t.Fatalf("result %+v", res)
	}
}

// countMessages counts the complete data messages in a valid frame stream.
func countMessages(b []byte) int64 {
	var n int64
	for len(b) > 0 {
		h, hn, err := wsframe.ParseHeader(b)
		if err != nil || hn == 0 {
			return n
		}
		if h.Fin && !h.Opcode.IsControl() {
			n++
		}
		b = b[int64(hn)+h.Length:]
	}
	return n
}

// decoyPongs returns pongs with wsgate's ping payload size and prefix but a
// counter no ping of the tunnel carried.
func decoyPongs(mask bool) []byte {
	var out []byte
	for i := range 20 {
		p := []byte{'w', 's', 'g', "cb"[i%2], 0, 0, 0, 0}
		if i%3 == 0 {
			p[4] = 0xFF
		}
		out = wsframe.AppendFrame(out, wsframe.OpPong, p, mask, [4]byte{byte(i), 2, 3, 4})
		out = wsframe.AppendFrame(out, wsframe.OpText, p[:i%8], mask, [4]byte{byte(i), 5, 6, 7})
	}
	return out
}
