package e2e

import (
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

// BenchmarkCacheHits measures, in one run, nginx (one worker) and wsgate
// answering from proxy_cache: a 4 KiB answer stored once, then fetched by
// 8 keep-alive clients; hits per second, and the server's CPU time per
// hit (user + system, from /proc). Every answer must be a HIT. Run with
//
//	go test -run '^$' -bench CacheHits -benchtime 20000x ./test/e2e/
func BenchmarkCacheHits(b *testing.B) {
	be := startCacheBackend(b)
	p := startPair(b, diffConf{HTTP: cacheConf(be.addr, "", `
    access_log off;
    proxy_cache_valid 200 1h;`)})
	const target = "/hit?size=4096&length=1"
	for _, srv := range []struct {
		name, addr string
		pid        int
	}{{"nginx", p.nginx, p.ng.cmd.Process.Pid}, {"wsgate", p.wsgate, p.gate.cmd.Process.Pid}} {
		expectCache(b, sendRaw(b, srv.addr, cget(target)), "MISS")
		b.Run(srv.name, func(b *testing.B) {
			url := "http://" + srv.addr + target
			clientsRun(b, srv.pid, "hits/s", "cpu-µs/hit", func(n int) error { return fetchHits(url, n) })
		})
	}
}

// fetchHits makes n requests on one keep-alive connection and checks each
// was answered from the cache.
func fetchHits(url string, n int) error {
	tr := &http.Transport{MaxIdleConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	for range n {
		resp, err := cl.Get(url)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if s := resp.Header.Get("X-Cache"); s != "HIT" {
			return fmt.Errorf("%s: %d, X-Cache %q", url, resp.StatusCode, s)
		}
	}
	return nil
}
