package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

const wsConf = `
error_log {{DIR}}/error.log info;
http {
    access_log off;
    server {
        listen 127.0.0.1:%d;
        location /ws {
            proxy_pass http://%s;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            %s
        }
        location /other {
            proxy_pass http://%s;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }
    }
}`

// TestHandshakeValidation: malformed handshakes get 400, a bad version
// 426 with Sec-WebSocket-Version: 13, before any backend is contacted.
func TestHandshakeValidation(t *testing.T) {
	be := startBackend(t, "b1")
	port := freePort(t)
	startGate(t, fmt.Sprintf(wsConf, port, be.addr, "", be.addr))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	base := "Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	key := "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	tests := []struct {
		name, req string
		want      int
	}{
		{"post", "POST /ws HTTP/1.1\r\n" + base + key + "Sec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n", 400},
		{"http10", "GET /ws HTTP/1.0\r\n" + base + key + "Sec-WebSocket-Version: 13\r\n\r\n", 400},
		{"no connection upgrade", "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n" + key + "Sec-WebSocket-Version: 13\r\n\r\n", 400},
		{"no key", "GET /ws HTTP/1.1\r\n" + base + "Sec-WebSocket-Version: 13\r\n\r\n", 400},
		{"guide's 13-byte key", "GET /ws HTTP/1.1\r\n" + base + "Sec-WebSocket-Key: SGVsbG8sIHdvcmxkIQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", 400},
		{"no version", "GET /ws HTTP/1.1\r\n" + base + key + "\r\n", 400},
		{"version 8", "GET /ws HTTP/1.1\r\n" + base + key + "Sec-WebSocket-Version: 8\r\n\r\n", 426},
	}
	for _, tt := range tests {
		st, head, _ := rawRequest(t, addr, tt.req)
		if st != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, st, tt.want)
		}
		if tt.want == 426 && !strings.Contains(head, "Sec-Websocket-Version: 13") {
			t.Errorf("426 without Sec-WebSocket-Version: 13:\n%s", head)
		}
	}
	if be.lastPlain() != nil || be.upgrades.Load() != 0 {
		t.Errorf("the backend saw a request")
	}
}

// TestOriginsAndSubprotocols: a disallowed Origin or subprotocol gets 403
// and the backend sees no connection; "null" must be named.
func TestOriginsAndSubprotocols(t *testing.T) {
	be := startBackend(t, "b1")
	port := freePort(t)
	startGate(t, fmt.Sprintf(wsConf, port, be.addr, `websocket_allowed_origins https://app.example.com *.trusted.example; websocket_subprotocols chat.v2 mqtt;`, be.addr))
	url := fmt.Sprintf("ws://127.0.0.1:%d/ws", port)
	tests := []struct {
		origin, proto string
		want          int
	}{
		{"https://app.example.com", "", 101},
		{"https://APP.example.com", "", 101},
		{"http://app.example.com", "", 403},
		{"https://a.trusted.example", "", 101},
		{"http://b.c.trusted.example:8443", "", 101},
		{"https://trusted.example", "", 403},
		{"https://evil.example", "", 403},
		{"null", "", 403},
		{"", "", 101}, // no Origin: not a browser
		{"https://app.example.com", "chat.v1, chat.v2", 101},
		{"https://app.example.com", "graphql-ws", 403},
	}
	var upgrades int64
	for _, tt := range tests {
		hdr := http.Header{}
		if tt.origin != "" {
			hdr.Set("Origin", tt.origin)
		}
		if tt.proto != "" {
			hdr.Set("Sec-WebSocket-Protocol", tt.proto)
		}
		st, c, _ := dialFrom(t, "", url, hdr)
		if st != tt.want {
			t.Errorf("origin %q protocol %q: %d, want %d", tt.origin, tt.proto, st, tt.want)
		}
		if c != nil {
			c.Close()
		}
		if st == 101 {
			upgrades++
			// The backend counts an upgrade just after its 101 leaves.
			waitFor(t, 5*time.Second, "the backend to count the upgrade", func() bool { return be.upgrades.Load() == upgrades })
		}
		if st == 403 && be.upgrades.Load() != upgrades {
			t.Errorf("origin %q: the backend saw a refused handshake", tt.origin)
		}
	}
}

// TestQuitDrains200: QUIT with 200 open WebSockets: every client receives
// close 1001 (none an abnormal closure), spread over the drain period, and
// the process exits.
func TestQuitDrains200(t *testing.T) {
	be := startBackend(t, "b1")
	port := freePort(t)
	g := startGate(t, fmt.Sprintf(wsConf, port, be.addr, "websocket_drain_period 1s;", be.addr))
	url := fmt.Sprintf("ws://127.0.0.1:%d/ws", port)
	conns := make([]*websocket.Conn, 200)
	for i := range conns {
		conns[i], _ = dial(t, url, nil)
	}
	echo(t, conns[199], "ready")
	start := time.Now()
	g.signal(syscall.SIGQUIT)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first, last time.Duration = time.Hour, 0
	bad := 0
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(time.Now().Add(slow(15 * time.Second)))
			_, _, err := c.ReadMessage()
			el := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
				bad++
				return
			}
			first, last = min(first, el), max(last, el)
		}()
	}
	wg.Wait()
	if bad != 0 {
		t.Errorf("%d of 200 clients did not get close 1001", bad)
	}
	// Spread: the closes do not all land at once.
	if last-first < 300*time.Millisecond {
		t.Errorf("closes spread over %v only, want most of the 1s drain period", last-first)
	}
	if err := g.wait(15 * time.Second); err != nil {
		t.Errorf("exit: %v", err)
	}
}

// TestReloadDrainsOnlyRemoved: a reload that removes one location drains
// its tunnels with 1001; tunnels of the location that stays keep echoing.
func TestReloadDrainsOnlyRemoved(t *testing.T) {
	be := startBackend(t, "b1")
	port := freePort(t)
	g := startGate(t, fmt.Sprintf(wsConf, port, be.addr, "websocket_drain_period 200ms;", be.addr))
	base := fmt.Sprintf("ws://127.0.0.1:%d", port)
	keep, _ := dial(t, base+"/ws", nil)
	gone, _ := dial(t, base+"/other", nil)
	echo(t, keep, "a")
	echo(t, gone, "b")
	without := strings.Replace(fmt.Sprintf(wsConf, port, be.addr, "websocket_drain_period 200ms;", be.addr), "location /other {", "location /renamed {", 1)
	if !g.reload(t, without) {
		t.Fatalf("reload failed:\n%s", g.errorLog())
	}
	gone.SetReadDeadline(time.Now().Add(slow(5 * time.Second)))
	if _, _, err := gone.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Errorf("tunnel of the removed location: %v, want close 1001", err)
	}
	echo(t, keep, "still here")
}

// TestSlowloris: clients that dribble their headers are closed after
// client_header_timeout without a response, while a normal client is
// served throughout. A server without the timeout would hold them until
// the read deadline, twice the bound.
func TestSlowloris(t *testing.T) {
	port := freePort(t)
	startGate(t, fmt.Sprintf(`http { client_header_timeout 1s; server { listen 127.0.0.1:%d; location / { return 200 "ok"; } } }`, port))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	type dribbler struct {
		c      net.Conn
		closed chan time.Duration
	}
	start := time.Now()
	var slows []dribbler
	for i := 0; i < 50; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s := dribbler{c: c, closed: make(chan time.Duration, 1)}
		slows = append(slows, s)
		go func() {
			c.Write([]byte("GET / HTTP/1.1\r\n"))
			for i := 0; i < 40; i++ {
				if _, err := c.Write([]byte("X-A: b\r\n")); err != nil {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
		go func() {
			c.SetReadDeadline(time.Now().Add(slow(10 * time.Second)))
			n, _ := c.Read(make([]byte, 64))
			if n > 0 {
				s.closed <- -1 // an answer: should have been a silent close
				return
			}
			s.closed <- time.Since(start)
		}()
	}
	for i := 0; i < 5; i++ {
		if st, _, body := rawRequest(t, addr, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); st != 200 || body != "ok" {
			t.Fatalf("a normal client during the attack: %d %q", st, body)
		}
	}
	for i, s := range slows {
		d := <-s.closed
		if d < 0 {
			t.Errorf("slow client %d got a response", i)
		} else if d > slow(5*time.Second) {
			t.Errorf("slow client %d held for %v", i, d)
		}
	}
}

// TestMessageLimits: an oversized message gets close 1009 and never reaches
// the backend; a flood beyond websocket_message_rate gets 1008; the
// session variables record what happened.
func TestMessageLimits(t *testing.T) {
	be := startBackend(t, "b1")
	port := freePort(t)
	conf := fmt.Sprintf(wsConf, port, be.addr, `websocket_max_message_size 1k; websocket_message_rate 20/s burst=5;`, be.addr)
	conf = strings.Replace(conf, "access_log off;", `log_format ws '$websocket_messages_in $websocket_messages_out $websocket_close_code $websocket_closed_by';
    access_log {{DIR}}/ws.log ws;`, 1)
	g := startGate(t, conf)
	url := fmt.Sprintf("ws://127.0.0.1:%d/ws", port)

	c, _ := dial(t, url, nil)
	echo(t, c, "small")
	if err := c.WriteMessage(websocket.BinaryMessage, make([]byte, 2048)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(slow(5 * time.Second)))
	if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Errorf("oversized message: %v, want close 1009", err)
	}

	c2, _ := dial(t, url, nil)
	var err error
	for i := 0; i < 50 && err == nil; i++ {
		c2.SetWriteDeadline(time.Now().Add(slow(time.Second)))
		err = c2.WriteMessage(websocket.TextMessage, []byte("flood"))
	}
	// The 1008 may already sit in the socket when a write fails: read it.
	c2.SetReadDeadline(time.Now().Add(slow(5 * time.Second)))
	for {
		if _, _, err = c2.ReadMessage(); err != nil {
			break
		}
	}
	if !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
		t.Errorf("flood: %v, want close 1008", err)
	}
	waitFor(t, 5*time.Second, "both sessions logged", func() bool {
		return strings.Count(readFile(g.dir+"/ws.log"), "\n") >= 2
	})
	log := readFile(g.dir + "/ws.log")
	if !strings.Contains(log, "1 1 1009 proxy") || !strings.Contains(log, "1008 proxy") {
		t.Errorf("session variables:\n%s", log)
	}
}

// TestPingKeepsLiveClients: with pings on, an idle client that answers
// them and a client that keeps sending both stay open over fifteen ping
// intervals (100 ms, timeout 200 ms and proxy_read_timeout 400 ms, all
// stretched by slow on a loaded machine).
func TestPingKeepsLiveClients(t *testing.T) {
	be := startBackend(t, "b1")
	port := freePort(t)
	interval := slow(100 * time.Millisecond).Round(time.Millisecond)
	ms := func(n time.Duration) string { return fmt.Sprintf("%dms", (n * interval).Milliseconds()) }
	startGate(t, fmt.Sprintf(wsConf, port, be.addr, fmt.Sprintf("websocket_ping_interval %s; websocket_ping_timeout %s; proxy_read_timeout %s;", ms(1), ms(2), ms(4)), be.addr))
	url := fmt.Sprintf("ws://127.0.0.1:%d/ws", port)
	idle, _ := dial(t, url, nil)
	busy, _ := dial(t, url, nil)
	// gorilla answers pings while a read is pending.
	idleErr := make(chan error, 1)
	go func() {
		_, _, err := idle.ReadMessage()
		idleErr <- err
	}()
	for i := 0; i < 15; i++ {
		echo(t, busy, fmt.Sprintf("m%d", i))
		time.Sleep(interval)
	}
	select {
	case err := <-idleErr:
		t.Errorf("the idle client's tunnel ended: %v", err)
	default:
	}
	if be.open.Load() != 2 {
		t.Errorf("%d tunnels open after 15 ping intervals, want 2", be.open.Load())
	}
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}
