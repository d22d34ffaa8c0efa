package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startOCSPResponder answers OCSP requests (POST, or GET with the request
// in the path, as nginx sends it) on 127.0.0.1 by running `openssl ocsp`
// on each against an OpenSSL index of the CA's certificates: good ones
// valid, revoked ones revoked, others unknown. (openssl's own server
// would listen on every interface.)
func startOCSPResponder(t *testing.T, cc *clientCerts, good, revoked []*x509.Certificate) string {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatal("openssl is needed for the OCSP tests")
	}
	var index strings.Builder
	exp := time.Now().Add(24 * time.Hour).UTC().Format("060102150405Z")
	for _, c := range good {
		fmt.Fprintf(&index, "V\t%s\t\t%X\tunknown\t/CN=%s\n", exp, c.SerialNumber, c.Subject.CommonName)
	}
	for _, c := range revoked {
		fmt.Fprintf(&index, "R\t%s\t%s\t%X\tunknown\t/CN=%s\n", exp, time.Now().Add(-time.Hour).UTC().Format("060102150405Z"), c.SerialNumber, c.Subject.CommonName)
	}
	indexFile := filepath.Join(t.TempDir(), "index.txt")
	os.WriteFile(indexFile, []byte(index.String()), 0o644)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var der []byte
		if r.Method == http.MethodGet {
			p, _ := url.PathUnescape(strings.TrimPrefix(r.URL.EscapedPath(), "/"))
			der, _ = base64.StdEncoding.DecodeString(p)
		} else {
			der, _ = io.ReadAll(r.Body)
		}
		cmd := exec.Command(bin, "ocsp", "-index", indexFile, "-CA", cc.dir+"/ca.pem", "-rsigner", cc.dir+"/ca.pem",
			"-rkey", cc.dir+"/ca.key", "-reqin", "-", "-respout", "-", "-nmin", "10")
		cmd.Stdin = bytes.NewReader(der)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Logf("openssl ocsp: %v\n%s", err, errb.String())
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
	return "http://" + ln.Addr().String() + "/"
}

// TestClientOCSPDifferential: with ssl_ocsp, nginx and wsgate give the
// same statuses and $ssl_client_verify for good, revoked and unknown
// certificates, and for a responder that is down.
func TestClientOCSPDifferential(t *testing.T) {
	cc := makeClientCerts(t)
	be := startBackend(t, "b1")
	now := time.Now()
	unknown := cc.ca.issue(t, pkix.Name{CommonName: "device-unlisted"}, now.Add(-time.Hour), now.Add(25*time.Hour), false)
	responder := startOCSPResponder(t, cc, []*x509.Certificate{cc.valid.Leaf}, []*x509.Certificate{cc.revo.Leaf})
	closed := freePort(t)
	for _, tc := range []struct {
		name, url string
		certs     map[string]*tls.Certificate
	}{
		{"responder", responder, map[string]*tls.Certificate{"good": &cc.valid, "revoked": &cc.revo, "unknown": &unknown}},
		{"responder down", fmt.Sprintf("http://127.0.0.1:%d/", closed), map[string]*tls.Certificate{"good": &cc.valid}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startPair(t, diffConf{HTTP: clientCertConf(cc, be.addr, "on", "ssl_ocsp leaf; ssl_ocsp_responder "+tc.url+";")})
			for name, cert := range tc.certs {
				diffClientCert(t, p, be, name, cert)
			}
		})
	}
}
