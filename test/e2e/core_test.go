package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestQuickStart is seed config 01: a round trip, and the backend sees the
// headers the config sets.
func TestQuickStart(t *testing.T) {
	be := startBackend(t, "b1")
	port := freePort(t)
	startGate(t, seed(t, "01-quick-start.conf", []string{be.addr}, fmt.Sprintf("127.0.0.1:%d", port), ""))
	url := fmt.Sprintf("ws://127.0.0.1:%d/ws", port)
	c, resp := dial(t, url, http.Header{"Host": {"ws.example.com"}, "X-Forwarded-For": {"203.0.113.7"}})
	if resp.StatusCode != 101 || resp.Header.Get("X-Backend") != "b1" {
		t.Fatalf("handshake %d %v", resp.StatusCode, resp.Header)
	}
	echo(t, c, "hello through wsgate")
	h := be.lastWS()
	for k, want := range map[string]string{
		"Host":              "ws.example.com",
		"X-Real-Ip":         "127.0.0.1",
		"X-Forwarded-For":   "203.0.113.7, 127.0.0.1",
		"X-Forwarded-Proto": "http",
		"Upgrade":           "websocket",
		"Connection":        "upgrade",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("backend saw %s: %q, want %q", k, got, want)
		}
	}
}

// TestUpgradeMap is seed config 02: one location serves a plain GET (sent
// upstream with Connection: close) and a WebSocket.
func TestUpgradeMap(t *testing.T) {
	be := startBackend(t, "b1")
	port := freePort(t)
	startGate(t, seed(t, "02-connection-upgrade-map.conf", []string{be.addr}, fmt.Sprintf("127.0.0.1:%d", port), ""))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	resp, err := http.Get("http://" + addr + "/ws?x=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "b1 GET /ws?x=1 body=0" {
		t.Fatalf("plain GET: %d %q", resp.StatusCode, body)
	}
	if got := be.lastPlain().Get("Connection"); got != "close" {
		t.Errorf("plain request went upstream with Connection %q, want close", got)
	}
	c, _ := dial(t, "ws://"+addr+"/ws", nil)
	echo(t, c, "both on one location")
	if got := be.lastWS().Get("Connection"); got != "upgrade" {
		t.Errorf("upgrade went upstream with Connection %q", got)
	}
}

const proxyConf = `
error_log {{DIR}}/error.log info;
events { worker_connections 1024; }
http {
    server {
        listen 127.0.0.1:%d;
        location /ws {
            proxy_pass http://%s;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_connect_timeout 2s;
        }
        location /version { return 200 "%s"; }
    }
}
`

func TestTenMegabytesEachWay(t *testing.T) {
	be := startBackend(t, "b1")
	port := freePort(t)
	startGate(t, fmt.Sprintf(proxyConf, port, be.addr, "v1"))
	c, _ := dial(t, fmt.Sprintf("ws://127.0.0.1:%d/ws", port), nil)
	payload := make([]byte, 10<<20)
	rand.Read(payload)
	errc := make(chan error, 1)
	go func() {
		c.SetWriteDeadline(time.Now().Add(slow(30 * time.Second)))
		errc <- c.WriteMessage(websocket.BinaryMessage, payload)
	}()
	c.SetReadDeadline(time.Now().Add(slow(30 * time.Second)))
	_, got, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("10 MB echo differs (got %d bytes)", len(got))
	}
}

// TestPipelinedAfterHandshake sends a frame in the same write as the
// handshake: the bytes wsgate read along with the request must reach the
// backend.
func TestPipelinedAfterHandshake(t *testing.T) {
	be := startBackend(t, "b1")
	port := freePort(t)
	startGate(t, fmt.Sprintf(proxyConf, port, be.addr, "v1"))
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	frame := []byte{0x81, 0x85, 1, 2, 3, 4}
	for i, b := range []byte("early") {
		frame = append(frame, b^[]byte{1, 2, 3, 4}[i%4])
	}
	req := "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	c.SetDeadline(time.Now().Add(slow(10 * time.Second)))
	if _, err := c.Write(append([]byte(req), frame...)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("handshake: %v %v", err, resp)
	}
	got := make([]byte, 7)
	if _, err := io.ReadFull(br, got); err != nil {
		t.Fatal(err)
	}
	if got[0] != 0x81 || got[1] != 5 || string(got[2:]) != "early" {
		t.Fatalf("echo of the pipelined frame: %x", got)
	}
}

// TestGuideCurlCheck runs the guide's curl command against the guide's
// config 01, with two changes: RFC 6455's sample key (the guide's key is
// 13 bytes, not the 16 the RFC requires) and --http1.1 (curl would
// otherwise negotiate HTTP/2 over https://).
func TestGuideCurlCheck(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is required (.ci/run installs it)")
	}
	be := startBackend(t, "b1")
	port := freePort(t)
	startGate(t, seed(t, "01-quick-start.conf", []string{be.addr}, fmt.Sprintf("127.0.0.1:%d", port), ""))
	// -N keeps curl reading after the 101: --max-time ends it.
	maxTime := fmt.Sprintf("%.1f", slow(2*time.Second).Seconds())
	out, _ := exec.Command("curl", "-i", "-N", "--http1.1", "--max-time", maxTime,
		"-H", "Connection: Upgrade", "-H", "Upgrade: websocket", "-H", "Sec-WebSocket-Version: 13",
		"-H", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", fmt.Sprintf("http://127.0.0.1:%d/ws", port)).Output()
	if !strings.HasPrefix(string(out), "HTTP/1.1 101 Switching Protocols") || !strings.Contains(string(out), "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") {
		t.Fatalf("curl got:\n%s", out)
	}
}

// TestBackendDown: a refused connect gives 502 at once (not 504 after the
// connect timeout), and the error log says the connection was refused.
func TestBackendDown(t *testing.T) {
	dead := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	port := freePort(t)
	g := startGate(t, fmt.Sprintf(proxyConf, port, dead, "v1"))
	d := websocket.Dialer{HandshakeTimeout: slow(5 * time.Second)}
	_, resp, err := d.Dial(fmt.Sprintf("ws://127.0.0.1:%d/ws", port), nil)
	if err == nil || resp == nil || resp.StatusCode != 502 {
		t.Fatalf("want 502, got %v %v", err, resp)
	}
	waitFor(t, 5*time.Second, "the connect error in the error log", func() bool {
		return strings.Contains(g.errorLog(), "connect() failed (111: Connection refused) while connecting to upstream")
	})
}

// TestConnectTimeout uses a backend whose accept queue is full, so the
// connect hangs: wsgate answers 504 after proxy_connect_timeout.
func TestConnectTimeout(t *testing.T) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}})
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := syscall.Getsockname(fd)
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	// Fill the backlog; these connections are never accepted.
	for i := 0; i < 8; i++ {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			defer c.Close()
		}
	}
	port := freePort(t)
	startGate(t, strings.Replace(fmt.Sprintf(proxyConf, port, addr, "v1"), "proxy_connect_timeout 2s", "proxy_connect_timeout 500ms", 1))
	start := time.Now()
	d := websocket.Dialer{HandshakeTimeout: slow(5 * time.Second)}
	_, resp, err := d.Dial(fmt.Sprintf("ws://127.0.0.1:%d/ws", port), nil)
	if resp == nil || resp.StatusCode != 504 {
		t.Fatalf("want 504, got %v %v", err, resp)
	}
	if el := time.Since(start); el < 400*time.Millisecond {
		t.Errorf("504 after %v, before the connect timeout", el)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ name, text, want string }{
		{"unknown", "http {\n server {\n  location / {\n   proxy_pas http://x;\n  }\n }\n}\n", `unknown directive "proxy_pas", did you mean "proxy_pass"? in %s:4`},
		{"context", "http {\n proxy_pass http://x;\n}\n", `"proxy_pass" directive is not allowed here in %s:2`},
		{"args", "worker_processes;\n", `invalid number of arguments in "worker_processes" directive in %s:1`},
		{"unclosed", "http {\n server {\n", `unexpected end of file, expecting "}" in %s:3`},
		{"include", "http {\n include missing.conf;\n}\n", `open() "` + dir + `/missing.conf" failed (2: No such file or directory) in %s:2`},
	}
	for _, tt := range tests {
		p := filepath.Join(dir, tt.name+".conf")
		if err := os.WriteFile(p, []byte(tt.text), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, flag := range []string{"-t", ""} {
			args := []string{"-p", dir, "-c", p}
			if flag != "" {
				args = append([]string{flag}, args...)
			}
			cmd := exec.Command(binary, args...)
			out, err := cmd.CombinedOutput()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 1 {
				t.Errorf("%s %s: exit %v, want 1\n%s", tt.name, flag, err, out)
			}
			want := "wsgate: [emerg] " + fmt.Sprintf(tt.want, p)
			if !strings.Contains(string(out), want) {
				t.Errorf("%s %s: output\n%s\nwant %q", tt.name, flag, out, want)
			}
		}
	}
}

// TestReloadUnderTraffic keeps a WebSocket echoing across 10 reloads, one of
// them broken; new requests follow each new config.
func TestReloadUnderTraffic(t *testing.T) {
	be := startBackend(t, "b1")
	port := freePort(t)
	g := startGate(t, fmt.Sprintf(proxyConf, port, be.addr, "v0"))
	c, _ := dial(t, fmt.Sprintf("ws://127.0.0.1:%d/ws", port), nil)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var echoErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			msg := fmt.Sprintf("m%d", i)
			c.SetWriteDeadline(time.Now().Add(slow(5 * time.Second)))
			c.SetReadDeadline(time.Now().Add(slow(5 * time.Second)))
			if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
				echoErr = err
				return
			}
			if _, got, err := c.ReadMessage(); err != nil || string(got) != msg {
				echoErr = fmt.Errorf("echo %q: %v", got, err)
				return
			}
		}
	}()
	version := func() string {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/version", port))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	for i := 1; i <= 10; i++ {
		v := fmt.Sprintf("v%d", i)
		if i == 5 {
			if g.reload(t, "http { server { listen 127.0.0.1:1; location / { proxy_pas x; } } }") {
				t.Fatal("a broken config was accepted")
			}
			if got := version(); got != "v4" {
				t.Fatalf("after a broken reload: %q, want v4", got)
			}
			continue
		}
		if !g.reload(t, fmt.Sprintf(proxyConf, port, be.addr, v)) {
			t.Fatalf("reload %d failed:\n%s", i, g.errorLog())
		}
		if got := version(); got != v {
			t.Fatalf("after reload %d: %q", i, got)
		}
	}
	close(stop)
	wg.Wait()
	if echoErr != nil {
		t.Fatalf("the WebSocket broke during reloads: %v", echoErr)
	}
	echo(t, c, "still here")
	if !strings.Contains(g.errorLog(), `unknown directive "proxy_pas"`) {
		t.Errorf("the broken reload's error was not logged:\n%s", g.errorLog())
	}
}

// TestEmbeddedDefault starts wsgate with no configuration at all.
func TestEmbeddedDefault(t *testing.T) {
	if _, err := os.Stat("/etc/wsgate/wsgate.conf"); err == nil {
		t.Fatal("/etc/wsgate/wsgate.conf exists: the embedded default would not be used")
	}
	port := freePort(t)
	cmd := exec.Command(binary)
	cmd.Env = append(os.Environ(), fmt.Sprintf("WSGATE_DEMO_LISTEN=127.0.0.1:%d", port))
	out := &syncBuffer{}
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	url := fmt.Sprintf("ws://127.0.0.1:%d/ws", port)
	var c *websocket.Conn
	waitFor(t, 10*time.Second, "the embedded default to listen", func() bool {
		var err error
		c, _, err = websocket.DefaultDialer.Dial(url, nil)
		return err == nil
	})
	defer c.Close()
	echo(t, c, "hello, wsgate")
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), "new WebSocket") {
		t.Errorf("the demo page has no WebSocket script:\n%s", page)
	}
}

// TestNoUpgradeHeaders: like nginx, a location without proxy_set_header
// Upgrade/Connection does not pass the upgrade, and -t warns about it.
func TestNoUpgradeHeaders(t *testing.T) {
	be := startBackend(t, "b1")
	port := freePort(t)
	conf := fmt.Sprintf(`error_log {{DIR}}/error.log info;
http { server { listen 127.0.0.1:%d; location /ws { proxy_pass http://%s; } } }`, port, be.addr)
	g := startGate(t, conf)
	out, _ := exec.Command(binary, "-t", "-p", g.dir, "-c", g.conf).CombinedOutput()
	if !strings.Contains(string(out), "[warn]") || !strings.Contains(string(out), `location "/ws" proxies without`) {
		t.Errorf("-t did not warn:\n%s", out)
	}
	d := websocket.Dialer{HandshakeTimeout: slow(5 * time.Second)}
	_, resp, err := d.Dial(fmt.Sprintf("ws://127.0.0.1:%d/ws", port), nil)
	if err == nil {
		t.Fatal("the handshake succeeded without upgrade headers")
	}
	if resp == nil || resp.StatusCode == 101 {
		t.Fatalf("got %v", resp)
	}
	if h := be.lastPlain(); h == nil || h.Get("Upgrade") != "" || h.Get("Connection") != "close" {
		t.Errorf("backend saw %v", h)
	}
}

func TestMalformedRequestKeepsServing(t *testing.T) {
	be := startBackend(t, "b1")
	port := freePort(t)
	startGate(t, fmt.Sprintf(proxyConf, port, be.addr, "v1"))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for _, tt := range []struct {
		req  string
		want int
	}{
		{"GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\n\r\n", 400},
		{"GET /" + strings.Repeat("a", 9000) + " HTTP/1.1\r\nHost: x\r\n\r\n", 414},
		{"GET / HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("b", 9000) + "\r\n\r\n", 400},
		{"POST /ws HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
	} {
		if got, _, _ := rawRequest(t, addr, tt.req); got != tt.want {
			t.Errorf("%.40q: %d, want %d", tt.req, got, tt.want)
		}
	}
	if st, _, body := rawRequest(t, addr, "GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); st != 200 || body != "v1" {
		t.Fatalf("after bad requests: %d %q", st, body)
	}
}

// TestQuitClosesWithGoingAway: QUIT sends every WebSocket client a close
// frame with 1001 and the process exits.
func TestQuitClosesWithGoingAway(t *testing.T) {
	be := startBackend(t, "b1")
	port := freePort(t)
	g := startGate(t, fmt.Sprintf(proxyConf, port, be.addr, "v1"))
	var conns []*websocket.Conn
	for i := 0; i < 20; i++ {
		c, _ := dial(t, fmt.Sprintf("ws://127.0.0.1:%d/ws", port), nil)
		echo(t, c, "x")
		conns = append(conns, c)
	}
	g.signal(syscall.SIGQUIT)
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(slow(10 * time.Second)))
		_, _, err := c.ReadMessage()
		if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
			t.Errorf("conn %d: %v, want close 1001", i, err)
		}
	}
	if err := g.wait(15 * time.Second); err != nil {
		t.Errorf("exit: %v", err)
	}
}

// TestSignalsThroughPidFile drives the process with -s, as nginx users do.
func TestSignalsThroughPidFile(t *testing.T) {
	be := startBackend(t, "b1")
	port := freePort(t)
	g := startGate(t, fmt.Sprintf(proxyConf, port, be.addr, "v1"))
	writeConf(t, g.dir, fmt.Sprintf(proxyConf, port, be.addr, "v2"))
	if out, err := exec.Command(binary, "-p", g.dir, "-c", g.conf, "-s", "reload").CombinedOutput(); err != nil {
		t.Fatalf("-s reload: %v\n%s", err, out)
	}
	waitFor(t, 10*time.Second, "-s reload", func() bool { return strings.Contains(g.errorLog(), "reconfiguring done") })
	if st, _, body := rawRequest(t, fmt.Sprintf("127.0.0.1:%d", port), "GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); st != 200 || body != "v2" {
		t.Fatalf("after -s reload: %d %q", st, body)
	}
	if out, err := exec.Command(binary, "-p", g.dir, "-c", g.conf, "-s", "quit").CombinedOutput(); err != nil {
		t.Fatalf("-s quit: %v\n%s", err, out)
	}
	if err := g.wait(10 * time.Second); err != nil {
		t.Fatalf("exit after -s quit: %v", err)
	}
	if _, err := os.Stat(filepath.Join(g.dir, "logs", "wsgate.pid")); !os.IsNotExist(err) {
		t.Errorf("pid file left behind: %v", err)
	}
}

// TestUnreadBodyIsNotARequest: a body that no handler reads is not taken
// for the next request on the connection: a POST whose body is a request
// for /admin (403), then a real request with Connection: close. The POST
// gets 200; wsgate may close the connection then (it does: it does not
// read an unwanted body) or answer the real request too; never 403, and
// the connection ends either way.
func TestUnreadBodyIsNotARequest(t *testing.T) {
	port := freePort(t)
	startGate(t, fmt.Sprintf(`http { access_log off; server { listen 127.0.0.1:%d; location / { return 200 "ok"; } location /admin { return 403; } } }`, port))
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	inner := "GET /admin HTTP/1.1\r\nHost: x\r\n\r\n"
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%sGET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", len(inner), inner)
	c.SetReadDeadline(time.Now().Add(slow(10 * time.Second)))
	all, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("the connection did not close after the second request: %v\n%s", err, all)
	}
	n := strings.Count(string(all), "HTTP/1.1 ")
	if n < 1 || n > 2 || n != strings.Count(string(all), "HTTP/1.1 200") || !strings.HasPrefix(string(all), "HTTP/1.1 200") {
		t.Errorf("want the POST's 200 (and maybe the next request's), got:\n%s", all)
	}
}
