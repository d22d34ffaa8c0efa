package tlsconf

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/youmark/pkcs8"
)

// sniServer runs serve with cfg and records the SNI of each handshake.
func sniServer(t *testing.T, cfg *tls.Config) (addr string, seen func() []string) {
	var mu sync.Mutex
	var names []string
	cfg = cfg.Clone()
	cfg.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		mu.Lock()
		names = append(names, h.ServerName)
		mu.Unlock()
		return nil, nil
	}
	return serve(t, cfg), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), names...)
	}
}

func newClient(t *testing.T, o ClientOptions) *Client {
	t.Helper()
	if o.VerifyDepth == 0 {
		o.VerifyDepth = 1
	}
	c, err := NewClient(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestClientVerify: proxy_ssl_verify off trusts anything (nginx's
// default); on, the chain must reach proxy_ssl_trusted_certificate within
// the depth, pass the CRLs and match proxy_ssl_name, each failure worded
// as nginx logs it.
func TestClientVerify(t *testing.T) {
	root, other := newCA(t, "root", nil), newCA(t, "other", nil)
	inter := newCA(t, "inter", root)
	key := ecKey(t)
	direct := mustNew(t, Options{Certs: []CertPair{pair(t, key, root.leaf(t, key, ""))}})
	viaInter := inter.leaf(t, key, "")
	chained := mustNew(t, Options{Certs: []CertPair{pair(t, key, viaInter, inter.cert)}})
	directAddr, chainedAddr := serve(t, direct.TLS()), serve(t, chained.TLS())
	rootFile := writeFile(t, "root.pem", certsPEM(root.cert))
	otherFile := writeFile(t, "other.pem", certsPEM(other.cert))
	now := time.Now()
	crl := writeFile(t, "crl.pem", append(crlPEM(t, root, now.Add(time.Hour)), crlPEM(t, inter, now.Add(time.Hour), viaInter)...))

	tests := []struct {
		name, addr, sslName string
		o                   ClientOptions
		want                string // "" for success
	}{
		{"verify off", directAddr, "anything", ClientOptions{}, ""},
		{"trusted CA", directAddr, "ws.example.com", ClientOptions{Verify: true, Trusted: rootFile}, ""},
		{"trusted CA, IP name", directAddr, "127.0.0.1", ClientOptions{Verify: true, Trusted: rootFile}, ""},
		{"wrong CA", directAddr, "ws.example.com", ClientOptions{Verify: true, Trusted: otherFile}, "upstream SSL certificate verify error: (21:unable to verify the first certificate)"},
		{"wrong CA, chain sent", chainedAddr, "ws.example.com", ClientOptions{Verify: true, Trusted: otherFile}, "upstream SSL certificate verify error: (20:unable to get local issuer certificate)"},
		{"name mismatch", directAddr, "other.example.com", ClientOptions{Verify: true, Trusted: rootFile}, "upstream SSL certificate does not match \"other.example.com\""},
		{"intermediate, depth 1", chainedAddr, "ws.example.com", ClientOptions{Verify: true, Trusted: rootFile}, "(22:certificate chain too long)"},
		{"intermediate, depth 2", chainedAddr, "ws.example.com", ClientOptions{Verify: true, Trusted: rootFile, VerifyDepth: 2}, ""},
		{"revoked", chainedAddr, "ws.example.com", ClientOptions{Verify: true, Trusted: rootFile, VerifyDepth: 2, CRL: crl}, "(23:certificate revoked)"},
	}
	for _, tt := range tests {
		c := newClient(t, tt.o)
		_, err := dial(t, tt.addr, c.For(tt.sslName, false))
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		var ve *VerifyError
		if !errors.As(err, &ve) || !strings.Contains(HandshakeMessage(err), tt.want) {
			t.Errorf("%s: got %v, want %q", tt.name, err, tt.want)
		}
	}
}

// TestClientSNI: proxy_ssl_server_name off sends no SNI; on sends
// proxy_ssl_name without its port, but never an IP address.
func TestClientSNI(t *testing.T) {
	root := newCA(t, "root", nil)
	key := ecKey(t)
	srv := mustNew(t, Options{Certs: []CertPair{pair(t, key, root.leaf(t, key, ""))}})
	addr, seen := sniServer(t, srv.TLS())
	c := newClient(t, ClientOptions{})
	for _, tc := range []struct {
		name string
		sni  bool
	}{{"ws.example.com:8443", false}, {"ws.example.com:8443", true}, {"127.0.0.1", true}, {"[::1]:443", true}} {
		if _, err := dial(t, addr, c.For(tc.name, tc.sni)); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"", "ws.example.com", "", ""}
	if got := seen(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("SNI seen %q, want %q", got, want)
	}
}

// TestClientSessionReuse: the second handshake resumes the first's
// session; proxy_ssl_session_reuse off never resumes.
func TestClientSessionReuse(t *testing.T) {
	root := newCA(t, "root", nil)
	key := ecKey(t)
	srv := mustNew(t, Options{Certs: []CertPair{pair(t, key, root.leaf(t, key, ""))}})
	addr := serve(t, srv.TLS())
	for _, reuse := range []bool{true, false} {
		cfg := newClient(t, ClientOptions{SessionReuse: reuse}).For("ws.example.com", true)
		if st, err := dial(t, addr, cfg); err != nil || st.DidResume {
			t.Fatalf("first handshake: %v, resumed %v", err, st.DidResume)
		}
		st, err := dial(t, addr, cfg)
		if err != nil || st.DidResume != reuse {
			t.Errorf("session_reuse %v: second handshake %v, resumed %v", reuse, err, st.DidResume)
		}
	}
}

// TestClientCertificate: proxy_ssl_certificate is presented to a backend
// that asks for it; an encrypted key opens with proxy_ssl_password_file.
func TestClientCertificate(t *testing.T) {
	root := newCA(t, "root", nil)
	key := ecKey(t)
	srvCfg := mustNew(t, Options{Certs: []CertPair{pair(t, key, root.leaf(t, key, ""))}}).TLS().Clone()
	srvCfg.ClientAuth = tls.RequireAndVerifyClientCert
	srvCfg.ClientCAs = pool(root.cert)
	addr := serve(t, srvCfg)

	ckey := ecKey(t)
	p8, err := pkcs8.MarshalPrivateKey(ckey, []byte("secret"), nil)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: nextSerial(), Subject: pkix.Name{CommonName: "proxy"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root.cert, ckey.Public(), root.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	certFile := writeFile(t, "client.pem", certsPEM(leaf))
	keyFile := writeFile(t, "client.key", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: p8}))
	pw := writeFile(t, "pw", []byte("secret\n"))

	if _, err := dial(t, addr, newClient(t, ClientOptions{}).For("x", false)); err == nil {
		t.Error("a backend requiring a client certificate took a handshake without one")
	}
	c := newClient(t, ClientOptions{Cert: certFile, Key: keyFile, PasswordFile: pw})
	if _, err := dial(t, addr, c.For("x", false)); err != nil {
		t.Errorf("with proxy_ssl_certificate: %v", err)
	}
	if _, err := NewClient(ClientOptions{Cert: certFile, Key: keyFile}); err == nil || !strings.Contains(err.Error(), "proxy_ssl_password_file") {
		t.Errorf("encrypted key without proxy_ssl_password_file: %v", err)
	}
}

// TestClientProtocols: TLSv1 and TLSv1.1 only when named, SSLv3 refused
// by name, ciphers and conf commands mapped as the server side's.
func TestClientProtocols(t *testing.T) {
	c := newClient(t, ClientOptions{Protocols: []string{"TLSv1", "TLSv1.1", "TLSv1.2"}, Ciphers: "ECDHE+AESGCM"})
	cfg := c.For("x", false)
	if cfg.MinVersion != tls.VersionTLS10 || cfg.MaxVersion != tls.VersionTLS12 || len(cfg.CipherSuites) == 0 {
		t.Errorf("TLSv1..TLSv1.2 with ciphers: %x-%x %v", cfg.MinVersion, cfg.MaxVersion, cfg.CipherSuites)
	}
	if cfg := newClient(t, ClientOptions{}).For("x", false); cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("default minimum %x, want TLSv1.2", cfg.MinVersion)
	}
	for _, o := range []ClientOptions{
		{Protocols: []string{"SSLv3", "TLSv1.2"}},
		{ConfCommands: [][2]string{{"Ciphersuites", "TLS_AES_128_GCM_SHA256"}}},
		{Verify: true},
	} {
		if _, err := NewClient(o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	if c := newClient(t, ClientOptions{ConfCommands: [][2]string{{"MinProtocol", "TLSv1.3"}}}); c.For("x", false).MinVersion != tls.VersionTLS13 {
		t.Error("proxy_ssl_conf_command MinProtocol TLSv1.3 not applied")
	}
}
