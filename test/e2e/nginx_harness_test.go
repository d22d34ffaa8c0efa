package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Differential tests run one configuration under nginx (Debian's package,
// which .ci/run installs) and under wsgate, send both the same requests and
// compare what the clients see.

// nginxProc is an nginx master started for one test.
type nginxProc struct {
	cmd    *exec.Cmd
	dir    string
	stderr *syncBuffer
	done   chan struct{}
}

// startNginx runs nginx on the main-context text conf, in its own prefix
// folder (substituted for {{DIR}}), in the foreground, and waits until its
// pid file names it. The test fails when nginx is not installed: a
// differential test that does not run proves nothing.
func startNginx(t testing.TB, conf string) *nginxProc {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr != nil {
			t.Fatal("nginx is needed for differential tests: apt-get install nginx")
		}
		bin = "/usr/sbin/nginx"
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "logs"), 0o755)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(conf, "{{DIR}}", dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	n := &nginxProc{dir: dir, stderr: &syncBuffer{}, done: make(chan struct{})}
	n.cmd = exec.Command(bin, "-p", dir+"/", "-c", path, "-g", "daemon off; master_process on;")
	n.cmd.Stdout, n.cmd.Stderr = n.stderr, n.stderr
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { n.cmd.Wait(); close(n.done) }()
	t.Cleanup(n.stop)
	pidFile := filepath.Join(dir, "logs", "nginx.pid")
	waitFor(t, 10*time.Second, "nginx to start", func() bool {
		select {
		case <-n.done:
			t.Fatalf("nginx exited at start:\n%s", n.stderr)
		default:
		}
		b, err := os.ReadFile(pidFile)
		return err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(n.cmd.Process.Pid)
	})
	return n
}

func (n *nginxProc) stop() {
	select {
	case <-n.done:
		return
	default:
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(slow(10 * time.Second)):
		n.cmd.Process.Kill()
		<-n.done
	}
}

// errorLog returns nginx's error log.
func (n *nginxProc) errorLog() string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "logs", "error.log"))
	return string(b)
}

// diffConf is one http-context body run under both servers: {{PORT}} is
// each server's own listening port, {{DIR}} its own prefix folder, and
// {{ROOT}} a folder the test shares with both (for static files).
type diffConf struct {
	HTTP string // the http block's contents
	Root string // the folder {{ROOT}} names; "" when unused
}

// diffPair is nginx and wsgate running the same configuration.
type diffPair struct {
	nginx, wsgate string // host:port of each
	ng            *nginxProc
	gate          *gate
}

// startPair starts nginx and wsgate on dc, each on a port of its own.
func startPair(t testing.TB, dc diffConf) *diffPair {
	t.Helper()
	ngPort, wsPort := freePort(t), freePort(t)
	fill := func(port int) string {
		return strings.NewReplacer("{{PORT}}", strconv.Itoa(port), "{{ROOT}}", dc.Root).Replace(dc.HTTP)
	}
	main := "pid {{DIR}}/logs/nginx.pid;\nerror_log {{DIR}}/logs/error.log info;\n"
	if os.Geteuid() == 0 {
		main += "user root;\n" // test files live in folders only root may read
	}
	ng := startNginx(t, main+"events { worker_connections 256; }\nhttp {\n"+
		"access_log {{DIR}}/logs/access.log;\n"+
		"client_body_temp_path {{DIR}}/client_body;\nproxy_temp_path {{DIR}}/proxy;\n"+
		"fastcgi_temp_path {{DIR}}/fastcgi;\nuwsgi_temp_path {{DIR}}/uwsgi;\nscgi_temp_path {{DIR}}/scgi;\n"+
		fill(ngPort)+"\n}\n")
	g := startGate(t, "pid {{DIR}}/logs/wsgate.pid;\nerror_log {{DIR}}/logs/error.log info;\nevents { worker_connections 256; }\nhttp {\n"+
		"access_log {{DIR}}/logs/access.log;\n"+fill(wsPort)+"\n}\n")
	return &diffPair{
		nginx:  net.JoinHostPort("127.0.0.1", strconv.Itoa(ngPort)),
		wsgate: net.JoinHostPort("127.0.0.1", strconv.Itoa(wsPort)),
		ng:     ng, gate: g,
	}
}

// rawResponse is one HTTP/1.1 response as a client saw it on the wire.
type rawResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

// sendRaw writes req (a whole request, CRLF line ends) to addr on a fresh
// connection and reads one response.
func sendRaw(t testing.TB, addr, req string) rawResponse {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, slow(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(slow(10 * time.Second)))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	method := strings.SplitN(req, " ", 2)[0]
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s: reading the answer to %q: %v", addr, req, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: reading the body of the answer to %q: %v", addr, req, err)
	}
	return rawResponse{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

// diffHeaders are the response headers a differential test compares.
var diffHeaders = []string{"Location", "Content-Type", "Content-Length", "ETag", "Last-Modified",
	"Content-Range", "Accept-Ranges", "Allow", "WWW-Authenticate", "Content-Encoding", "Vary", "Expires", "Cache-Control"}

// compare sends req to both servers and reports every difference in the
// status, the headers of diffHeaders and, for answers that are not error
// pages (whose text names each server), the body. {{HOST}} in req becomes
// each server's own address; a server's own address and port in a header
// value are compared as {{HOST}} and {{PORT}}.
func (p *diffPair) compare(t testing.TB, req string) {
	t.Helper()
	p.compareMasked(t, req, nil)
}

// compareMasked is compare with every match of mask (a value each server
// makes up, such as a multipart boundary) replaced by "B" in the headers
// and the body first; a nil mask changes nothing.
func (p *diffPair) compareMasked(t testing.TB, req string, mask *regexp.Regexp) {
	t.Helper()
	ng := sendRaw(t, p.nginx, strings.ReplaceAll(req, "{{HOST}}", p.nginx))
	ws := sendRaw(t, p.wsgate, strings.ReplaceAll(req, "{{HOST}}", p.wsgate))
	if mask != nil {
		ng, ws = masked(ng, mask), masked(ws, mask)
	}
	ng, ws = gunzipped(t, "nginx", ng), gunzipped(t, "wsgate", ws) // gzip streams differ byte-wise
	var diffs []string
	if ng.Status != ws.Status {
		diffs = append(diffs, fmt.Sprintf("status: nginx %d, wsgate %d", ng.Status, ws.Status))
	}
	for _, h := range diffHeaders {
		nv := p.neutral(strings.Join(ng.Header.Values(h), ", "), p.nginx)
		wv := p.neutral(strings.Join(ws.Header.Values(h), ", "), p.wsgate)
		if isErrorPage(ng) && h == "Content-Length" {
			continue // the built-in pages name their server
		}
		if nv != wv {
			diffs = append(diffs, fmt.Sprintf("%s: nginx %q, wsgate %q", h, nv, wv))
		}
	}
	if !isErrorPage(ng) && !bytes.Equal(ng.Body, ws.Body) {
		diffs = append(diffs, fmt.Sprintf("body: nginx %q, wsgate %q", clip(ng.Body), clip(ws.Body)))
	}
	if len(diffs) > 0 {
		t.Errorf("%q:\n  %s", firstLine(req), strings.Join(diffs, "\n  "))
	}
}

// masked returns r with every match of mask replaced by "B".
func masked(r rawResponse, mask *regexp.Regexp) rawResponse {
	h := http.Header{}
	for k, vs := range r.Header {
		for _, v := range vs {
			h.Add(k, mask.ReplaceAllString(v, "B"))
		}
	}
	return rawResponse{Status: r.Status, Header: h, Body: mask.ReplaceAll(r.Body, []byte("B"))}
}

// neutral replaces a server's own address, and then its own port, in a
// header value, so that redirects to itself compare equal.
func (p *diffPair) neutral(v, addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	v = strings.ReplaceAll(v, addr, "{{HOST}}")
	return strings.ReplaceAll(v, ":"+port, ":{{PORT}}")
}

// isErrorPage reports an answer carrying a server's built-in error page.
func isErrorPage(r rawResponse) bool {
	return r.Status >= 300 && bytes.Contains(r.Body, []byte("<hr><center>"))
}

func clip(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

func firstLine(req string) string {
	line, _, _ := strings.Cut(req, "\r\n")
	return line
}

// TestDifferentialHarness runs the harness itself on a configuration both
// servers implement the same way, so a broken harness cannot pass the
// differential tests silently.
func TestDifferentialHarness(t *testing.T) {
	p := startPair(t, diffConf{HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    location = /ok { return 200 "fine\n"; }
    location /gone { return 301 /elsewhere; }
}`})
	p.compare(t, "GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	p.compare(t, "GET /gone HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	p.compare(t, "GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	ng := sendRaw(t, p.nginx, "GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if ng.Status != 200 || string(ng.Body) != "fine\n" || !strings.HasPrefix(ng.Header.Get("Server"), "nginx") {
		t.Fatalf("the nginx side is not nginx answering: %d %q %v", ng.Status, ng.Body, ng.Header)
	}
}
