package e2e

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestHeapSettlesWhenQuiet: after a burst of work, once wsgate has been
// quiet for a second it collects its garbage and returns the free heap to
// the system, rather than holding both until the runtime's periodic
// collection two minutes later. The burst: 4,000 WebSockets opened, then
// all closed, which leaves their tunnels and handshakes as garbage
// (several MB). Seen through wsgate's metrics, read once the burst is
// over: its last collection came after the burst, while nothing was
// asked of it, and the heap it returned grew.
func TestHeapSettlesWhenQuiet(t *testing.T) {
	be := startBackend(t, "b1")
	port := freePort(t)
	startGate(t, "events { worker_connections 10000; }\n"+fmt.Sprintf(statusConf, be.addr, port))
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
	before := scrape(t, url)["go_memstats_heap_released_bytes"]
	conns := make(chan *websocket.Conn, 4000)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range cap(conns) / 8 {
				c, _ := dial(t, fmt.Sprintf("ws://127.0.0.1:%d/ws", port), http.Header{"Origin": {"https://ok.example"}})
				conns <- c
			}
		})
	}
	wg.Wait()
	close(conns)
	for c := range conns {
		c.Close()
	}
	over := time.Now()
	time.Sleep(slow(4 * time.Second))
	m := scrape(t, url)
	lastGC := time.Unix(0, int64(m["go_memstats_last_gc_time_seconds"]*1e9))
	released := m["go_memstats_heap_released_bytes"]
	t.Logf("burst over at %s, last collection at %s; heap returned %.0f B before, %.0f B after", over.Format(time.StampMilli), lastGC.Format(time.StampMilli), before, released)
	if !lastGC.After(over.Add(500 * time.Millisecond)) {
		t.Errorf("the last collection was at %s, not after the burst ended at %s", lastGC.Format(time.StampMilli), over.Format(time.StampMilli))
	}
	if released <= before {
		t.Errorf("heap returned to the system: %.0f B before the burst, %.0f B after", before, released)
	}
}
