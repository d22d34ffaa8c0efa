package e2e

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// opensslCipher connects with `openssl s_client` over TLS 1.2 offering
// offer, and returns the suite negotiated ("" when the handshake failed).
func opensslCipher(t *testing.T, addr, offer string) string {
	t.Helper()
	cmd := exec.Command("openssl", "s_client", "-connect", addr, "-servername", "localhost", "-tls1_2", "-cipher", offer)
	cmd.Stdin = strings.NewReader("")
	done := make(chan struct{})
	var out []byte
	go func() { out, _ = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(slow(10 * time.Second)):
		cmd.Process.Kill()
		<-done
		t.Fatalf("openssl s_client to %s hung", addr)
	}
	m := regexp.MustCompile(`Cipher is (\S+)`).FindSubmatch(out)
	if m == nil || string(m[1]) == "(NONE)" {
		return ""
	}
	return string(m[1])
}

// TestCipherStringsDifferential: for ssl_ciphers strings from real
// configurations and Mozilla's, openssl s_client negotiates the same
// TLS 1.2 suite with nginx and wsgate, for clients offering one suite
// at a time (the ECDSA certificate decides which can work).
func TestCipherStringsDifferential(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl is needed for this test")
	}
	cc := makeClientCerts(t)
	offers := []string{
		"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305",
		"ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA",
	}
	for _, expr := range []string{
		"HIGH:!aNULL:!MD5",
		"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384",
		"EECDH+AESGCM:EDH+AESGCM",
		"AESGCM:!AES128",
		"ECDHE:!SHA1:!SHA256:NO-SUCH-CIPHER",
	} {
		p := startPair(t, diffConf{HTTP: `
server {
    listen 127.0.0.1:{{PORT}} ssl;
    server_name localhost;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate ` + cc.dir + `/server.pem;
    ssl_certificate_key ` + cc.dir + `/server.key;
    ssl_ciphers "` + expr + `";
    location / { return 200 "ok"; }
}`})
		accepted := 0
		for _, offer := range offers {
			ng, ws := opensslCipher(t, p.nginx, offer), opensslCipher(t, p.wsgate, offer)
			if ng != ws {
				t.Errorf("ssl_ciphers %q, client offers %s: nginx %q, wsgate %q", expr, offer, ng, ws)
			}
			if ws != "" {
				accepted++
			}
		}
		t.Logf("ssl_ciphers %q: %d of %d single-suite clients served", expr, accepted, len(offers))
		p.ng.stop()
		p.gate.stop()
	}
}
