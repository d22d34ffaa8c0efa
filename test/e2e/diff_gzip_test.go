package e2e

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// gunzipped returns r with a gzip body decompressed, so that two
// compressors' streams compare by their content; a stream that does not
// decompress fails the test.
func gunzipped(t testing.TB, who string, r rawResponse) rawResponse {
	t.Helper()
	if r.Header.Get("Content-Encoding") != "gzip" || len(r.Body) == 0 {
		return r
	}
	zr, err := gzip.NewReader(bytes.NewReader(r.Body))
	if err != nil {
		t.Errorf("%s: gzip body: %v", who, err)
		return r
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Errorf("%s: gzip body: %v", who, err)
		return r
	}
	r.Body = b
	return r
}

// gzipTree is the folder both servers serve in the gzip tests.
func gzipTree(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	os.Chmod(root, 0o755)
	page := "<html><body>" + strings.Repeat("compress me, please. ", 200) + "</body></html>\n"
	files := map[string]string{
		"page.html":   page,
		"small.html":  "<p>tiny</p>",
		"style.css":   strings.Repeat("body { margin: 0 }\n", 100),
		"data.json":   strings.Repeat(`{"k": "v"}`, 100),
		"pre.html":    page,
		"pre.html.gz": "", // filled below
		"only.txt.gz": "",
		"err404.html": "<html>" + strings.Repeat("not here ", 100) + "</html>\n",
	}
	stamp := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for name, body := range files {
		if strings.HasSuffix(name, ".gz") {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			zw.Write([]byte("precompressed " + name + "\n"))
			zw.Close()
			body = b.String()
		}
		p := filepath.Join(root, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, stamp, stamp)
	}
	return root
}

// gzipBackend answers each path with the headers gzip_proxied judges.
func gzipBackend(t *testing.T) string {
	t.Helper()
	body := strings.Repeat("proxied body text. ", 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		switch r.URL.Path {
		case "/expired":
			h.Set("Expires", "Thu, 01 Jan 1970 00:00:01 GMT")
		case "/future":
			h.Set("Expires", "Fri, 01 Jan 2100 00:00:00 GMT")
		case "/no-cache":
			h.Set("Cache-Control", "no-cache")
		case "/no-store":
			h.Set("Cache-Control", "max-age=0, no-store")
		case "/private":
			h.Set("Cache-Control", "private")
		case "/public":
			h.Set("Cache-Control", "public, max-age=60")
		case "/lm":
			h.Set("Last-Modified", "Fri, 02 Jan 2026 03:04:05 GMT")
		case "/etag":
			h.Set("ETag", `"abc"`)
		case "/encoded":
			h.Set("Content-Encoding", "br")
		case "/json":
			h.Set("Content-Type", "application/json")
		case "/chunked":
			w.Write([]byte(body[:500]))
			w.(http.Flusher).Flush()
			w.Write([]byte(body[500:]))
			return
		case "/created":
			w.WriteHeader(201)
		case "/forbidden":
			w.WriteHeader(403)
		}
		h.Set("Content-Length", fmt.Sprint(len(body)))
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func gzGet(path string, hdr ...string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: x\r\n" + strings.Join(hdr, "") + "Connection: close\r\n\r\n"
}

const gzAE = "Accept-Encoding: gzip, deflate\r\n"

// TestDiffGzipStatic compares the gzip filter on files, return bodies and
// error pages: on and off, types, min_length, http_version, vary, ETag,
// HEAD, 304 and ranges.
func TestDiffGzipStatic(t *testing.T) {
	root := gzipTree(t)
	p := startPair(t, diffConf{Root: root, HTTP: `
types { text/html html; text/css css; application/json json; text/plain txt; }
server {
    listen 127.0.0.1:{{PORT}};
    root {{ROOT}};
    gzip on;
    gzip_vary on;
    gzip_types text/css;
    error_page 404 /err404.html;
    location /off/ { gzip off; alias {{ROOT}}/; }
    location /any/ { gzip_types *; alias {{ROOT}}/; }
    location /long/ { gzip_min_length 5000; alias {{ROOT}}/; }
    location /v10/ { gzip_http_version 1.0; alias {{ROOT}}/; }
    location /novary/ { gzip_vary off; alias {{ROOT}}/; }
    location /level9/ { gzip_comp_level 9; gzip_buffers 4 8k; alias {{ROOT}}/; }
    location = /ret { default_type text/html; return 200 "` + strings.Repeat("returned text ", 50) + `"; }
    location = /retsmall { default_type text/html; return 200 "short"; }
    location = /forbidden { return 403; }
    location = /teapot { default_type text/html; return 418 "` + strings.Repeat("tea ", 50) + `"; }
}`})
	cases := []string{
		gzGet("/page.html"),
		gzGet("/page.html", gzAE),
		gzGet("/page.html", "Accept-Encoding: GZIP\r\n"),
		gzGet("/page.html", "Accept-Encoding: deflate, gzip;q=0\r\n"),
		gzGet("/page.html", "Accept-Encoding: deflate, gzip;q=0.5\r\n"),
		gzGet("/page.html", "Accept-Encoding: gzip;q=1.0\r\n"),
		gzGet("/page.html", "Accept-Encoding: xgzip\r\n"),
		gzGet("/page.html", "Accept-Encoding: br\r\n"),
		gzGet("/page.html", "Accept-Encoding: identity, gzip\r\n"),
		gzGet("/small.html", gzAE),
		gzGet("/style.css", gzAE),
		gzGet("/data.json", gzAE),
		gzGet("/off/page.html", gzAE),
		gzGet("/any/data.json", gzAE),
		gzGet("/long/page.html", gzAE),
		gzGet("/long/style.css", gzAE),
		gzGet("/novary/page.html", gzAE),
		gzGet("/level9/page.html", gzAE),
		"GET /page.html HTTP/1.0\r\n" + gzAE + "\r\n",
		"GET /v10/page.html HTTP/1.0\r\n" + gzAE + "\r\n",
		"HEAD /page.html HTTP/1.1\r\nHost: x\r\n" + gzAE + "Connection: close\r\n\r\n",
		gzGet("/page.html", gzAE, "If-Modified-Since: Fri, 02 Jan 2026 03:04:05 GMT\r\n"),
		gzGet("/page.html", gzAE, "If-None-Match: W/\"6957356d-10e1\"\r\n"),
		gzGet("/page.html", gzAE, "Range: bytes=0-9\r\n"),
		gzGet("/page.html", "Range: bytes=0-9\r\n"),
		gzGet("/off/page.html", gzAE, "Range: bytes=0-9\r\n"),
		gzGet("/missing.html", gzAE),
		gzGet("/ret", gzAE),
		gzGet("/retsmall", gzAE),
		gzGet("/forbidden", gzAE),
		gzGet("/teapot", gzAE),
	}
	for _, c := range cases {
		p.compare(t, c)
	}
}

// TestDiffGzipProxied compares gzip_proxied's judgement of a request with
// Via on proxied responses, and the other rules on proxied bodies
// (chunked from the backend, already encoded, other statuses).
func TestDiffGzipProxied(t *testing.T) {
	backend := gzipBackend(t)
	loc := func(name, proxied string) string {
		return "location /" + name + "/ { gzip_proxied " + proxied + "; proxy_pass http://" + backend + "/; }\n"
	}
	p := startPair(t, diffConf{HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    gzip on;
    gzip_vary on;
    gzip_types application/json;
    location /p/ { proxy_pass http://` + backend + `/; }
    location /nobuf/ { proxy_buffering off; proxy_pass http://` + backend + `/; }
    ` + loc("any", "any") + loc("expired", "expired") + loc("nocache", "no-cache") + loc("nostore", "no-store") +
		loc("private", "private") + loc("nolm", "no_last_modified") + loc("noetag", "no_etag") + loc("auth", "auth") +
		loc("mix", "no-cache no-store private expired") + `
    location /ua/ { gzip_disable "curl/[0-9]" msie6; proxy_pass http://` + backend + `/; }
}`})
	const via = "Via: 1.1 cache\r\n"
	for _, path := range []string{"/", "/expired", "/future", "/no-cache", "/no-store", "/private", "/public", "/lm", "/etag"} {
		for _, prefix := range []string{"/p", "/any", "/expired", "/nocache", "/nostore", "/private", "/nolm", "/noetag", "/auth", "/mix"} {
			p.compare(t, gzGet(prefix+path, gzAE, via))
		}
	}
	p.compare(t, gzGet("/auth/", gzAE, via, "Authorization: Basic eDp5\r\n"))
	for _, path := range []string{"/", "/chunked", "/encoded", "/json", "/created", "/forbidden"} {
		p.compare(t, gzGet("/p"+path, gzAE))
		p.compare(t, gzGet("/nobuf"+path, gzAE))
	}
	p.compare(t, "HEAD /p/ HTTP/1.1\r\nHost: x\r\n"+gzAE+"Connection: close\r\n\r\n")
	for _, ua := range []string{"curl/8.1", "Curl/8", "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)",
		"Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)", "Mozilla/4.0 (compatible; MSIE 5.5; Windows 98)",
		"Opera/9.0 (compatible; MSIE 6.0; Windows NT 5.1)", "Mozilla/5.0"} {
		p.compare(t, gzGet("/ua/", gzAE, "User-Agent: "+ua+"\r\n"))
	}
}

// encoding sends req to addr and returns the answer's Content-Encoding.
func encoding(t *testing.T, addr, req string) string {
	t.Helper()
	return sendRaw(t, addr, req).Header.Get("Content-Encoding")
}

// TestGzipCompresses checks, beside the differential cases, that both
// servers do compress what the tests above compare (so that an
// implementation compressing nothing cannot pass them) and that the
// stream decompresses to the file.
func TestGzipCompresses(t *testing.T) {
	root := gzipTree(t)
	backend := gzipBackend(t)
	p := startPair(t, diffConf{Root: root, HTTP: `
log_format ratio "$uri $gzip_ratio";
server {
    listen 127.0.0.1:{{PORT}};
    root {{ROOT}};
    gzip on;
    access_log {{DIR}}/logs/ratio.log ratio;
    location /p/ { gzip_proxied any; proxy_pass http://` + backend + `/; }
}`})
	want, _ := os.ReadFile(filepath.Join(root, "page.html"))
	for _, addr := range []string{p.nginx, p.wsgate} {
		r := gunzipped(t, addr, sendRaw(t, addr, gzGet("/page.html", gzAE)))
		if r.Header.Get("Content-Encoding") != "gzip" || !bytes.Equal(r.Body, want) {
			t.Errorf("%s: /page.html: encoding %q, %d bytes decompressed, want gzip of %d", addr, r.Header.Get("Content-Encoding"), len(r.Body), len(want))
		}
		if enc := encoding(t, addr, gzGet("/p/chunked", gzAE, "Via: 1.1 x\r\n")); enc != "gzip" {
			t.Errorf("%s: proxied with gzip_proxied any: encoding %q", addr, enc)
		}
		if enc := encoding(t, addr, gzGet("/page.html")); enc != "" {
			t.Errorf("%s: without Accept-Encoding: encoding %q", addr, enc)
		}
	}
	// $gzip_ratio: in over out with two decimals, "-" when not compressed.
	// Lines are compared sorted: a request's line is written after its
	// last byte went out, so the next request may log first.
	ratio := regexp.MustCompile(`^/p/chunked \d+\.\d\d\n/page\.html -\n/page\.html \d+\.\d\d\n$`)
	for _, dir := range []string{p.ng.dir, p.gate.dir} {
		log := filepath.Join(dir, "logs", "ratio.log")
		var b []byte
		for deadline := time.Now().Add(slow(5 * time.Second)); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if b, _ = os.ReadFile(log); strings.Count(string(b), "\n") >= 3 {
				break
			}
		}
		lines := strings.SplitAfter(string(b), "\n")
		slices.Sort(lines)
		if sorted := strings.Join(lines, ""); !ratio.MatchString(sorted) {
			t.Errorf("%s: %q", log, sorted)
		}
	}
}

// TestGzipWebSocketUntouched: a WebSocket handshake through a location
// with gzip on every type gets its 101 unchanged (no Content-Encoding, no
// Vary) and the tunnel carries messages as sent.
func TestGzipWebSocketUntouched(t *testing.T) {
	b := startBackend(t, "ws")
	port := freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	startGate(t, `pid {{DIR}}/logs/wsgate.pid;
error_log {{DIR}}/logs/error.log info;
events { worker_connections 256; }
http {
    access_log {{DIR}}/logs/access.log;
    server {
        listen `+addr+`;
        gzip on;
        gzip_types *;
        gzip_vary on;
        gzip_proxied any;
        gzip_min_length 0;
        location / {
            proxy_pass http://`+b.addr+`;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }
    }
}`)
	hdr := http.Header{"Accept-Encoding": {"gzip"}, "Via": {"1.1 proxy"}}
	c, resp := dial(t, "ws://"+addr+"/ws", hdr)
	if resp.StatusCode != 101 || resp.Header.Get("Content-Encoding") != "" || resp.Header.Get("Vary") != "" {
		t.Fatalf("handshake: %d, Content-Encoding %q, Vary %q", resp.StatusCode, resp.Header.Get("Content-Encoding"), resp.Header.Get("Vary"))
	}
	for _, msg := range []string{"hello", strings.Repeat("compressible ", 1000)} {
		echo(t, c, msg)
	}
	// A plain request on the same location is compressed: gzip is on there.
	if enc := encoding(t, addr, gzGet("/plain", gzAE)); enc != "gzip" {
		t.Errorf("plain request: encoding %q, want gzip", enc)
	}
}

// TestDiffGzipStaticFiles compares gzip_static on and always: the .gz beside
// the file (or alone), with Vary, ETag, 304, ranges and HEAD.
func TestDiffGzipStaticFiles(t *testing.T) {
	root := gzipTree(t)
	os.Mkdir(filepath.Join(root, "dir.html.gz"), 0o755)
	os.WriteFile(filepath.Join(root, "dir.html"), []byte(strings.Repeat("dir file ", 50)), 0o644)
	p := startPair(t, diffConf{Root: root, HTTP: `
types { text/html html; text/plain txt; }
server {
    listen 127.0.0.1:{{PORT}};
    root {{ROOT}};
    gzip_static on;
    location /vary/ { gzip_vary on; alias {{ROOT}}/; }
    location /always/ { gzip_static always; alias {{ROOT}}/; }
    location /both/ { gzip on; gzip_vary on; alias {{ROOT}}/; }
    location /off/ { gzip_static off; alias {{ROOT}}/; }
}`})
	for _, prefix := range []string{"/", "/vary/", "/always/", "/both/", "/off/"} {
		for _, name := range []string{"pre.html", "only.txt", "page.html", "dir.html"} {
			for _, hdr := range []string{"", gzAE, "Accept-Encoding: gzip;q=0\r\n"} {
				p.compare(t, gzGet(prefix+name, hdr))
			}
		}
		p.compare(t, gzGet(prefix+"pre.html", gzAE, "Range: bytes=0-3\r\n"))
		p.compare(t, gzGet(prefix+"pre.html", gzAE, "If-Modified-Since: Fri, 02 Jan 2026 03:04:05 GMT\r\n"))
		p.compare(t, "HEAD "+prefix+"pre.html HTTP/1.1\r\nHost: x\r\n"+gzAE+"Connection: close\r\n\r\n")
		p.compare(t, "GET "+prefix+"pre.html HTTP/1.0\r\n"+gzAE+"\r\n")
	}
	if r := sendRaw(t, p.wsgate, gzGet("/pre.html", gzAE)); r.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(string(gunzipped(t, "wsgate", r).Body), "precompressed pre.html.gz") {
		t.Errorf("gzip_static on: %q %q", r.Header.Get("Content-Encoding"), r.Body)
	}
}

// TestGzipStreamsUnbuffered: with proxy_buffering off a compressed
// response is flushed as the backend sends it (a sync flush per piece, as
// nginx's gzip filter on a flush buffer), so a stream's first event
// reaches the client, decompressible, while the backend still holds the
// rest.
func TestGzipStreamsUnbuffered(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
		io.WriteString(w, "data: last\n\n")
	}))
	defer srv.Close()
	defer close(release)
	port := freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	startGate(t, `pid {{DIR}}/logs/wsgate.pid;
error_log {{DIR}}/logs/error.log info;
events { worker_connections 64; }
http {
    access_log off;
    server {
        listen `+addr+`;
        gzip on;
        gzip_types text/event-stream;
        location / { proxy_buffering off; proxy_pass http://`+srv.Listener.Addr().String()+`; }
    }
}`)
	req, _ := http.NewRequest("GET", "http://"+addr+"/events", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	cl := &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: slow(10 * time.Second)}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q", resp.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, len("data: first\n\n"))
	if _, err := io.ReadFull(zr, first); err != nil || string(first) != "data: first\n\n" {
		t.Fatalf("first event before the backend's end: %q %v", first, err)
	}
}

// TestGzipOverH2: over HTTP/2 a GET is compressed as over HTTP/1.1, and
// a HEAD of a compressed answer ends (no body follows its headers).
func TestGzipOverH2(t *testing.T) {
	dir := t.TempDir()
	writeCert(t, dir, "ws", "ws.example.com")
	port := freePort(t)
	body := strings.Repeat("over h2, compressed. ", 200)
	startGate(t, fmt.Sprintf(`error_log {{DIR}}/error.log info;
http {
    access_log off;
    server {
        listen 127.0.0.1:%d ssl http2;
        ssl_certificate %[2]s/ws.pem;
        ssl_certificate_key %[2]s/ws.key;
        gzip on;
        gzip_vary on;
        location / { default_type text/html; return 200 %q; }
    }
}`, port, dir, body))
	cl := &http.Client{Transport: h2Transport(), Timeout: slow(10 * time.Second)}
	for _, method := range []string{"GET", "HEAD"} {
		req, _ := http.NewRequest(method, fmt.Sprintf("https://127.0.0.1:%d/", port), nil)
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.ProtoMajor != 2 || resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("Vary") != "Accept-Encoding" {
			t.Fatalf("%s: %s %v %v", method, resp.Proto, resp.Header, err)
		}
		got := gunzipped(t, "wsgate", rawResponse{Header: resp.Header, Body: raw})
		if method == "GET" && string(got.Body) != body || method == "HEAD" && len(raw) != 0 {
			t.Errorf("%s: %d bytes, %d decompressed", method, len(raw), len(got.Body))
		}
	}
}
