package tlsconf

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/youmark/pkcs8"
)

func clientCfg() *tls.Config {
	return &tls.Config{InsecureSkipVerify: true, ServerName: "ws.example.com"}
}

// TestEncryptedKeys: PKCS#8 encrypted (written by this library and by the
// openssl tool) and legacy PEM encrypted keys open with ssl_password_file,
// trying each line; a wrong or missing pass phrase is a clear error.
func TestEncryptedKeys(t *testing.T) {
	ca := newCA(t, "root", nil)
	key := ecKey(t)
	cert := ca.leaf(t, key, "")
	certFile := writeFile(t, "cert.pem", certsPEM(cert))

	p8, err := pkcs8.MarshalPrivateKey(key, []byte("secret"), nil)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{
		"pkcs8": writeFile(t, "p8.key", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: p8})),
	}
	der, err := x509.MarshalECPrivateKey(key.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	//lint:ignore SA1019 writes the legacy format wsgate must still read.
	blk, err := x509.EncryptPEMBlock(rand.Reader, "EC PRIVATE KEY", der, []byte("secret"), x509.PEMCipherAES256) //nolint:staticcheck
	if err != nil {
		t.Fatal(err)
	}
	keys["legacy"] = writeFile(t, "legacy.key", pem.EncodeToMemory(blk))
	if bin, err := exec.LookPath("openssl"); err == nil {
		plain := writeFile(t, "plain.key", keyPEM(t, key))
		out := filepath.Join(t.TempDir(), "openssl.key")
		cmd := exec.Command(bin, "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", plain, "-out", out, "-passout", "pass:secret")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("openssl pkcs8: %v\n%s", err, b)
		}
		keys["openssl pkcs8"] = out
	}
	good := writeFile(t, "pw", []byte("wrong\nsecret\n"))
	bad := writeFile(t, "pw", []byte("wrong\n"))
	for name, kf := range keys {
		c := mustNew(t, Options{Certs: []CertPair{{Cert: certFile, Key: kf}}, PasswordFile: good})
		if _, err := dial(t, serve(t, c.TLS()), clientCfg()); err != nil {
			t.Errorf("%s: handshake: %v", name, err)
		}
		if _, err := New(Options{Certs: []CertPair{{Cert: certFile, Key: kf}}, PasswordFile: bad}); err == nil || !strings.Contains(err.Error(), "no pass phrase") {
			t.Errorf("%s with a wrong pass phrase: %v", name, err)
		}
		if _, err := New(Options{Certs: []CertPair{{Cert: certFile, Key: kf}}}); err == nil || !strings.Contains(err.Error(), "ssl_password_file") {
			t.Errorf("%s without ssl_password_file: %v", name, err)
		}
	}
}

// TestDataCertificate: ssl_certificate data:PEM.
func TestDataCertificate(t *testing.T) {
	ca := newCA(t, "root", nil)
	key := ecKey(t)
	cert := ca.leaf(t, key, "")
	c := mustNew(t, Options{Certs: []CertPair{{Cert: "data:" + string(certsPEM(cert)), Key: "data:" + string(keyPEM(t, key))}}})
	st, err := dial(t, serve(t, c.TLS()), clientCfg())
	if err != nil || !st.PeerCertificates[0].Equal(cert) {
		t.Fatalf("data: certificate not served: %v", err)
	}
}

func TestDHParam(t *testing.T) {
	ca := newCA(t, "root", nil)
	key := ecKey(t)
	p := pair(t, key, ca.leaf(t, key, ""))
	der, _ := asn1.Marshal(struct{ P, G *big.Int }{big.NewInt(0).SetBytes([]byte{0xff, 0xff, 0xff, 0xfb}), big.NewInt(2)})
	good := writeFile(t, "dh.pem", pem.EncodeToMemory(&pem.Block{Type: "DH PARAMETERS", Bytes: der}))
	mustNew(t, Options{Certs: []CertPair{p}, DHParam: good})
	for _, bad := range []string{writeFile(t, "x.pem", []byte("junk")), filepath.Join(t.TempDir(), "missing.pem")} {
		if _, err := New(Options{Certs: []CertPair{p}, DHParam: bad}); err == nil || !strings.Contains(err.Error(), "ssl_dhparam") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

// TestConfCommands: what Go honours is mapped, the rest refused with why.
func TestConfCommands(t *testing.T) {
	ca := newCA(t, "root", nil)
	key := ecKey(t)
	p := pair(t, key, ca.leaf(t, key, ""))
	c := mustNew(t, Options{Certs: []CertPair{p}, ConfCommands: [][2]string{{"MinProtocol", "TLSv1.3"}, {"Options", "ServerPreference,PrioritizeChaCha"}}})
	addr := serve(t, c.TLS())
	if _, err := dial(t, addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12}); err == nil {
		t.Error("MinProtocol TLSv1.3: a TLS 1.2 client got in")
	}
	if st, err := dial(t, addr, clientCfg()); err != nil || st.Version != tls.VersionTLS13 {
		t.Errorf("MinProtocol TLSv1.3: %v", err)
	}
	for cmd, want := range map[[2]string]string{
		{"Ciphersuites", "TLS_AES_256_GCM_SHA384"}: "TLS 1.3 cipher suites cannot be chosen",
		{"Options", "KTLS"}:                        "Options KTLS is not supported",
		{"RecordPadding", "16"}:                    "RecordPadding is not supported",
		{"MaxProtocol", "TLSv1.1"}:                 "leaves no protocol",
	} {
		if _, err := New(Options{Certs: []CertPair{p}, ConfCommands: [][2]string{cmd}}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: %v, want %q", cmd, err, want)
		}
	}
}

func TestRejectHandshake(t *testing.T) {
	c := mustNew(t, Options{RejectHandshake: true})
	// As the server uses it: chosen by SNI through GetConfigForClient.
	bySNI := &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return c.TLS(), nil }}
	_, err := dial(t, serve(t, bySNI), clientCfg())
	if err == nil || !strings.Contains(err.Error(), "unrecognized name") {
		t.Fatalf("handshake: %v, want an unrecognized_name alert", err)
	}
}

// TestCertificateBySNI: $ssl_server_name in the paths loads the pair the
// name selects; names that could leave the folder are refused; the cache
// keeps a pair once loaded.
func TestCertificateBySNI(t *testing.T) {
	ca := newCA(t, "root", nil)
	dir := t.TempDir()
	for _, n := range []string{"a.test", "b.test"} {
		key := ecKey(t)
		tmpl := &x509.Certificate{SerialNumber: nextSerial(), Subject: pkix.Name{CommonName: n}, DNSNames: []string{n},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, n+".pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
		os.WriteFile(filepath.Join(dir, n+".key"), keyPEM(t, key), 0o600)
	}
	os.WriteFile(filepath.Join(dir, "secret.pem"), []byte("not a certificate"), 0o600)
	tmpl := CertPair{Cert: dir + "/$ssl_server_name.pem", Key: dir + "/${ssl_server_name}.key"}
	c := mustNew(t, Options{Certs: []CertPair{tmpl}, CertCache: CertCache{Max: 10, Inactive: time.Hour, Valid: time.Hour}})
	addr := serve(t, c.TLS())
	for _, n := range []string{"a.test", "B.test"} {
		st, err := dial(t, addr, &tls.Config{InsecureSkipVerify: true, ServerName: n})
		if err != nil || st.PeerCertificates[0].Subject.CommonName != strings.ToLower(n) {
			t.Fatalf("SNI %s: %v", n, err)
		}
	}
	for _, n := range []string{"../a.test", "a.test/../secret", ".a.test", "a..test", "x/y"} {
		if _, err := c.TLS().GetCertificate(&tls.ClientHelloInfo{ServerName: n}); err == nil {
			t.Errorf("SNI %q loaded a certificate", n)
		}
	}
	// Cached: served after the files are gone.
	os.Remove(filepath.Join(dir, "a.test.pem"))
	if _, err := dial(t, addr, &tls.Config{InsecureSkipVerify: true, ServerName: "a.test"}); err != nil {
		t.Errorf("cached certificate: %v", err)
	}
	nocache := mustNew(t, Options{Certs: []CertPair{tmpl}})
	if _, err := nocache.TLS().GetCertificate(&tls.ClientHelloInfo{ServerName: "a.test"}); err == nil {
		t.Error("without a cache, a removed certificate was still served")
	}
}

// TestSessionTicketKeys: two configurations given the same
// ssl_session_ticket_key file resume each other's sessions; with
// different files they do not. A file of the wrong size is refused.
func TestSessionTicketKeys(t *testing.T) {
	ca := newCA(t, "root", nil)
	key := ecKey(t)
	p := pair(t, key, ca.leaf(t, key, ""))
	k1 := writeFile(t, "k1", bytes.Repeat([]byte{1}, 80))
	k2 := writeFile(t, "k2", bytes.Repeat([]byte{2}, 48))
	a := serve(t, mustNew(t, Options{Certs: []CertPair{p}, TicketKeys: []string{k1}}).TLS())
	b := serve(t, mustNew(t, Options{Certs: []CertPair{p}, TicketKeys: []string{k1, k2}}).TLS())
	c := serve(t, mustNew(t, Options{Certs: []CertPair{p}, TicketKeys: []string{k2}}).TLS())
	cfg := clientCfg()
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
	if _, err := dial(t, a, cfg); err != nil {
		t.Fatal(err)
	}
	if st, err := dial(t, b, cfg); err != nil || !st.DidResume {
		t.Errorf("same key file: resumed %v, %v", st.DidResume, err)
	}
	if st, err := dial(t, c, cfg); err != nil || st.DidResume {
		t.Errorf("other key file: resumed %v, %v", st.DidResume, err)
	}
	if _, err := New(Options{Certs: []CertPair{p}, TicketKeys: []string{writeFile(t, "k3", []byte("short"))}}); err == nil || !strings.Contains(err.Error(), "48 or 80 bytes") {
		t.Errorf("a 5-byte key file: %v", err)
	}
}
