package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/internal/config"
	echoserver "github.com/wsgate/wsgate/internal/echo"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/server"
)

const reloadConf = `
error_log {{DIR}}/error.log notice;
events { worker_connections 10000; }
http {
    access_log off;
    server {
        listen 127.0.0.1:%d;
        location /ws {
            proxy_pass http://%s;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_read_timeout 1h;
        }
        location /version { return 200 "%d"; }
    }
}`

// TestReloadsUnderLoad opens 1,000 WebSockets that keep echoing, runs 100
// reloads (every tenth one broken) while new clients keep arriving, then
// counts: every WebSocket still echoes, none was closed, and no new client
// got an error.
func TestReloadsUnderLoad(t *testing.T) {
	be := startBackend(t, "b1")
	port := freePort(t)
	g := startGate(t, fmt.Sprintf(reloadConf, port, be.addr, 0))
	url := fmt.Sprintf("ws://127.0.0.1:%d/ws", port)
	const n = 1000
	conns := make([]*websocket.Conn, n)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := websocket.Dialer{HandshakeTimeout: slow(10 * time.Second)}
			c, _, err := d.Dial(url, nil)
			if err != nil {
				t.Errorf("dial %d: %v", i, err)
				return
			}
			conns[i] = c
		}()
		if i%100 == 99 {
			wg.Wait()
		}
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	stop := make(chan struct{})
	var echoes, echoErrs, newOK, newErrs atomic.Int64
	var bg sync.WaitGroup
	// 8 goroutines walk the 1,000 tunnels, echoing on each.
	for w := 0; w < 8; w++ {
		bg.Add(1)
		go func() {
			defer bg.Done()
			for i := w; ; i = (i + 8) % n {
				select {
				case <-stop:
					return
				default:
				}
				c := conns[i]
				msg := "m" + strconv.Itoa(i)
				c.SetWriteDeadline(time.Now().Add(slow(10 * time.Second)))
				c.SetReadDeadline(time.Now().Add(slow(10 * time.Second)))
				if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
					echoErrs.Add(1)
					continue
				}
				if _, got, err := c.ReadMessage(); err != nil || string(got) != msg {
					echoErrs.Add(1)
					continue
				}
				echoes.Add(1)
			}
		}()
	}
	// New clients arrive all the time.
	bg.Add(1)
	go func() {
		defer bg.Done()
		cl := http.Client{Timeout: slow(10 * time.Second)}
		for {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := cl.Get(fmt.Sprintf("http://127.0.0.1:%d/version", port))
			if err != nil || resp.StatusCode != 200 {
				newErrs.Add(1)
			} else {
				newOK.Add(1)
			}
			if resp != nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
	}()
	good, broken := 0, 0
	for i := 1; i <= 100; i++ {
		if i%10 == 0 {
			if g.reload(t, "http { server { listen 127.0.0.1:1; location / { proxy_pass http://nowhere.invalid; } } }") {
				t.Fatal("a broken config was accepted")
			}
			broken++
			continue
		}
		if !g.reload(t, fmt.Sprintf(reloadConf, port, be.addr, i)) {
			t.Fatalf("reload %d failed:\n%s", i, g.errorLog())
		}
		good++
	}
	// However fast the reloads went, they go on until the tunnels have
	// echoed n times in all while reloads ran (bounded).
	for deadline := time.Now().Add(slow(30 * time.Second)); echoes.Load() < n && time.Now().Before(deadline); good++ {
		if !g.reload(t, fmt.Sprintf(reloadConf, port, be.addr, 100+good)) {
			t.Fatalf("reload %d failed:\n%s", 100+good, g.errorLog())
		}
	}
	close(stop)
	bg.Wait()
	// Every tunnel still echoes, and the backend still holds all of them.
	for i, c := range conns {
		echo(t, c, "final "+strconv.Itoa(i))
	}
	if open := be.open.Load(); open != n {
		t.Errorf("backend holds %d tunnels, want %d", open, n)
	}
	t.Logf("reloads: %d good, %d broken; echoes during reloads: %d; new requests: %d ok, %d failed; echo errors: %d",
		good, broken, echoes.Load(), newOK.Load(), newErrs.Load(), echoErrs.Load())
	if echoErrs.Load() != 0 || newErrs.Load() != 0 {
		t.Errorf("errors during reloads: %d echo, %d new client", echoErrs.Load(), newErrs.Load())
	}
	if echoes.Load() < n {
		t.Errorf("only %d echoes during the reloads", echoes.Load())
	}
}

// TestChurnNoLeak opens and closes connections in batches against an
// in-process server, from many 127.x source addresses, then checks that
// goroutines, file descriptors and the active-connection count return to
// where they started. WSGATE_CHURN sets the count (CI runs 100,000 in a
// step of its own, without -race); the default keeps the suite fast.
func TestChurnNoLeak(t *testing.T) {
	total := 2000
	if v := os.Getenv("WSGATE_CHURN"); v != "" {
		var err error
		if total, err = strconv.Atoi(v); err != nil {
			t.Fatal(err)
		}
	}
	be, err := echoserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	port := freePort(t)
	src := fmt.Sprintf(`events { worker_connections 20000; }
http {
    access_log off;
    server {
        listen 127.0.0.1:%d;
        location /ws {
            proxy_pass http://%s;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }
        location /status { stub_status; }
    }
}`, port, be.Addr())
	dir := t.TempDir()
	cfg, err := config.LoadBytes(dir+"/wsgate.conf", []byte(src), config.Options{Prefix: dir})
	if err != nil {
		t.Fatal(err)
	}
	log, _ := errlog.Open([]errlog.Target{{Path: dir + "/error.log", Level: errlog.Warn}})
	srv := server.New(log)
	if err := srv.Apply(cfg, log); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	settle := func() (int, int, int64) {
		runtime.GC()
		fds, _ := os.ReadDir("/proc/self/fd")
		return runtime.NumGoroutine(), len(fds), srv.Stats.Active.Load()
	}
	g0, f0, a0 := settle()

	handshake := "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	// A masked text frame "ping", then a masked close 1000.
	frames := []byte{0x81, 0x84, 1, 2, 3, 4, 'p' ^ 1, 'i' ^ 2, 'n' ^ 3, 'g' ^ 4, 0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xe8 ^ 2}
	var failures atomic.Int64
	const batch = 200
	start := time.Now()
	for done := 0; done < total; done += batch {
		var wg sync.WaitGroup
		for i := 0; i < batch && done+i < total; i++ {
			wg.Add(1)
			go func(k int) {
				defer wg.Done()
				d := net.Dialer{Timeout: slow(10 * time.Second), LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, byte(1+k%50), byte(2+k/50%200))}}
				c, err := d.Dial("tcp", addr)
				if err != nil {
					failures.Add(1)
					return
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(slow(10 * time.Second)))
				if _, err := c.Write(append([]byte(handshake), frames...)); err != nil {
					failures.Add(1)
					return
				}
				br := bufio.NewReader(c)
				resp, err := http.ReadResponse(br, nil)
				if err != nil || resp.StatusCode != 101 {
					failures.Add(1)
					return
				}
				echoed := make([]byte, 6)
				if _, err := io.ReadFull(br, echoed); err != nil || string(echoed[2:]) != "ping" {
					failures.Add(1)
					return
				}
				io.Copy(io.Discard, br) // the close frame comes back, then EOF
			}(done + i)
		}
		wg.Wait()
	}
	elapsed := time.Since(start)
	if failures.Load() != 0 {
		t.Errorf("%d of %d connections failed", failures.Load(), total)
	}
	var g1, f1 int
	var a1 int64
	waitFor(t, 20*time.Second, "goroutines, fds and active connections back to baseline", func() bool {
		g1, f1, a1 = settle()
		return g1 <= g0 && f1 <= f0 && a1 == a0
	})
	t.Logf("%d connections in %v (%.0f/s); goroutines %d -> %d, fds %d -> %d, active %d -> %d",
		total, elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds(), g0, g1, f0, f1, a0, a1)
	st, _, body := rawRequest(t, addr, "GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if st != 200 || !strings.HasPrefix(body, "Active connections: 1 ") {
		t.Errorf("stub_status after the churn: %d %q", st, body)
	}
}
