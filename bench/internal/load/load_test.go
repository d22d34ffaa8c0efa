package load

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wsgate/wsgate/bench/internal/echo"
	"github.com/wsgate/wsgate/bench/internal/selfsigned"
)

func TestMain(m *testing.M) {
	reexecForExtendedConnect()
	goleak.VerifyTestMain(m)
}

func startEcho(t *testing.T) string {
	t.Helper()
	return startEchoOn(t, nil)
}

// tlsSeen records what the TLS echo server saw of each handshake.
type tlsSeen struct {
	mu                          sync.Mutex
	full, resumed, notTLS13, x2 int
}

// startTLSEcho serves the echo backend over TLS 1.3 with a fresh self-signed
// certificate. The server issues session tickets (Go's default), so a client
// that kept them would resume.
func startTLSEcho(t *testing.T) (string, *tlsSeen) {
	t.Helper()
	sc, err := selfsigned.ServerConfig()
	if err != nil {
		t.Fatal(err)
	}
	seen := &tlsSeen{}
	sc.VerifyConnection = func(cs tls.ConnectionState) error {
		seen.mu.Lock()
		defer seen.mu.Unlock()
		if cs.DidResume {
			seen.resumed++
		} else {
			seen.full++
		}
		if cs.Version != tls.VersionTLS13 {
			seen.notTLS13++
		}
		if cs.CurveID == tls.X25519 {
			seen.x2++
		}
		return nil
	}
	return startEchoOn(t, sc), seen
}

func startEchoOn(t *testing.T, sc *tls.Config) string {
	t.Helper()
	var ln net.Listener
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if sc != nil {
		ln = tls.NewListener(ln, sc)
	}
	s := &echo.Server{}
	done := make(chan struct{})
	go func() { s.Serve(ln); close(done) }()
	t.Cleanup(func() { s.Close(); <-done })
	return addr
}

func TestSources(t *testing.T) {
	tests := []struct {
		spec    string
		n       int
		wantErr bool
	}{
		{"", 0, false},
		{"127.0.0.2", 1, false},
		{"127.0.0.2-127.0.0.17", 16, false},
		{"127.0.0.2,127.0.1.1-127.0.1.3", 4, false},
		{"10.0.0.1", 0, true},
		{"127.0.0.250-128.0.0.1", 0, true},
		{"nonsense", 0, true},
	}
	for _, tt := range tests {
		got, err := Sources(tt.spec)
		if (err != nil) != tt.wantErr || len(got) != tt.n {
			t.Errorf("Sources(%q) = %d addresses, %v", tt.spec, len(got), err)
		}
	}
}

func TestRunModes(t *testing.T) {
	plain := startEcho(t)
	secure, seen := startTLSEcho(t)
	srcs, err := Sources("127.0.0.2-127.0.0.3")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		mode    string
		workers int
		size    int
		tls     bool
	}{
		{ModeHandshake, 4, 0, false},
		{ModeEcho, 8, 64, false},
		{ModeThroughput, 2, 64 << 10, false},
		{ModeHandshake, 4, 0, true},
		{ModeEcho, 8, 64, true},
		{ModeThroughput, 2, 64 << 10, true},
	}
	for _, tt := range tests {
		addr := plain
		if tt.tls {
			addr = secure
		}
		t.Run(fmt.Sprintf("%s/tls=%v", tt.mode, tt.tls), func(t *testing.T) {
			res, err := Run(context.Background(), tt.mode, Config{
				Addr: addr, Sources: srcs, Workers: tt.workers, Size: tt.size, TLS: tt.tls,
				Warmup: 50 * time.Millisecond, Duration: 300 * time.Millisecond, CPUPID: os.Getpid(),
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Ops == 0 || res.Errors != 0 || res.OpsPerSec <= 0 {
				t.Fatalf("result %+v", res)
			}
			if !(res.P50 <= res.P99 && res.P99 <= res.P999) {
				t.Fatalf("quantiles out of order: %+v", res)
			}
			if tt.mode == ModeThroughput && res.MBPerSec <= 0 {
				t.Fatalf("no MB/s: %+v", res)
			}
			if res.CPUSeconds < 0 || res.CPUPerOpUS < 0 {
				t.Fatalf("negative CPU: %+v", res)
			}
			if res.UserSeconds < 0 || res.UserSeconds > res.CPUSeconds || res.UserPerOpUS > res.CPUPerOpUS {
				t.Fatalf("user CPU outside the total: %+v", res)
			}
		})
	}
	if _, err := Run(context.Background(), "nope", Config{Addr: plain}); err == nil {
		t.Fatal("unknown mode accepted")
	}
	seen.mu.Lock()
	defer seen.mu.Unlock()
	// Hundreds of handshakes against a server that issues tickets: every
	// one must still be a full TLS 1.3 handshake with X25519.
	if seen.full < 20 || seen.resumed != 0 || seen.notTLS13 != 0 || seen.x2 != seen.full {
		t.Fatalf("TLS handshakes seen by the server: %+v", seen)
	}
}

// TestRunResumed: with Resume, handshakes after the first resume their
// TLS session, and the result counts them.
func TestRunResumed(t *testing.T) {
	secure, seen := startTLSEcho(t)
	res, err := Run(context.Background(), ModeHandshake, Config{
		Addr: secure, Workers: 2, TLS: true, Resume: true,
		Warmup: 50 * time.Millisecond, Duration: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 0 || res.Resumed == 0 || res.Resumed > res.Ops {
		t.Fatalf("result %+v", res)
	}
	seen.mu.Lock()
	defer seen.mu.Unlock()
	if seen.resumed == 0 || seen.resumed < seen.full {
		t.Fatalf("TLS handshakes seen by the server: %+v", seen)
	}
}

// TestRunTLSMismatch checks that a wrong scheme fails loudly instead of
// measuring nothing.
func TestRunTLSMismatch(t *testing.T) {
	plain := startRefuser(t)
	secure, _ := startTLSEcho(t)
	tests := []struct {
		name string
		addr string
		tls  bool
		want string
	}{
		{"wss client, plain server", plain, true, "tls: first record does not look like a TLS handshake"},
		{"ws client, TLS server", secure, false, "no operation completed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Run(context.Background(), ModeHandshake, Config{Addr: tt.addr, TLS: tt.tls, Workers: 1, Warmup: 10 * time.Millisecond, Duration: 100 * time.Millisecond})
			if err == nil {
				t.Fatalf("succeeded: %+v", res)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q lacks %q", err, tt.want)
			}
		})
	}
}

func TestRunNoTarget(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	_, err = Run(context.Background(), ModeHandshake, Config{Addr: addr, Workers: 1, Warmup: 10 * time.Millisecond, Duration: 50 * time.Millisecond})
	if err == nil {
		t.Fatal("Run against a closed port succeeded")
	}
}

// TestRunEchoInProcess: with Config.Echo, Run serves the echo backend
// itself, so a run against that address (the direct target) completes
// with no other process; the backend is gone when Run returns. An address
// already taken is an error.
func TestRunEchoInProcess(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	for _, mode := range []string{ModeHandshake, ModeEcho} {
		res, err := Run(context.Background(), mode, Config{Addr: addr, Echo: addr, Workers: 4, Warmup: 20 * time.Millisecond, Duration: 200 * time.Millisecond})
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if res.Ops == 0 || res.Errors != 0 {
			t.Fatalf("%s: %+v", mode, res)
		}
		if c, err := net.Dial("tcp4", addr); err == nil {
			c.Close()
			t.Fatalf("%s: the echo backend still listens after Run", mode)
		}
	}
	taken := startEcho(t)
	if _, err := Run(context.Background(), ModeHandshake, Config{Addr: taken, Echo: taken, Workers: 1, Warmup: 10 * time.Millisecond, Duration: 50 * time.Millisecond}); err == nil {
		t.Fatal("an echo address already in use was accepted")
	}
}

// startRefuser answers every connection like a plain HTTP server refusing
// garbage, then closes it.
func startRefuser(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

func TestIdleAgent(t *testing.T) {
	plain := startEcho(t)
	secure, _ := startTLSEcho(t)
	for _, tc := range []struct {
		name string
		addr string
		tls  bool
	}{{"ws", plain, false}, {"wss", secure, true}} {
		t.Run(tc.name, func(t *testing.T) { testIdleAgent(t, Config{Addr: tc.addr, TLS: tc.tls}) })
	}
}

func testIdleAgent(t *testing.T, cfg Config) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- IdleAgent(context.Background(), cfg, inR, outW)
		outW.Close()
	}()
	out := bufio.NewScanner(outR)
	steps := []struct{ cmd, want string }{
		{"open 5", "ok 5"},
		{"check", "ok 5 0"},
		{"open 2", "ok 2"},
		{"check", "ok 2 0"},
		{"open 20", "ok 20"},
		{"storm", "ok 20 "},
		{"check", "ok 20 0"},
		{fmt.Sprintf("open %d", MaxIdlePerAgent+1), "err bad count"},
		{"dance", "err unknown command"},
	}
	for _, s := range steps {
		if _, err := fmt.Fprintln(inW, s.cmd); err != nil {
			t.Fatal(err)
		}
		if !out.Scan() {
			t.Fatalf("%s: no answer", s.cmd)
		}
		if !strings.HasPrefix(out.Text(), s.want) {
			t.Fatalf("%s: answer %q, want %q", s.cmd, out.Text(), s.want)
		}
	}
	fmt.Fprintln(inW, "quit")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	inW.Close()
	inR.Close()
}

// TestRunPaced: the paced mode sends no more than its schedule allows,
// every echo matches, and the slowest round trip bounds the quantiles
// (within one histogram bucket).
func TestRunPaced(t *testing.T) {
	plain := startEcho(t)
	const rate = 2000
	res, err := Run(context.Background(), ModePaced, Config{
		Addr: plain, Workers: 4, Size: 64, Rate: rate,
		Warmup: 50 * time.Millisecond, Duration: 500 * time.Millisecond, CPUPID: os.Getpid(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ops == 0 || res.Errors != 0 {
		t.Fatalf("result %+v", res)
	}
	// The schedule, not the target, sets the count: a sender that fell
	// behind catches up, but never runs ahead of its timetable.
	if limit := uint64(rate*res.Seconds*1.2) + 4; res.Ops > limit {
		t.Fatalf("%d messages in %.2f s at %d/s: more than the schedule's %d", res.Ops, res.Seconds, rate, limit)
	}
	if !(res.P50 <= res.P99 && res.P99 <= res.Max+100) {
		t.Fatalf("quantiles out of order: %+v", res)
	}
}

// TestRunPacedHandshake: the paced handshake mode opens connections on its
// timetable, no faster and, against a target with room to spare, not much
// slower.
func TestRunPacedHandshake(t *testing.T) {
	plain := startEcho(t)
	const rate = 400
	res, err := Run(context.Background(), ModePacedHandshake, Config{
		Addr: plain, Workers: 4, Rate: rate,
		Warmup: 50 * time.Millisecond, Duration: 500 * time.Millisecond, CPUPID: os.Getpid(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 0 || !(res.P50 <= res.P99 && res.P99 <= res.P999) {
		t.Fatalf("result %+v", res)
	}
	if most, least := rate*res.Seconds*1.2+4, rate*res.Seconds/2; float64(res.Ops) > most || float64(res.Ops) < least {
		t.Fatalf("%d handshakes in %.2f s at %d/s: want %.0f to %.0f", res.Ops, res.Seconds, rate, least, most)
	}
}
