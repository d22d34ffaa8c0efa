package e2e

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// staticTree builds the folder both servers serve: files, an index, a
// folder without index, names that need escaping, symlinks in and out of
// the root. Every file has the same fixed modification time, so dates
// and ETags are predictable.
func staticTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	os.Chmod(root, 0o755)
	files := map[string]string{
		"www/index.html":                      "<h1>home</h1>\n",
		"www/file.txt":                        "0123456789abcdefghij",
		"www/style.CSS":                       "body{}\n",
		"www/app.js":                          "let x;\n",
		"www/noext":                           "plain\n",
		"www/.hidden":                         "h\n",
		"www/dir/index.html":                  "dir index\n",
		"www/empty/.keep":                     "",
		"www/a dir/x.txt":                     "space\n",
		"www/auto/b.txt":                      "bb\n",
		"www/auto/café.txt":                   "utf\n",
		"www/auto/" + strings.Repeat("é", 30): "wide\n",
		"www/auto/q\"uote's.txt":              "q\n",
		"www/auto/a b&c<d>.txt":               "odd\n",
		"www/auto/big.bin":                    strings.Repeat("x", 20000),
		"www/auto/sub/in.txt":                 "in\n",
		"www/auto/" + strings.Repeat("L", 60) + ".txt": "long\n",
		"data/one.txt":     "alias one\n",
		"data/sub/two.txt": "alias two\n",
		"secret.txt":       "outside the root\n",
	}
	stamp := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink(filepath.Join(root, "secret.txt"), filepath.Join(root, "www/link-out"))
	os.Symlink("file.txt", filepath.Join(root, "www/link-in"))
	os.Symlink("dir", filepath.Join(root, "www/link-dir"))
	filepath.Walk(root, func(p string, _ os.FileInfo, _ error) error {
		os.Chtimes(p, stamp, stamp)
		return nil
	})
	return root
}

const staticHTTP = `
types { text/html html; text/css css; application/javascript js; text/plain txt; }
default_type application/octet-stream;
server {
    listen 127.0.0.1:{{PORT}};
    server_name static.test;
    root {{ROOT}}/www;
    location /auto/ { autoindex on; }
    location /autojson/ { alias {{ROOT}}/www/auto/; autoindex on; autoindex_format json; }
    location /autojsonp/ { alias {{ROOT}}/www/auto/; autoindex on; autoindex_format jsonp; }
    location /autoxml/ { alias {{ROOT}}/www/auto/; autoindex on; autoindex_format xml; }
    location /autosize/ { alias {{ROOT}}/www/auto/; autoindex on; autoindex_exact_size off; }
    location /alias/ { alias {{ROOT}}/data/; }
    location /aliasfile { alias {{ROOT}}/data/one.txt; }
    location ~ ^/re/(.+)$ { alias {{ROOT}}/data/$1; }
    location /types/ { alias {{ROOT}}/www/; types { text/x-special txt; } }
    location /dt/ { alias {{ROOT}}/www/; default_type text/x-default; }
    location /noetag/ { alias {{ROOT}}/www/; etag off; }
    location /before/ { alias {{ROOT}}/www/; if_modified_since before; }
    location /imsoff/ { alias {{ROOT}}/www/; if_modified_since off; }
    location /maxr/ { alias {{ROOT}}/www/; max_ranges 1; }
    location /nor/ { alias {{ROOT}}/www/; max_ranges 0; }
    location /sym/ { alias {{ROOT}}/www/; disable_symlinks on; }
    location /owner/ { alias {{ROOT}}/www/; disable_symlinks if_not_owner; }
    location /autolocal/ { alias {{ROOT}}/www/auto/; autoindex on; autoindex_localtime on; }
    location /symfrom/ { alias {{ROOT}}/www/; disable_symlinks on from={{ROOT}}; }
    location /rel/ { alias {{ROOT}}/www/; absolute_redirect off; }
    location /noport/ { alias {{ROOT}}/www/; port_in_redirect off; }
    location /sn/ { alias {{ROOT}}/www/; server_name_in_redirect on; }
}`

func sget(path string, extra ...string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: {{HOST}}\r\n" + strings.Join(extra, "") + "Connection: close\r\n\r\n"
}

// TestDiffStaticFiles compares plain files, types, default_type, index
// files and the answers to missing files and other methods.
func TestDiffStaticFiles(t *testing.T) {
	p := startPair(t, diffConf{HTTP: staticHTTP, Root: staticTree(t)})
	for _, req := range []string{
		sget("/file.txt"), sget("/index.html"), sget("/"), sget("/dir/"), sget("/style.CSS"), sget("/app.js"),
		sget("/noext"), sget("/.hidden"), sget("/missing.txt"), sget("/empty/"), sget("/nodir/"),
		sget("/file.txt/"), sget("/types/file.txt"), sget("/types/style.CSS"), sget("/dt/noext"), sget("/dt/app.js"),
		sget("/a%20dir/x.txt"), sget("/%2e%2e/secret.txt"), sget("/dir/%2e%2e/file.txt"), sget("/dir%2findex.html"),
		sget("/link-in"), sget("/link-out"), sget("/auto/caf%C3%A9.txt"), sget("/file.txt?x=1"),
		"HEAD /file.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		"POST /file.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		"POST /missing.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		"POST /empty/ HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		"PUT /file.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		"DELETE /empty/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	} {
		p.compare(t, req)
	}
}

// TestDiffStaticRedirects compares the redirect of a directory without
// its slash under absolute_redirect, port_in_redirect and
// server_name_in_redirect.
func TestDiffStaticRedirects(t *testing.T) {
	p := startPair(t, diffConf{HTTP: staticHTTP, Root: staticTree(t)})
	for _, req := range []string{
		sget("/dir"), sget("/dir?a=1&b=2"), sget("/a%20dir"), sget("/rel/dir"), sget("/noport/dir"), sget("/sn/dir"),
		sget("/alias/sub"), sget("/re/sub"), sget("/rel/dir?x=y"),
		"GET /dir HTTP/1.0\r\n\r\n",
	} {
		p.compare(t, req)
	}
}

// TestDiffStaticAlias compares alias in prefix, exact-like and regex
// locations with captures.
func TestDiffStaticAlias(t *testing.T) {
	p := startPair(t, diffConf{HTTP: staticHTTP, Root: staticTree(t)})
	for _, req := range []string{
		sget("/alias/one.txt"), sget("/alias/sub/two.txt"), sget("/alias/none.txt"), sget("/aliasfile"),
		sget("/re/one.txt"), sget("/re/sub/two.txt"), sget("/re/missing"), sget("/alias/"),
	} {
		p.compare(t, req)
	}
}

// TestDiffStaticConditional compares ETag, Last-Modified and the
// conditional headers under each if_modified_since mode.
func TestDiffStaticConditional(t *testing.T) {
	p := startPair(t, diffConf{HTTP: staticHTTP, Root: staticTree(t)})
	const lm = "Fri, 02 Jan 2026 03:04:05 GMT"
	const etag = `"695735a5-14"`
	ng := sendRaw(t, p.nginx, strings.ReplaceAll(sget("/file.txt"), "{{HOST}}", p.nginx))
	if ng.Header.Get("ETag") != etag || ng.Header.Get("Last-Modified") != lm {
		t.Fatalf("nginx's validators are not what the test expects: %q %q", ng.Header.Get("ETag"), ng.Header.Get("Last-Modified"))
	}
	for _, loc := range []string{"/", "/before/", "/imsoff/", "/noetag/"} {
		u := loc + "file.txt"
		for _, h := range []string{
			"If-Modified-Since: " + lm + "\r\n",
			"If-Modified-Since: Sat, 03 Jan 2026 00:00:00 GMT\r\n",
			"If-Modified-Since: Thu, 01 Jan 2026 00:00:00 GMT\r\n",
			"If-Modified-Since: garbage\r\n",
			"If-Modified-Since: Friday, 02-Jan-26 03:04:05 GMT\r\n",
			"If-Modified-Since: Fri Jan  2 03:04:05 2026\r\n",
			"If-Modified-Since: Friday, 02-Jan-26 03:04:05 GMT\r\n",
			"If-Modified-Since: Fri Jan  2 03:04:05 2026\r\n",
			"If-None-Match: " + etag + "\r\n",
			"If-None-Match: W/" + etag + "\r\n",
			"If-None-Match: \"x\", " + etag + "\r\n",
			"If-None-Match: *\r\n",
			"If-None-Match: \"other\"\r\n",
			"If-None-Match: " + etag + "\r\nIf-Modified-Since: Thu, 01 Jan 2026 00:00:00 GMT\r\n",
			"If-Match: " + etag + "\r\n",
			"If-Match: \"other\"\r\n",
			"If-Unmodified-Since: " + lm + "\r\n",
			"If-Unmodified-Since: Thu, 01 Jan 2026 00:00:00 GMT\r\n",
			"If-Unmodified-Since: nonsense\r\n",
			"If-None-Match: " + etag + "\r\nRange: bytes=0-1\r\n",
			"If-Match: \"zz\"\r\nRange: bytes=0-1\r\n",
		} {
			p.compare(t, sget(u, h))
		}
	}
}

var boundaryRE = regexp.MustCompile(`\b\d{20}\b`)

// TestDiffStaticRanges compares single, multiple and unsatisfiable byte
// ranges, If-Range and max_ranges. Multipart boundaries are numbered by
// each server and compared as a placeholder.
func TestDiffStaticRanges(t *testing.T) {
	p := startPair(t, diffConf{HTTP: staticHTTP, Root: staticTree(t)})
	const etag = `"695735a5-14"`
	for _, loc := range []string{"/", "/maxr/", "/nor/"} {
		u := loc + "file.txt"
		for _, h := range []string{
			"bytes=0-4", "bytes=5-", "bytes=-3", "bytes=15-100", "bytes=0-0,2-3", "bytes=0-1, 4-5, 8-",
			"bytes=20-", "bytes=30-40", "bytes=5-2", "bytes=abc", "bytes=-0", "bytes=0-10,5-15", "bytes=0-5,0-5,0-5,0-5",
			"Bytes=1-2", "items=1-2", "bytes=", "bytes=1-2,", "bytes=1 - 2",
		} {
			p.compareMasked(t, sget(u, "Range: "+h+"\r\n"), boundaryRE)
		}
		p.compareMasked(t, sget(u, "Range: bytes=1-2\r\n", "If-Range: "+etag+"\r\n"), boundaryRE)
		p.compareMasked(t, sget(u, "Range: bytes=1-2\r\n", "If-Range: \"old\"\r\n"), boundaryRE)
		p.compareMasked(t, sget(u, "Range: bytes=1-2\r\n", "If-Range: Fri, 02 Jan 2026 03:04:05 GMT\r\n"), boundaryRE)
		p.compareMasked(t, sget(u, "Range: bytes=1-2\r\n", "If-Range: Fri, 02 Jan 2026 03:04:06 GMT\r\n"), boundaryRE)
		p.compareMasked(t, "HEAD "+u+" HTTP/1.1\r\nHost: x\r\nRange: bytes=1-2\r\nConnection: close\r\n\r\n", boundaryRE)
	}
}

// TestDiffStaticAutoindex compares directory listings in every format.
func TestDiffStaticAutoindex(t *testing.T) {
	p := startPair(t, diffConf{HTTP: staticHTTP, Root: staticTree(t)})
	for _, req := range []string{
		sget("/auto/"), sget("/autojson/"), sget("/autoxml/"), sget("/autosize/"), sget("/autolocal/"), sget("/autojsonp/"),
		sget("/autojsonp/?callback=cb.x_1"), sget("/autojsonp/?callback=bad("), sget("/auto/sub/"), sget("/auto/nothere/"),
		"HEAD /auto/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		sget("/auto/", "If-Match: \"x\"\r\n"), sget("/auto/", "If-None-Match: *\r\n"), sget("/auto/", "Range: bytes=0-1\r\n"),
		sget("/auto/", "If-Unmodified-Since: Fri, 02 Jan 2026 03:04:05 GMT\r\n"), sget("/auto/", "If-Modified-Since: Fri, 02 Jan 2036 03:04:05 GMT\r\n"),
		"GET /auto/ HTTP/1.0\r\n\r\n",
		"POST /auto/ HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
	} {
		p.compare(t, req)
	}
}

// TestDiffStaticSymlinks compares disable_symlinks: off follows links in
// and out of the root, on refuses both with 403, from= checks only below
// the given folder.
func TestDiffStaticSymlinks(t *testing.T) {
	root := staticTree(t)
	if os.Geteuid() == 0 {
		// A file of another owner behind a link of root's: if_not_owner refuses it.
		os.WriteFile(filepath.Join(root, "www", "nobody.txt"), []byte("nobody's\n"), 0o644)
		os.Chown(filepath.Join(root, "www", "nobody.txt"), 65534, 65534)
	}
	os.Symlink("nobody.txt", filepath.Join(root, "www", "link-nobody"))
	p := startPair(t, diffConf{HTTP: staticHTTP, Root: root})
	for _, req := range []string{
		sget("/link-in"), sget("/link-out"), sget("/sym/link-in"), sget("/sym/link-out"), sget("/sym/file.txt"),
		sget("/symfrom/link-in"), sget("/symfrom/file.txt"), sget("/sym/missing"),
		sget("/link-dir/index.html"), sget("/sym/link-dir/index.html"), sget("/sym/link-dir/"), sget("/sym/link-dir"),
		sget("/owner/link-in"), sget("/owner/link-out"), sget("/owner/link-nobody"),
	} {
		p.compare(t, req)
	}
	if os.Geteuid() == 0 {
		if r := sendRaw(t, p.wsgate, strings.ReplaceAll(sget("/owner/link-nobody"), "{{HOST}}", p.wsgate)); r.Status != 403 {
			t.Errorf("if_not_owner followed a link to another owner's file: %d", r.Status)
		}
	}
	if !strings.Contains(gateLog(p), `openat() "`+root+`/www/link-out" failed (40: Too many levels of symbolic links)`) {
		t.Errorf("wsgate's error log does not name the refused symlink as nginx does:\n%s", gateLog(p))
	}
}

// TestDiffStaticLogNotFound checks the error-log line of a missing file,
// and that log_not_found off leaves it out.
func TestDiffStaticLogNotFound(t *testing.T) {
	root := staticTree(t)
	p := startPair(t, diffConf{HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    root {{ROOT}}/www;
    location /quiet/ { log_not_found off; }
}`, Root: root})
	p.compare(t, sget("/missing.txt"))
	p.compare(t, sget("/quiet/missing.txt"))
	want := `open() "` + root + `/www/missing.txt" failed (2: No such file or directory)`
	waitFor(t, 10*time.Second, "the not-found line in both logs", func() bool {
		return strings.Contains(p.ng.errorLog(), want) && strings.Contains(gateLog(p), want)
	})
	if strings.Contains(gateLog(p), "quiet/missing.txt") || strings.Contains(p.ng.errorLog(), "quiet/missing.txt") {
		t.Errorf("log_not_found off still logged the missing file")
	}
}

// TestDiffDebianDefaultPage serves Debian's default page with Debian's
// mime.types, as the distribution's default site does.
func TestDiffDebianDefaultPage(t *testing.T) {
	for _, f := range []string{"/etc/nginx/mime.types", "/var/www/html/index.nginx-debian.html"} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("Debian's nginx package is needed: %v", err)
		}
	}
	p := startPair(t, diffConf{HTTP: `
include /etc/nginx/mime.types;
default_type application/octet-stream;
server {
    listen 127.0.0.1:{{PORT}} default_server;
    root /var/www/html;
    index index.html index.htm index.nginx-debian.html;
    server_name _;
}`})
	p.compare(t, sget("/"))
	p.compare(t, sget("/index.nginx-debian.html"))
	p.compare(t, "HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	ws := sendRaw(t, p.wsgate, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if ws.Status != 200 || ws.Header.Get("Content-Type") != "text/html" || !bytes.Contains(ws.Body, []byte("Welcome to nginx!")) {
		t.Errorf("the default page: %d %q %q", ws.Status, ws.Header.Get("Content-Type"), clip(ws.Body))
	}
}

// gateLog is the error log startPair gives wsgate.
func gateLog(p *diffPair) string {
	b, _ := os.ReadFile(filepath.Join(p.gate.dir, "logs", "error.log"))
	return string(b)
}

// TestDiffStaticVariables compares $document_root, $realpath_root and
// $request_filename under root, alias and a regex alias with captures,
// and their use in if (-f ...).
func TestDiffStaticVariables(t *testing.T) {
	root := staticTree(t)
	os.Symlink(filepath.Join(root, "www"), filepath.Join(root, "wwwlink"))
	p := startPair(t, diffConf{HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    root {{ROOT}}/wwwlink/;
    location /v/ { return 200 "$document_root|$realpath_root|$request_filename\n"; }
    location /a/ { alias {{ROOT}}/data/; return 200 "$document_root|$realpath_root|$request_filename\n"; }
    location ~ ^/r/(.*)$ { alias {{ROOT}}/data/$1; return 200 "$document_root|$request_filename\n"; }
    location /f/ {
        alias {{ROOT}}/www/;
        if (-f $request_filename) { return 200 "file $request_filename\n"; }
        return 200 "none $request_filename\n";
    }
}`, Root: root})
	for _, req := range []string{
		sget("/v/x"), sget("/a/one.txt"), sget("/a/"), sget("/r/sub/two.txt"), sget("/f/file.txt"), sget("/f/none"),
	} {
		p.compare(t, req)
	}
}

// TestDiffStaticReturnRedirect compares the Location of `return` with a
// relative URI under absolute_redirect, port_in_redirect and
// server_name_in_redirect.
func TestDiffStaticReturnRedirect(t *testing.T) {
	p := startPair(t, diffConf{HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    server_name named.test;
    location /a { return 301 /target; }
    location /b { absolute_redirect off; return 302 /target; }
    location /c { port_in_redirect off; return 307 /target?x=1; }
    location /d { server_name_in_redirect on; return 308 /target; }
    location /e { return 301 http://elsewhere.test/x; }
}`})
	for _, req := range []string{sget("/a"), sget("/b"), sget("/c"), sget("/d"), sget("/e"), "GET /a HTTP/1.0\r\n\r\n"} {
		p.compare(t, req)
	}
}

// TestDiffStaticAliasJoin is a documented difference: with an alias whose
// location lacks the trailing slash, "/img../secret.txt" joins to a path
// outside the alias; nginx serves it, wsgate refuses it with 403.
func TestDiffStaticAliasJoin(t *testing.T) {
	p := startPair(t, diffConf{HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    location /img { alias {{ROOT}}/www/; }
}`, Root: staticTree(t)})
	p.compare(t, sget("/img/file.txt"))
	req := sget("/img../secret.txt")
	ng := sendRaw(t, p.nginx, strings.ReplaceAll(req, "{{HOST}}", p.nginx))
	ws := sendRaw(t, p.wsgate, strings.ReplaceAll(req, "{{HOST}}", p.wsgate))
	if ng.Status != 200 || string(ng.Body) != "outside the root\n" {
		t.Errorf("nginx no longer serves the joined path (%d %q): the difference in docs/directives.md is stale", ng.Status, ng.Body)
	}
	if ws.Status != 403 {
		t.Errorf("wsgate: %d %q, want 403", ws.Status, ws.Body)
	}
}

// TestStaticKeepAlive: a chunked listing, a range, a 304 and a 404 leave
// the connection usable for the next request, on both servers.
func TestStaticKeepAlive(t *testing.T) {
	p := startPair(t, diffConf{HTTP: staticHTTP, Root: staticTree(t)})
	reqs := []string{"/auto/", "/file.txt", "/missing", "/file.txt", "/dir"}
	hdrs := []string{"", "Range: bytes=1-2\r\n", "", "If-None-Match: \"695735a5-14\"\r\n", ""}
	want := []int{200, 206, 404, 304, 301}
	for _, addr := range []string{p.nginx, p.wsgate} {
		c, err := net.DialTimeout("tcp", addr, slow(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(slow(10 * time.Second)))
		var all strings.Builder
		for i, u := range reqs {
			all.WriteString("GET " + u + " HTTP/1.1\r\nHost: x\r\n" + hdrs[i] + "\r\n")
		}
		io.WriteString(c, all.String())
		br := bufio.NewReader(c)
		for i, u := range reqs {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("%s: response %d (%s): %v", addr, i, u, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want[i] || resp.Close {
				t.Errorf("%s %s: %d (close %v), want %d on a kept connection", addr, u, resp.StatusCode, resp.Close, want[i])
			}
		}
		c.Close()
	}
}
