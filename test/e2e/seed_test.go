package e2e

import (
	"crypto/tls"
	"fmt"
	"io"
	nethttp "net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// guideDir holds the guide's fourteen example configs, unchanged (the
// config parser's tests read the same copy).
var guideDir = filepath.Join("..", "..", "internal", "conf", "testdata", "seed")

// seed returns a config of the guide with only host names, ports and paths
// substituted, so that it runs on loopback: backends become the
// given loopback addresses, listen 80 becomes listen (443 becomes
// tlsListen), servers without listen get one, log and pid paths move into
// {{DIR}}, and fragments get an error_log there. `user nginx;` is dropped
// (that user does not exist here).
func seed(t testing.TB, name string, backends []string, listen, tlsListen string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(guideDir, name))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	pick := func(i int) string { return backends[i%len(backends)] }
	s = strings.NewReplacer(
		"backend1.example.com:8080", pick(0),
		"backend2.example.com:8080", pick(1),
		"backend3.example.com:8080", pick(2),
		"backup.example.com:8080", backends[len(backends)-1],
		"/var/log/nginx/", "{{DIR}}/",
		"/var/run/nginx.pid", "{{DIR}}/logs/wsgate.pid",
		"/path/to/", "{{DIR}}/",
		"/etc/ssl/certs/", "{{DIR}}/",
		"/etc/ssl/private/", "{{DIR}}/",
	).Replace(s)
	if !strings.Contains(s, "upstream websocket_backend ") {
		s = strings.ReplaceAll(s, "http://websocket_backend;", "http://"+backends[0]+";")
	}
	s = strings.ReplaceAll(s, "proxy_pass http://backend;", "proxy_pass http://"+backends[0]+";")
	s = regexp.MustCompile(`(?m)^(\s*)listen 80;`).ReplaceAllString(s, "${1}listen "+listen+";")
	s = regexp.MustCompile(`(?m)^(\s*)listen 443 `).ReplaceAllString(s, "${1}listen "+tlsListen+" ")
	s = regexp.MustCompile(`(?m)^user nginx;\n`).ReplaceAllString(s, "")
	s = addListens(s, listen)
	if !regexp.MustCompile(`(?m)^error_log`).MatchString(s) {
		s = "error_log {{DIR}}/error.log info;\n" + s
	}
	return s
}

// addListens gives every server block of the http context without a
// listen directive one on addr.
func addListens(s, addr string) string {
	lines := strings.Split(s, "\n")
	var out []string
	depth := 0
	open := -1 // index in out of a "server {" line still without listen
	for _, l := range lines {
		trim := strings.TrimSpace(l)
		if depth == 1 && strings.HasPrefix(trim, "server {") {
			open = len(out)
		}
		if depth == 2 && open >= 0 && strings.HasPrefix(trim, "listen ") {
			open = -1
		}
		out = append(out, l)
		depth += strings.Count(l, "{") - strings.Count(l, "}")
		if depth == 1 && open >= 0 {
			out = append(out[:open+1], append([]string{"        listen " + addr + ";"}, out[open+1:]...)...)
			open = -1
		}
	}
	return strings.Join(out, "\n")
}

// TestSeedConfigsLoad runs `wsgate -t` on every config of the guide, with
// generated certificates for the TLS ones: all of them load.
func TestSeedConfigsLoad(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(guideDir, "*.conf"))
	if err != nil || len(files) != 14 {
		t.Fatalf("found %d guide configs in %s, want 14 (%v)", len(files), guideDir, err)
	}
	loaded := 0
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			os.MkdirAll(filepath.Join(dir, "logs"), 0o755)
			seedCerts(t, dir)
			conf := writeConf(t, dir, seed(t, name, []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:4"}, "127.0.0.1:18080", "127.0.0.1:18443"))
			out, err := exec.Command(binary, "-t", "-p", dir, "-c", conf).CombinedOutput()
			if err != nil {
				t.Fatalf("wsgate -t failed: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), "test is successful") {
				t.Fatalf("no success line:\n%s", out)
			}
			loaded++
		})
	}
	if loaded != 14 {
		t.Errorf("%d of 14 seed configs load", loaded)
	}
}

// seedCerts writes the certificate files the TLS seeds name, generated
// here: fullchain.pem, privkey.pem and chain.pem (the CA bundle for
// stapling), all for ws.example.com.
func seedCerts(t testing.TB, dir string) {
	t.Helper()
	writeCert(t, dir, "fullchain", "ws.example.com")
	if err := os.Rename(filepath.Join(dir, "fullchain.key"), filepath.Join(dir, "privkey.pem")); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "fullchain.pem"))
	os.WriteFile(filepath.Join(dir, "chain.pem"), b, 0o644)
}

// TestSeed14 runs the guide's complete production configuration with
// certificates generated here: a wss round trip through ip_hash and the
// limits, the /health answer with one Content-Type, the protected
// /nginx_status, and the HTTP to HTTPS redirect.
func TestSeed14(t *testing.T) {
	be := startBackend(t, "b1")
	gdir := t.TempDir()
	os.MkdirAll(filepath.Join(gdir, "logs"), 0o755)
	seedCerts(t, gdir)
	https, http := freePort(t), freePort(t)
	conf := seed(t, "14-complete-production.conf", []string{be.addr}, fmt.Sprintf("127.0.0.1:%d", http), fmt.Sprintf("127.0.0.1:%d", https))
	conf = strings.ReplaceAll(conf, "{{DIR}}", gdir)
	g := startGate(t, conf)
	d := websocket.Dialer{HandshakeTimeout: slow(5 * time.Second), TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "ws.example.com"}}
	c, resp, err := d.Dial(fmt.Sprintf("wss://127.0.0.1:%d/ws", https), nil)
	if err != nil {
		t.Fatalf("wss through seed 14: %v %v\n%s", err, resp, g.errorLog())
	}
	echo(t, c, "production")
	if hsts := resp.Header.Get("Strict-Transport-Security"); hsts != "max-age=31536000; includeSubDomains" {
		t.Errorf("HSTS on the 101: %q", hsts)
	}
	c.Close()
	cl := &nethttp.Client{Timeout: slow(5 * time.Second), Transport: &nethttp.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	r, err := cl.Get(fmt.Sprintf("https://127.0.0.1:%d/health", https))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 200 || string(body) != "healthy\n" || len(r.Header.Values("Content-Type")) != 1 || r.Header.Get("Content-Type") != "text/plain" {
		t.Errorf("/health: %d %q %v", r.StatusCode, body, r.Header.Values("Content-Type"))
	}
	r, err = cl.Get(fmt.Sprintf("https://127.0.0.1:%d/nginx_status", https))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 200 || !strings.HasPrefix(string(body), "Active connections:") {
		t.Errorf("/nginx_status from 127.0.0.1: %d %q", r.StatusCode, body)
	}
	st, head, _ := rawRequest(t, fmt.Sprintf("127.0.0.1:%d", http), "GET /ws?a=1 HTTP/1.1\r\nHost: ws.example.com\r\nConnection: close\r\n\r\n")
	if st != 301 || !strings.Contains(head, "Location: https://ws.example.com/ws?a=1") {
		t.Errorf("redirect: %d\n%s", st, head)
	}
}
