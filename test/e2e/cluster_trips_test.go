package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestClusterOneRoundTripPerHandshake: a WebSocket handshake through a
// location with a shared limit_req, a shared limit_conn and a
// websocket_session_key makes one round trip to the store: the bucket
// script, the lease script and the session's registration go in one
// pipeline. Counted with the instance's own count of round trips (a
// command or a pipeline is one) over 100 handshakes whose tunnels stay
// open (the close's writes are not part of the handshake); the
// once-a-second calls (heartbeat, command stream read, upstream poll) are
// allowed for, at most 4 a second.
func TestClusterOneRoundTripPerHandshake(t *testing.T) {
	r := startRedis(t)
	be := startBackend(t, "b1")
	port := freePort(t)
	startGate(t, fmt.Sprintf(benchConf, fmt.Sprintf("cluster_store redis://%s timeout=1s;", r.addr()), "sync", "sync", port, be.addr))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	url := "ws://" + addr + "/ws"
	waitFor(t, 10*time.Second, "the store to be up", func() bool { return metric(t, addr, "wsgate_cluster_store_up") == 1 })
	warm, _ := dial(t, url, http.Header{"X-User": {"warm"}})
	echo(t, warm, "x")

	const n = 100
	before := metric(t, addr, "wsgate_cluster_round_trips_total")
	start := time.Now()
	conns := make([]*websocket.Conn, 0, n)
	for i := range n {
		c, _ := dial(t, url, http.Header{"X-User": {fmt.Sprintf("u%d", i)}})
		conns = append(conns, c)
	}
	trips := metric(t, addr, "wsgate_cluster_round_trips_total") - before
	background := 4 * (int(time.Since(start).Seconds()) + 1)
	t.Logf("%v round trips for %d handshakes in %v", trips, n, time.Since(start))
	if trips < n || trips > float64(n+background) {
		t.Fatalf("%v round trips for %d handshakes (background allowance %d): want one per handshake", trips, n, background)
	}
	// The registrations that rode along are in the store.
	for _, u := range []string{"u0", "u50", "u99"} {
		if got := redisReply(t, r, "HLEN", "wsgate:{wsgate}:sess:"+u); got != ":1" {
			t.Fatalf("session hash of %s: %q, want :1", u, got)
		}
	}
	for _, c := range conns {
		c.Close()
	}
	waitFor(t, 10*time.Second, "the closed sessions to leave the store", func() bool {
		return redisReply(t, r, "HLEN", "wsgate:{wsgate}:sess:u99") == ":0"
	})
}

// redisReply sends one command to Redis and returns the first line of its
// reply.
func redisReply(t *testing.T, r *redisProc, args ...string) string {
	t.Helper()
	c, err := net.Dial("tcp", r.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(c, "$%d\r\n%s\r\n", len(a), a)
	}
	c.SetReadDeadline(time.Now().Add(slow(5 * time.Second)))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(line)
}
