package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/youmark/pkcs8"
)

// backendHandler answers WebSockets with an echo and other requests with
// what the backend saw of the connection: the SNI, the client
// certificate's CN and the Host header (in the body), and whether the
// TLS session was resumed (in X-Resumed, which the differential tests do
// not compare: resumption depends on timing).
func backendHandler(name string) http.Handler {
	return backendHandlerCounting(name, nil)
}

// backendHandlerCounting is backendHandler that counts health checks
// (requests from wsgate-health-check) in checks when it is not nil.
func backendHandlerCounting(name string, checks *atomic.Int64) http.Handler {
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if checks != nil && r.UserAgent() == "wsgate-health-check" {
			checks.Add(1)
		}
		if websocket.IsWebSocketUpgrade(r) {
			c, err := up.Upgrade(w, r, http.Header{"X-Backend": {name}})
			if err != nil {
				return
			}
			defer c.Close()
			for {
				mt, msg, err := c.ReadMessage()
				if err != nil || c.WriteMessage(mt, msg) != nil {
					return
				}
			}
		}
		sni, cn := "-", "-"
		if r.TLS != nil {
			sni = r.TLS.ServerName
			if len(r.TLS.PeerCertificates) > 0 {
				cn = r.TLS.PeerCertificates[0].Subject.CommonName
			}
			w.Header().Set("X-Resumed", strconv.FormatBool(r.TLS.DidResume))
		}
		fmt.Fprintf(w, "%s sni=%q cn=%s host=%s uri=%s", name, sni, cn, r.Host, r.URL.RequestURI())
	})
}

// tlsPKI is a CA, a backend certificate it issued (for "localhost" and
// "other.test"), another CA, and a client certificate with an encrypted
// key, all as files in dir.
type tlsPKI struct {
	dir        string
	serverCert tls.Certificate
}

func makeTLSPKI(t testing.TB) *tlsPKI {
	t.Helper()
	dir := t.TempDir()
	ca := newPKI(t, dir, "ca", "Backend CA")
	newPKI(t, dir, "other-ca", "Other CA")
	srv := ca.issue(t, pkix.Name{CommonName: "backend"}, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), true)
	cli := ca.issue(t, pkix.Name{CommonName: "wsgate-proxy"}, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), false)
	writePEM(t, filepath.Join(dir, "client.pem"), "CERTIFICATE", cli.Certificate[0])
	enc, err := pkcs8.MarshalPrivateKey(cli.PrivateKey, []byte("s3cret"), nil)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, "client.key"), "ENCRYPTED PRIVATE KEY", enc)
	if err := os.WriteFile(filepath.Join(dir, "client.pass"), []byte("wrong\ns3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &tlsPKI{dir: dir, serverCert: srv}
}

func (p *tlsPKI) path(name string) string { return filepath.Join(p.dir, name) }

// startTLSBackend runs backendHandler over TLS with the PKI's server
// certificate, asking for (not requiring) a client certificate from the
// PKI's CA.
func startTLSBackend(t testing.TB, p *tlsPKI, name string) string {
	t.Helper()
	return startTLSBackendCounting(t, p, name, nil)
}

func startTLSBackendCounting(t testing.TB, p *tlsPKI, name string, checks *atomic.Int64) string {
	t.Helper()
	roots := x509.NewCertPool()
	b, _ := os.ReadFile(p.path("ca.pem"))
	roots.AppendCertsFromPEM(b)
	s := httptest.NewUnstartedServer(backendHandlerCounting(name, checks))
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are what some tests expect
	s.TLS = &tls.Config{Certificates: []tls.Certificate{p.serverCert}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: roots}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s.Listener.Addr().String()
}

// startUnixBackend runs backendHandler on a unix socket in a folder of
// its own and returns the socket's path.
func startUnixBackend(t testing.TB, name string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "app.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	s := &httptest.Server{Listener: ln, Config: &http.Server{Handler: backendHandler(name)}}
	s.Start()
	t.Cleanup(s.Close)
	return path
}

// gateConf is a wsgate configuration with ups at the http level and one
// server on port whose body is body.
func gateConf(port int, ups, body string) string {
	return fmt.Sprintf("pid {{DIR}}/logs/wsgate.pid;\nerror_log {{DIR}}/error.log info;\nevents { worker_connections 256; }\nhttp {\naccess_log off;\n%s\nserver {\nlisten 127.0.0.1:%d;\n%s\n}\n}\n",
		ups, port, body)
}

// bget sends GET path to addr and returns the status, body and headers.
func bget(t testing.TB, addr, path string) (int, string, http.Header) {
	t.Helper()
	status, head, body := rawRequest(t, addr, "GET "+path+" HTTP/1.1\r\nHost: front.test\r\nConnection: close\r\n\r\n")
	return status, body, parseHead(head)
}

func parseHead(head string) http.Header {
	h := http.Header{}
	for _, line := range strings.Split(head, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		}
	}
	return h
}

// TestHTTPSBackendVerify: proxy_pass https:// with nginx's default
// (proxy_ssl_verify off) takes any certificate and sends no SNI; with
// verification on, a trusted CA and a matching proxy_ssl_name pass, while
// a wrong CA or a name mismatch give 502 and nginx's error log line.
func TestHTTPSBackendVerify(t *testing.T) {
	p := makeTLSPKI(t)
	be := startTLSBackend(t, p, "tls")
	port := freePort(t)
	g := startGate(t, gateConf(port, "", fmt.Sprintf(`
location /off/ { proxy_pass https://%[1]s; }
location /good/ { proxy_pass https://%[1]s; proxy_ssl_verify on; proxy_ssl_trusted_certificate %[2]s; proxy_ssl_name localhost; }
location /wrongca/ { proxy_pass https://%[1]s; proxy_ssl_verify on; proxy_ssl_trusted_certificate %[3]s; proxy_ssl_name localhost; }
location /mismatch/ { proxy_pass https://%[1]s; proxy_ssl_verify on; proxy_ssl_trusted_certificate %[2]s; }
`, be, p.path("ca.pem"), p.path("other-ca.pem"))))
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if st, body, _ := bget(t, addr, "/off/x"); st != 200 || !strings.Contains(body, `sni="" cn=- host=`+be+` uri=/off/x`) {
		t.Errorf("verify off: %d %q", st, body)
	}
	bget(t, addr, "/off/y") // a session made without verification, resumable by /off/
	if st, body, h := bget(t, addr, "/good/x"); st != 200 || !strings.Contains(body, "uri=/good/x") || h.Get("X-Resumed") != "false" {
		t.Errorf("trusted CA: %d %q, resumed %q (a session of a location without verification must not be resumed)", st, body, h.Get("X-Resumed"))
	}
	if st, _, _ := bget(t, addr, "/wrongca/x"); st != 502 {
		t.Errorf("wrong CA: %d, want 502", st)
	}
	if st, _, _ := bget(t, addr, "/mismatch/x"); st != 502 {
		t.Errorf("name mismatch: %d, want 502", st)
	}
	defer func() {
		if t.Failed() {
			t.Logf("error log:\n%s", g.errorLog())
		}
	}()
	waitFor(t, 5*time.Second, "the verify errors in the log", func() bool {
		l := g.errorLog()
		return strings.Contains(l, "upstream SSL certificate verify error: (21:unable to verify the first certificate) while SSL handshaking to upstream") &&
			strings.Contains(l, `upstream SSL certificate does not match "127.0.0.1" while SSL handshaking to upstream`) &&
			strings.Contains(l, `upstream: "https://`+be+`/wrongca/x"`)
	})
}

// TestHTTPSBackendSNIClientCertAndReuse: proxy_ssl_server_name sends
// proxy_ssl_name (or $proxy_host) as SNI; proxy_ssl_certificate with an
// encrypted key opened by proxy_ssl_password_file is presented; the
// second handshake to the backend resumes the first's session.
func TestHTTPSBackendSNIClientCertAndReuse(t *testing.T) {
	p := makeTLSPKI(t)
	be := startTLSBackend(t, p, "tls")
	_, bePort, _ := net.SplitHostPort(be)
	port := freePort(t)
	startGate(t, gateConf(port, "", fmt.Sprintf(`
location /sni/ { proxy_pass https://%[1]s; proxy_ssl_server_name on; proxy_ssl_name other.test; }
location /host/ { proxy_pass https://localhost:%[4]s; proxy_ssl_server_name on; }
location /cert/ { proxy_pass https://%[1]s; proxy_ssl_certificate %[2]s; proxy_ssl_certificate_key %[3]s; proxy_ssl_password_file %[5]s; }
location /noreuse/ { proxy_pass https://%[1]s; proxy_ssl_session_reuse off; }
location /var/ { proxy_pass https://%[1]s; proxy_ssl_server_name on; proxy_ssl_name $http_x_name; }
`, be, p.path("client.pem"), p.path("client.key"), bePort, p.path("client.pass"))))
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if st, body, _ := bget(t, addr, "/sni/"); st != 200 || !strings.Contains(body, `sni="other.test"`) {
		t.Errorf("SNI on with proxy_ssl_name: %d %q", st, body)
	}
	if st, body, _ := bget(t, addr, "/host/"); st != 200 || !strings.Contains(body, `sni="localhost"`) {
		t.Errorf("SNI on with $proxy_host: %d %q", st, body)
	}
	if st, body, _ := bget(t, addr, "/cert/"); st != 200 || !strings.Contains(body, "cn=wsgate-proxy") {
		t.Errorf("client certificate: %d %q", st, body)
	}
	st, _, body := rawRequest(t, addr, "GET /var/ HTTP/1.1\r\nHost: front.test\r\nX-Name: per-request.test:8443\r\nConnection: close\r\n\r\n")
	if st != 200 || !strings.Contains(body, `sni="per-request.test"`) {
		t.Errorf("proxy_ssl_name with a variable: %d %q", st, body)
	}
	for _, tc := range []struct {
		path string
		want string
	}{{"/sni/", "true"}, {"/noreuse/", "false"}} {
		bget(t, addr, tc.path) // a handshake whose session the next one may resume
		if _, _, h := bget(t, addr, tc.path); h.Get("X-Resumed") != tc.want {
			t.Errorf("%s: second handshake resumed %q, want %s", tc.path, h.Get("X-Resumed"), tc.want)
		}
	}
}

// TestWSSBackendEcho: a WebSocket through an upstream of https peers
// (with keepalive) is relayed over the TLS connection to the backend, as
// is one to a unix socket peer, and plain requests reach both, also
// through proxy_pass http://unix:/path:/uri. Closed tunnels leave no
// descriptor behind.
func TestWSSBackendEcho(t *testing.T) {
	p := makeTLSPKI(t)
	be := startTLSBackend(t, p, "tls")
	sock := startUnixBackend(t, "unix")
	port := freePort(t)
	const ws = "proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection \"upgrade\";"
	g := startGate(t, gateConf(port, fmt.Sprintf(`
upstream tlsapp { server %[1]s; keepalive 4; }
upstream unixapp { server unix:%[2]s; keepalive 4; }`, be, sock), fmt.Sprintf(`
location /wss/ { proxy_pass https://tlsapp; %[1]s }
location /unix/ { proxy_pass http://unixapp; %[1]s }
location /sock/ { proxy_pass http://unix:%[2]s:/app/; }
`, ws, sock)))
	addr := "127.0.0.1:" + strconv.Itoa(port)
	base := g.fdCount(t)
	for _, path := range []string{"/wss/", "/unix/"} {
		c, resp := dial(t, "ws://"+addr+path, nil)
		if resp.Header.Get("X-Backend") == "" {
			t.Errorf("%s: no X-Backend in the 101", path)
		}
		for i := 0; i < 3; i++ {
			echo(t, c, fmt.Sprintf("%s message %d %s", path, i, strings.Repeat("x", i*5000)))
		}
		c.Close()
	}
	g.waitFDs(t, base) // both tunnels' backend legs, TLS and unix, are closed
	if st, body, _ := bget(t, addr, "/wss/a"); st != 200 || !strings.HasPrefix(body, "tls ") {
		t.Errorf("GET over https upstream: %d %q", st, body)
	}
	if st, body, _ := bget(t, addr, "/unix/a"); st != 200 || !strings.Contains(body, "unix sni=\"-\"") {
		t.Errorf("GET over unix upstream: %d %q", st, body)
	}
	if st, body, _ := bget(t, addr, "/sock/b?q=1"); st != 200 || !strings.Contains(body, "host=localhost uri=/app/b?q=1") {
		t.Errorf("GET over proxy_pass http://unix: %d %q", st, body)
	}
}

// TestDiffHTTPSBackend runs the https backend cases against nginx: what
// the client gets (status, body) and what the backend saw (SNI, client
// certificate, Host, URI: the body) agree, and both log a refused
// certificate with the same words. The verifying locations do not reuse
// sessions: nginx keeps one session per peer for all locations, so it
// would resume a session of an unverified location there and report that
// session's verify result instead, or send no client certificate (wsgate keeps sessions per set of
// proxy_ssl_* settings; see docs/security.md).
func TestDiffHTTPSBackend(t *testing.T) {
	p := makeTLSPKI(t)
	be := startTLSBackend(t, p, "tls")
	pair := startPair(t, diffConf{HTTP: fmt.Sprintf(`
server {
    listen 127.0.0.1:{{PORT}};
    location /off/ { proxy_pass https://%[1]s; }
    location /sni/ { proxy_pass https://%[1]s; proxy_ssl_server_name on; proxy_ssl_name other.test; }
    location /nosni/ { proxy_pass https://%[1]s; proxy_ssl_server_name off; proxy_ssl_name other.test; }
    location /good/ { proxy_pass https://%[1]s/in/; proxy_ssl_verify on; proxy_ssl_trusted_certificate %[2]s; proxy_ssl_name localhost; proxy_ssl_session_reuse off; }
    location /wrongca/ { proxy_pass https://%[1]s; proxy_ssl_verify on; proxy_ssl_trusted_certificate %[3]s; proxy_ssl_name localhost; proxy_ssl_session_reuse off; }
    location /mismatch/ { proxy_pass https://%[1]s; proxy_ssl_verify on; proxy_ssl_trusted_certificate %[2]s; proxy_ssl_session_reuse off; }
    location /cert/ { proxy_pass https://%[1]s; proxy_ssl_certificate %[4]s; proxy_ssl_certificate_key %[5]s; proxy_ssl_password_file %[6]s; proxy_ssl_session_reuse off; }
}`, be, p.path("ca.pem"), p.path("other-ca.pem"), p.path("client.pem"), p.path("client.key"), p.path("client.pass"))})
	for _, path := range []string{"/off/a", "/sni/b", "/nosni/c", "/good/d?x=1", "/wrongca/e", "/mismatch/f", "/cert/g"} {
		pair.compare(t, "GET "+path+" HTTP/1.1\r\nHost: front.test\r\nConnection: close\r\n\r\n")
	}
	// The comparison means something only if the backend was reached
	// where it should be: statuses alone would match two 502s.
	for _, addr := range []string{pair.nginx, pair.wsgate} {
		for path, want := range map[string]string{"/sni/b": `sni="other.test"`, "/good/d": "uri=/in/d", "/cert/g": "cn=wsgate-proxy"} {
			r := sendRaw(t, addr, "GET "+path+" HTTP/1.1\r\nHost: front.test\r\nConnection: close\r\n\r\n")
			if r.Status != 200 || !strings.Contains(string(r.Body), want) {
				t.Errorf("%s%s: %d %q, want %s", addr, path, r.Status, r.Body, want)
			}
		}
	}
	defer func() {
		if t.Failed() {
			t.Logf("nginx log:\n%s\nwsgate log:\n%s", pair.ng.errorLog(), pairGateLog(pair))
		}
	}()
	for _, line := range []string{
		"upstream SSL certificate verify error: (21:unable to verify the first certificate) while SSL handshaking to upstream",
		`upstream SSL certificate does not match "` + strings.Split(be, ":")[0] + `" while SSL handshaking to upstream`,
	} {
		waitFor(t, 5*time.Second, "both logs to name the refused certificate", func() bool {
			return strings.Contains(pair.ng.errorLog(), line) && strings.Contains(pairGateLog(pair), line)
		})
	}
}

// pairGateLog is the error log of a differential pair's wsgate.
func pairGateLog(p *diffPair) string {
	b, _ := os.ReadFile(filepath.Join(p.gate.dir, "logs", "error.log"))
	return string(b)
}

// TestHTTPSBackendHealthCheck: health checks of an upstream of https
// peers run over TLS with the location's proxy_ssl_* settings, so the
// peer stays live and requests keep reaching it.
func TestHTTPSBackendHealthCheck(t *testing.T) {
	p := makeTLSPKI(t)
	var checks atomic.Int64
	be := startTLSBackendCounting(t, p, "tls", &checks)
	port := freePort(t)
	startGate(t, gateConf(port, fmt.Sprintf(`
upstream tlsapp { zone tlsapp 64k; server %[1]s; health_check interval=100ms; }`, be), fmt.Sprintf(`
location / { proxy_pass https://tlsapp; proxy_ssl_verify on; proxy_ssl_trusted_certificate %[1]s; proxy_ssl_name localhost; }
`, p.path("ca.pem"))))
	waitFor(t, 10*time.Second, "two health checks over TLS", func() bool { return checks.Load() >= 2 })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if st, body, _ := bget(t, addr, "/x"); st != 200 || !strings.HasPrefix(body, "tls ") {
		t.Errorf("after health checks: %d %q", st, body)
	}
}

// TestDiffUnixBackend: proxy_pass to a unix socket, directly with a URI
// part and through an upstream block, against nginx: the same status and
// body, in which the backend reports the Host it got ($proxy_host is
// "localhost" for a socket) and the URI.
func TestDiffUnixBackend(t *testing.T) {
	sock := startUnixBackend(t, "unix")
	if err := os.Chmod(filepath.Dir(sock), 0o755); err != nil {
		t.Fatal(err)
	}
	pair := startPair(t, diffConf{HTTP: fmt.Sprintf(`
upstream sockapp { server unix:%[1]s; }
server {
    listen 127.0.0.1:{{PORT}};
    location /direct/ { proxy_pass http://unix:%[1]s:/app/; }
    location /bare/ { proxy_pass http://unix:%[1]s; }
    location /ups/ { proxy_pass http://sockapp; }
    location /upsuri/ { proxy_pass http://sockapp/x/; }
}`, sock)})
	for _, path := range []string{"/direct/a?b=1", "/bare/c", "/ups/d", "/upsuri/e%20f"} {
		pair.compare(t, "GET "+path+" HTTP/1.1\r\nHost: front.test\r\nConnection: close\r\n\r\n")
	}
	// The comparison means something only if the socket was reached.
	for _, addr := range []string{pair.nginx, pair.wsgate} {
		r := sendRaw(t, addr, "GET /direct/a?b=1 HTTP/1.1\r\nHost: front.test\r\nConnection: close\r\n\r\n")
		if r.Status != 200 || !strings.Contains(string(r.Body), "host=localhost uri=/app/a?b=1") {
			t.Errorf("%s: %d %q", addr, r.Status, r.Body)
		}
	}
}

// TestListenUnix: `listen unix:` serves HTTP (curl --unix-socket) and
// WebSockets on a socket file with mode 0666; a reload keeps the socket,
// so clients connecting all through it are never refused; QUIT removes
// the file.
func TestListenUnix(t *testing.T) {
	be := startBackend(t, "b")
	sock := filepath.Join(t.TempDir(), "front.sock")
	conf := fmt.Sprintf(`pid {{DIR}}/logs/wsgate.pid;
error_log {{DIR}}/error.log info;
events { worker_connections 256; }
http {
    access_log off;
    server {
        listen unix:%s;
        location / { proxy_pass http://%s; proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "upgrade"; %%s }
    }
}
`, sock, be.addr)
	g := startGate(t, fmt.Sprintf(conf, ""))
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o666 {
		t.Fatalf("socket file: %v, mode %v", err, fi.Mode())
	}
	out, err := exec.Command("curl", "-sS", "--unix-socket", sock, "http://front.test/via-unix").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "b GET /via-unix") {
		t.Fatalf("curl --unix-socket: %v %q", err, out)
	}
	d := websocket.Dialer{NetDial: func(string, string) (net.Conn, error) { return net.Dial("unix", sock) }, HandshakeTimeout: slow(5 * time.Second)}
	ws, _, err := d.Dial("ws://front.test/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	echo(t, ws, "over a unix socket")

	// Clients connect without pause while the configuration is reloaded.
	stop := make(chan struct{})
	refused := make(chan error, 1)
	var tries atomic.Int64
	go func() {
		for {
			select {
			case <-stop:
				refused <- nil
				return
			default:
			}
			c, err := net.Dial("unix", sock)
			if err != nil {
				refused <- err
				return
			}
			c.Close()
			tries.Add(1)
			// Paced: a dial loop at full speed outruns the server and
			// fills worker_connections with connections it has yet to
			// see close, and the server rightly refuses the next one.
			time.Sleep(time.Millisecond)
		}
	}()
	for i := 0; i < 3; i++ {
		if !g.reload(t, fmt.Sprintf(conf, fmt.Sprintf("add_header X-Gen %d;", i))) {
			t.Fatalf("reload %d failed:\n%s", i, g.errorLog())
		}
	}
	close(stop)
	if err := <-refused; err != nil {
		t.Fatalf("a client was refused during a reload: %v", err)
	}
	if tries.Load() == 0 {
		t.Fatal("no client connected during the reloads")
	}
	echo(t, ws, "after the reloads") // the open WebSocket was not touched
	if log := g.errorLog(); strings.Contains(log, "are not enough") {
		t.Fatalf("the dial loop exhausted worker_connections:\n%s", log)
	}
	h, err := headUnix(sock, "/after")
	if err != nil {
		t.Fatalf("after the reloads: %v\n%s", err, g.errorLog())
	}
	if h.Get("X-Gen") != "2" {
		t.Errorf("after the reloads: X-Gen %q, want 2", h.Get("X-Gen"))
	}

	g.signal(syscall.SIGQUIT)
	ws.Close()
	if err := g.wait(10 * time.Second); err != nil {
		t.Fatalf("QUIT: %v", err)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket file after QUIT: %v", err)
	}
}

// headUnix sends GET path over the unix socket at sock and returns the
// response's header.
func headUnix(sock, path string) (http.Header, error) {
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}, Timeout: slow(10 * time.Second)}
	resp, err := c.Get("http://front.test" + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.Header, nil
}
