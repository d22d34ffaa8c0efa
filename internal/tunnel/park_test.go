package tunnel

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/sockio"
	"github.com/wsgate/wsgate/internal/wsframe"
)

// waitParked waits until both directions of every tunnel are parked.
func waitParked(t *testing.T, tuns ...*Tunnel) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for _, tun := range tuns {
		for !tun.dirs[c2b].parked.Load() || !tun.dirs[b2c].parked.Load() {
			if time.Now().After(deadline) {
				t.Fatal("tunnel directions did not park")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// TestParkedHoldNoGoroutine: idle tunnels give their relay goroutines back,
// and a parked tunnel still relays both ways, byte for byte.
func TestParkedHoldNoGoroutine(t *testing.T) {
	const n = 20
	base := runtime.NumGoroutine()
	rigs := make([]*rig, n)
	tuns := make([]*Tunnel, n)
	for i := range rigs {
		rigs[i] = newRig(t, Config{Frames: true, IdleTimeout: time.Minute}, nil, nil)
		tuns[i] = rigs[i].tun
	}
	waitParked(t, tuns...)
	// The sweeper and a dispatcher per P: the goroutines of all tunnels. A
	// direction marks itself parked just before its goroutine returns.
	deadline := time.Now().Add(10 * time.Second)
	for g := runtime.NumGoroutine(); g > base+1+shardCount(); g = runtime.NumGoroutine() {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines with %d parked tunnels, %d before", g, n, base)
		}
		time.Sleep(5 * time.Millisecond)
	}
	key := [4]byte{1, 2, 3, 4}
	for round := range 3 {
		for i, rg := range rigs {
			msg := []byte{byte(round), byte(i), 'x', 'y'}
			up := wsframe.AppendFrame(nil, wsframe.OpBinary, msg, true, key)
			rg.cli.Write(up)
			mustEqual(t, "to backend", readN(t, rg.be, len(up)), up)
			down := wsframe.AppendFrame(nil, wsframe.OpText, msg, false, key)
			rg.be.Write(down)
			mustEqual(t, "to client", readN(t, rg.cli, len(down)), down)
		}
		waitParked(t, tuns...) // and again, after waking
	}
	for _, tun := range tuns {
		if c, b := tun.Messages(); c != 3 || b != 3 {
			t.Fatalf("messages %d/%d, want 3/3", c, b)
		}
	}
}

// TestParkedShutdown: a deliberate close reaches a parked tunnel's peers,
// and their answers are read within the grace.
func TestParkedShutdown(t *testing.T) {
	rg := newRig(t, Config{Frames: true}, nil, nil)
	waitParked(t, rg.tun)
	shut := make(chan struct{})
	go func() {
		rg.tun.Shutdown(1001, "bye")
		close(shut)
	}()
	expectClose(t, rg.cli, 1001, false)
	expectClose(t, rg.be, 1001, true)
	rg.cli.Write(closeFrame(1001, true))
	rg.be.Write(closeFrame(1001, false))
	select {
	case <-shut:
	case <-time.After(1500 * time.Millisecond):
		t.Fatal("Shutdown did not return after both peers answered")
	}
	if res := rg.wait(t); res.ClosedBy != SideProxy || res.CloseCode != 1001 || res.Err != nil {
		t.Fatalf("result %+v", res)
	}
}

// TestParkedPeerEnds: a peer that closes while the tunnel is parked wakes
// it, and the tunnel ends as it would awake.
func TestParkedPeerEnds(t *testing.T) {
	for _, side := range []Side{SideClient, SideBackend} {
		rg := newRig(t, Config{Frames: true}, nil, nil)
		waitParked(t, rg.tun)
		gone, other := rg.cli, rg.be
		if side == SideBackend {
			gone, other = rg.be, rg.cli
		}
		gone.Close()
		expectEnd(t, other) // no close frame: the end is mirrored
		other.Close()
		if res := rg.wait(t); res.ClosedBy != side || res.CloseCode != 0 {
			t.Fatalf("%v closed: result %+v", side, res)
		}
	}
}

// TestParkedIdleTimeout: the idle timer still ends a parked tunnel.
func TestParkedIdleTimeout(t *testing.T) {
	idleModes(t, func(t *testing.T, cfg Config) *rig {
		rg := newRig(t, cfg, nil, nil)
		waitParked(t, rg.tun)
		expectClose(t, rg.cli, CodeGoingAway, false)
		expectClose(t, rg.be, CodeGoingAway, true)
		if res := rg.wait(t); res.Err != ErrIdleTimeout {
			t.Fatalf("result %+v", res)
		}
		return rg
	}, Config{Frames: true, IdleTimeout: 300 * time.Millisecond})
}

// TestParkedPings: a parked leg is still pinged, and its pong (consumed,
// not relayed) wakes and re-parks the direction without ending the tunnel.
func TestParkedPings(t *testing.T) {
	cfg := Config{Frames: true, PingInterval: 150 * time.Millisecond, PingTimeout: time.Second, CloseGrace: 100 * time.Millisecond}
	rg := newRig(t, cfg, nil, nil)
	waitParked(t, rg.tun)
	br := bufio.NewReader(rg.cli)
	rg.cli.SetReadDeadline(time.Now().Add(5 * time.Second))
	f, err := readFrame(br)
	if err != nil || f.h.Opcode != wsframe.OpPing {
		t.Fatalf("client got %+v, %v; want a ping", f.h, err)
	}
	rg.cli.Write(wsframe.AppendFrame(nil, wsframe.OpPong, f.payload, true, [4]byte{5, 6, 7, 8}))
	waitParked(t, rg.tun)
	if rg.tun.closing.Load() {
		t.Fatal("tunnel closing after an answered ping")
	}
	rg.tun.Shutdown(1000, "")
}

// TestParkedTLS: TLS legs park on the socket beneath them, and wake with
// the TLS stream intact, whole records or records split across the wait.
func TestParkedTLS(t *testing.T) {
	rg, cli, be := tlsRig(t, Config{Frames: true})
	waitParked(t, rg.tun)
	rnd := mrand.New(mrand.NewPCG(7, 8))
	for round := range 3 {
		up := genFrames(rnd, 5, 64<<10, true)
		down := genFrames(rnd, 5, 64<<10, false)
		go writeChunks(mrand.New(mrand.NewPCG(uint64(round), 1)), cli, up)
		go writeChunks(mrand.New(mrand.NewPCG(uint64(round), 2)), be, down)
		mustEqual(t, "up", readN(t, be, len(up)), up)
		mustEqual(t, "down", readN(t, cli, len(down)), down)
		waitParked(t, rg.tun)
	}
	cli.Write(closeFrame(1000, true))
	expectClose(t, be, 1000, true)
	be.Write(closeFrame(1000, false))
	expectClose(t, cli, 1000, false)
	if res := rg.wait(t); res.CloseCode != 1000 || res.Err != nil {
		t.Fatalf("result %+v", res)
	}
}

// TestSplicePipeReleased: a large frame goes by splice, byte for byte, and
// the pipe it took is closed once the tunnel parks: an idle tunnel holds
// its two sockets and nothing else, not even a relayState.
func TestSplicePipeReleased(t *testing.T) {
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	rg := newRig(t, Config{Frames: true}, nil, nil)
	waitParked(t, rg.tun)
	base, rounds := fds(), spliced.Load()
	payload := bytes.Repeat([]byte("0123456789abcdef"), 16<<10) // 256 KiB
	up := wsframe.AppendFrame(nil, wsframe.OpBinary, payload, true, [4]byte{1, 2, 3, 4})
	down := wsframe.AppendFrame(nil, wsframe.OpBinary, payload, false, [4]byte{})
	go rg.cli.Write(up)
	go rg.be.Write(down)
	mustEqual(t, "up", readN(t, rg.be, len(up)), up)
	mustEqual(t, "down", readN(t, rg.cli, len(down)), down)
	if spliced.Load() == rounds {
		t.Fatal("no payload went by splice")
	}
	waitParked(t, rg.tun)
	for i := range rg.tun.dirs {
		// Claimed as Detach claims a parked direction, so that the
		// dispatcher's later use of it is ordered after this look;
		// nothing arrives meanwhile.
		d := &rg.tun.dirs[i]
		if !d.parked.CompareAndSwap(true, false) {
			t.Fatalf("direction %d is not parked", i)
		}
		held := d.rs != nil
		d.parked.Store(true)
		if held {
			t.Fatalf("direction %d still holds its relayState (and pipe) while parked", i)
		}
	}
	if n := fds(); n != base {
		t.Fatalf("%d descriptors open with the tunnel parked again, %d before", n, base)
	}
	if c, b := rg.tun.Messages(); c != 1 || b != 1 {
		t.Fatalf("messages %d/%d, want 1/1", c, b)
	}
}

// TestStartParked: a tunnel over sockets starts with both directions
// parked, so that one whose peers never speak never holds a goroutine;
// the first bytes wake it. A direction with pending bytes starts running
// and delivers them first.
func TestStartParked(t *testing.T) {
	startsParked(t, newRig(t, Config{Frames: true, IdleTimeout: time.Minute}, nil, nil))
	key := [4]byte{1, 2, 3, 4}
	first := wsframe.AppendFrame(nil, wsframe.OpText, []byte("first"), true, key)
	pr := newRig(t, Config{Frames: true}, first, nil)
	mustEqual(t, "pending to backend", readN(t, pr.be, len(first)), first)
}

// startsParked checks that rg's tunnel starts with both directions parked
// and that its first bytes each way wake it and arrive.
func startsParked(t *testing.T, rg *rig) {
	t.Helper()
	if !rg.tun.dirs[c2b].parked.Load() || !rg.tun.dirs[b2c].parked.Load() {
		t.Fatal("a new tunnel's directions are not parked")
	}
	key := [4]byte{1, 2, 3, 4}
	up := wsframe.AppendFrame(nil, wsframe.OpBinary, []byte("up"), true, key)
	rg.cli.Write(up)
	mustEqual(t, "to backend", readN(t, rg.be, len(up)), up)
	down := wsframe.AppendFrame(nil, wsframe.OpText, []byte("down"), false, key)
	rg.be.Write(down)
	mustEqual(t, "to client", readN(t, rg.cli, len(down)), down)
}

// TestStartParkedTLSHolding: a TLS leg may hold bytes it read before the
// tunnel starts (the rest of a record its handshake's reader took a part
// of), which no readiness of its socket announces: they reach the other
// leg at once, and a TLS leg holding nothing starts parked.
func TestStartParkedTLSHolding(t *testing.T) {
	srvCfg, cliCfg := selfSigned(t)
	a, b := tcpPair(t)
	beLeg, be := tcpPair(t)
	cli, cliLeg := tls.Client(a, cliCfg), tls.Server(b, srvCfg)
	done := make(chan error, 1)
	go func() { done <- cli.Handshake() }()
	if err := cliLeg.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	key := [4]byte{9, 8, 7, 6}
	first := wsframe.AppendFrame(nil, wsframe.OpText, []byte("held in the record"), true, key)
	// One record: the leg's reader takes its first byte, the rest stays
	// inside the TLS connection.
	if _, err := cli.Write(append([]byte{'!'}, first...)); err != nil {
		t.Fatal(err)
	}
	var one [1]byte
	if _, err := io.ReadFull(cliLeg, one[:]); err != nil {
		t.Fatal(err)
	}
	rg := startRig(t, cli, cliLeg, beLeg, be, Config{Frames: true}, nil, nil)
	be.SetReadDeadline(time.Now().Add(5 * time.Second))
	mustEqual(t, "held bytes to backend", readN(t, be, len(first)), first)
	if !rg.tun.dirs[b2c].parked.Load() {
		t.Error("the backend's leg, silent, did not start parked")
	}

	quiet, _, _ := tlsRig(t, Config{Frames: true})
	if !quiet.tun.dirs[c2b].parked.Load() || !quiet.tun.dirs[b2c].parked.Load() {
		t.Error("a TLS tunnel holding nothing did not start parked")
	}
}

// TestStartParkedWhileClosing: the client's connection fails while the
// starting tunnel is parking its backend direction, and the tunnel's close
// unparks that direction (starting its goroutine) before it is armed: the
// start must not run a second goroutine for it, which ended the tunnel
// twice and panicked the process on its WaitGroup.
func TestStartParkedWhileClosing(t *testing.T) {
	cli, cliLeg := tcpPair(t)
	beLeg, be := tcpPair(t)
	testHookStartParking = func(tn *Tunnel, i int) {
		if i != b2c {
			return
		}
		cli.SetLinger(0)
		cli.Close() // a reset, which ends the tunnel at once
		for end := time.Now().Add(5 * time.Second); tn.dirs[b2c].parked.Load(); time.Sleep(time.Millisecond) {
			if time.Now().After(end) {
				t.Error("the client's reset did not unpark the backend direction")
				return
			}
		}
	}
	defer func() { testHookStartParking = func(*Tunnel, int) {} }()
	rg := startRig(t, cli, cliLeg, beLeg, be, Config{Frames: true, IdleTimeout: time.Minute}, nil, nil)
	rg.wait(t)
	rg.tun.wg.Wait()
}

// TestStartParkedSocket: a backend leg that sockio.Dial made is a socket
// like the net package's: the tunnel starts parked on it, relays both ways
// and passes the client's end of stream on as a half-close.
func TestStartParkedSocket(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	beLeg, err := sockio.Dial(netip.MustParseAddrPort(ln.Addr().String()), time.Time{}, sockio.DialOptions{NoDelay: true})
	if err != nil {
		t.Fatal(err)
	}
	be := <-accepted
	if be == nil {
		t.Fatal("no connection accepted")
	}
	cli, cliLeg := tcpPair(t)
	startsParked(t, startRig(t, cli, cliLeg, beLeg, be, Config{Frames: true, IdleTimeout: time.Minute}, nil, nil))
	cli.CloseWrite()
	be.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := be.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("backend read %d, %v after the client's end of stream; want the end of stream", n, err)
	}
}
