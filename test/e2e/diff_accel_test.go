package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// TestDiffAccelRedirect: a backend's X-Accel-Redirect under nginx and
// wsgate: to an internal static location (the backend's Content-Type,
// Set-Cookie, Content-Disposition, Cache-Control and Expires carried, its
// other headers and body dropped), to an internal proxied location (the
// second backend sees GET, HEAD staying HEAD, with the redirect's
// arguments, and a buffered request body sent again), to a named
// location (the method kept), with escapes, an
// unsafe path and a missing file, and not at all under
// proxy_ignore_headers; X-Accel-Limit-Rate as $limit_rate shows it,
// carried over a redirect; X-Accel-Charset with a charset the
// configuration knows and one it does not. What clients and backends see
// is compared.
func TestDiffAccelRedirect(t *testing.T) {
	b := scriptBackend(t)
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "files"), 0o755)
	for name, body := range map[string]string{"files/a.html": "<p>file a</p>\n", "secret.html": "secret\n"} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(root, 0o755)
	p := startPair(t, diffConf{Root: root, HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    root {{ROOT}};
    location /files/ { internal; add_header X-Rate $limit_rate; }
    location /protected/ { internal; proxy_pass http://` + b + `/seen/; }
    location @named { return 200 "named $request_method $uri\n"; }
    location /app/ { proxy_pass http://` + b + `; add_header X-Rate $limit_rate; }
    location /ign/ { proxy_pass http://` + b + `; add_header X-Rate $limit_rate;
        proxy_ignore_headers X-Accel-Redirect X-Accel-Limit-Rate X-Accel-Charset; }
    location /known/ { charset koi8-r; }
    location /stream/ { proxy_pass http://` + b + `; proxy_request_buffering off; proxy_http_version 1.1; }
}`})
	carried := []string{"Set-Cookie", "Content-Disposition", "X-Other", "X-Rate", "X-Accel-Redirect"}
	hs := func(redirect string, more ...string) string {
		return scripted(append([]string{"X-Accel-Redirect:" + redirect, "Set-Cookie:s=1", "Set-Cookie:t=2",
			"Content-Disposition:attachment; filename=a.html", "Cache-Control:private", "Expires:Thu, 01 Jan 1970 00:00:01 GMT", "X-Other:o"}, more...)...)
	}
	for _, req := range []string{
		proxyGet("/app/x?" + hs("/files/a.html")),
		"HEAD /app/x?" + hs("/files/a.html") + " HTTP/1.1\r\nHost: {{HOST}}\r\nConnection: close\r\n\r\n",
		proxyGet("/app/x?" + hs("/files/%61.html")),
		proxyGet("/app/x?" + hs("/files/../secret.html")),
		proxyGet("/app/x?" + hs("/files/%2e%2e/secret.html")),
		proxyGet("/app/x?" + hs("/files/..")),
		proxyGet("/app/x?" + hs("/files/missing.html")),
		proxyGet("/app/x?" + hs("/protected/p?q=1")),
		"POST /app/x?" + hs("/protected/p") + " HTTP/1.1\r\nHost: {{HOST}}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		"POST /app/x?" + hs("/protected/p") + " HTTP/1.1\r\nHost: {{HOST}}\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
		"HEAD /app/x?" + hs("/protected/p") + " HTTP/1.1\r\nHost: {{HOST}}\r\nConnection: close\r\n\r\n",
		proxyGet("/app/x?" + hs("@named")),
		"POST /app/x?" + hs("@named") + " HTTP/1.1\r\nHost: {{HOST}}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		proxyGet("/files/a.html"),
		proxyGet("/ign/x?" + hs("/files/a.html")),
		proxyGet("/app/x?" + hs("/files/a.html", "X-Accel-Limit-Rate:16384")),
		proxyGet("/app/x?" + scripted("X-Accel-Limit-Rate:16384")),
		proxyGet("/ign/x?" + scripted("X-Accel-Limit-Rate:16384", "X-Accel-Charset:koi8-r")),
		proxyGet("/app/x?" + scripted("X-Accel-Charset:koi8-r")),
		proxyGet("/app/x?" + scripted("X-Accel-Charset:windows-1251")),
	} {
		p.compareHeaders(t, req, carried...)
	}
	// A body streamed to the first backend is gone: the redirected
	// request sends an empty one (nginx sends again what it still holds).
	r := sendRaw(t, p.wsgate, "POST /stream/x?"+hs("/protected/p")+" HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc")
	if r.Status != 200 || !strings.HasPrefix(string(r.Body), "GET /seen/p ") || !strings.Contains(string(r.Body), "Content-Length: 0\n") {
		t.Errorf("a streamed body redirected: %d %q", r.Status, r.Body)
	}
	stopNoRace(t, p.gate)
}

// TestDiffAccelLimitRate: X-Accel-Limit-Rate paces the answer to the
// client under both servers, on the backend's own body and on a static
// file an X-Accel-Redirect leads to (the download-throttling pattern),
// with the location's limit_rate_after; the bounds are TestDiffLimitRate's.
func TestDiffAccelLimitRate(t *testing.T) {
	body := strings.Repeat("0123456789abcdef", 64<<10/16) // 64 KiB
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Accel-Limit-Rate", "16384")
		if r.URL.Path == "/redirect" {
			w.Header().Set("X-Accel-Redirect", "/files/big.txt")
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "files"), 0o755)
	if err := os.WriteFile(filepath.Join(root, "files/big.txt"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(root, 0o755)
	p := startPair(t, diffConf{Root: root, HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    root {{ROOT}};
    limit_rate_after 16k;
    location /files/ { internal; }
    location / { proxy_pass http://` + srv.Listener.Addr().String() + `; }
}`})
	var wg sync.WaitGroup
	for _, path := range []string{"/direct", "/redirect"} {
		for name, addr := range map[string]string{"nginx": p.nginx, "wsgate": p.wsgate} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				checkPaced(t, name, path, addr, body)
			}()
		}
	}
	wg.Wait()
}
