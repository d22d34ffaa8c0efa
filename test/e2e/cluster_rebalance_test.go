package e2e

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// rebalanceConf is one instance behind HAProxy (PROXY protocol) with
// cluster_rebalance, and its metrics on a port of their own. Arguments:
// Redis address, listening port, backend, metrics port.
const rebalanceConf = `
error_log {{DIR}}/error.log info;
events { worker_connections 10000; }
http {
    cluster_store redis://%s timeout=1s;
    cluster_rebalance threshold=10%% rate=200/s;
    server {
        listen 127.0.0.1:%d proxy_protocol;
        location / {
            proxy_pass http://%s;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }
    }
    server {
        listen 127.0.0.1:%d;
        location = /metrics { metrics; }
    }
}`

// haproxyConf balances TCP connections with the least connections over
// four instances (g4 disabled until the test enables it through the
// runtime API), sending the PROXY protocol. Arguments: socket, frontend
// port, the four instance ports.
const haproxyConf = `
global
    maxconn 8000
    stats socket %s mode 600 level admin
defaults
    mode tcp
    timeout connect 5s
    timeout client 10m
    timeout server 10m
frontend fe
    bind 127.0.0.1:%d
    default_backend gates
backend gates
    balance leastconn
    server g1 127.0.0.1:%d send-proxy
    server g2 127.0.0.1:%d send-proxy
    server g3 127.0.0.1:%d send-proxy
    server g4 127.0.0.1:%d send-proxy disabled
`

// countingBackend is a WebSocket echo server that counts the messages
// each client ("id:seq" texts) got through to it.
type countingBackend struct {
	srv  *httptest.Server
	mu   sync.Mutex
	got  map[string]int
	open atomic.Int64
}

func startCountingBackend(t *testing.T) *countingBackend {
	b := &countingBackend{got: map[string]int{}}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		b.open.Add(1)
		defer b.open.Add(-1)
		defer c.Close()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			id, _, _ := strings.Cut(string(msg), ":")
			b.mu.Lock()
			b.got[id]++
			b.mu.Unlock()
			if c.WriteMessage(mt, msg) != nil {
				return
			}
		}
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *countingBackend) received(id string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.got[id]
}

// haproxyProc is HAProxy run in the foreground, stopped by its PID.
type haproxyProc struct {
	cmd  *exec.Cmd
	sock string
	out  *syncBuffer
}

func startHAProxy(t *testing.T, conf string, sock string) *haproxyProc {
	t.Helper()
	if _, err := exec.LookPath("haproxy"); err != nil {
		t.Fatalf("haproxy is not installed (Debian package haproxy): %v", err)
	}
	p := filepath.Join(t.TempDir(), "haproxy.cfg")
	os.WriteFile(p, []byte(conf), 0o644)
	h := &haproxyProc{sock: sock, out: &syncBuffer{}}
	h.cmd = exec.Command("haproxy", "-db", "-f", p)
	h.cmd.Stdout, h.cmd.Stderr = h.out, h.out
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.cmd.Process.Signal(syscall.SIGUSR1) // soft stop
		done := make(chan struct{})
		go func() { h.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(slow(10 * time.Second)):
			h.cmd.Process.Kill()
			<-done
		}
	})
	waitFor(t, 15*time.Second, "haproxy's runtime socket", func() bool {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return h
}

// command sends one runtime API command and returns the answer.
func (h *haproxyProc) command(t *testing.T, cmd string) string {
	t.Helper()
	c, err := net.Dial("unix", h.sock)
	if err != nil {
		t.Fatalf("haproxy socket: %v\n%s", err, h.out)
	}
	defer c.Close()
	fmt.Fprintf(c, "%s\n", cmd)
	var b strings.Builder
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(slow(5 * time.Second)))
	for {
		n, err := c.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

// rebalanceCluster is three instances with cluster_rebalance behind
// HAProxy, sharing a Redis store and a counting backend, and the port of
// a fourth that HAProxy lists disabled.
type rebalanceCluster struct {
	redis         *redisProc
	be            *countingBackend
	h             *haproxyProc
	url           string // HAProxy's front end
	ports, mports [4]int // the instances' listening and metrics ports
	gates         []*gate
}

func startRebalanceCluster(t *testing.T) *rebalanceCluster {
	rc := &rebalanceCluster{redis: startRedis(t), be: startCountingBackend(t)}
	for i := range rc.ports {
		rc.ports[i], rc.mports[i] = freePort(t), freePort(t)
	}
	for range 3 {
		rc.startGate(t)
	}
	front := freePort(t)
	sock := filepath.Join(t.TempDir(), "haproxy.sock")
	rc.h = startHAProxy(t, fmt.Sprintf(haproxyConf, sock, front, rc.ports[0], rc.ports[1], rc.ports[2], rc.ports[3]), sock)
	rc.url = fmt.Sprintf("ws://127.0.0.1:%d/", front)
	return rc
}

// startGate starts the next instance; the fourth stays disabled in
// HAProxy until a test enables it.
func (rc *rebalanceCluster) startGate(t *testing.T) {
	i := len(rc.gates)
	conf := fmt.Sprintf(rebalanceConf, rc.redis.addr(), rc.ports[i], rc.be.srv.Listener.Addr().String(), rc.mports[i])
	rc.gates = append(rc.gates, startGate(t, conf))
}

// rbClient is one client of the rebalancing test: it sends "id:seq" and
// waits for the echo, with a pause between messages, and reconnects
// through HAProxy when the proxy closes it with 1012.
type rbClient struct {
	id       string
	sent     int // messages written before the connection's close
	restarts int
}

// TestClusterRebalanceHAProxy: 3,000 WebSockets through HAProxy over
// three instances; a fourth starts and HAProxy takes it in; the instances
// above the mean close their excess with 1012, the clients reconnect, and
// every instance ends within the threshold of the mean. Every message a
// client sent before its close frame reached the backend. It runs in a CI
// step of its own (WSGATE_CLUSTER_LONG=1), without -race.
func TestClusterRebalanceHAProxy(t *testing.T) {
	if os.Getenv("WSGATE_CLUSTER_LONG") == "" {
		t.Skip("set WSGATE_CLUSTER_LONG=1 (CI runs it in a step of its own, without -race)")
	}
	const clients, threshold = 3000, 0.10
	rc := startRebalanceCluster(t)
	be, h, url := rc.be, rc.h, rc.url

	open := func() []float64 {
		var n []float64
		for i, p := range rc.mports {
			if i < len(rc.gates) {
				n = append(n, metric(t, fmt.Sprintf("127.0.0.1:%d", p), "wsgate_tunnels_active"))
			}
		}
		return n
	}

	// Connect every client, 30 dialers at a time.
	cs := make([]*rbClient, clients)
	conns := make([]*websocket.Conn, clients)
	d := websocket.Dialer{HandshakeTimeout: slow(20 * time.Second)}
	var wg sync.WaitGroup
	var dialErr atomic.Value
	start := time.Now()
	for w := range 30 {
		wg.Go(func() {
			for i := w; i < clients; i += 30 {
				cs[i] = &rbClient{id: strconv.Itoa(i)}
				c, _, err := d.Dial(url, nil)
				if err != nil {
					dialErr.Store(err)
					return
				}
				conns[i] = c
			}
		})
	}
	wg.Wait()
	t.Logf("%d WebSockets open through haproxy in %v", clients, time.Since(start))
	if err := dialErr.Load(); err != nil {
		t.Fatalf("dialing through haproxy: %v", err)
	}
	waitFor(t, 30*time.Second, "3,000 tunnels on the three instances", func() bool {
		n := open()
		return n[0]+n[1]+n[2] == clients
	})
	t.Logf("before: %v", open())

	// Every client talks until stop, reconnecting after 1012.
	stop := make(chan struct{})
	var rebalanced atomic.Int64
	var failures atomic.Int64
	var failMu sync.Mutex
	var firstFail error
	fail := func(err error) {
		failures.Add(1)
		failMu.Lock()
		if firstFail == nil {
			firstFail = err
		}
		failMu.Unlock()
	}
	for i := range clients {
		wg.Go(func() {
			c, cl := conns[i], cs[i]
			pause := time.Duration(500+i%1000) * time.Millisecond
			for {
				err := talk(c, cl, pause, stop)
				if err == nil {
					return
				}
				var ce *websocket.CloseError
				if !errors.As(err, &ce) || ce.Code != 1012 {
					fail(fmt.Errorf("client %s: %w", cl.id, err))
					return
				}
				c.Close()
				rebalanced.Add(1)
				cl.restarts++
				if c, _, err = d.Dial(url, nil); err != nil {
					fail(fmt.Errorf("client %s reconnecting: %w", cl.id, err))
					return
				}
			}
		})
	}

	rc.startGate(t) // the fourth
	if out := h.command(t, "enable server gates/g4"); strings.TrimSpace(out) != "" {
		t.Fatalf("haproxy enable server: %q", out)
	}
	var last []float64 // the instances' tunnels at the last look, for a timeout's message
	balanced := func() bool {
		if failures.Load() > 0 {
			return true
		}
		n := open()
		last = n
		var sum float64
		for _, v := range n {
			sum += v
		}
		mean := sum / float64(len(n))
		for _, v := range n {
			if math.Abs(v-mean) > mean*threshold {
				return false
			}
		}
		return sum == clients
	}
	wait := slow(90 * time.Second)
	for deadline := time.Now().Add(wait); !balanced(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for every instance within the threshold of the mean: tunnels %v, %d clients reconnected after 1012", wait, last, rebalanced.Load())
		}
	}
	t.Logf("after: %v, %d clients reconnected after 1012", open(), rebalanced.Load())
	close(stop)
	wg.Wait()
	if failures.Load() > 0 {
		t.Fatalf("%d clients failed; first: %v", failures.Load(), firstFail)
	}
	if rebalanced.Load() < clients/5 {
		t.Fatalf("only %d clients were moved with 1012", rebalanced.Load())
	}
	lost := 0
	for _, cl := range cs {
		if got := be.received(cl.id); got < cl.sent {
			if lost++; lost <= 5 {
				t.Errorf("client %s sent %d messages before its close frames (%d reconnects); the backend got %d", cl.id, cl.sent, cl.restarts, got)
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%d clients lost messages", lost)
	}
}

// talk sends a message every pause and waits for its echo, until stop
// (then it closes with 1000 and returns nil) or the connection ends (the
// error). A goroutine reads all the while, as a real client does, so that
// gorilla answers the proxy's close frame as soon as it arrives: a message
// written before that answer is counted in cl.sent (and must reach the
// backend, before the answer), one written after it fails with
// websocket.ErrCloseSent and is not counted. A client that read only after
// each write could meet the close after the proxy's 2 s of grace, and its
// message would be written to a closed tunnel.
func talk(c *websocket.Conn, cl *rbClient, pause time.Duration, stop chan struct{}) error {
	echoes, ended := make(chan struct{}, 1), make(chan error, 1)
	go func() {
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				ended <- err
				return
			}
			echoes <- struct{}{}
		}
	}()
	tick := time.NewTimer(pause)
	defer tick.Stop()
	for seq := 0; ; seq++ {
		select {
		case <-stop:
			c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(5*time.Second))
			c.Close()
			<-ended
			return nil
		case err := <-ended:
			return err
		case <-tick.C:
		}
		tick.Reset(pause)
		c.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if err := c.WriteMessage(websocket.TextMessage, []byte(cl.id+":"+strconv.Itoa(seq))); err != nil {
			// Written after the close was answered: the reader knows why.
			return <-ended
		}
		cl.sent++
		select {
		case <-echoes:
		case err := <-ended:
			return err
		case <-time.After(60 * time.Second):
			c.Close()
			<-ended
			return errors.New("no echo in 60 s")
		}
	}
}

// TestClusterRebalanceUnroutedInstance: a fourth instance joins the
// cluster but HAProxy never sends it a client (it stays disabled there).
// The three others are above the mean; the tunnels they close come back
// to them. Each finds that closing does not lower its count, says so in a
// warning and stops closing, rather than closing at its rate for ever.
func TestClusterRebalanceUnroutedInstance(t *testing.T) {
	const clients = 300
	rc := startRebalanceCluster(t)
	url := rc.url

	d := websocket.Dialer{HandshakeTimeout: slow(20 * time.Second)}
	conns := make([]*websocket.Conn, clients)
	for i := range conns {
		c, _, err := d.Dial(url, nil)
		if err != nil {
			t.Fatalf("dialing through haproxy: %v", err)
		}
		conns[i] = c
	}
	// Every client reconnects after a 1012; the count of those is the
	// closing the instances do.
	var moved atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	cur := make([]atomic.Pointer[websocket.Conn], clients)
	defer func() {
		close(stop)
		for i := range cur {
			cur[i].Load().Close()
		}
		wg.Wait()
	}()
	for i, c := range conns {
		cur[i].Store(c)
		wg.Go(func() {
			for {
				_, _, err := c.ReadMessage()
				var ce *websocket.CloseError
				if !errors.As(err, &ce) || ce.Code != 1012 {
					return // the end of the test, or a failure the counts show
				}
				c.Close()
				moved.Add(1)
				for c, _, err = d.Dial(url, nil); err != nil; c, _, err = d.Dial(url, nil) {
					select {
					case <-stop:
						return
					case <-time.After(10 * time.Millisecond):
					}
				}
				cur[i].Store(c)
				select {
				case <-stop:
					c.Close()
					return
				default:
				}
			}
		})
	}

	rc.startGate(t) // the fourth
	warned := func(g *gate) bool {
		b, _ := os.ReadFile(filepath.Join(g.dir, "error.log"))
		return strings.Contains(string(b), "the load balancer sends their clients back to this instance")
	}
	waitFor(t, 30*time.Second, "a warning from each instance above the mean", func() bool {
		return warned(rc.gates[0]) && warned(rc.gates[1]) && warned(rc.gates[2])
	})
	// The last closes came a tick (100 ms) before the warnings; their
	// clients count them once they read them.
	time.Sleep(500 * time.Millisecond)
	before := moved.Load()
	time.Sleep(3 * time.Second)
	if after := moved.Load(); after > before {
		t.Fatalf("%d more tunnels were closed with 1012 in the 3 s after every instance said it stopped (%d before)", after-before, before)
	}
	if warned(rc.gates[3]) {
		t.Fatal("the instance with no clients warned")
	}
	t.Logf("%d tunnels closed with 1012 before the instances stopped", before)
}
