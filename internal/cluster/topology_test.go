package cluster

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// exercise runs a limit_req check, a connection lease and a session
// command through s.
func exercise(t *testing.T, s *Store) {
	t.Helper()
	waitFor(t, "the store to be up", s.Up)
	res, err := s.CheckReq([]string{ReqKey("z", []byte("k")), ReqKey("y", []byte("k"))}, []int64{1000, 1000}, []int64{0, 0}, 0)
	if err != nil || res.Rejected != -1 {
		t.Fatalf("CheckReq: %+v %v", res, err)
	}
	if res, _ := s.CheckReq([]string{ReqKey("z", []byte("k"))}, []int64{1000}, []int64{0}, 0); res.Rejected != 0 {
		t.Fatalf("second request over burst 0 passed: %+v", res)
	}
	f := ConnField("c", []byte("k"))
	if ok, err := s.AcquireConn(f, 1); !ok || err != nil {
		t.Fatalf("AcquireConn: %v %v", ok, err)
	}
	if ok, _ := s.AcquireConn(f, 1); ok {
		t.Fatal("second connection over limit 1 counted")
	}
	rej, _, got, err := s.ChargeReqAcquireConns([]string{ReqKey("x", []byte("k"))}, []int64{1000}, []int64{0}, []string{ConnField("d", []byte("k"))}, []int{1}, nil)
	if err != nil || rej != -1 || !got[0] {
		t.Fatalf("pipelined: %d %v %v", rej, got, err)
	}
	closed := make(chan string, 1)
	s.Register("u", "127.0.0.1", "/", func(code uint16, reason string) { closed <- fmt.Sprint(code, reason) })
	waitFor(t, "the session to be listed", func() bool {
		l, _ := s.Sessions("u")
		return len(l) == 1
	})
	if _, err := s.CloseSessions("u", 4000, "x", time.Minute); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-closed:
		if got != "4000x" {
			t.Fatalf("closed with %q", got)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the close command did not arrive")
	}
	waitFor(t, "the ban", func() bool { return s.Banned("u") })
}

// Through Redis Sentinel: the store asks a real redis-sentinel for the
// master.
func TestSentinel(t *testing.T) {
	if _, err := exec.LookPath("redis-sentinel"); err != nil {
		t.Fatalf("redis-sentinel is not installed (Debian package redis-sentinel): %v", err)
	}
	master := startRedis(t)
	conf := filepath.Join(t.TempDir(), "sentinel.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("sentinel monitor mymaster 127.0.0.1 %d 1\nsentinel down-after-milliseconds mymaster 1000\n", master.port)), 0o644)
	sen := &redisServer{t: t, port: freePort(t), bin: "redis-sentinel"}
	startWithFile(t, sen, conf) // redis-sentinel takes its file first
	s := openStore(t, fmt.Sprintf("redis+sentinel://127.0.0.1:%d/mymaster", sen.port), nil)
	exercise(t, s)
}

func startWithFile(t *testing.T, r *redisServer, conf string) {
	t.Helper()
	r.cmd = exec.Command(r.bin, conf, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1")
	r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.out
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.stop)
	waitFor(t, r.bin+" to listen", func() bool {
		c, err := net.Dial("tcp", r.addr())
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// clusterPort finds a port that is free with its cluster bus port
// (port + 10000).
func clusterPort(t *testing.T) int {
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
	t.Fatal("no free port pair")
	return 0
}

// Through a three-node Redis Cluster made with redis-cli --cluster
// create: every script's keys share the {wsgate} hash tag.
func TestRedisCluster(t *testing.T) {
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Fatalf("redis-cli is not installed (Debian package redis-tools): %v", err)
	}
	dir := t.TempDir()
	var addrs []string
	for i := range 3 {
		n := &redisServer{t: t, port: clusterPort(t), bin: "redis-server"}
		n.args = []string{"--save", "", "--appendonly", "no", "--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, fmt.Sprintf("nodes-%d.conf", i)), "--dir", dir}
		n.start()
		t.Cleanup(n.stop)
		addrs = append(addrs, n.addr())
	}
	create := exec.Command("redis-cli", append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")...)
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	waitFor(t, "the cluster to be ok", func() bool {
		for _, a := range addrs {
			host, port, _ := net.SplitHostPort(a)
			out, _ := exec.Command("redis-cli", "-h", host, "-p", port, "cluster", "info").Output()
			if !strings.Contains(string(out), "cluster_state:ok") {
				return false
			}
		}
		return true
	})
	s := openStore(t, "redis+cluster://"+strings.Join(addrs[:2], ","), nil)
	exercise(t, s)
}
