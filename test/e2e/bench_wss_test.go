package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// BenchmarkBackendTLSMessages measures, in one run, the proxy CPU per
// 64-byte WebSocket message when the backend is reached over TLS
// (proxy_pass https://) against plain ws://, for nginx (one worker) and
// wsgate: 8 clients, each echoing its share of b.N messages through the
// proxy to an echo backend that serves both ways. Run with
//
//	go test -run '^$' -bench BackendTLSMessages -benchtime 40000x ./test/e2e/
func BenchmarkBackendTLSMessages(b *testing.B) {
	echo := func(w http.ResponseWriter, r *http.Request) {
		up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, m, err := c.ReadMessage()
			if err != nil || c.WriteMessage(mt, m) != nil {
				return
			}
		}
	}
	plain := httptest.NewServer(http.HandlerFunc(echo))
	defer plain.Close()
	secure := httptest.NewTLSServer(http.HandlerFunc(echo))
	defer secure.Close()
	p := startPair(b, diffConf{HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    access_log off;
    proxy_http_version 1.1;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection "upgrade";
    proxy_read_timeout 300s;
    location /ws { proxy_pass http://` + strings.TrimPrefix(plain.URL, "http://") + `; }
    location /wss { proxy_pass https://` + strings.TrimPrefix(secure.URL, "https://") + `; proxy_ssl_verify off; }
}`})
	for _, target := range []struct {
		name, addr string
		pid        int
	}{{"nginx", p.nginx, p.ng.cmd.Process.Pid}, {"wsgate", p.wsgate, p.gate.cmd.Process.Pid}} {
		for _, path := range []string{"/ws", "/wss"} {
			b.Run(target.name+strings.ReplaceAll(path, "/", "_"), func(b *testing.B) {
				benchEcho(b, "ws://"+target.addr+path, target.pid)
			})
		}
	}
}

// benchEcho opens 8 WebSockets to url, then times b.N 64-byte echoes
// spread over them, reporting messages per second and the CPU time of
// pid (and its children) per message.
func benchEcho(b *testing.B, url string, pid int) {
	const clients = 8
	conns := make([]*websocket.Conn, clients)
	for i := range conns {
		c, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	msg := []byte(strings.Repeat("x", 64))
	cpu0 := cpuTicks(b, pid)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i, c := range conns {
		n := b.N / clients
		if i < b.N%clients {
			n++
		}
		wg.Go(func() {
			c.SetReadDeadline(time.Now().Add(5 * time.Minute))
			for range n {
				if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
					errs <- err
					return
				}
				if _, got, err := c.ReadMessage(); err != nil || len(got) != len(msg) {
					errs <- fmt.Errorf("echo: %d bytes, %v", len(got), err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTicks(b, pid) - cpu0
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(cpu)*1e6/clockTicks/float64(b.N), "cpu-µs/msg")
}
