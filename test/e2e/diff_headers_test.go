package e2e

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// httpDates matches an HTTP date: Expires values counted from the
// request's own second are compared masked, then checked against Date.
var httpDates = regexp.MustCompile(`[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT`)

// TestDiffExpires compares every form of `expires` with nginx: time,
// negative, zero, epoch, max, off, modified, @time of day and variables,
// on files, return bodies, error pages and proxied responses, and its
// effect on gzip_proxied expired.
func TestDiffExpires(t *testing.T) {
	root := gzipTree(t)
	backend := gzipBackend(t)
	p := startPair(t, diffConf{Root: root, HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    root {{ROOT}};
    location /access/ { expires 1h; alias {{ROOT}}/; }
    location /plus/ { expires +1d; alias {{ROOT}}/; }
    location /neg/ { expires -1; alias {{ROOT}}/; }
    location /zero/ { expires 0; alias {{ROOT}}/; }
    location /epoch/ { expires epoch; alias {{ROOT}}/; }
    location /max/ { expires max; alias {{ROOT}}/; }
    location /off/ { expires off; alias {{ROOT}}/; }
    location /mod/ { expires modified 1d; alias {{ROOT}}/; }
    location /modneg/ { expires modified -1h; alias {{ROOT}}/; }
    location /modlong/ { expires modified 100y; alias {{ROOT}}/; }
    location /daily/ { expires @15h30m; alias {{ROOT}}/; }
    location /var/ { expires $arg_e; alias {{ROOT}}/; }
    location /varmod/ { expires modified $arg_e; alias {{ROOT}}/; }
    location = /ret { expires 2h; return 200 "text"; }
    location = /redir { expires epoch; return 302 /elsewhere; }
    location = /err { expires 1h; return 404; }
    location = /added { expires max; add_header X-Extra 1; return 200 "x"; }
    location /proxy/ { expires 30s; proxy_pass http://` + backend + `/; }
    location /proxymod/ { expires modified 1h; proxy_pass http://` + backend + `/; }
    location /gz/ { expires epoch; gzip on; gzip_proxied expired; proxy_pass http://` + backend + `/; }
    location /gzfuture/ { expires 1h; gzip on; gzip_proxied expired; proxy_pass http://` + backend + `/; }
    location /nested/ { expires 1h; alias {{ROOT}}/; location /nested/in/ { alias {{ROOT}}/; } if ($arg_x) { expires max; } }
}`})
	exact := []string{
		"/epoch/page.html", "/max/page.html", "/off/page.html", "/modneg/page.html", "/redir", "/err",
		"/added", "/var/page.html?e=epoch", "/var/page.html?e=max", "/var/page.html?e=off", "/var/page.html?e=bogus",
		"/varmod/page.html?e=epoch", "/missing", "/nested/page.html?x=1", "/access/page.html?If=1",
	}
	for _, path := range exact {
		p.compare(t, gzGet(path))
	}
	p.compare(t, gzGet("/access/page.html", "If-Modified-Since: Fri, 02 Jan 2026 03:04:05 GMT\r\n"))
	p.compare(t, gzGet("/gz/", gzAE, "Via: 1.1 x\r\n"))
	p.compare(t, gzGet("/gzfuture/", gzAE, "Via: 1.1 x\r\n"))
	maxAge := regexp.MustCompile(`max-age=\d+`)
	relative := []string{
		"/access/page.html", "/plus/page.html", "/neg/page.html", "/zero/page.html", "/ret", "/proxy/", "/proxy/public",
		"/proxy/expired", "/var/page.html?e=1h", "/var/page.html?e=-5m", "/var/page.html?e=0", "/nested/page.html", "/nested/in/page.html",
	}
	for _, path := range relative {
		p.compareMasked(t, gzGet(path), httpDates)
		checkMaxAge(t, p.wsgate, path)
	}
	for _, path := range []string{"/mod/page.html", "/modlong/page.html", "/daily/page.html", "/varmod/page.html?e=2d", "/proxymod/lm"} {
		p.compareMasked(t, gzGet(path), maxAge) // Expires exact, max-age counted from each server's second
	}
}

// checkMaxAge: an Expires counted from the request is Date plus max-age.
func checkMaxAge(t *testing.T, addr, path string) {
	t.Helper()
	r := sendRaw(t, addr, gzGet(path))
	cc := r.Header.Get("Cache-Control")
	date, err1 := http.ParseTime(r.Header.Get("Date"))
	exp, err2 := http.ParseTime(r.Header.Get("Expires"))
	if err1 != nil || err2 != nil {
		t.Errorf("%s: Date %q, Expires %q", path, r.Header.Get("Date"), r.Header.Get("Expires"))
		return
	}
	age, ok := strings.CutPrefix(cc, "max-age=")
	if !ok {
		if cc != "no-cache" || !exp.Before(date) {
			t.Errorf("%s: Cache-Control %q with Expires %v, Date %v", path, cc, exp, date)
		}
		return
	}
	n, _ := strconv.Atoi(age)
	if exp.Sub(date) != time.Duration(n)*time.Second {
		t.Errorf("%s: Expires %v is not Date %v + %s", path, exp, date, cc)
	}
}

// sendTrailers sends req to addr and returns the response and its body's
// trailers.
func sendTrailers(t *testing.T, addr, req string) (*http.Response, http.Header) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, slow(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(slow(10 * time.Second)))
	io.WriteString(c, req)
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: strings.Fields(req)[0]})
	if err != nil {
		t.Fatalf("%s: %v", addr, err)
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatalf("%s: body: %v", addr, err)
	}
	resp.Body.Close()
	return resp, resp.Trailer
}

// TestDiffAddTrailer compares add_trailer with nginx: trailers on
// chunked responses (a response with a length becomes chunked for an
// HTTP/1.1 client), `always` on error statuses, empty values left out, and
// none for HTTP/1.0 or HEAD. Lengths are compared as known or not: the
// built-in error pages name their server.
func TestDiffAddTrailer(t *testing.T) {
	root := gzipTree(t)
	backend := gzipBackend(t)
	p := startPair(t, diffConf{Root: root, HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    root {{ROOT}};
    add_trailer X-Server-Level s;
    location = /t { add_trailer X-Trailer "v-$uri"; add_trailer X-Always a always; return 200 "body"; }
    location = /t404 { add_trailer X-Trailer t; add_trailer X-Always a always; return 404; }
    location = /tempty { add_trailer X-Empty $arg_none; add_trailer X-Full f; return 200 "x"; }
    location /files/ { add_trailer X-File "$uri"; alias {{ROOT}}/; }
    location /gz/ { gzip on; add_trailer X-Gz z; alias {{ROOT}}/; }
    location /proxy/ { add_trailer X-Proxy p; proxy_pass http://` + backend + `/; }
    location /inherit/ { alias {{ROOT}}/; }
}`})
	reqs := []string{
		gzGet("/t"), gzGet("/t404"), gzGet("/tempty"), gzGet("/files/page.html"), gzGet("/files/missing"),
		gzGet("/gz/page.html", gzAE), gzGet("/proxy/"), gzGet("/proxy/chunked"), gzGet("/proxy/forbidden"), gzGet("/inherit/small.html"),
		"GET /t HTTP/1.0\r\n\r\n", "HEAD /t HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	}
	for _, req := range reqs {
		p.compare(t, req)
		ngResp, ng := sendTrailers(t, p.nginx, req)
		wsResp, ws := sendTrailers(t, p.wsgate, req)
		if !sameHeader(ng, ws) || !sameStrings(ngResp.TransferEncoding, wsResp.TransferEncoding) || (ngResp.ContentLength < 0) != (wsResp.ContentLength < 0) {
			t.Errorf("%q: trailers nginx %v (%v, length %d), wsgate %v (%v, length %d)", firstLine(req),
				ng, ngResp.TransferEncoding, ngResp.ContentLength, ws, wsResp.TransferEncoding, wsResp.ContentLength)
		}
	}
	if _, tr := sendTrailers(t, p.wsgate, gzGet("/t")); tr.Get("X-Trailer") != "v-/t" {
		t.Errorf("wsgate /t trailers: %v", tr)
	}
}

func sameHeader(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !sameStrings(v, b[k]) {
			return false
		}
	}
	return true
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
