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
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
)

// TestH3EarlyData: with ssl_early_data on, a request a resumed HTTP/3
// client sends in QUIC 0-RTT data reaches the backend with
// $ssl_early_data = 1 (nginx's recommended Early-Data header), so the
// backend can refuse a replayable request; one after the handshake gets "".
// The client is the helper program h3client, in a process of its own.
func TestH3EarlyData(t *testing.T) {
	cc := makeClientCerts(t)
	be := startBackend(t, "b1")
	port := freePort(t)
	startGate(t, fmt.Sprintf(`
error_log {{DIR}}/error.log info;
http {
    server {
        listen 127.0.0.1:%[1]d quic;
        listen 127.0.0.1:%[1]d ssl;
        server_name localhost;
        ssl_certificate %[3]s/server.pem;
        ssl_certificate_key %[3]s/server.key;
        ssl_early_data on;
        location / {
            proxy_pass http://%[2]s;
            proxy_set_header Early-Data $ssl_early_data;
        }
    }
}`, port, be.addr, cc.dir))
	client := startH3Client(t, fmt.Sprintf("https://localhost:%d/", port))
	get := func(method string) string {
		t.Helper()
		n := len(be.plainAll())
		if status := client.do(t, method); status != "200" {
			t.Fatalf("%s over HTTP/3: %s", method, status)
		}
		all := be.plainAll()
		if len(all) != n+1 {
			t.Fatalf("%s: the backend saw %d requests", method, len(all)-n)
		}
		return all[len(all)-1].Get("Early-Data")
	}
	if v := get("GET"); v != "" {
		t.Errorf("a request after a full handshake: Early-Data %q, want empty", v)
	}
	// The session ticket comes after the handshake: on a loaded machine
	// the first connection may close before it arrives, and the next one
	// then makes a full handshake. Each connection brings a ticket.
	v := ""
	for try := 0; try < 5 && v != "1"; try++ {
		v = get("GET0RTT")
	}
	if v != "1" {
		t.Errorf("a request in 0-RTT data: Early-Data %q, want 1", v)
	}
}

// TestClientCertH3: over HTTP/3 the client certificate is checked as over
// TCP: with one, the backend gets its subject and SUCCESS on every request
// of the connection; without one, nginx's 400 page and no backend request.
func TestClientCertH3(t *testing.T) {
	cc := makeClientCerts(t)
	be := startBackend(t, "b1")
	port := freePort(t)
	startGate(t, fmt.Sprintf(`
error_log {{DIR}}/error.log info;
http {
    server {
        listen 127.0.0.1:%[1]d quic;
        listen 127.0.0.1:%[1]d ssl;
        server_name localhost;
        ssl_certificate %[3]s/server.pem;
        ssl_certificate_key %[3]s/server.key;
        ssl_client_certificate %[3]s/ca.pem;
        ssl_verify_client on;
        location / {
            proxy_pass http://%[2]s;
            proxy_set_header X-Client-DN $ssl_client_s_dn;
            proxy_set_header X-Client-Verify $ssl_client_verify;
        }
    }
}`, port, be.addr, cc.dir))
	get := func(tr *http3.Transport) (int, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), slow(10*time.Second))
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("https://localhost:%d/", port), nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("HTTP/3: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(body)
	}
	tr := &http3.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "localhost", Certificates: []tls.Certificate{cc.valid}}}
	defer tr.Close()
	for i := range 2 {
		if status, body := get(tr); status != 200 {
			t.Fatalf("request %d with a certificate: %d %s", i+1, status, body)
		}
		h := be.lastPlain()
		if h.Get("X-Client-Dn") != deviceDN || h.Get("X-Client-Verify") != "SUCCESS" {
			t.Errorf("request %d: backend got DN %q, verify %q", i+1, h.Get("X-Client-Dn"), h.Get("X-Client-Verify"))
		}
	}
	n := len(be.plainAll())
	bare := &http3.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"}}
	defer bare.Close()
	if status, body := get(bare); status != 400 || !strings.Contains(body, "No required SSL certificate was sent") {
		t.Errorf("without a certificate: %d %s", status, body)
	}
	if len(be.plainAll()) != n {
		t.Error("a request without a certificate reached the backend")
	}
}

// h3client is the helper program test/e2e/h3client, running: each
// request is one line to its stdin and one line back.
type h3client struct {
	in  io.WriteCloser
	out *bufio.Scanner
}

// startH3Client starts the helper against url; it ends with the test.
// It is built without -race (see its package comment).
func startH3Client(t *testing.T, url string) *h3client {
	t.Helper()
	cmd := exec.Command(h3clientBuild.get(t), url)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("h3client: %v", err)
		}
	})
	return &h3client{in: in, out: bufio.NewScanner(out)}
}

var h3clientBuild = builtTool{name: "h3client", pkg: "./h3client"}

// do sends one request and returns the helper's answer: the status code,
// or "error: " and the reason.
func (c *h3client) do(t *testing.T, method string) string {
	t.Helper()
	if _, err := fmt.Fprintln(c.in, method); err != nil {
		t.Fatalf("h3client: %v", err)
	}
	if !c.out.Scan() {
		t.Fatalf("h3client ended: %v", c.out.Err())
	}
	return c.out.Text()
}
