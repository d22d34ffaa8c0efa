package tunnel

import (
	"io"
	"net"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/wsframe"
)

func benchRelay(b *testing.B, size int) {
	benchDirect(b, size)
	for _, mode := range []string{"frames", "pipe", "features", "metered"} {
		cfg := Config{Frames: mode != "pipe", CloseGrace: 100 * time.Millisecond}
		switch mode {
		case "features":
			cfg = benchFeatures
		case "metered":
			// websocket_message_metrics: every message counted.
			cfg.Meter = &Meter{Messages: true}
		}
		b.Run(mode, func(b *testing.B) {
			cli, cliLeg := tcpPair(b)
			beLeg, be := tcpPair(b)
			tun := Start(cliLeg, beLeg, nil, nil, cfg)
			echoed := make(chan struct{})
			go func() {
				defer close(echoed)
				io.Copy(be, be) // an echo backend; a masked frame stays a valid frame
			}()
			msg := wsframe.AppendFrame(nil, wsframe.OpBinary, make([]byte, size), true, [4]byte{1, 2, 3, 4})
			reply := make([]byte, len(msg))
			b.SetBytes(int64(size))
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				if _, err := cli.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(cli, reply); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "round-trips/s")
			cli.Close()
			be.Close()
			tun.Shutdown(CodeGoingAway, "")
			<-echoed
		})
	}
}

// benchFeatures turns on everything WebSocket-aware at limits a benchmark
// never reaches (pings every 30 s, as websocket_ping_interval would).
var benchFeatures = Config{
	Frames:           true,
	CloseGrace:       100 * time.Millisecond,
	IdleTimeout:      time.Hour,
	PingInterval:     30 * time.Second,
	PingTimeout:      10 * time.Second,
	MaxFrameSize:     1 << 20,
	MaxMessageSize:   1 << 20,
	MessageRate:      1e6,
	MessageBurst:     1000,
	RateLimitBackend: true,
}

// benchDirect is the reference: the same echo without a tunnel.
func benchDirect(b *testing.B, size int) {
	b.Run("direct", func(b *testing.B) {
		cli, be := tcpPair(b)
		echoed := make(chan struct{})
		go func() {
			defer close(echoed)
			io.Copy(be, be)
		}()
		msg := wsframe.AppendFrame(nil, wsframe.OpBinary, make([]byte, size), true, [4]byte{1, 2, 3, 4})
		reply := make([]byte, len(msg))
		b.SetBytes(int64(size))
		cpu := cpuTime()
		for b.Loop() {
			cli.Write(msg)
			if _, err := io.ReadFull(cli, reply); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
		cli.Close()
		be.Close()
		<-echoed
	})
}

func BenchmarkRelay64B(b *testing.B)   { benchRelay(b, 64) }
func BenchmarkRelay64KiB(b *testing.B) { benchRelay(b, 64<<10) }

// BenchmarkIdleTunnel opens idle tunnels, each after one message in each
// direction, and reports what they cost. A first batch, not measured, puts
// the process in a server's steady state: the runtime sizes new goroutine
// stacks from the average stack in use, which idle tunnels dominate there.
func BenchmarkIdleTunnel(b *testing.B) {
	benchIdle(b, Config{Frames: true, IdleTimeout: time.Hour, CloseGrace: 50 * time.Millisecond})
}

// BenchmarkIdleTunnelMetered is BenchmarkIdleTunnel with per-message
// counts on (websocket_message_metrics on).
func BenchmarkIdleTunnelMetered(b *testing.B) {
	benchIdle(b, Config{Frames: true, IdleTimeout: time.Hour, CloseGrace: 50 * time.Millisecond, Meter: &Meter{Messages: true}})
}

// BenchmarkIdleTunnelFeatures is BenchmarkIdleTunnel with pings, frame and
// message limits and rate limits on.
func BenchmarkIdleTunnelFeatures(b *testing.B) {
	cfg := benchFeatures
	cfg.CloseGrace = 50 * time.Millisecond
	benchIdle(b, cfg)
}

func benchIdle(b *testing.B, cfg Config) {
	const n = 1500 // two batches of four sockets each stay under 20,000 fds
	for b.Loop() {
		warm := openIdle(b, n, cfg)
		bare := snapshot()
		pairs := make([][4]*net.TCPConn, n)
		for i := range pairs {
			c, cl := tcpPair(b)
			bl, be := tcpPair(b)
			pairs[i] = [4]*net.TCPConn{c, cl, bl, be}
		}
		before := snapshot()
		measured := startIdle(pairs, cfg)
		after := snapshot()
		per := func(x, y uint64) float64 { return (float64(x) - float64(y)) / float64(n) }
		// The test holds four sockets per tunnel; a proxy holds two.
		b.ReportMetric(per(before.heap+before.stack, bare.heap+bare.stack)/2, "two-legs-B/tunnel")
		// Outside the heap: the runtime's poll descriptors and the
		// sockets' finalizers. The runtime keeps a closed socket's
		// descriptor for the next one, so only a process's first
		// iteration (-benchtime 1x -count 1) shows their cost.
		b.ReportMetric(per(before.other, bare.other)/2, "two-legs-other-B/tunnel")
		b.ReportMetric(per(after.heap+after.stack, before.heap+before.stack), "heap+stack-B/tunnel")
		b.ReportMetric(per(after.stack, before.stack), "stack-B/tunnel")
		b.ReportMetric(per(after.sys, before.sys), "sys-B/tunnel")
		b.ReportMetric(per(after.rss, before.rss), "rss-B/tunnel")
		b.ReportMetric(per(after.fds, before.fds), "extra-fds/tunnel")
		b.ReportMetric(per(after.goroutines, before.goroutines), "goroutines/tunnel")
		warm.close()
		measured.close()
	}
}

type idleSet struct {
	tuns  []*Tunnel
	pairs [][4]*net.TCPConn
}

func openIdle(b *testing.B, n int, cfg Config) idleSet {
	pairs := make([][4]*net.TCPConn, n)
	for i := range pairs {
		c, cl := tcpPair(b)
		bl, be := tcpPair(b)
		pairs[i] = [4]*net.TCPConn{c, cl, bl, be}
	}
	return startIdle(pairs, cfg)
}

func startIdle(pairs [][4]*net.TCPConn, cfg Config) idleSet {
	s := idleSet{pairs: pairs}
	up := wsframe.AppendFrame(nil, wsframe.OpText, []byte("hello"), true, [4]byte{1, 2, 3, 4})
	down := wsframe.AppendFrame(nil, wsframe.OpText, []byte("hello"), false, [4]byte{})
	buf := make([]byte, len(up))
	for _, p := range pairs {
		s.tuns = append(s.tuns, Start(p[1], p[2], nil, nil, cfg))
		p[0].Write(up)
		io.ReadFull(p[3], buf)
		p[3].Write(down)
		io.ReadFull(p[0], buf[:len(down)])
	}
	return s
}

func (s idleSet) close() {
	for _, t := range s.tuns {
		go t.Shutdown(CodeGoingAway, "")
	}
	for _, t := range s.tuns {
		t.Shutdown(CodeGoingAway, "")
	}
	for _, p := range s.pairs {
		p[0].Close()
		p[3].Close()
	}
}

type usage struct{ heap, stack, other, sys, rss, fds, goroutines uint64 }

func snapshot() usage {
	runtime.GC()
	runtime.GC() // a second cycle shrinks stacks and frees pooled buffers
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	other := []metrics.Sample{{Name: "/memory/classes/other:bytes"}}
	metrics.Read(other)
	u := usage{heap: ms.HeapInuse, stack: ms.StackInuse, other: other[0].Value.Uint64(),
		sys: ms.Sys - ms.HeapReleased, goroutines: uint64(runtime.NumGoroutine())}
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			pages, _ := strconv.ParseUint(f[1], 10, 64)
			u.rss = pages * uint64(os.Getpagesize())
		}
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		u.fds = uint64(len(fds))
	}
	return u
}

// cpuTime is the process's user and system CPU time so far, in
// nanoseconds: a benchmark's CPU per operation, less the direct echo's,
// is the relay's, however loaded the machine.
func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
