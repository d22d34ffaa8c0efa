package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// TestH3WebSocket is seed config 09 (HTTP/3 and HTTP/2 on one server) with
// generated certificates: quic-go's HTTP/3 client opens a WebSocket with
// RFC 9220 extended CONNECT, wsgate carries it to a plain HTTP/1.1
// backend, the echo comes back, and the access log says HTTP/3.0. Plain
// HTTP/3 requests work too, and the TCP side advertises Alt-Svc.
func TestH3WebSocket(t *testing.T) {
	be := startBackend(t, "b1")
	gdir := t.TempDir()
	os.MkdirAll(filepath.Join(gdir, "logs"), 0o755)
	seedCerts(t, gdir)
	port := freePort(t)
	conf := seed(t, "09-http3.conf", []string{be.addr}, "", fmt.Sprintf("127.0.0.1:%d", port))
	// Seed 09 names port 443 twice (quic and ssl): both become the test's port.
	conf = strings.ReplaceAll(conf, "listen 443 ssl http2;", fmt.Sprintf("listen 127.0.0.1:%d ssl http2;", port))
	conf = strings.ReplaceAll(conf, "{{DIR}}", gdir)
	conf = strings.Replace(conf, "http {", "http {\n    log_format proto '$request $status $server_protocol';\n    access_log "+gdir+"/access.log proto;", 1)
	g := startGate(t, conf)

	ctx, cancel := context.WithTimeout(context.Background(), slow(15*time.Second))
	defer cancel()
	tlsConf := &tls.Config{InsecureSkipVerify: true, ServerName: "ws.example.com", NextProtos: []string{http3.NextProtoH3}}
	qc, err := quic.DialAddr(ctx, fmt.Sprintf("127.0.0.1:%d", port), tlsConf, &quic.Config{})
	if err != nil {
		t.Fatalf("QUIC dial: %v\n%s", err, g.errorLog())
	}
	defer qc.CloseWithError(0, "")
	tr := &http3.Transport{}
	cc := tr.NewClientConn(qc)
	select {
	case <-cc.ReceivedSettings():
	case <-ctx.Done():
		t.Fatal("no HTTP/3 SETTINGS")
	}
	if !cc.Settings().EnableExtendedConnect {
		t.Fatal("the server does not advertise extended CONNECT (RFC 9220)")
	}
	str, err := cc.OpenRequestStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("CONNECT", fmt.Sprintf("https://ws.example.com:%d/ws", port), nil)
	req.Proto = "websocket"
	req.Header.Set("Sec-WebSocket-Version", "13")
	if err := str.SendRequestHeader(req); err != nil {
		t.Fatal(err)
	}
	resp, err := str.ReadResponse()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("extended CONNECT over HTTP/3: %v %v\n%s", err, resp, g.errorLog())
	}
	msg := "hello over HTTP/3"
	frame := []byte{0x81, 0x80 | byte(len(msg)), 5, 6, 7, 8}
	for i := range msg {
		frame = append(frame, msg[i]^[]byte{5, 6, 7, 8}[i%4])
	}
	if _, err := str.Write(frame); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 2+len(msg))
	if _, err := io.ReadFull(str, got); err != nil || string(got[2:]) != msg {
		t.Fatalf("echo over HTTP/3: %q %v", got, err)
	}
	if _, err := str.Write([]byte{0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xe8 ^ 2}); err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, str)
	str.Close()
	waitFor(t, 5*time.Second, "the session's log line", func() bool {
		b, _ := os.ReadFile(filepath.Join(gdir, "access.log"))
		return strings.Contains(string(b), "GET /ws HTTP/3.0 101 HTTP/3.0")
	})

	// A plain request over HTTP/3 reaches the backend.
	cl := &http.Client{Transport: &http3.Transport{TLSClientConfig: tlsConf}, Timeout: slow(10 * time.Second)}
	r, err := cl.Get(fmt.Sprintf("https://127.0.0.1:%d/ws", port))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.ProtoMajor != 3 || r.StatusCode != 200 || string(body) != "b1 GET /ws body=0" {
		t.Errorf("HTTP/3 GET: %s %d %q", r.Proto, r.StatusCode, body)
	}
	// The TCP side (HTTP/2 over TLS) advertises HTTP/3 with Alt-Svc.
	tcl := &http.Client{Transport: h2Transport(), Timeout: slow(10 * time.Second)}
	r, err = tcl.Get(fmt.Sprintf("https://127.0.0.1:%d/ws", port))
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.ProtoMajor != 2 || r.Header.Get("Alt-Svc") != `h3=":443"; ma=86400` {
		t.Errorf("GET over TCP: %s %d Alt-Svc %q", r.Proto, r.StatusCode, r.Header.Get("Alt-Svc"))
	}
}
