package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Reloads that get past configuration loading and fail inside the server
// (a listen that cannot bind, a certificate that cannot be read) must leave
// the running configuration exactly as it was: no goroutine, descriptor or
// health checker left behind, peer state untouched.

// failConf is a gate whose upstream has two peers and an optional health
// check, with /metrics and /api; extra is added to the http block.
func failConf(port int, a, b, hc, extra string) string {
	return fmt.Sprintf(`error_log {{DIR}}/error.log info;
events { worker_connections 1024; }
http {
    access_log off;
    upstream pool {
        server %s;
        server %s;
        %s
    }
    server {
        listen 127.0.0.1:%d;
        location / {
            proxy_pass http://pool;
            proxy_connect_timeout 2s;
        }
        location = /metrics { metrics; }
    }
%s
}
`, a, b, hc, port, extra)
}

// holdPort listens on a loopback port for the test's lifetime, so that a
// configuration naming it cannot bind.
func holdPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// bindFails is an extra server block whose listen is taken by the test.
func bindFails(t *testing.T) string {
	return fmt.Sprintf("    server { listen 127.0.0.1:%d; location / { return 204; } }\n", holdPort(t))
}

// tlsFails is an extra server block whose certificate does not exist.
func tlsFails(t *testing.T) string {
	return fmt.Sprintf("    server { listen 127.0.0.1:%d ssl; ssl_certificate {{DIR}}/missing.crt; ssl_certificate_key {{DIR}}/missing.key; }\n", freePort(t))
}

// metricLines returns /metrics lines that start with prefix, fetched on a
// connection of its own (no kept-alive connection stays behind).
func metricLines(t *testing.T, port int, prefix string) []string {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

func goroutines(t *testing.T, port int) int {
	t.Helper()
	ls := metricLines(t, port, "go_goroutines ")
	if len(ls) != 1 {
		t.Fatalf("go_goroutines: %q", ls)
	}
	n, err := strconv.Atoi(strings.TrimPrefix(ls[0], "go_goroutines "))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// settledGoroutines waits until two scrapes a while apart agree: serving
// goroutines left by the startup or the last request have ended.
func settledGoroutines(t *testing.T, port int) int {
	t.Helper()
	prev := goroutines(t, port)
	deadline := time.Now().Add(15 * time.Second)
	for {
		time.Sleep(1500 * time.Millisecond) // longer than an idle serving goroutine lives
		n := goroutines(t, port)
		if n == prev || time.Now().After(deadline) {
			return n
		}
		prev = n
	}
}

// waitGoroutines waits until the gate runs no more goroutines than base
// (give or take the scrape's own connection).
func waitGoroutines(t *testing.T, port, base int, after string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		n := goroutines(t, port)
		if n <= base+2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines 15s after %s, baseline %d", n, after, base)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestReloadStopsReplacedCheckers: a reload that succeeds stops the health
// checkers of the generation it replaces, for upstreams it keeps too.
func TestReloadStopsReplacedCheckers(t *testing.T) {
	a, b := startUBackend(t, "a", "", false), startUBackend(t, "b", "", false)
	port := freePort(t)
	conf := failConf(port, a.addr, b.addr, "health_check interval=200ms uri=/health;", "")
	g := startGate(t, conf)
	waitFor(t, 10*time.Second, "the first health checks", func() bool { return a.healthHits.Load() > 0 && b.healthHits.Load() > 0 })
	baseG := settledGoroutines(t, port)
	for i := 0; i < 10; i++ {
		timeout := fmt.Sprintf("proxy_connect_timeout %ds;", 3+i%2)
		if !g.reload(t, strings.Replace(conf, "proxy_connect_timeout 2s;", timeout, 1)) {
			t.Fatalf("reload %d failed:\n%s", i, g.errorLog())
		}
	}
	waitGoroutines(t, port, baseG, "10 reloads")
}

// TestReloadFailedAtBindLeaksNothing: 20 reloads that fail at bind, with
// health checks on, leave goroutines and descriptors at their baseline.
func TestReloadFailedAtBindLeaksNothing(t *testing.T) {
	a, b := startUBackend(t, "a", "", false), startUBackend(t, "b", "", false)
	port := freePort(t)
	hc := "health_check interval=200ms uri=/health;"
	conf := failConf(port, a.addr, b.addr, hc, "")
	g := startGate(t, conf)
	waitFor(t, 10*time.Second, "the first health checks", func() bool { return a.healthHits.Load() > 0 && b.healthHits.Load() > 0 })
	baseG := settledGoroutines(t, port)
	baseFD := g.fdCount(t)

	bad := failConf(port, a.addr, b.addr, hc, bindFails(t))
	for i := 0; i < 20; i++ {
		if g.reload(t, bad) {
			t.Fatalf("reload %d with a listen on a held port succeeded", i)
		}
	}
	if !strings.Contains(g.errorLog(), "address already in use") {
		t.Fatalf("the reloads did not fail at bind:\n%s", g.errorLog())
	}
	waitGoroutines(t, port, baseG, "20 failed reloads")
	g.waitFDs(t, baseFD)
	if st, _, _ := newGetter("").get(t, fmt.Sprintf("http://127.0.0.1:%d/x", port)); st != 200 {
		t.Fatalf("the running configuration answers %d after the failed reloads", st)
	}
}

// TestReloadFailedKeepsPeerState: a peer its health check found failing
// stays failed, and every peer counter stays as it was, after a reload
// that fails inside the server and whose configuration has no health
// check (which, had it taken, would have made the peer healthy).
func TestReloadFailedKeepsPeerState(t *testing.T) {
	for _, tc := range []struct {
		name  string
		extra func(*testing.T) string
	}{{"bind", bindFails}, {"tls", tlsFails}} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := startUBackend(t, "a", "", false), startUBackend(t, "b", "", false)
			port := freePort(t)
			conf := failConf(port, a.addr, b.addr, "health_check interval=100ms uri=/health;", "")
			g := startGate(t, conf)
			a.health.Store(500)
			waitFor(t, 10*time.Second, "a to be marked unhealthy", func() bool {
				return strings.Contains(g.errorLog(), "("+a.addr+") is unhealthy")
			})
			get := newGetter("")
			url := fmt.Sprintf("http://127.0.0.1:%d/x", port)
			for i := 0; i < 4; i++ {
				get.get(t, url)
			}
			before := metricLines(t, port, "wsgate_upstream_peer")

			if g.reload(t, failConf(port, a.addr, b.addr, "", tc.extra(t))) {
				t.Fatal("the reload succeeded")
			}
			// Let the running checker probe a few more times.
			hits := a.healthHits.Load()
			waitFor(t, 10*time.Second, "more health checks", func() bool { return a.healthHits.Load() >= hits+3 })

			if after := metricLines(t, port, "wsgate_upstream_peer"); strings.Join(after, "\n") != strings.Join(before, "\n") {
				t.Errorf("peer metrics changed by a failed reload:\nbefore:\n%s\nafter:\n%s", strings.Join(before, "\n"), strings.Join(after, "\n"))
			}
			for i := 0; i < 10; i++ {
				if st, be, _ := get.get(t, url); st != 200 || be != "b" {
					t.Fatalf("request %d after the failed reload: %d from %q; a still fails its health check", i, st, be)
				}
			}
			if n := a.requests.Load(); n != 0 {
				t.Fatalf("the unhealthy peer got %d requests", n)
			}
		})
	}
}

// TestReloadFailedStartsNoChecker: a failed reload starts no health check
// of its own. The interval is an hour, so each checker probes once, when
// it starts: the running one at startup, the next at the good reload.
func TestReloadFailedStartsNoChecker(t *testing.T) {
	a := startUBackend(t, "a", "", false)
	dead := deadAddr(t)
	port := freePort(t)
	hc := "health_check interval=1h uri=/health;"
	conf := failConf(port, a.addr, dead+" down", hc, "")
	g := startGate(t, conf)
	waitFor(t, 10*time.Second, "the startup probe", func() bool { return a.healthHits.Load() == 1 })
	for i := 0; i < 5; i++ {
		if g.reload(t, failConf(port, a.addr, dead+" down", hc, bindFails(t))) {
			t.Fatal("the reload succeeded")
		}
	}
	if !g.reload(t, strings.Replace(conf, "connect_timeout 2s", "connect_timeout 3s", 1)) {
		t.Fatalf("the good reload failed:\n%s", g.errorLog())
	}
	waitFor(t, 10*time.Second, "the probe of the good reload's checker", func() bool { return a.healthHits.Load() >= 2 })
	// A request through the gate orders after any probe already sent.
	if st, _, _ := newGetter("").get(t, fmt.Sprintf("http://127.0.0.1:%d/x", port)); st != 200 {
		t.Fatalf("status %d", st)
	}
	if n := a.healthHits.Load(); n != 2 {
		t.Fatalf("the backend got %d probes; want 2 (startup and the good reload): failed reloads started checkers", n)
	}
}
