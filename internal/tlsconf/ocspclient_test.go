package tlsconf

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// opensslResponder answers OCSP requests on 127.0.0.1 with `openssl
// ocsp` run on each request against an OpenSSL index file, so the
// responses are OpenSSL's own. (openssl's built-in server binds every
// interface; the tests stay on loopback.)
type opensslResponder struct {
	url   string
	hits  atomic.Int64
	delay time.Duration
}

func startOpensslResponder(t *testing.T, ca *authority, good, revoked []*x509.Certificate, delay time.Duration) *opensslResponder {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("no openssl binary")
	}
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, certsPEM(ca.cert), 0o600)
	keyFile := filepath.Join(dir, "ca.key")
	os.WriteFile(keyFile, keyPEM(t, ca.key), 0o600)
	var index strings.Builder
	exp := time.Now().Add(24 * time.Hour).UTC().Format("060102150405Z")
	for _, c := range good {
		fmt.Fprintf(&index, "V\t%s\t\t%X\tunknown\t/CN=%s\n", exp, c.SerialNumber, c.Subject.CommonName)
	}
	rev := time.Now().Add(-time.Hour).UTC().Format("060102150405Z")
	for _, c := range revoked {
		fmt.Fprintf(&index, "R\t%s\t%s\t%X\tunknown\t/CN=%s\n", exp, rev, c.SerialNumber, c.Subject.CommonName)
	}
	indexFile := filepath.Join(dir, "index.txt")
	os.WriteFile(indexFile, []byte(index.String()), 0o600)
	r := &opensslResponder{delay: delay}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.hits.Add(1)
		body, _ := io.ReadAll(req.Body)
		if r.delay > 0 {
			select {
			case <-time.After(r.delay):
			case <-req.Context().Done():
				return
			}
		}
		cmd := exec.Command(bin, "ocsp", "-index", indexFile, "-CA", caFile, "-rsigner", caFile, "-rkey", keyFile,
			"-reqin", "-", "-respout", "-", "-nmin", "10")
		cmd.Stdin = bytes.NewReader(body)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Errorf("openssl ocsp: %v\n%s", err, errb.String())
			w.WriteHeader(500)
			return
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write(out.Bytes())
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	r.url = "http://" + ln.Addr().String() + "/"
	return r
}

func ocspLeafCert(t *testing.T, ca *authority, cn, url string) *x509.Certificate {
	t.Helper()
	key := ecKey(t)
	tmpl := &x509.Certificate{SerialNumber: nextSerial(), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if url != "" {
		tmpl.OCSPServer = []string{url}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

// TestClientOCSP: ssl_ocsp asks `openssl ocsp` about client certificates:
// good passes, revoked and unknown fail with nginx's reasons, answers
// are cached, and a responder that is down or slower than the capped
// wait fails the certificate ("certificate status request failed").
func TestClientOCSP(t *testing.T) {
	ca := newCA(t, "root", nil)
	key := ecKey(t)
	p := pair(t, key, ca.leaf(t, key, ""))
	caFile := writeFile(t, "ca.pem", certsPEM(ca.cert))

	// Certificates name a placeholder URL; ssl_ocsp_responder overrides it.
	good := ocspLeafCert(t, ca, "good", "http://127.0.0.1:1/")
	revoked := ocspLeafCert(t, ca, "revoked", "http://127.0.0.1:1/")
	unknown := ocspLeafCert(t, ca, "unknown", "http://127.0.0.1:1/")
	resp := startOpensslResponder(t, ca, []*x509.Certificate{good}, []*x509.Certificate{revoked}, 0)

	c := mustNew(t, Options{Certs: []CertPair{p}, VerifyClient: VerifyOn, ClientCertificate: caFile,
		OCSP: OCSPOn, OCSPResponder: resp.url, OCSPCache: 100})
	for _, tt := range []struct {
		cert *x509.Certificate
		want string
	}{
		{good, "SUCCESS"},
		{revoked, "FAILED:certificate revoked"},
		{unknown, "FAILED:certificate status unknown"},
	} {
		if r := c.VerifyClient(&tls.ConnectionState{PeerCertificates: []*x509.Certificate{tt.cert}}); r.Verify != tt.want {
			t.Errorf("%s: %q, want %q", tt.cert.Subject.CommonName, r.Verify, tt.want)
		}
	}
	hits := resp.hits.Load()
	if r := c.VerifyClient(&tls.ConnectionState{PeerCertificates: []*x509.Certificate{good}}); r.Verify != "SUCCESS" || resp.hits.Load() != hits {
		t.Errorf("second check: %q, responder asked again: %v", r.Verify, resp.hits.Load() != hits)
	}

	// The certificate's own URL, unreachable.
	down := mustNew(t, Options{Certs: []CertPair{p}, VerifyClient: VerifyOn, ClientCertificate: caFile, OCSP: OCSPLeaf})
	if r := down.VerifyClient(&tls.ConnectionState{PeerCertificates: []*x509.Certificate{good}}); r.Verify != "FAILED:certificate status request failed" || r.Status != 495 {
		t.Errorf("responder down: %q %d", r.Verify, r.Status)
	}

	// A responder slower than the cap.
	slow := startOpensslResponder(t, ca, []*x509.Certificate{good}, nil, 10*time.Second)
	capped := mustNew(t, Options{Certs: []CertPair{p}, VerifyClient: VerifyOn, ClientCertificate: caFile,
		OCSP: OCSPOn, OCSPResponder: slow.url, ocspWait: 200 * time.Millisecond})
	start := time.Now()
	if r := capped.VerifyClient(&tls.ConnectionState{PeerCertificates: []*x509.Certificate{good}}); r.Verify != "FAILED:certificate status request failed" {
		t.Errorf("slow responder: %q", r.Verify)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the wait was not capped: %v", d)
	}

	if _, err := New(Options{Certs: []CertPair{p}, VerifyClient: VerifyOptionalNoCA, OCSP: OCSPOn}); err == nil {
		t.Error("ssl_ocsp with optional_no_ca was accepted")
	}
}
