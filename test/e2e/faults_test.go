package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// rawBackend accepts connections and hands each to serve.
func rawBackend(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	return ln.Addr().String()
}

func faultConf(port int, backend, extra string) string {
	return fmt.Sprintf(`
error_log {{DIR}}/error.log info;
http {
    access_log {{DIR}}/access.log;
    server {
        listen 127.0.0.1:%d;
        location / {
            proxy_pass http://%s;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            %s
        }
    }
}`, port, backend, extra)
}

// TestBackendKilledMidTunnel: the backend resets the connection in the
// middle of a tunnel; the client's connection ends too, as it would on a
// direct connection (no close frame of wsgate's), never a hang.
func TestBackendKilledMidTunnel(t *testing.T) {
	conns := make(chan net.Conn, 1)
	addr := rawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil {
			c.Close()
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", accept(req.Header.Get("Sec-WebSocket-Key")))
		conns <- c
	})
	port := freePort(t)
	startGate(t, faultConf(port, addr, ""))
	c, _ := dial(t, fmt.Sprintf("ws://127.0.0.1:%d/", port), nil)
	bc := <-conns
	bc.(*net.TCPConn).SetLinger(0)
	bc.Close() // RST
	c.SetReadDeadline(time.Now().Add(slow(10 * time.Second)))
	_, _, err := c.ReadMessage()
	var ne net.Error
	if ok := asNetErr(err, &ne); ok && ne.Timeout() {
		t.Fatalf("the client hung: %v", err)
	}
	var ce *websocket.CloseError
	if errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure {
		t.Errorf("client got %v, want its connection to end without a close frame", err)
	}
}

func asNetErr(err error, ne *net.Error) bool {
	e, ok := err.(net.Error)
	if ok {
		*ne = e
	}
	return ok
}

func accept(key string) string {
	// RFC 6455 section 4.2.2, computed independently of wsgate's codec.
	return websocketAccept(key)
}

// TestBackendNeverAnswers: a backend that accepts and stays silent gets
// 504 after proxy_read_timeout.
func TestBackendNeverAnswers(t *testing.T) {
	addr := rawBackend(t, func(c net.Conn) {
		io.Copy(io.Discard, c) // read forever, answer nothing
		c.Close()
	})
	port := freePort(t)
	g := startGate(t, faultConf(port, addr, "proxy_read_timeout 700ms;"))
	start := time.Now()
	d := websocket.Dialer{HandshakeTimeout: slow(10 * time.Second)}
	_, resp, err := d.Dial(fmt.Sprintf("ws://127.0.0.1:%d/", port), nil)
	if resp == nil || resp.StatusCode != 504 {
		t.Fatalf("want 504, got %v %v", err, resp)
	}
	if el := time.Since(start); el < 600*time.Millisecond {
		t.Errorf("504 after %v, before the 700ms proxy_read_timeout", el)
	}
	waitFor(t, 5*time.Second, "the timeout in the error log", func() bool {
		return strings.Contains(g.errorLog(), "upstream timed out (110: Connection timed out) while reading response header from upstream")
	})
}

// TestBadAcceptKey: a 101 whose Sec-WebSocket-Accept does not answer the
// key is refused with 502 (nginx would pass it on).
func TestBadAcceptKey(t *testing.T) {
	addr := rawBackend(t, func(c net.Conn) {
		defer c.Close()
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: d3Jvbmc=\r\n\r\n")
		time.Sleep(2 * time.Second)
	})
	port := freePort(t)
	g := startGate(t, faultConf(port, addr, ""))
	d := websocket.Dialer{HandshakeTimeout: slow(5 * time.Second)}
	_, resp, err := d.Dial(fmt.Sprintf("ws://127.0.0.1:%d/", port), nil)
	if resp == nil || resp.StatusCode != 502 {
		t.Fatalf("want 502, got %v %v", err, resp)
	}
	waitFor(t, 5*time.Second, "the log line", func() bool {
		return strings.Contains(g.errorLog(), `upstream sent invalid "Sec-WebSocket-Accept" header`)
	})
}

// TestSmugglingResponses: responses with framing defects are refused with
// 502, never passed on ambiguously.
func TestSmugglingResponses(t *testing.T) {
	for _, tt := range []struct{ name, resp string }{
		{"cl and te", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"},
		{"folded header", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n"},
		{"space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr := rawBackend(t, func(c net.Conn) {
				defer c.Close()
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				io.WriteString(c, tt.resp)
			})
			port := freePort(t)
			startGate(t, faultConf(port, addr, ""))
			if st, _, _ := rawRequest(t, fmt.Sprintf("127.0.0.1:%d", port), "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); st != 502 {
				t.Errorf("%s: %d, want 502", tt.name, st)
			}
		})
	}
}

// TestClientHalfClose: a client that sends a frame and then shuts its write
// side without a close frame ends the tunnel: the frame reaches the
// backend, then the end of the client's stream, as it came (no close frame
// of wsgate's); the client gets at most the echo, then EOF; nothing hangs.
func TestClientHalfClose(t *testing.T) {
	be := startBackend(t, "b1")
	port := freePort(t)
	startGate(t, faultConf(port, be.addr, ""))
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(slow(10 * time.Second)))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(c)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 101 {
		t.Fatalf("handshake: %v %v", err, resp)
	}
	frame := []byte{0x81, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2}
	if _, err := c.Write(frame); err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("after the half-close: %v (read %x)", err, rest)
	}
	// Whatever arrived is whole frames: the echo "hi", and maybe the
	// backend's own close.
	for len(rest) > 0 {
		if len(rest) < 2 || int(rest[1]&0x7f)+2 > len(rest) {
			t.Fatalf("a partial frame before EOF: %x", rest)
		}
		n := int(rest[1]&0x7f) + 2
		switch rest[0] {
		case 0x81:
			if string(rest[2:n]) != "hi" {
				t.Errorf("echo %q", rest[2:n])
			}
		case 0x88:
		default:
			t.Errorf("unexpected frame %x", rest[:n])
		}
		rest = rest[n:]
	}
	waitFor(t, 5*time.Second, "the backend's side to close", func() bool { return be.upgrades.Load() == 1 && be.open.Load() == 0 })
	if n := be.received.Load(); n != 1 {
		t.Errorf("the backend received %d messages, want the client's one", n)
	}
	// gorilla reports an end without a close frame as 1006.
	if codes := be.closeCodes(); len(codes) != 1 || codes[0] != websocket.CloseAbnormalClosure {
		t.Errorf("the backend's tunnel ended with %v, want an end without a close frame (1006)", codes)
	}
}

// TestClientVanishes: a client process stopped with SIGSTOP (no FIN, no
// answers) is detected by websocket_ping_interval/timeout: the backend
// gets a close frame 1001, the error log says why, and the session is
// logged with close code 1001, closed by the proxy.
func TestClientVanishes(t *testing.T) {
	be := startBackend(t, "b1")
	port := freePort(t)
	conf := strings.Replace(faultConf(port, be.addr, "websocket_ping_interval 300ms; websocket_ping_timeout 500ms;"),
		"access_log {{DIR}}/access.log;",
		"log_format ws '$request $status $websocket_close_code $websocket_closed_by';\n    access_log {{DIR}}/access.log ws;", 1)
	g := startGate(t, conf)
	// The client is a separate process (this test binary re-run as a
	// helper), so that stopping it stops its answers too: its socket
	// still ACKs, but nothing reads or answers pings.
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperIdleClient$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("WSGATE_IDLE_CLIENT=ws://127.0.0.1:%d/", port))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, _ := bufio.NewReader(out).ReadString('\n')
	if !strings.HasPrefix(line, "connected") {
		t.Fatalf("helper client: %q", line)
	}
	waitFor(t, 10*time.Second, "the backend to hold the tunnel", func() bool { return be.open.Load() == 1 })
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the backend's tunnel to close", func() bool { return be.open.Load() == 0 })
	if codes := be.closeCodes(); len(codes) != 1 || codes[0] != websocket.CloseGoingAway {
		t.Errorf("the backend received close codes %v, want [1001]", codes)
	}
	waitFor(t, 10*time.Second, "the session's access log line", func() bool {
		return strings.Contains(readFile(g.dir+"/access.log"), "\n")
	})
	if l := readFile(g.dir + "/access.log"); l != "GET / HTTP/1.1 101 1001 proxy\n" {
		t.Errorf("access log %q, want one session closed by the proxy with 1001", l)
	}
	if el := g.errorLog(); !strings.Contains(el, "WebSocket closed: tunnel: ping timeout (client side)") {
		t.Errorf("the error log does not say the client stopped answering pings:\n%s", el)
	}
}

// TestHelperIdleClient is not a test of its own: TestClientVanishes runs
// it in a child process as a WebSocket client that connects and idles.
func TestHelperIdleClient(t *testing.T) {
	url := os.Getenv("WSGATE_IDLE_CLIENT")
	if url == "" {
		return // only meaningful as TestClientVanishes' child
	}
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		fmt.Println("error", err)
		return
	}
	defer c.Close()
	fmt.Println("connected")
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	c.ReadMessage()
}
