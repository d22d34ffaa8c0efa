package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// clusterConf is one instance of a cluster: shared limit_req zones at
// 50 r/s with burst 10 and at 1 r/m with burst 2, and a shared limit_conn
// zone of 4 WebSockets per user. Arguments: Redis port, listening port, backend address.
const clusterConf = `
error_log {{DIR}}/error.log info;
http {
    cluster_store %s timeout=1s;
    limit_req_zone $http_x_user zone=rl:1m rate=50r/s sync;
    limit_req_zone $http_x_user zone=slow:1m rate=1r/m sync;
    limit_conn_zone $http_x_user zone=ws:1m sync;
    limit_req_status 429;
    limit_conn_status 429;
    server {
        listen 127.0.0.1:%d;
        location = /metrics { metrics; }
        location /api/ { api; }
        location /ws {
            limit_conn ws 4;
            proxy_pass http://%s;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }
        location /slow {
            limit_req zone=slow burst=2 nodelay;
            proxy_pass http://%[3]s;
        }
        location / {
            limit_req zone=rl burst=10 nodelay;
            proxy_pass http://%[3]s;
        }
    }
}`

// startCluster starts Redis, a backend and n instances.
func startCluster(t *testing.T, n int) (*redisProc, []*gate, []string) {
	t.Helper()
	r := startRedis(t)
	gates, addrs := startGates(t, n, "redis://"+r.addr())
	return r, gates, addrs
}

// startGates starts a backend and n instances using the store at url.
func startGates(t *testing.T, n int, url string) ([]*gate, []string) {
	t.Helper()
	be := startBackend(t, "b1")
	var gates []*gate
	var addrs []string
	for range n {
		port := freePort(t)
		gates = append(gates, startGate(t, fmt.Sprintf(clusterConf, url, port, be.addr)))
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", port))
	}
	return gates, addrs
}

// drive sends rps requests a second for d, spread round-robin over addrs,
// all as user, and returns how many were admitted (200) and the time it
// took.
func drive(t *testing.T, addrs []string, user string, rps int, d time.Duration) (int, time.Duration) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer c.CloseIdleConnections()
	start := time.Now()
	n := int(d.Seconds() * float64(rps))
	admitted := 0
	for i := range n {
		if wait := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rps))); wait > 0 {
			time.Sleep(wait) // pacing the load, not waiting for a condition
		}
		switch st := userStatus(t, c, addrs[i%len(addrs)], "/", user); st {
		case 200:
			admitted++
		case 429:
		default:
			t.Fatalf("request %d: status %d", i, st)
		}
	}
	return admitted, time.Since(start)
}

// TestClusterLimitReqAcrossInstances: the same traffic, three times the
// zone's rate for 4 s, admits as many requests spread over three
// instances as one instance admits alone (within 10%): about
// 1 + burst + rate x duration = 211.
func TestClusterLimitReqAcrossInstances(t *testing.T) {
	_, _, addrs := startCluster(t, 3)
	solo, soloTime := drive(t, addrs[:1], "solo", 150, 4*time.Second)
	shared, sharedTime := drive(t, addrs, "shared", 150, 4*time.Second)
	t.Logf("admitted: one instance %d in %v, three instances %d in %v (ideal %.0f and %.0f)",
		solo, soloTime, shared, sharedTime, 11+50*soloTime.Seconds(), 11+50*sharedTime.Seconds())
	if ideal := 11 + 50*soloTime.Seconds(); solo < 200 || float64(solo) > 1.2*ideal {
		t.Fatalf("one instance admitted %d, want at least 200 (rate x duration >= 200) and about %.0f", solo, ideal)
	}
	// On a loaded machine the two runs may last a little differently:
	// compare for the same duration.
	want := float64(solo) * (11 + 50*sharedTime.Seconds()) / (11 + 50*soloTime.Seconds())
	if d := float64(shared) - want; d > want/10 || -d > want/10 {
		t.Fatalf("three instances admitted %d, one instance %d (%.0f for the same duration): more than 10%% apart", shared, solo, want)
	}
}

func dialUser(t *testing.T, addr, user string) (int, *websocket.Conn) {
	t.Helper()
	st, c, _ := dialFrom(t, "", "ws://"+addr+"/ws", http.Header{"X-User": {user}})
	return st, c
}

// TestClusterLimitConnLeaseAfterKill: four WebSockets per user across the
// cluster; when an instance is killed with SIGKILL its connections stop
// counting within a few seconds (its lease expires), and a closed
// connection frees its slot at once.
func TestClusterLimitConnLeaseAfterKill(t *testing.T) {
	_, gates, addrs := startCluster(t, 3)
	var held []*websocket.Conn
	for _, a := range []string{addrs[0], addrs[0], addrs[1], addrs[1]} {
		st, c := dialUser(t, a, "u")
		if st != 101 {
			t.Fatalf("connection %d through %s: %d", len(held)+1, a, st)
		}
		held = append(held, c)
	}
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	if st, _ := dialUser(t, addrs[2], "u"); st != 429 {
		t.Fatalf("fifth connection through a third instance: %d, want 429", st)
	}
	gates[0].cmd.Process.Kill()
	<-gates[0].done
	killed := time.Now()
	var got *websocket.Conn
	waitFor(t, 15*time.Second, "the killed instance's connections to stop counting", func() bool {
		st, c := dialUser(t, addrs[2], "u")
		got = c
		return st == 101
	})
	t.Logf("a killed instance's lease expired after %v", time.Since(killed).Round(100*time.Millisecond))
	held = append(held, got)
	st, c := dialUser(t, addrs[2], "u")
	if st != 101 {
		t.Fatalf("second slot of the killed instance: %d", st)
	}
	held = append(held, c)
	if st, _ := dialUser(t, addrs[1], "u"); st != 429 {
		t.Fatalf("fifth live connection: %d, want 429", st)
	}
	// Closing one frees its slot across the cluster.
	held[2].WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
	held[2].SetReadDeadline(time.Now().Add(slow(5 * time.Second)))
	held[2].ReadMessage()
	held[2].Close()
	waitFor(t, 5*time.Second, "the closed connection's slot", func() bool {
		st, c := dialUser(t, addrs[2], "u")
		if c != nil {
			held[2] = c
		}
		return st == 101
	})
}

// TestClusterStoreDownAndBack: Redis is killed mid-test and started again.
// Meanwhile traffic flows: each instance limits to its share (rate / 3),
// says so once in its error log and in its metrics. When Redis returns,
// the instances share the zones again, and the live WebSockets were
// counted again (an empty Redis has none of them).
func TestClusterStoreDownAndBack(t *testing.T) {
	r, gates, addrs := startCluster(t, 3)
	var held []*websocket.Conn
	for range 2 {
		st, c := dialUser(t, addrs[0], "w")
		if st != 101 {
			t.Fatalf("connection: %d", st)
		}
		held = append(held, c)
	}
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	waitFor(t, 10*time.Second, "three instances in the store", func() bool {
		return metric(t, addrs[0], "wsgate_cluster_instances") == 3
	})

	r.stop()
	c := &http.Client{}
	admitted := 0
	start := time.Now()
	for range 40 {
		if userStatus(t, c, addrs[0], "/", "f") == 200 {
			admitted++
		}
	}
	// Local share: burst 10 at 50/3 r/s; 40 quick requests admit 11 plus
	// what drains at that rate while they run (the whole rate would drain
	// three times as much).
	most := 11 + int(50.0/3*time.Since(start).Seconds()) + 1
	if admitted < 11 || admitted > most {
		t.Errorf("during the outage one instance admitted %d of 40 quick requests, want 11 to %d", admitted, most)
	}
	for _, a := range addrs {
		waitFor(t, 10*time.Second, "wsgate_cluster_store_up 0 on "+a, func() bool {
			return metric(t, a, "wsgate_cluster_store_up") == 0
		})
	}
	if code, body := apiCall(t, "127.0.0.1", "GET", "http://"+addrs[0]+"/api/9/cluster"); code != 200 || !strings.Contains(body, `"shared":false`) {
		t.Errorf("api during the outage: %d %s", code, body)
	}
	if n := strings.Count(gates[0].errorLog(), "fall back to local zones"); n != 1 {
		t.Errorf("the fallback was logged %d times, want once:\n%s", n, gates[0].errorLog())
	}

	r.start()
	for i, g := range gates {
		waitFor(t, 15*time.Second, "the instances to use the store again", func() bool {
			return strings.Contains(g.errorLog(), "is back") && metric(t, addrs[i], "wsgate_cluster_store_up") == 1
		})
	}
	if v := metric(t, addrs[1], "wsgate_cluster_fallbacks_total"); v != 1 {
		t.Errorf("wsgate_cluster_fallbacks_total %v, want 1", v)
	}
	// The two live WebSockets of the first instance count again: two more
	// fit through the third, not three.
	for range 2 {
		st, c := dialUser(t, addrs[2], "w")
		if st != 101 {
			t.Fatalf("connection after recovery: %d", st)
		}
		held = append(held, c)
	}
	if st, _ := dialUser(t, addrs[2], "w"); st != 429 {
		t.Fatalf("fifth connection after recovery: %d, want 429 (live counts were not written back)", st)
	}
	// Shared again: a burst spent through one instance is spent for all
	// (at 1 r/m, nothing drains meanwhile).
	passed := 0
	for range 3 {
		if userStatus(t, c, addrs[1], "/slow", "g") == 200 {
			passed++
		}
	}
	if st := userStatus(t, c, addrs[2], "/slow", "g"); passed != 3 || st != 429 {
		t.Errorf("after recovery: %d of the burst passed through one instance, then %d through another; want 3 and 429", passed, st)
	}
}

// TestClusterReloadToAnotherStore: a reload that points cluster_store at
// another Redis writes the open WebSockets' counts there before the new
// configuration takes a connection, and their releases go there too. The
// new store is reached through a link that delays every request by 150 ms,
// so that a count written after the reload took effect would be seen
// missing.
func TestClusterReloadToAnotherStore(t *testing.T) {
	r1, r2 := startRedis(t), startRedis(t)
	slowR2 := delayedLink(t, r2.addr(), 150*time.Millisecond)
	gates, addrs := startGates(t, 1, "redis://"+r1.addr())
	g, addr := gates[0], addrs[0]
	var held []*websocket.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range 4 {
		st, c := dialUser(t, addr, "m")
		if st != 101 {
			t.Fatalf("connection: %d", st)
		}
		held = append(held, c)
	}
	conf, _ := os.ReadFile(g.conf)
	if !g.reload(t, strings.Replace(string(conf), r1.addr(), slowR2, 1)) {
		t.Fatalf("reload failed:\n%s", g.errorLog())
	}
	if n := redisReply(t, r2, "EVAL", leaseSum, "0"); n != ":4" {
		t.Fatalf("once the reload took effect, the new store counted %s open connections, want :4", n)
	}
	// The new store knows the 4 open connections: a fifth is refused.
	waitFor(t, 10*time.Second, "the new store to hold the open connections", func() bool {
		st, c := dialUser(t, addr, "m")
		if c != nil {
			c.Close()
			t.Fatal("a fifth connection was let in after the reload")
		}
		return st == 429
	})
	held[0].Close()
	waitFor(t, 10*time.Second, "a closed connection's slot in the new store", func() bool {
		st, c := dialUser(t, addr, "m")
		if c != nil {
			held[0] = c
		}
		return st == 101
	})
}

// leaseSum is a script that adds up the connections of every instance's
// lease in a store.
const leaseSum = `local n = 0
for _, k in ipairs(redis.call('KEYS', '*:conn:*')) do
  for _, v in ipairs(redis.call('HVALS', k)) do n = n + tonumber(v) end
end
return n`

// delayedLink forwards connections from a loopback address it returns to
// addr, holding each chunk sent toward addr for d; it stops with the test.
func delayedLink(t *testing.T, addr string, d time.Duration) string {
	t.Helper()
	return rawBackend(t, func(c net.Conn) {
		defer c.Close()
		up, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		defer up.Close()
		go io.Copy(c, up)
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				time.Sleep(d)
				if _, werr := up.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	})
}
