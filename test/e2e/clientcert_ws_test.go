package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/net/http2"
)

// startClientCertWS runs a server that requires client certificates and
// proxies WebSockets with the certificate's subject and verify result.
func startClientCertWS(t *testing.T) (*clientCerts, *backend, int) {
	cc := makeClientCerts(t)
	be := startBackend(t, "b1")
	port := freePort(t)
	startGate(t, fmt.Sprintf(`
error_log {{DIR}}/error.log info;
http {
    server {
        listen 127.0.0.1:%[1]d ssl http2;
        server_name localhost;
        ssl_certificate %[3]s/server.pem;
        ssl_certificate_key %[3]s/server.key;
        ssl_client_certificate %[3]s/ca.pem;
        ssl_verify_client on;
        location /ws {
            proxy_pass http://%[2]s;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_set_header X-Client-DN $ssl_client_s_dn;
            proxy_set_header X-Client-Verify $ssl_client_verify;
        }
    }
}`, port, be.addr, cc.dir))
	return cc, be, port
}

const deviceDN = `CN=device-1,OU=unit/7 \C3\A9,O=Fleet\+Devices,C=DE`

// TestClientCertWebSocket: a WebSocket over wss with a client certificate
// reaches the backend with the certificate's subject and SUCCESS; one
// without a certificate gets nginx's 400 page and no backend sees it.
func TestClientCertWebSocket(t *testing.T) {
	cc, be, port := startClientCertWS(t)
	url := fmt.Sprintf("wss://127.0.0.1:%d/ws", port)
	d := websocket.Dialer{HandshakeTimeout: slow(5 * time.Second), TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, ServerName: "localhost", Certificates: []tls.Certificate{cc.valid}}}
	host := http.Header{"Host": {"localhost"}} // the SNI name: another Host is a 421
	c, _, err := d.Dial(url, host)
	if err != nil {
		t.Fatalf("wss with a certificate: %v", err)
	}
	echo(t, c, "device says hi")
	c.Close()
	h := be.lastWS()
	if h.Get("X-Client-Dn") != deviceDN || h.Get("X-Client-Verify") != "SUCCESS" {
		t.Errorf("backend got DN %q, verify %q", h.Get("X-Client-Dn"), h.Get("X-Client-Verify"))
	}

	upgrades := be.upgrades.Load()
	d.TLSClientConfig = &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"}
	_, resp, err := d.Dial(url, host)
	if err == nil || resp == nil || resp.StatusCode != 400 {
		t.Fatalf("wss without a certificate: %v %v, want 400", err, resp)
	}
	body, _ := io.ReadAll(resp.Body)
	if !bytesContains(body, "No required SSL certificate was sent") {
		t.Errorf("page: %s", body)
	}
	if be.upgrades.Load() != upgrades {
		t.Error("a WebSocket without a certificate reached the backend")
	}
}

// TestClientCertH2WebSocket: the same over HTTP/2 extended CONNECT
// (RFC 8441) with x/net's client.
func TestClientCertH2WebSocket(t *testing.T) {
	cc, be, port := startClientCertWS(t)
	connect := func(cert *tls.Certificate) (*http.Response, *io.PipeWriter, func()) {
		cfg := &tls.Config{InsecureSkipVerify: true, ServerName: "localhost", NextProtos: []string{"h2"}}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		tr := &http2.Transport{TLSClientConfig: cfg}
		pr, pw := io.Pipe()
		req, _ := http.NewRequest("CONNECT", fmt.Sprintf("https://127.0.0.1:%d/ws", port), pr)
		req.Host = "localhost"
		req.Header.Set(":protocol", "websocket")
		req.Header.Set("Sec-WebSocket-Version", "13")
		ctx, cancel := context.WithTimeout(context.Background(), slow(10*time.Second))
		resp, err := tr.RoundTrip(req.WithContext(ctx))
		if err != nil {
			cancel()
			t.Fatalf("extended CONNECT: %v", err)
		}
		return resp, pw, func() { pw.Close(); resp.Body.Close(); cancel(); tr.CloseIdleConnections() }
	}
	resp, pw, done := connect(&cc.valid)
	defer done()
	if resp.StatusCode != 200 {
		t.Fatalf("extended CONNECT with a certificate: %d", resp.StatusCode)
	}
	msg := "device over h2"
	frame := []byte{0x81, 0x80 | byte(len(msg)), 7, 7, 7, 7}
	for i := range msg {
		frame = append(frame, msg[i]^7)
	}
	go pw.Write(frame)
	got := make([]byte, 2+len(msg))
	if _, err := io.ReadFull(bufio.NewReader(resp.Body), got); err != nil || string(got[2:]) != msg {
		t.Fatalf("echo over HTTP/2: %q %v", got, err)
	}
	h := be.lastWS()
	if h.Get("X-Client-Dn") != deviceDN || h.Get("X-Client-Verify") != "SUCCESS" {
		t.Errorf("backend got DN %q, verify %q", h.Get("X-Client-Dn"), h.Get("X-Client-Verify"))
	}

	upgrades := be.upgrades.Load()
	resp2, _, done2 := connect(nil)
	defer done2()
	if resp2.StatusCode != 400 {
		t.Errorf("extended CONNECT without a certificate: %d, want 400", resp2.StatusCode)
	}
	if be.upgrades.Load() != upgrades {
		t.Error("a WebSocket without a certificate reached the backend")
	}
}

func bytesContains(b []byte, s string) bool { return strings.Contains(string(b), s) }

// TestClientCertReloadCRL: a CRL added by a reload refuses the revoked
// certificate on new connections, while a WebSocket it had opened before
// stays open.
func TestClientCertReloadCRL(t *testing.T) {
	cc := makeClientCerts(t)
	be := startBackend(t, "b1")
	port := freePort(t)
	conf := func(extra string) string {
		return fmt.Sprintf(`
error_log {{DIR}}/error.log info;
http {
    server {
        listen 127.0.0.1:%[1]d ssl;
        server_name localhost;
        ssl_certificate %[3]s/server.pem;
        ssl_certificate_key %[3]s/server.key;
        ssl_client_certificate %[3]s/ca.pem;
        ssl_verify_client on;
        %[4]s
        location /ws {
            proxy_pass http://%[2]s;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }
    }
}`, port, be.addr, cc.dir, extra)
	}
	g := startGate(t, conf(""))
	url := fmt.Sprintf("wss://127.0.0.1:%d/ws", port)
	host := http.Header{"Host": {"localhost"}}
	d := websocket.Dialer{HandshakeTimeout: slow(5 * time.Second), TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, ServerName: "localhost", Certificates: []tls.Certificate{cc.revo}}}
	open, _, err := d.Dial(url, host)
	if err != nil {
		t.Fatalf("before the CRL: %v", err)
	}
	defer open.Close()
	if !g.reload(t, conf("ssl_crl "+cc.dir+"/crl.pem;")) {
		t.Fatalf("reload failed:\n%s", g.errorLog())
	}
	if _, resp, err := d.Dial(url, host); err == nil || resp == nil || resp.StatusCode != 400 {
		t.Errorf("after the CRL: %v %v, want 400", err, resp)
	}
	echo(t, open, "still here")
	if !strings.Contains(g.errorLog(), "client SSL certificate verify error: (23:certificate revoked)") {
		t.Errorf("no verify error in the log:\n%s", g.errorLog())
	}
}
