package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

const h2Conf = `
error_log {{DIR}}/error.log info;
http {
    log_format proto '$request $status $server_protocol';
    access_log {{DIR}}/access.log proto;
    server {
        listen 127.0.0.1:%[1]d ssl http2;
        server_name ws.example.com;
        ssl_certificate %[3]s/ws.pem;
        ssl_certificate_key %[3]s/ws.key;
        location /ws {
            proxy_pass http://%[2]s;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }
        location = / {
            default_type text/html;
            return 200 '<!doctype html><title>h2</title><div id="out">waiting</div><script>
fetch("/hold");
const ws = new WebSocket("wss://" + location.host + "/ws");
ws.onopen = () => ws.send("over h2");
ws.onmessage = (e) => { document.getElementById("out").textContent = "echo: " + e.data; };
ws.onerror = () => { document.getElementById("out").textContent = "error"; };
</script>';
        }
        location /plain { proxy_pass http://%[2]s; }
        location = /hold { proxy_pass http://%[2]s; }
    }
}`

func startH2(t *testing.T) (*gate, *backend, int) {
	be := startBackend(t, "b1")
	dir := t.TempDir()
	writeCert(t, dir, "ws", "ws.example.com")
	port := freePort(t)
	return startGate(t, fmt.Sprintf(h2Conf, port, be.addr, dir)), be, port
}

func h2Transport() *http2.Transport {
	return &http2.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "ws.example.com", NextProtos: []string{"h2"}}}
}

// TestH2ExtendedConnect: x/net's HTTP/2 client opens a WebSocket with
// RFC 8441 extended CONNECT; wsgate carries it to a plain HTTP/1.1
// backend and the echo comes back; the access log says HTTP/2.0.
func TestH2ExtendedConnect(t *testing.T) {
	g, be, port := startH2(t)
	tr := h2Transport()
	defer tr.CloseIdleConnections()
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("CONNECT", fmt.Sprintf("https://127.0.0.1:%d/ws", port), pr)
	req.Header.Set(":protocol", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	ctx, cancel := context.WithTimeout(context.Background(), slow(10*time.Second))
	defer cancel()
	resp, err := tr.RoundTrip(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("extended CONNECT: %v", err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("extended CONNECT answered %d, want 200", resp.StatusCode)
	}
	msg := "hello over HTTP/2"
	frame := []byte{0x81, 0x80 | byte(len(msg)), 7, 7, 7, 7}
	for i := range msg {
		frame = append(frame, msg[i]^7)
	}
	go pw.Write(frame)
	br := bufio.NewReader(resp.Body)
	got := make([]byte, 2+len(msg))
	if _, err := io.ReadFull(br, got); err != nil || string(got[2:]) != msg {
		t.Fatalf("echo over HTTP/2: %q %v", got, err)
	}
	if be.lastWS().Get("Upgrade") != "websocket" {
		t.Errorf("the backend saw %v", be.lastWS())
	}
	// Close the WebSocket: a masked close frame, then the stream ends.
	if _, err := pw.Write([]byte{0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xe8 ^ 2}); err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, br)
	pw.Close()
	waitFor(t, 5*time.Second, "the session's log line", func() bool {
		b, _ := os.ReadFile(filepath.Join(g.dir, "access.log"))
		return strings.Contains(string(b), "GET /ws HTTP/2.0 101 HTTP/2.0")
	})
}

// TestH2PlainRequest: an ordinary HTTP/2 request through the same server.
func TestH2PlainRequest(t *testing.T) {
	_, _, port := startH2(t)
	cl := &http.Client{Transport: h2Transport(), Timeout: slow(10 * time.Second)}
	resp, err := cl.Post(fmt.Sprintf("https://127.0.0.1:%d/plain?x=1", port), "text/plain", strings.NewReader("twelve bytes"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 || string(body) != "b1 POST /plain?x=1 body=12" {
		t.Errorf("HTTP/2 POST: %s %d %q", resp.Proto, resp.StatusCode, body)
	}
}

// TestH2Chromium: Chromium loads a page over HTTP/2 from wsgate, then
// opens wss:// on the same origin; it uses RFC 8441 on the connection it
// has, and the access log shows the session arrived over HTTP/2.
func TestH2Chromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is required (.ci/run installs Debian's package)")
	}
	g, _, port := startH2(t)
	ctx, cancel := context.WithTimeout(context.Background(), slow(60*time.Second))
	defer cancel()
	out, err := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--ignore-certificate-errors", "--user-data-dir="+t.TempDir(), "--virtual-time-budget=5000",
		"--host-resolver-rules=MAP ws.example.com 127.0.0.1",
		"--dump-dom", fmt.Sprintf("https://ws.example.com:%d/", port)).Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	if !strings.Contains(string(out), "echo: over h2") {
		t.Errorf("the page did not get its echo:\n%s\nerror log:\n%s", out, g.errorLog())
	}
	waitFor(t, 10*time.Second, "an HTTP/2 WebSocket session in the access log", func() bool {
		b, _ := os.ReadFile(filepath.Join(g.dir, "access.log"))
		return strings.Contains(string(b), "GET /ws HTTP/2.0 101 HTTP/2.0")
	})
}
