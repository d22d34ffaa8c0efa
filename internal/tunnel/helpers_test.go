package tunnel

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wsgate/wsgate/internal/wsframe"
)

func TestMain(m *testing.M) {
	// Sweep often, so that every test also runs with directions parking
	// and waking, and parking winds down before goleak looks.
	parkAfter = 20 * time.Millisecond
	// Every payload remainder splices, so that the byte-exactness tests
	// cover the splice path as well as the buffer path.
	spliceMin = 1
	goleak.VerifyTestMain(m)
}

// tcpPair returns the two ends of one loopback TCP connection.
func tcpPair(tb testing.TB) (*net.TCPConn, *net.TCPConn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		a.Close()
		tb.Fatal(r.err)
	}
	return a.(*net.TCPConn), r.c.(*net.TCPConn)
}

// rig is a tunnel between a test client and a test backend.
type rig struct {
	cli, be net.Conn // the test's ends
	tun     *Tunnel
	done    chan Result
	res     *Result
	calls   atomic.Int32
}

func newRig(tb testing.TB, cfg Config, clientPending, backendPending []byte) *rig {
	tb.Helper()
	cli, cliLeg := tcpPair(tb)
	beLeg, be := tcpPair(tb)
	return startRig(tb, cli, cliLeg, beLeg, be, cfg, clientPending, backendPending)
}

func startRig(tb testing.TB, cli, cliLeg, beLeg, be net.Conn, cfg Config, cp, bp []byte) *rig {
	r := &rig{cli: cli, be: be, done: make(chan Result, 2)}
	user := cfg.OnClose
	cfg.OnClose = CloseFunc(func(res Result) {
		if user != nil {
			user.TunnelClosed(res)
		}
		r.calls.Add(1)
		r.done <- res
	})
	r.tun = Start(cliLeg, beLeg, cp, bp, cfg)
	tb.Cleanup(func() {
		cli.Close()
		be.Close()
		r.wait(tb)
	})
	return r
}

// wait returns the tunnel's result, failing if it does not end in time.
// OnClose closes nothing, so a second report would panic on the closed
// channel's send only after the first wait; the count check catches it.
func (r *rig) wait(tb testing.TB) Result {
	tb.Helper()
	if r.res != nil {
		return *r.res
	}
	select {
	case res := <-r.done:
		r.res = &res
		if n := r.calls.Load(); n != 1 {
			tb.Fatalf("OnClose called %d times", n)
		}
		return res
	case <-time.After(10 * time.Second):
		tb.Fatal("tunnel did not end")
	}
	return Result{}
}

// frame is a decoded frame; payload is unmasked.
type frame struct {
	h       wsframe.Header
	payload []byte
}

func readFrame(br *bufio.Reader) (frame, error) {
	var hb [wsframe.MaxHeaderLen]byte
	n := 0
	for {
		h, hn, err := wsframe.ParseHeader(hb[:n])
		if err != nil {
			return frame{}, err
		}
		if hn > 0 {
			p := make([]byte, h.Length)
			if _, err := io.ReadFull(br, p); err != nil {
				return frame{}, err
			}
			if h.Masked {
				wsframe.MaskBytes(p, h.Key, 0)
			}
			return frame{h, p}, nil
		}
		c, err := br.ReadByte()
		if err != nil {
			return frame{}, err
		}
		hb[n] = c
		n++
	}
}

// expectClose reads frames from c until a close frame and checks it.
func expectClose(tb testing.TB, c net.Conn, code uint16, masked bool) {
	tb.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	br := bufio.NewReader(c)
	for {
		f, err := readFrame(br)
		if err != nil {
			tb.Fatalf("waiting for close %d: %v", code, err)
		}
		if f.h.Opcode != wsframe.OpClose {
			continue
		}
		if f.h.Masked != masked {
			tb.Fatalf("close frame masked=%v, want %v", f.h.Masked, masked)
		}
		if len(f.payload) < 2 || binary.BigEndian.Uint16(f.payload) != code {
			tb.Fatalf("close payload %x, want code %d", f.payload, code)
		}
		return
	}
}

// expectEnd checks that c reaches EOF or a reset with no more bytes.
func expectEnd(tb testing.TB, c net.Conn) {
	tb.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	n, err := c.Read(b[:])
	if n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		tb.Fatalf("expected end of stream, got n=%d err=%v", n, err)
	}
}

func closeFrame(code uint16, mask bool) []byte {
	return wsframe.AppendClose(nil, code, "", mask, [4]byte{7, 7, 7, 7})
}

func readN(tb testing.TB, c net.Conn, n int) []byte {
	tb.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		tb.Fatalf("reading %d bytes: %v", n, err)
	}
	return b
}

func mustEqual(tb testing.TB, what string, got, want []byte) {
	tb.Helper()
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		tb.Fatalf("%s: %d bytes, want %d; first difference at %d", what, len(got), len(want), i)
	}
}
