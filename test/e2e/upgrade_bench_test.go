package e2e

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchCount reads a count from the environment, or def.
func benchCount(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// BenchmarkUpgradeHandover measures a binary upgrade with idle and busy
// plain tunnels: the time the old process takes to hand them all over
// (handover_ms, from its error log) and the longest round trip a busy
// client's message saw while the processes switched (max_pause_ms), beside
// the longest one before (baseline_max_ms). A busy client sends a message
// every $WSGATE_UPGRADE_BENCH_PACE milliseconds (default 100; 0: as soon as
// the last one came back, which saturates a small machine).
//
// Each tunnel costs the proxy two descriptors and this process two (client
// and backend), and one process may open at most 20,000: by default 8,000
// idle and 1,000 busy tunnels ($WSGATE_UPGRADE_BENCH_IDLE, _BUSY). Run:
//
//	go test -run '^$' -bench BenchmarkUpgradeHandover -benchtime 1x ./test/e2e
func BenchmarkUpgradeHandover(b *testing.B) {
	idle := benchCount("WSGATE_UPGRADE_BENCH_IDLE", 8000)
	busy := benchCount("WSGATE_UPGRADE_BENCH_BUSY", 1000)
	pace := time.Duration(benchCount("WSGATE_UPGRADE_BENCH_PACE", 100)) * time.Millisecond
	if os.Getenv("WSGATE_UPGRADE_BENCH_PACE") == "0" {
		pace = 0
	}
	for range b.N {
		b.StopTimer()
		handoverOnce(b, idle, busy, pace)
	}
}

func handoverOnce(b *testing.B, idle, busy int, pace time.Duration) {
	echoBE := startRawEcho(b)
	port := freePort(b)
	g := startGate(b, fmt.Sprintf(upgradeConf, port, echoBE.ln.Addr(), "", ""))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	clients := make([]*wsClient, idle+busy)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	var failed atomic.Pointer[error]
	for i := range clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := dialUp(addr, fmt.Sprintf("/ws/%d", i), nil)
			if err == nil {
				err = c.roundTrip(16)
			}
			if err != nil {
				failed.Store(&err)
				return
			}
			clients[i] = c
		}()
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	b.Cleanup(func() {
		for _, c := range clients {
			c.c.Close()
		}
	})
	time.Sleep(2500 * time.Millisecond) // two sweeps: the idle directions park
	var (
		stop      = make(chan struct{})
		switching atomic.Bool
		mu        sync.Mutex
		base, sw  time.Duration
		errs      = make(chan error, busy)
	)
	for _, c := range clients[:busy] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(pace):
				}
				t0 := time.Now()
				if err := c.roundTrip(64); err != nil {
					errs <- err
					return
				}
				d := time.Since(t0)
				mu.Lock()
				if switching.Load() {
					sw = max(sw, d)
				} else {
					base = max(base, d)
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(time.Second)
	switching.Store(true)
	b.StartTimer()
	upgrade(b, g)
	waitExit(b, g, 60*time.Second)
	b.StopTimer()
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	m := regexp.MustCompile(`(\d+) WebSocket tunnels handed over in ([0-9.]+m?s)`).FindStringSubmatch(g.errorLog())
	if m == nil || m[1] != strconv.Itoa(idle+busy) {
		b.Fatalf("handover not logged as complete:\n%s", tail(g.errorLog(), 20))
	}
	d, _ := time.ParseDuration(m[2])
	b.ReportMetric(float64(d.Milliseconds()), "handover_ms")
	b.ReportMetric(float64(sw.Microseconds())/1000, "max_pause_ms")
	b.ReportMetric(float64(base.Microseconds())/1000, "baseline_max_ms")
}
