package e2e

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDiffSentVariables: $body_bytes_sent counts all that follows the head
// (a chunked body with its framing: proxied, from a static file through
// gzip, and a return's text with a trailer), and $sent_http_* sees the
// fields wsgate adds to its own pages: a 401's WWW-Authenticate, a 416's
// Content-Range, a redirect's Location, add_header on an error page.
func TestDiffSentVariables(t *testing.T) {
	b := rangeBackend(t)
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "a.txt"), []byte(strings.Repeat("0123456789", 5)), 0o644)
	os.WriteFile(filepath.Join(root, "users"), []byte("u:{PLAIN}p\n"), 0o644)
	os.Chmod(root, 0o755)
	p := startPair(t, diffConf{Root: root, HTTP: `
log_format s '$uri|$status|$body_bytes_sent|$sent_http_www_authenticate|$sent_http_content_range|$sent_http_location|$sent_http_x_a';
server {
    access_log {{DIR}}/logs/s.log s;
    listen 127.0.0.1:{{PORT}};
    root {{ROOT}};
    location /p/ { proxy_pass http://` + b + `/; }
    location /z/ { alias {{ROOT}}/; gzip on; gzip_min_length 1; gzip_types text/plain; }
    location /t { add_trailer X-T t; return 200 "text"; }
    location /auth { auth_basic "area"; auth_basic_user_file {{ROOT}}/users; }
    location /r { return 302 /elsewhere; }
    location /e { add_header X-A a always; return 404; }
}`})
	reqs := []string{
		proxyGet("/p/chunked"),
		proxyGet("/t"),
		proxyGet("/auth"),
		proxyGet("/a.txt", "Range: bytes=90-"),
		proxyGet("/a.txt", "Range: bytes=1-2"),
		proxyGet("/r"),
		proxyGet("/e"),
	}
	for i, r := range reqs {
		p.compareHeaders(t, r, "WWW-Authenticate", "Content-Range", "Transfer-Encoding", "X-A")
		// Each answer is logged after its last byte leaves: the next
		// request waits for the line, to keep the log in request order.
		logLines(t, p.ng.dir, "s.log", i+1)
		logLines(t, p.gate.dir, "s.log", i+1)
	}
	ng := logLines(t, p.ng.dir, "s.log", len(reqs))
	ws := logLines(t, p.gate.dir, "s.log", len(reqs))
	page := regexp.MustCompile(`^([^|]*\|(?:30\d|40\d|416))\|\d+`) // the built-in pages' sizes are each server's own
	chunked := regexp.MustCompile(`^(/p/chunked\|200)\|(\d+)`)
	for i := range reqs {
		n := framedCount(page.ReplaceAllString(p.neutral(ng[i], p.nginx), "$1|page"), chunked, 26)
		w := framedCount(page.ReplaceAllString(p.neutral(ws[i], p.wsgate), "$1|page"), chunked, 26)
		if n != w {
			t.Errorf("log line %d: nginx %q, wsgate %q", i, n, w)
		}
	}
	// A compressed static file: each server's gzip output is its own, so
	// wsgate's count is checked against the bytes that followed its head
	// on the wire, chunk framing included.
	wire := rawBytes(t, p.wsgate, "GET /z/a.txt HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n")
	head, body, ok := strings.Cut(wire, "\r\n\r\n")
	if !ok || !strings.Contains(head, "Transfer-Encoding: chunked") || !strings.Contains(head, "Content-Encoding: gzip") {
		t.Fatalf("the compressed file's head: %q", head)
	}
	want := "/z/a.txt|200|" + strconv.Itoa(len(body)) + "|"
	if got := logLines(t, p.gate.dir, "s.log", len(reqs)+1)[len(reqs)]; !strings.HasPrefix(got, want) {
		t.Errorf("compressed file logged %q, want %q... (the bytes after the head)", got, want)
	}
}

// rawBytes sends req to addr and returns all the server sent until it
// closed the connection.
func rawBytes(t *testing.T, addr, req string) string {
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
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
