package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkGzipResponses measures, in one run, nginx (one worker) and
// wsgate (one CPU: worker_processes 1) serving a 16 KiB HTML file
// compressed at gzip_comp_level 1 to 8 keep-alive clients: compressed
// responses per second, and the server's CPU time per response (user +
// system, from /proc). Run with
//
//	go test -run '^$' -bench GzipResponses -benchtime 20000x ./test/e2e/
func BenchmarkGzipResponses(b *testing.B) {
	root := b.TempDir()
	os.Chmod(root, 0o755)
	var page strings.Builder
	for i := 0; page.Len() < 16<<10; i++ {
		fmt.Fprintf(&page, "<tr><td class=\"n\">%d</td><td><a href=\"/item/%d\">item %d</a></td><td>%x</td></tr>\n", i, i*7, i, i*2654435761)
	}
	if err := os.WriteFile(filepath.Join(root, "page.html"), []byte(page.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	p := startPair(b, diffConf{Root: root, HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    access_log off;
    root {{ROOT}};
    gzip on;
    gzip_comp_level 1;
}`})
	for _, target := range []struct {
		name, addr string
		pid        int
	}{{"nginx", p.nginx, p.ng.cmd.Process.Pid}, {"wsgate", p.wsgate, p.gate.cmd.Process.Pid}} {
		b.Run(target.name, func(b *testing.B) {
			url := "http://" + target.addr + "/page.html"
			clientsRun(b, target.pid, "resp/s", "cpu-µs/resp", func(n int) error { return fetchGzipped(url, n) })
		})
	}
}

// fetchGzipped makes n requests on one keep-alive connection and checks
// each answer is compressed.
func fetchGzipped(url string, n int) error {
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	for range n {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := cl.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.Header.Get("Content-Encoding") != "gzip" {
			return fmt.Errorf("%s: not compressed (%d)", url, resp.StatusCode)
		}
	}
	return nil
}

// clientsRun runs b.N operations spread over 8 clients, each calling
// fetch with its share, and reports operations per second and the CPU
// time of pid (and its children) per operation, under the two metric
// names given.
func clientsRun(b *testing.B, pid int, rate, cpuPerOp string, fetch func(n int) error) {
	const clients = 8
	cpu0 := cpuTicks(b, pid)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		n := b.N / clients
		if c < b.N%clients {
			n++
		}
		wg.Go(func() { errs <- fetch(n) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTicks(b, pid) - cpu0
	close(errs)
	for err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), rate)
	b.ReportMetric(float64(cpu)*1e6/clockTicks/float64(b.N), cpuPerOp)
}

// clockTicks is USER_HZ, the unit of /proc's CPU times on Linux.
const clockTicks = 100

// cpuTicks is the user and system CPU time of pid and its children
// (nginx's worker), in clock ticks.
func cpuTicks(b *testing.B, pid int) int64 {
	b.Helper()
	total := int64(0)
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		id, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// Fields after the command's closing parenthesis: state ppid ... utime(12) stime(13).
		f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+2:]))
		ppid, _ := strconv.Atoi(f[1])
		if id != pid && ppid != pid {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		total += u + s
	}
	return total
}
