package load

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wsgate/wsgate/bench/internal/echo"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func startEcho(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &echo.Server{}
	done := make(chan struct{})
	go func() { s.Serve(ln); close(done) }()
	t.Cleanup(func() { s.Close(); <-done })
	return ln.Addr().String()
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
	addr := startEcho(t)
	srcs, err := Sources("127.0.0.2-127.0.0.3")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		mode    string
		workers int
		size    int
	}{
		{ModeHandshake, 4, 0},
		{ModeEcho, 8, 64},
		{ModeThroughput, 2, 64 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			res, err := Run(context.Background(), tt.mode, Config{
				Addr: addr, Sources: srcs, Workers: tt.workers, Size: tt.size,
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
		})
	}
	if _, err := Run(context.Background(), "nope", Config{Addr: addr}); err == nil {
		t.Fatal("unknown mode accepted")
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

func TestIdleAgent(t *testing.T) {
	addr := startEcho(t)
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- IdleAgent(context.Background(), addr, "/ws", nil, inR, outW)
		outW.Close()
	}()
	out := bufio.NewScanner(outR)
	steps := []struct{ cmd, want string }{
		{"open 5", "ok 5"},
		{"check", "ok 5 0"},
		{"open 2", "ok 2"},
		{"check", "ok 2 0"},
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
