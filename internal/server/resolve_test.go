package server

import (
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/accesslog"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/limit"
	"github.com/wsgate/wsgate/internal/resolver/dnstest"
	"github.com/wsgate/wsgate/internal/upstream"
)

func peerAddrs(p *upstream.Upstream) []string {
	var out []string
	for _, peer := range p.Peers() {
		out = append(out, peer.Addr())
	}
	slices.Sort(out)
	return out
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestResolveFollowsGenerations: a generation re-resolves its `resolve`
// servers from start to discard; the next one starts from the addresses
// the previous one knew; no watcher outlives its generation.
func TestResolveFollowsGenerations(t *testing.T) {
	ns := dnstest.Start(t)
	ns.SetHost("app.test", "127.0.0.2")
	cfg := loadConf(t, fmt.Sprintf(`http {
        access_log off;
        upstream u { zone u 64k; resolver %s ipv6=off; server app.test:80 resolve; server 127.0.0.9:80; }
        server { listen 127.0.0.1:1; location / { proxy_pass http://u; } }
    }`, ns.Addr))
	log, err := errlog.Open([]errlog.Target{{Path: filepath.Join(t.TempDir(), "error.log"), Level: errlog.Info}})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	srv := &Server{limits: limit.NewRegistry(nil), stop: make(chan struct{})} // as Check builds one: no loops of its own
	srv.log.Store(log)
	base := runtime.NumGoroutine()
	build := func(prev *generation) *generation {
		rt, err := buildGeneration(srv, cfg, prev, log, limit.NewRegistry(nil).Begin(), &accesslog.Files{})
		if err != nil {
			t.Fatal(err)
		}
		return rt
	}
	cu := cfg.HTTP.Upstreams[0]
	rt1 := build(nil)
	if got := peerAddrs(rt1.pools[cu]); !slices.Equal(got, []string{"127.0.0.9:80"}) {
		t.Fatalf("before start: %v, want only the static server", got)
	}
	rt1.start()
	waitUntil(t, "the first resolution", func() bool {
		return slices.Equal(peerAddrs(rt1.pools[cu]), []string{"127.0.0.2:80", "127.0.0.9:80"})
	})

	rt2 := build(rt1)
	if got := peerAddrs(rt2.pools[cu]); !slices.Equal(got, []string{"127.0.0.2:80", "127.0.0.9:80"}) {
		t.Fatalf("a new generation starts from %v, want what the previous one knew", got)
	}
	rt2.start()
	rt1.discard()
	ns.SetHost("app.test", "127.0.0.3")
	waitUntil(t, "the new generation to follow the record", func() bool {
		return slices.Equal(peerAddrs(rt2.pools[cu]), []string{"127.0.0.3:80", "127.0.0.9:80"})
	})
	if got := peerAddrs(rt1.pools[cu]); !slices.Equal(got, []string{"127.0.0.2:80", "127.0.0.9:80"}) {
		t.Fatalf("the discarded generation still resolves: %v", got)
	}
	rt2.discard()
	for deadline := time.Now().Add(20 * time.Second); runtime.NumGoroutine() > base; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
	}
}
