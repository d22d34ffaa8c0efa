package e2e

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// sharedAcross checks, through three instances, that a user's WebSockets
// and a slow zone's burst are counted once for the cluster.
func sharedAcross(t *testing.T, addrs []string) {
	t.Helper()
	waitFor(t, 15*time.Second, "the instances to reach the store", func() bool {
		for _, a := range addrs {
			if metric(t, a, "wsgate_cluster_store_up") != 1 {
				return false
			}
		}
		return true
	})
	var held []*websocket.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := range 4 {
		st, c := dialUser(t, addrs[i%3], "t")
		if st != 101 {
			t.Fatalf("connection %d: %d", i+1, st)
		}
		held = append(held, c)
	}
	if st, _ := dialUser(t, addrs[1], "t"); st != 429 {
		t.Fatalf("fifth connection: %d, want 429", st)
	}
	c := &http.Client{}
	for i := range 3 {
		if st := userStatus(t, c, addrs[i], "/slow", "t"); st != 200 {
			t.Fatalf("request %d of the burst: %d", i+1, st)
		}
	}
	if st := userStatus(t, c, addrs[0], "/slow", "t"); st != 429 {
		t.Fatalf("request past the shared burst: %d, want 429", st)
	}
}

// TestClusterThroughSentinel: three instances find the store through a
// real redis-sentinel.
func TestClusterThroughSentinel(t *testing.T) {
	if _, err := exec.LookPath("redis-sentinel"); err != nil {
		t.Fatalf("redis-sentinel is not installed (Debian package redis-sentinel): %v", err)
	}
	master := startRedis(t)
	conf := filepath.Join(t.TempDir(), "sentinel.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("sentinel monitor mymaster 127.0.0.1 %d 1\n", master.port)), 0o644)
	port := freePort(t)
	sen := exec.Command("redis-sentinel", conf, "--port", strconv.Itoa(port), "--bind", "127.0.0.1")
	out := &syncBuffer{}
	sen.Stdout, sen.Stderr = out, out
	if err := sen.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sen.Process.Kill(); sen.Wait() })
	_, addrs := startGates(t, 3, fmt.Sprintf("redis+sentinel://127.0.0.1:%d/mymaster", port))
	sharedAcross(t, addrs)
}

// TestClusterOnRedisCluster: three instances share zones on a three-node
// Redis Cluster made with redis-cli --cluster create.
func TestClusterOnRedisCluster(t *testing.T) {
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Fatalf("redis-cli is not installed (Debian package redis-tools): %v", err)
	}
	dir := t.TempDir()
	var addrs []string
	for i := range 3 {
		port := clusterPortPair(t)
		cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, fmt.Sprintf("nodes-%d.conf", i)), "--dir", dir)
		out := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		waitFor(t, 15*time.Second, "a cluster node to listen", func() bool {
			c, err := net.Dial("tcp", addr)
			if err == nil {
				c.Close()
			}
			return err == nil
		})
		addrs = append(addrs, addr)
	}
	create := exec.Command("redis-cli", append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")...)
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	waitFor(t, 20*time.Second, "the Redis Cluster to be ok", func() bool {
		for _, a := range addrs {
			host, port, _ := net.SplitHostPort(a)
			out, _ := exec.Command("redis-cli", "-h", host, "-p", port, "cluster", "info").Output()
			if !strings.Contains(string(out), "cluster_state:ok") {
				return false
			}
		}
		return true
	})
	_, gates := startGates(t, 3, "redis+cluster://"+strings.Join(addrs, ","))
	sharedAcross(t, gates)
}

// clusterPortPair finds a port that is free together with its cluster bus
// port (port + 10000).
func clusterPortPair(t *testing.T) int {
	t.Helper()
	for range 100 {
		p := 20000 + rand.IntN(30000)
		a, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		b, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+10000))
		a.Close()
		if err != nil {
			continue
		}
		b.Close()
		return p
	}
	t.Fatal("no free port pair for a cluster node")
	return 0
}
