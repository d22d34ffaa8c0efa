package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// BenchmarkClusterHandshake measures WebSocket handshakes, from one client
// and from four at once, through one instance whose location has a
// limit_req, a limit_conn and a websocket_session_key, with local zones
// and with the same zones shared and the sessions registered through a
// real redis-server, in one run. It reports handshakes per second, the p50 and p99 handshake
// latency seen by the client, the proxy's CPU time per handshake, and the
// store's script calls and round trips per handshake, its close included
// (the instance's once-a-second heartbeat and stream read are included).
//
//	go test -run '^$' -bench ClusterHandshake -benchtime 2000x ./test/e2e
func BenchmarkClusterHandshake(b *testing.B) {
	r := startRedis(b)
	be := startBackend(b, "b1")
	for _, run := range []struct {
		mode    string
		clients int
	}{{"local", 1}, {"shared", 1}, {"local", 4}, {"shared", 4}} {
		mode := run.mode
		b.Run(fmt.Sprintf("%s/clients=%d", mode, run.clients), func(b *testing.B) {
			store, syncArg := "", ""
			if mode == "shared" {
				store, syncArg = fmt.Sprintf("cluster_store redis://127.0.0.1:%d timeout=1s;", r.port), "sync"
			}
			port := freePort(b)
			g := startGate(b, fmt.Sprintf(benchConf, store, syncArg, syncArg, port, be.addr))
			url := fmt.Sprintf("ws://127.0.0.1:%d/ws", port)
			hdr := http.Header{"X-User": {"bench"}}
			d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
			base := fmt.Sprintf("127.0.0.1:%d", port)
			cmds0, trips0, cpu0 := redisCommands(b, r), benchMetric(b, base, "wsgate_cluster_round_trips_total"), cpuTime(b, g.cmd.Process.Pid)
			lat := make([]time.Duration, b.N)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range run.clients {
				wg.Go(func() {
					for i := next.Add(1) - 1; i < int64(b.N); i = next.Add(1) - 1 {
						t0 := time.Now()
						c, _, err := d.Dial(url, hdr)
						if err != nil {
							b.Error(err)
							return
						}
						lat[i] = time.Since(t0)
						c.Close()
					}
				})
			}
			wg.Wait()
			el := time.Since(start)
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(b.N)/el.Seconds(), "handshakes/s")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(float64((cpuTime(b, g.cmd.Process.Pid)-cpu0).Microseconds())/float64(b.N), "cpu-µs/handshake")
			if mode == "shared" {
				b.ReportMetric(benchMetric(b, base, "wsgate_cluster_fallbacks_total"), "store-outages")
				b.ReportMetric(float64(redisCommands(b, r)-cmds0)/float64(b.N), "store-scripts/handshake")
				b.ReportMetric((benchMetric(b, base, "wsgate_cluster_round_trips_total")-trips0)/float64(b.N), "store-round-trips/handshake")
			}
		})
	}
}

const benchConf = `
error_log {{DIR}}/error.log warn;
http {
    %s
    limit_req_zone $http_x_user zone=rl:1m rate=1000000r/s %s;
    limit_conn_zone $http_x_user zone=ws:1m %s;
    server {
        listen 127.0.0.1:%d;
        location = /metrics { metrics; }
        location /ws {
            limit_req zone=rl burst=1000000 nodelay;
            limit_conn ws 60000;
            websocket_session_key $http_x_user;
            proxy_pass http://%s;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }
    }
}`

// redisCommands counts the store's top-level calls: scripts (EVALSHA and
// EVAL), the only commands wsgate sends on a request's path, each one
// round trip. Commands run inside scripts are not counted.
func redisCommands(b *testing.B, r *redisProc) int64 {
	b.Helper()
	c, err := net.Dial("tcp", r.addr())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "INFO commandstats\r\nPING\r\n")
	br := bufio.NewReader(c)
	var n int64
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			b.Fatal(err)
		}
		line = strings.TrimSpace(line)
		if line == "+PONG" {
			return n
		}
		for _, cmd := range []string{"cmdstat_evalsha:calls=", "cmdstat_eval:calls="} {
			if v, ok := strings.CutPrefix(line, cmd); ok {
				calls, _ := strconv.ParseInt(v[:strings.IndexByte(v, ',')], 10, 64)
				n += calls
			}
		}
	}
}

// cpuTime is a process's user plus system CPU time from /proc.
func cpuTime(b *testing.B, pid int) time.Duration {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
}

// benchMetric reads one unlabelled value from a gate's /metrics (0 when
// absent).
func benchMetric(b *testing.B, addr, name string) float64 {
	b.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}
