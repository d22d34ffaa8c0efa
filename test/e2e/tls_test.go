package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// writeCert writes a self-signed ECDSA certificate for names into dir as
// NAME.pem / NAME.key and returns the certificate.
func writeCert(t testing.TB, dir, file string, names ...string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, file+".pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, file+".key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

const tlsConf = `
error_log {{DIR}}/error.log info;
http {
    log_format tlsinfo '$scheme $ssl_protocol $ssl_server_name $status';
    access_log {{DIR}}/access.log tlsinfo;
    server {
        listen 127.0.0.1:%[1]d ssl;
        server_name ws.example.com;
        ssl_certificate %[3]s.pem;
        ssl_certificate_key %[3]s.key;
        %[4]s
        location /ws {
            proxy_pass http://%[2]s;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_set_header X-Forwarded-Proto $scheme;
        }
    }
    server {
        listen 127.0.0.1:%[1]d ssl;
        server_name other.example.com;
        ssl_certificate other.pem;
        ssl_certificate_key other.key;
        location / { return 200 "other"; }
    }
    server {
        listen 127.0.0.1:%[5]d;
        server_name ws.example.com;
        return 301 https://$server_name$request_uri;
    }
}`

type tlsRig struct {
	g          *gate
	port, http int
	be         *backend
	cert       *x509.Certificate
	certDir    string
}

// startTLS writes certificates into the gate's folder before it starts:
// paths are relative to the config file, as nginx resolves them.
func startTLS(t *testing.T, extra string) *tlsRig {
	be := startBackend(t, "b1")
	r := &tlsRig{port: freePort(t), http: freePort(t), be: be}
	dir := t.TempDir()
	r.cert = writeCert(t, dir, "ws", "ws.example.com")
	writeCert(t, dir, "other", "other.example.com")
	conf := fmt.Sprintf(tlsConf, r.port, be.addr, "ws", extra, r.http)
	// The gate runs in its own temp dir: point the certs there by absolute path.
	conf = strings.ReplaceAll(conf, "ssl_certificate ws.pem", "ssl_certificate "+dir+"/ws.pem")
	conf = strings.ReplaceAll(conf, "ssl_certificate_key ws.key", "ssl_certificate_key "+dir+"/ws.key")
	conf = strings.ReplaceAll(conf, "ssl_certificate other.pem", "ssl_certificate "+dir+"/other.pem")
	conf = strings.ReplaceAll(conf, "ssl_certificate_key other.key", "ssl_certificate_key "+dir+"/other.key")
	r.g = startGate(t, conf)
	r.certDir = dir
	return r
}

func (r *tlsRig) dialer(sni string, cfg *tls.Config) *websocket.Dialer {
	if cfg == nil {
		cfg = &tls.Config{}
	}
	cfg.ServerName = sni
	cfg.InsecureSkipVerify = true
	return &websocket.Dialer{HandshakeTimeout: slow(5 * time.Second), TLSClientConfig: cfg}
}

func TestTLSRoundTrip(t *testing.T) {
	r := startTLS(t, "ssl_protocols TLSv1.2 TLSv1.3;")
	c, resp, err := r.dialer("ws.example.com", nil).Dial(fmt.Sprintf("wss://127.0.0.1:%d/ws", r.port), nil)
	if err != nil {
		t.Fatalf("wss dial: %v %v", err, resp)
	}
	defer c.Close()
	echo(t, c, "over TLS")
	if got := r.be.lastWS().Get("X-Forwarded-Proto"); got != "https" {
		t.Errorf("backend saw X-Forwarded-Proto %q", got)
	}
	c.Close()
	waitFor(t, 5*time.Second, "the session's log line", func() bool {
		b, _ := os.ReadFile(filepath.Join(r.g.dir, "access.log"))
		return strings.Contains(string(b), "https TLSv1.3 ws.example.com 101")
	})
	// SNI picks the other server block and its certificate.
	tc, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.port), &tls.Config{ServerName: "other.example.com", InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	if cn := tc.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "other.example.com" {
		t.Errorf("SNI other.example.com got certificate %q", cn)
	}
	tc.Close()
}

func TestTLSProtocolsAndCiphers(t *testing.T) {
	r := startTLS(t, "ssl_protocols TLSv1.3;")
	addr := fmt.Sprintf("127.0.0.1:%d", r.port)
	if c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: "ws.example.com", MaxVersion: tls.VersionTLS12}); err == nil {
		c.Close()
		t.Error("a TLS 1.2-only client was accepted with ssl_protocols TLSv1.3")
	}
	r2 := startTLS(t, "ssl_protocols TLSv1.2; ssl_ciphers ECDHE-ECDSA-AES256-GCM-SHA384;")
	c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r2.port), &tls.Config{InsecureSkipVerify: true, ServerName: "ws.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if cs := c.ConnectionState().CipherSuite; cs != tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 {
		t.Errorf("negotiated %s, want the one ssl_ciphers allows", tls.CipherSuiteName(cs))
	}
	c.Close()
}

// TestTLSSessionCacheWithoutTickets: as the guide's config (tickets off,
// shared cache on), the first connection is a full handshake and the
// second resumes.
func TestTLSSessionCacheWithoutTickets(t *testing.T) {
	r := startTLS(t, "ssl_session_cache shared:SSL:10m; ssl_session_timeout 1d; ssl_session_tickets off;")
	cache := tls.NewLRUClientSessionCache(4)
	addr := fmt.Sprintf("127.0.0.1:%d", r.port)
	for i := 0; i < 2; i++ {
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: "ws.example.com", ClientSessionCache: cache})
		if err != nil {
			t.Fatal(err)
		}
		// TLS 1.3 delivers the session after the handshake: read a response.
		c.SetDeadline(time.Now().Add(slow(10 * time.Second)))
		fmt.Fprintf(c, "GET /nothing HTTP/1.1\r\nHost: ws.example.com\r\nConnection: close\r\n\r\n")
		buf := make([]byte, 512)
		if _, err := c.Read(buf); err != nil {
			t.Fatalf("connection %d: reading the response: %v", i+1, err)
		}
		if resumed := c.ConnectionState().DidResume; resumed != (i == 1) {
			t.Errorf("connection %d resumed: %v", i+1, resumed)
		}
		c.Close()
	}
}

// TestTLSReloadNewCertificate: after a reload with a new certificate, new
// handshakes see it while an open wss tunnel keeps echoing.
func TestTLSReloadNewCertificate(t *testing.T) {
	r := startTLS(t, "")
	c, _, err := r.dialer("ws.example.com", nil).Dial(fmt.Sprintf("wss://127.0.0.1:%d/ws", r.port), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echo(t, c, "before")
	newCert := writeCert(t, r.certDir, "ws", "ws.example.com")
	conf, _ := os.ReadFile(r.g.conf)
	if !r.g.reload(t, string(conf)) {
		t.Fatalf("reload failed:\n%s", r.g.errorLog())
	}
	tc, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.port), &tls.Config{InsecureSkipVerify: true, ServerName: "ws.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if got := tc.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(newCert.SerialNumber) != 0 {
		t.Errorf("after reload the handshake shows serial %v, want the new %v", got, newCert.SerialNumber)
	}
	tc.Close()
	echo(t, c, "after")
}

// TestHTTPSRedirect is the guide's redirect server.
func TestHTTPSRedirect(t *testing.T) {
	r := startTLS(t, "")
	st, head, _ := rawRequest(t, fmt.Sprintf("127.0.0.1:%d", r.http), "GET /ws?x=1 HTTP/1.1\r\nHost: ws.example.com\r\nConnection: close\r\n\r\n")
	if st != 301 || !strings.Contains(head, "Location: https://ws.example.com/ws?x=1") {
		t.Errorf("redirect: %d\n%s", st, head)
	}
}

// TestTLSBadCertificateRefused: a reload with a broken certificate keeps
// the old configuration, and -t names the problem.
func TestTLSBadCertificateRefused(t *testing.T) {
	r := startTLS(t, "")
	if err := os.WriteFile(filepath.Join(r.certDir, "ws.key"), []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(binary, "-t", "-p", r.g.dir, "-c", r.g.conf).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "cannot load certificate key") || !strings.Contains(string(out), "test failed") {
		t.Errorf("-t with a broken key: %v\n%s", err, out)
	}
	conf, err := os.ReadFile(r.g.conf)
	if err != nil {
		t.Fatal(err)
	}
	if r.g.reload(t, string(conf)) {
		t.Fatal("a broken key was accepted")
	}
	if !strings.Contains(r.g.errorLog(), "cannot load certificate key") {
		t.Errorf("error log:\n%s", r.g.errorLog())
	}
	c, _, err := r.dialer("ws.example.com", nil).Dial(fmt.Sprintf("wss://127.0.0.1:%d/ws", r.port), nil)
	if err != nil {
		t.Fatalf("old config not serving: %v", err)
	}
	echo(t, c, "still ok")
	c.Close()
}

// TestTestFlagLoadsCertificates: like nginx's, `wsgate -t` loads the
// certificates, so a missing one fails the test, not the start.
func TestTestFlagLoadsCertificates(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "logs"), 0o755)
	conf := writeConf(t, dir, `http { server { listen 127.0.0.1:1 ssl; ssl_certificate missing.pem; ssl_certificate_key missing.key; } }`)
	out, err := exec.Command(binary, "-t", "-p", dir, "-c", conf).CombinedOutput()
	if err == nil || !strings.Contains(string(out), `cannot load certificate "`+dir+`/missing.pem"`) || !strings.Contains(string(out), "test failed") {
		t.Errorf("-t with a missing certificate: %v\n%s", err, out)
	}
}
