package server

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestSSLOfferVariables: $ssl_ciphers and $ssl_curves print what the
// client's ClientHello offered, with OpenSSL's names joined by ':', on
// every request of the connection. (Go's client orders its offer itself,
// by the hardware for suites: the suites are compared as a set.)
func TestSSLOfferVariables(t *testing.T) {
	dir := t.TempDir()
	writeTestCert(t, dir)
	port := freeTCPPort(t)
	s := applyTestConfig(t, filepath.Join(dir, "t.conf"), fmt.Sprintf(`
error_log stderr crit;
http {
    access_log off;
    server {
        listen 127.0.0.1:%d ssl;
        ssl_certificate c.pem;
        ssl_certificate_key k.pem;
        location / { return 200 "$ssl_ciphers $ssl_curves"; }
    }
}`, port))
	defer s.Close()
	for _, tc := range []struct {
		cfg     *tls.Config
		ciphers []string
		curves  string
	}{
		{&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}, CurvePreferences: []tls.CurveID{tls.CurveP256}},
			[]string{"ECDHE-ECDSA-AES128-GCM-SHA256"}, "prime256v1"},
		{&tls.Config{MinVersion: tls.VersionTLS13, CurvePreferences: []tls.CurveID{tls.X25519MLKEM768}},
			[]string{"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}, "X25519MLKEM768"},
	} {
		tc.cfg.InsecureSkipVerify, tc.cfg.ServerName = true, "x"
		c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		for i := range 2 {
			fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			ciphers, curves, _ := strings.Cut(string(body), " ")
			got := strings.Split(ciphers, ":")
			slices.Sort(got)
			if !slices.Equal(got, tc.ciphers) || curves != tc.curves {
				t.Errorf("request %d: $ssl_ciphers $ssl_curves = %q, want the suites %q and %q", i+1, body, tc.ciphers, tc.curves)
			}
		}
		c.Close()
	}
}
