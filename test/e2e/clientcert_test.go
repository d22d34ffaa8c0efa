package e2e

import (
	"bufio"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// pki is a test certificate authority with its files on disk.
type pki struct {
	dir  string
	cert *x509.Certificate
	key  crypto.Signer
}

var pkiSerial atomic.Int64

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newPKI makes a self-signed CA named cn and writes it to dir/file.pem.
func newPKI(t testing.TB, dir, file, cn string) *pki {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1000 + pkiSerial.Add(1)),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Example, Inc."}, Country: []string{"DE"}},
		NotBefore:             time.Now().Add(-48 * time.Hour),
		NotAfter:              time.Now().Add(365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	writePEM(t, filepath.Join(dir, file+".pem"), "CERTIFICATE", der)
	return &pki{dir: dir, cert: cert, key: key}
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
}

// issue signs a certificate for subject valid from nb to na and returns
// it as a tls.Certificate; server ones get names and the serverAuth usage.
func (p *pki) issue(t testing.TB, subject pkix.Name, nb, na time.Time, server bool) tls.Certificate {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(0x1234500 + pkiSerial.Add(1)),
		Subject:      subject,
		NotBefore:    nb,
		NotAfter:     na,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{"localhost", "other.test"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, key.Public(), p.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// writePair writes a certificate and its key as dir/file.pem and .key.
func writePair(t testing.TB, dir, file string, c tls.Certificate) {
	t.Helper()
	writePEM(t, filepath.Join(dir, file+".pem"), "CERTIFICATE", c.Certificate[0])
	kder, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, file+".key"), "PRIVATE KEY", kder)
}

// crl writes the CA's revocation list naming revoked as dir/file.
func (p *pki) crl(t testing.TB, file string, revoked ...*x509.Certificate) {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, c := range revoked {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: time.Now().Add(-time.Hour)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: time.Now().Add(-time.Hour), NextUpdate: time.Now().Add(24 * time.Hour),
		RevokedCertificateEntries: entries,
	}, p.cert, p.key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(p.dir, file), "X509 CRL", der)
}

// clientCerts is the set of client certificates the differential tests
// present.
type clientCerts struct {
	dir                           string
	ca                            *pki
	valid, expired, wrongCA, revo tls.Certificate
	selfSigned                    tls.Certificate
}

func makeClientCerts(t testing.TB) *clientCerts {
	t.Helper()
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	ca := newPKI(t, dir, "ca", "Test Root CA")
	other := newPKI(t, dir, "other-ca", "Other CA")
	now := time.Now()
	subj := func(cn string) pkix.Name {
		return pkix.Name{CommonName: cn, Organization: []string{"Fleet+Devices"}, OrganizationalUnit: []string{"unit/7 \u00e9"}, Country: []string{"DE"}}
	}
	cc := &clientCerts{dir: dir, ca: ca}
	kder, err := x509.MarshalPKCS8PrivateKey(ca.key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, "ca.key"), "PRIVATE KEY", kder)
	writePair(t, dir, "server", ca.issue(t, pkix.Name{CommonName: "localhost"}, now.Add(-time.Hour), now.Add(24*time.Hour), true))
	cc.valid = ca.issue(t, subj("device-1"), now.Add(-time.Hour), now.Add(30*24*time.Hour+time.Hour), false)
	cc.expired = ca.issue(t, subj("device-old"), now.Add(-72*time.Hour), now.Add(-24*time.Hour), false)
	cc.revo = ca.issue(t, subj("device-stolen"), now.Add(-time.Hour), now.Add(25*time.Hour), false)
	cc.wrongCA = other.issue(t, subj("intruder"), now.Add(-time.Hour), now.Add(25*time.Hour), false)
	self := newPKI(t, t.TempDir(), "self", "self-made")
	cc.selfSigned = tls.Certificate{Certificate: [][]byte{self.cert.Raw}, PrivateKey: self.key, Leaf: self.cert}
	ca.crl(t, "crl.pem", cc.revo.Leaf)
	return cc
}

// sslHeaders are the variables the differential tests send to the backend.
var sslHeaders = []string{
	"ssl_client_verify", "ssl_client_s_dn", "ssl_client_i_dn", "ssl_client_s_dn_legacy", "ssl_client_i_dn_legacy",
	"ssl_client_serial", "ssl_client_fingerprint", "ssl_client_v_start", "ssl_client_v_end", "ssl_client_v_remain",
	"ssl_client_escaped_cert", "ssl_protocol", "ssl_cipher", "ssl_session_reused", "ssl_server_name",
	"ssl_curve", "ssl_ciphers", "ssl_curves", "ssl_alpn_protocol", "ssl_early_data",
}

func sslHeaderConf() string {
	var b strings.Builder
	for _, v := range sslHeaders {
		b.WriteString("proxy_set_header X-" + strings.ReplaceAll(v, "_", "-") + " \"$" + v + "\";\n")
	}
	return b.String()
}

// clientCertConf is a server checking client certificates with mode and
// extra directives, proxying to backend with every variable in a header.
func clientCertConf(cc *clientCerts, backend, mode, extra string) string {
	return `
log_format sslv '$status $ssl_client_verify';
server {
    listen 127.0.0.1:{{PORT}} ssl;
    server_name localhost;
    access_log {{DIR}}/logs/ssl.log sslv;
    ssl_certificate ` + cc.dir + `/server.pem;
    ssl_certificate_key ` + cc.dir + `/server.key;
    ssl_client_certificate ` + cc.dir + `/ca.pem;
    ssl_verify_client ` + mode + `;
    ssl_protocols TLSv1.2 TLSv1.3;
    ` + extra + `
    location / {
        proxy_pass http://` + backend + `;
        proxy_http_version 1.1;
        ` + sslHeaderConf() + `
    }
}
server {
    listen 127.0.0.1:{{PORT}} ssl;
    server_name other.test;
    ssl_certificate ` + cc.dir + `/server.pem;
    ssl_certificate_key ` + cc.dir + `/server.key;
    location / { return 200 "other"; }
}
`
}

// tlsGet sends GET / over a new TLS connection presenting cert (none when
// nil) and returns the response and its body.
func tlsGet(t testing.TB, addr, sni, host string, cert *tls.Certificate) (*http.Response, string) {
	t.Helper()
	return tlsGetResuming(t, addr, sni, host, cert, nil)
}

// tlsGetResuming is tlsGet with a session cache, to resume sessions.
func tlsGetResuming(t testing.TB, addr, sni, host string, cert *tls.Certificate, cache tls.ClientSessionCache) (*http.Response, string) {
	t.Helper()
	cfg := &tls.Config{
		ServerName: sni, InsecureSkipVerify: true, ClientSessionCache: cache,
		CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256},
		// Sent whatever CAs the server names, to test its checks.
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if cert == nil {
				return &tls.Certificate{}, nil
			}
			return cert, nil
		},
	}
	d := &net.Dialer{Timeout: slow(5 * time.Second)}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		t.Fatalf("%s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(slow(10 * time.Second)))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%s: %v", addr, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// diffClientCert sends the same client certificate to nginx and wsgate and
// compares the status, the page's title and every variable the backend got.
func diffClientCert(t *testing.T, p *diffPair, be *backend, name string, cert *tls.Certificate) {
	t.Helper()
	type result struct {
		status int
		title  string
		vars   map[string]string
		log    string
	}
	get := func(addr, dir string) result {
		n := len(be.plainAll())
		logLines := func() []string {
			b, _ := os.ReadFile(filepath.Join(dir, "logs", "ssl.log"))
			return strings.Fields(strings.ReplaceAll(string(b), " ", "_"))
		}
		before := len(logLines())
		resp, body := tlsGet(t, addr, "localhost", "localhost", cert)
		r := result{status: resp.StatusCode, vars: map[string]string{}}
		waitFor(t, slow(5*time.Second), "the access log line", func() bool { return len(logLines()) > before })
		r.log = logLines()[before]
		if i, j := strings.Index(body, "<title>"), strings.Index(body, "</title>"); i >= 0 && j > i {
			r.title = body[i+7 : j]
		}
		if all := be.plainAll(); len(all) > n {
			h := all[len(all)-1]
			for _, v := range sslHeaders {
				r.vars[v] = h.Get("X-" + strings.ReplaceAll(v, "_", "-"))
			}
		}
		return r
	}
	ng, ws := get(p.nginx, p.ng.dir), get(p.wsgate, p.gate.dir)
	if ng.status != ws.status || ng.title != ws.title || ng.log != ws.log {
		t.Errorf("%s: nginx %d %q logged %q, wsgate %d %q logged %q", name, ng.status, ng.title, ng.log, ws.status, ws.title, ws.log)
	}
	for _, v := range sslHeaders {
		if ng.vars[v] != ws.vars[v] {
			t.Errorf("%s: $%s: nginx %q, wsgate %q", name, v, ng.vars[v], ws.vars[v])
		}
	}
	t.Logf("%s: %d %q logged %q", name, ws.status, ws.title, ws.log)
}

func TestClientCertDifferential(t *testing.T) {
	cc := makeClientCerts(t)
	be := startBackend(t, "b1")
	for _, tc := range []struct {
		mode, extra string
	}{
		{"on", "ssl_crl " + cc.dir + "/crl.pem;"},
		{"optional", ""},
		{"optional_no_ca", ""},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			p := startPair(t, diffConf{HTTP: clientCertConf(cc, be.addr, tc.mode, tc.extra)})
			diffClientCert(t, p, be, "none", nil)
			diffClientCert(t, p, be, "valid", &cc.valid)
			diffClientCert(t, p, be, "expired", &cc.expired)
			diffClientCert(t, p, be, "wrong CA", &cc.wrongCA)
			diffClientCert(t, p, be, "self-signed", &cc.selfSigned)
			diffClientCert(t, p, be, "revoked", &cc.revo)
			diffCertLog(t, p)
		})
	}
}

// plainAll returns the headers of every plain request so far.
func (b *backend) plainAll() []http.Header {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]http.Header(nil), b.plain...)
}

// TestSSLSpecialPagesDifferential compares the 421 for a Host other than
// the SNI name under client certificates, and the 497 page for plain
// HTTP on an ssl port, with nginx's.
func TestSSLSpecialPagesDifferential(t *testing.T) {
	cc := makeClientCerts(t)
	be := startBackend(t, "b1")
	p := startPair(t, diffConf{HTTP: clientCertConf(cc, be.addr, "optional", "")})
	// nginx answers 421 when the server the Host names checks client
	// certificates and SNI named another name; not the other way round.
	for _, addr := range []string{p.nginx, p.wsgate} {
		for _, c := range []struct {
			sni, host string
			want      int
		}{
			{"other.test", "localhost", 421},
			{"localhost", "other.test", 200},
			{"other.test", "other.test", 200},
			{"LOCALHOST", "localhost", 200},
		} {
			if resp, _ := tlsGet(t, addr, c.sni, c.host, &cc.valid); resp.StatusCode != c.want {
				t.Errorf("%s: SNI %s, Host %s: %d, want %d", addr, c.sni, c.host, resp.StatusCode, c.want)
			}
		}
	}
	ng := sendRaw(t, p.nginx, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
	ws := sendRaw(t, p.wsgate, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
	if ng.Status != 400 || ws.Status != 400 {
		t.Errorf("plain HTTP on an ssl port: nginx %d, wsgate %d, want 400", ng.Status, ws.Status)
	}
	title := func(b []byte) string {
		s := string(b)
		if i, j := strings.Index(s, "<title>"), strings.Index(s, "</title>"); i >= 0 && j > i {
			return s[i+7 : j]
		}
		return s
	}
	if title(ng.Body) != title(ws.Body) || !strings.Contains(title(ws.Body), "plain HTTP request") {
		t.Errorf("497 page: nginx %q, wsgate %q", title(ng.Body), title(ws.Body))
	}
	if ng.Header.Get("Connection") != ws.Header.Get("Connection") {
		t.Errorf("497 Connection: nginx %q, wsgate %q", ng.Header.Get("Connection"), ws.Header.Get("Connection"))
	}
}

// TestTestFlagTLSNotes: -t checks the ssl_dhparam file and says what Go's
// TLS does not do: no DHE, no 0-RTT over TCP, cipher names it skips or
// lacks, with what TLS 1.2 will negotiate.
func TestTestFlagTLSNotes(t *testing.T) {
	cc := makeClientCerts(t)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "logs"), 0o755)
	der, _ := asn1.Marshal(struct{ P, G *big.Int }{big.NewInt(0xfffffffb), big.NewInt(2)})
	writePEM(t, filepath.Join(dir, "dh.pem"), "DH PARAMETERS", der)
	conf := writeConf(t, dir, `error_log stderr;
http { server { listen 127.0.0.1:1 ssl;
    ssl_certificate `+cc.dir+`/server.pem; ssl_certificate_key `+cc.dir+`/server.key;
    ssl_dhparam dh.pem;
    ssl_early_data on;
    ssl_ciphers "DHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:NO-SUCH-CIPHER";
} }`)
	out, err := exec.Command(binary, "-t", "-p", dir, "-c", conf).CombinedOutput()
	for _, want := range []string{
		`"ssl_dhparam" has no effect`, `"ssl_early_data" has no effect over TCP`,
		`unknown cipher "NO-SUCH-CIPHER" skipped`,
		`Go's TLS lacks DHE-RSA-AES128-GCM-SHA256; TLS 1.2 and below will negotiate only ECDHE-RSA-AES128-GCM-SHA256`,
		"test is successful",
	} {
		if err != nil || !strings.Contains(string(out), want) {
			t.Errorf("-t: %v, no %q in\n%s", err, want, out)
		}
	}
	os.WriteFile(filepath.Join(dir, "dh.pem"), []byte("junk"), 0o644)
	if out, err := exec.Command(binary, "-t", "-p", dir, "-c", conf).CombinedOutput(); err == nil || !strings.Contains(string(out), "no PEM DH PARAMETERS") {
		t.Errorf("-t with a bad ssl_dhparam file: %v\n%s", err, out)
	}
}

// TestClientCertResumedDifferential: on a resumed session the client
// certificate's variables and $ssl_session_reused are nginx's.
func TestClientCertResumedDifferential(t *testing.T) {
	cc := makeClientCerts(t)
	be := startBackend(t, "b1")
	p := startPair(t, diffConf{HTTP: clientCertConf(cc, be.addr, "on", "ssl_session_cache shared:SSL:1m;")})
	vars := func(addr string) []map[string]string {
		cache := tls.NewLRUClientSessionCache(4)
		var out []map[string]string
		for range 2 {
			resp, body := tlsGetResuming(t, addr, "localhost", "localhost", &cc.valid, cache)
			if resp.StatusCode != 200 {
				t.Fatalf("%s: %d %s", addr, resp.StatusCode, body)
			}
			h := be.lastPlain()
			m := map[string]string{}
			for _, v := range sslHeaders {
				m[v] = h.Get("X-" + strings.ReplaceAll(v, "_", "-"))
			}
			out = append(out, m)
		}
		return out
	}
	ng, ws := vars(p.nginx), vars(p.wsgate)
	for i := range 2 {
		for _, v := range sslHeaders {
			if ng[i][v] != ws[i][v] {
				t.Errorf("connection %d: $%s: nginx %q, wsgate %q", i+1, v, ng[i][v], ws[i][v])
			}
		}
	}
	if ws[1]["ssl_session_reused"] != "r" || ws[1]["ssl_client_verify"] != "SUCCESS" {
		t.Errorf("second connection: reused %q, verify %q", ws[1]["ssl_session_reused"], ws[1]["ssl_client_verify"])
	}
}

// diffCertLog compares the client certificate lines of both error logs,
// up to the request details, once both have them all.
func diffCertLog(t *testing.T, p *diffPair) {
	t.Helper()
	re := regexp.MustCompile(`client (SSL certificate verify error: .*|sent no required SSL certificate) while reading client request headers`)
	lines := func(path string) []string {
		b, _ := os.ReadFile(path)
		var out []string
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			out = append(out, m[1])
		}
		return out
	}
	ngPath, wsPath := filepath.Join(p.ng.dir, "logs", "error.log"), filepath.Join(p.gate.dir, "logs", "error.log")
	waitFor(t, slow(5*time.Second), "the error log lines", func() bool { return len(lines(ngPath)) == len(lines(wsPath)) })
	ng, ws := lines(ngPath), lines(wsPath)
	if len(ws) == 0 {
		t.Error("no client certificate line in wsgate's error log")
	}
	if strings.Join(ng, "\n") != strings.Join(ws, "\n") {
		t.Errorf("error log:\nnginx  %q\nwsgate %q", ng, ws)
	}
}

// TestClientCertWithoutSNIDifferential: a client that sends no SNI gets
// the default server's handshake, which asks for no certificate; a
// request whose Host names a server requiring one must still be refused
// (496), as nginx refuses it, and one that only accepts one goes on with
// NONE.
func TestClientCertWithoutSNIDifferential(t *testing.T) {
	cc := makeClientCerts(t)
	be := startBackend(t, "b1")
	p := startPair(t, diffConf{HTTP: `
server {
    listen 127.0.0.1:{{PORT}} ssl default_server;
    server_name default.test;
    ssl_certificate ` + cc.dir + `/server.pem;
    ssl_certificate_key ` + cc.dir + `/server.key;
    location / { return 200 "default"; }
}
server {
    listen 127.0.0.1:{{PORT}} ssl;
    server_name secure.test;
    ssl_certificate ` + cc.dir + `/server.pem;
    ssl_certificate_key ` + cc.dir + `/server.key;
    ssl_client_certificate ` + cc.dir + `/ca.pem;
    ssl_verify_client on;
    location / { proxy_pass http://` + be.addr + `; }
}
server {
    listen 127.0.0.1:{{PORT}} ssl;
    server_name optional.test;
    ssl_certificate ` + cc.dir + `/server.pem;
    ssl_certificate_key ` + cc.dir + `/server.key;
    ssl_client_certificate ` + cc.dir + `/ca.pem;
    ssl_verify_client optional;
    location / { proxy_pass http://` + be.addr + `; proxy_set_header X-Verify $ssl_client_verify; }
}`})
	for _, c := range []struct {
		host string
		want int
	}{{"secure.test", 400}, {"optional.test", 200}, {"default.test", 200}} {
		n := len(be.plainAll())
		var got [2]int
		for i, addr := range []string{p.nginx, p.wsgate} {
			resp, _ := tlsGet(t, addr, "", c.host, &cc.valid)
			got[i] = resp.StatusCode
		}
		if got[0] != c.want || got[1] != c.want {
			t.Errorf("no SNI, Host %s: nginx %d, wsgate %d, want %d", c.host, got[0], got[1], c.want)
		}
		if c.host == "secure.test" && len(be.plainAll()) != n {
			t.Errorf("no SNI, Host %s: a request reached the backend", c.host)
		}
	}
}

// TestSSLErrorPageDifferential: error_page applies to nginx's special TLS
// answers, as in the common redirect of plain HTTP on an ssl port to
// https, and to 496 (no required client certificate).
func TestSSLErrorPageDifferential(t *testing.T) {
	cc := makeClientCerts(t)
	be := startBackend(t, "b1")
	p := startPair(t, diffConf{HTTP: clientCertConf(cc, be.addr, "on",
		"error_page 497 https://$host:$server_port$request_uri;\n    error_page 496 =403 /nocert;\n    location = /nocert { return 403 \"a certificate is needed\\n\"; }")})
	p.compare(t, "GET /x?a=1 HTTP/1.1\r\nHost: localhost\r\n\r\n")
	ws := sendRaw(t, p.wsgate, "GET /x?a=1 HTTP/1.1\r\nHost: localhost\r\n\r\n")
	if ws.Status != 302 || ws.Header.Get("Location") != "https://localhost:"+strings.Split(p.wsgate, ":")[1]+"/x?a=1" {
		t.Errorf("plain HTTP on an ssl port with error_page 497: %d %q", ws.Status, ws.Header.Get("Location"))
	}
	for _, addr := range []string{p.nginx, p.wsgate} {
		resp, body := tlsGet(t, addr, "localhost", "localhost", nil)
		if resp.StatusCode != 403 || body != "a certificate is needed\n" {
			t.Errorf("%s: no client certificate with error_page 496: %d %q", addr, resp.StatusCode, body)
		}
	}
}
