package e2e

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// modGet is a GET of path with extra header lines (each ending in CRLF).
func modGet(path, headers string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: {{HOST}}\r\n" + headers + "Connection: close\r\n\r\n"
}

// TestDiffGeo compares geo lookups with nginx: CIDR longest match, delete,
// ranges with overlaps, a variable as the address, and X-Forwarded-For
// from trusted proxies, plain and recursive.
func TestDiffGeo(t *testing.T) {
	p := startPair(t, diffConf{HTTP: `
geo $g_plain {
    default none;
    127.0.0.0/8 loop;
    127.0.0.1/32 exact;
    delete 127.0.0.1;
    10.0.0.0/8 ten;
    10.1.0.0/16 tenone;
    ::1 six;
}
geo $arg_ip $g_arg {
    default "no match";
    10.0.0.0/8 ten;
    10.1.0.0/16 tenone;
    192.168.0.0/16 lan;
    255.255.255.255 bad;
    2001:db8::/32 doc;
}
geo $g_ranges {
    ranges;
    default zero;
    10.0.0.0-10.0.0.255 low;
    10.0.0.100-10.0.0.200 mid;
    10.0.1.0-10.0.1.255 next;
    delete 10.0.1.0-10.0.1.255;
    127.0.0.1-127.0.0.1 me;
}
geo $arg_ip $g_arg_ranges {
    ranges;
    default zero;
    10.0.0.0-10.0.0.255 low;
    10.0.0.100-10.0.0.200 mid;
    10.0.1.0-10.0.1.255 next;
}
geo $g_proxy {
    default d;
    proxy 127.0.0.1;
    proxy 10.9.0.0/16;
    10.0.0.0/8 ten;
    10.9.0.0/16 proxynet;
    1.2.3.0/24 client;
    127.0.0.1 me;
}
geo $g_rec {
    default d;
    proxy 127.0.0.0/8;
    proxy 10.9.0.0/16;
    proxy_recursive;
    10.9.0.0/16 proxynet;
    1.2.3.0/24 client;
}
server {
    listen 127.0.0.1:{{PORT}};
    location / { return 200 "plain=$g_plain arg=$g_arg ranges=$g_ranges ar=$g_arg_ranges proxy=$g_proxy rec=$g_rec\n"; }
}`})
	for _, ip := range []string{"", "10.2.3.4", "10.1.2.3", "192.168.7.7", "8.8.8.8", "junk", "2001:db8::5", "::ffff:10.1.0.1",
		"10.0.0.50", "10.0.0.150", "10.0.0.201", "10.0.1.7", "10.0.2.0"} {
		p.compare(t, modGet("/?ip="+ip, ""))
	}
	for _, xff := range []string{"", "1.2.3.4", "1.2.3.4, 10.9.1.1", "1.2.3.4,10.9.1.1,127.0.0.1", "garbage", "5.5.5.5, garbage",
		"10.9.0.1"} {
		h := ""
		if xff != "" {
			h = "X-Forwarded-For: " + xff + "\r\n"
		}
		p.compare(t, modGet("/", h))
	}
	p.compare(t, modGet("/", "X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-For: 10.9.1.1\r\n"))
	r := sendRaw(t, p.wsgate, strings.ReplaceAll(modGet("/?ip=10.0.0.150", "X-Forwarded-For: 1.2.3.4, 10.9.1.1\r\n"), "{{HOST}}", p.wsgate))
	if want := "plain=loop arg=ten ranges=me ar=mid proxy=proxynet rec=client\n"; string(r.Body) != want {
		t.Errorf("wsgate: %q, want %q", r.Body, want)
	}
}

// TestDiffSplitClients sends fixed keys of every length modulo four to
// both servers: each lands in the same bucket, so the hash and the
// percent arithmetic are nginx's.
func TestDiffSplitClients(t *testing.T) {
	p := startPair(t, diffConf{HTTP: `
split_clients "${arg_k}salt" $bucket {
    0.5%  tiny;
    33.33% a;
    20%   b;
    *     "";
}
split_clients $arg_k $half {
    50% left;
    49.99% right;
}
server {
    listen 127.0.0.1:{{PORT}};
    location / { return 200 "[$bucket][$half]"; }
}`})
	buckets := map[string]bool{}
	for i := range 120 {
		k := strings.Repeat("k", i%7) + strconv.Itoa(i*7919)
		p.compare(t, modGet("/?k="+k, ""))
		r := sendRaw(t, p.wsgate, strings.ReplaceAll(modGet("/?k="+k, ""), "{{HOST}}", p.wsgate))
		buckets[string(r.Body)] = true
	}
	if len(buckets) < 5 {
		t.Errorf("the keys fell into only %d bucket pairs: %v", len(buckets), buckets)
	}
}

// TestDiffReferer compares $invalid_referer with nginx for none, blocked,
// server_names, exact, wildcard, URI-prefix and regex referers, and a
// location whose own valid_referers replace the server's.
func TestDiffReferer(t *testing.T) {
	p := startPair(t, diffConf{HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    server_name site.test *.site.test ~^img\d+\.cdn\.test$;
    valid_referers none blocked server_names example.com *.example.org .example.net www.example.* pics.io/gallery/ ~\.google\.;
    location / { return 200 "[$invalid_referer]"; }
    location /strict/ {
        valid_referers example.com;
        if ($invalid_referer) { return 403; }
        return 200 "ok";
    }
    location /none/ { valid_referers none nohost.test ~^a\.b\.c/x$; return 200 "[$invalid_referer]"; }
}`})
	refs := []string{"", "Referer: \r\n", "Referer: ftp://example.com/\r\n", "Referer: http://example.com/x\r\n",
		"Referer: HTTPS://EXAMPLE.com:443/\r\n", "Referer: http://evil.com/\r\n", "Referer: http://a.example.org/\r\n",
		"Referer: http://example.org/\r\n", "Referer: http://example.net\r\n", "Referer: http://www.example.co.uk/\r\n",
		"Referer: http://pics.io/gallery/1.png\r\n", "Referer: http://pics.io/other\r\n", "Referer: https://www.google.com/\r\n",
		"Referer: http://site.test/\r\n", "Referer: http://x.site.test/\r\n", "Referer: http://img12.cdn.test/\r\n",
		"Referer: http://img12.cdn.test.evil/\r\n", "Referer: http://i.ru\r\n", "Referer: http://a.b\r\n",
		"Referer: http://" + strings.Repeat("a", 300) + ".com/\r\n", "Referer: http://a.b.c/x\r\n", "Referer: https://a.b.c/x\r\n"}
	for i, h := range refs {
		for _, path := range []string{"/", "/strict/", "/none/"} {
			p.compare(t, modGet(path+"?ref="+strconv.Itoa(i), h))
		}
	}
	r := sendRaw(t, p.wsgate, strings.ReplaceAll(modGet("/strict/", "Referer: http://evil.com/\r\n"), "{{HOST}}", p.wsgate))
	if r.Status != 403 {
		t.Errorf("wsgate let a bad referer through: %d", r.Status)
	}
}

// secureHash is secure_link_md5's hash of s as a link carries it.
func secureHash(s string) string {
	h := md5.Sum([]byte(s))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// TestDiffSecureLink compares secure_link with nginx: a valid link, an
// expired one, a wrong hash, a bad expiry, padding, and the older
// secure_link_secret form with its link variable.
func TestDiffSecureLink(t *testing.T) {
	p := startPair(t, diffConf{HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    location /s/ {
        secure_link $arg_md5,$arg_expires;
        secure_link_md5 "$secure_link_expires$uri$remote_addr secret";
        if ($secure_link = "") { return 403; }
        if ($secure_link = "0") { return 410; }
        return 200 "[$secure_link][$secure_link_expires]";
    }
    location /n/ {
        secure_link $arg_md5;
        secure_link_md5 "$uri secret";
        return 200 "[$secure_link][$secure_link_expires]";
    }
    location /p/ {
        secure_link_secret word;
        if ($secure_link = "") { return 403; }
        return 200 "[$secure_link]";
    }
}`})
	future, past := "4102444800", "1000000000"
	old := md5.Sum([]byte("file.txt?x=1word"))
	reqs := []string{
		"/s/a.txt?md5=" + secureHash(future+"/s/a.txt127.0.0.1 secret") + "&expires=" + future,
		"/s/a.txt?md5=" + secureHash(past+"/s/a.txt127.0.0.1 secret") + "&expires=" + past,
		"/s/a.txt?md5=" + secureHash(future+"/s/b.txt127.0.0.1 secret") + "&expires=" + future,
		"/s/a.txt?md5=" + secureHash(future+"/s/a.txt127.0.0.1 secret") + "&expires=" + future + "x",
		"/s/a.txt?md5=" + secureHash("/s/a.txt127.0.0.1 secret"),
		"/n/b?md5=" + secureHash("/n/b secret"),
		"/n/b?md5=" + secureHash("/n/b secret") + "==",
		"/n/b?md5=" + secureHash("/n/c secret"),
		"/n/b?md5=!!!",
		"/p/" + hex.EncodeToString(old[:]) + "/file.txt?x=1",
		"/p/" + hex.EncodeToString(old[:]) + "/file.txt?x=2",
		"/p/nothash/file.txt",
	}
	for _, r := range reqs {
		p.compare(t, modGet(r, ""))
	}
	r := sendRaw(t, p.wsgate, strings.ReplaceAll(modGet(reqs[0], ""), "{{HOST}}", p.wsgate))
	if want := "[1][" + future + "]"; string(r.Body) != want {
		t.Errorf("wsgate: %q, want %q", r.Body, want)
	}
}

var (
	// uidCookieRandom keeps a new identifier cookie's first five base64
	// characters (the first word: server address or service) and masks
	// the time, start value and sequence that follow.
	uidCookieRandom = regexp.MustCompile(`^(\w+=[A-Za-z0-9+/]{5})[A-Za-z0-9+/]{17}`)
	uidSetRandom    = regexp.MustCompile(`(set=\[\w+=[0-9A-F]{8})[0-9A-F]{24}`)
	cookieDate      = regexp.MustCompile(`expires=[A-Z][a-z]{2}, \d\d-[A-Z][a-z]{2}-\d\d \d\d:\d\d:\d\d GMT`)
)

// uidView is the part of an answer the userid comparison looks at, with
// the made-up parts of new identifiers masked.
func uidView(r rawResponse) string {
	var set []string
	for _, c := range r.Header.Values("Set-Cookie") {
		set = append(set, uidCookieRandom.ReplaceAllString(c, "${1}..."))
	}
	s := fmt.Sprintf("%d\nSet-Cookie: %q\nP3P: %q\n%s", r.Status, set, r.Header.Values("P3P"), r.Body)
	s = uidSetRandom.ReplaceAllString(s, "${1}...")
	return cookieDate.ReplaceAllString(s, "expires=DATE")
}

// TestDiffUserid compares the userid cookie and variables with nginx: a
// new identifier (on and v1), a client's identifier with and without the
// mark, $uid_reset, the log mode, and bad cookies.
func TestDiffUserid(t *testing.T) {
	p := startPair(t, diffConf{HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    userid on;
    userid_flags samesite=lax httponly secure;
    userid_expires 1d;
    userid_domain example.com;
    userid_p3p 'CP="x"';
    userid_mark X;
    location / { return 200 "got=[$uid_got] set=[$uid_set]\n"; }
    location /r/ { set $uid_reset 1; return 200 "got=[$uid_got] set=[$uid_set]\n"; }
    location /v1/ { userid v1; userid_service 77; userid_mark off; userid_flags off; userid_expires max; userid_name sid; userid_path /v1/; return 200 "got=[$uid_got] set=[$uid_set]\n"; }
    location /log/ { userid log; return 200 "got=[$uid_got] set=[$uid_set]\n"; }
    location /off/ { userid off; return 200 "got=[$uid_got] set=[$uid_set]\n"; }
}`})
	cookies := []string{"", "Cookie: a=b; uid=fwAAAWXvp4ksAyMbAwMEAg==\r\n", "Cookie: uid=fwAAAWXvp4ksAyMbAwMEAgX=\r\n",
		"Cookie: uid=short\r\n", "Cookie: uid=!!!!AAAAAAAAAAAAAAAAAAAAAA\r\n", "Cookie: uid=AAAAAAAAAAAAAAAAAAAAAA==\r\n",
		"Cookie: sid=TQAAAOWRFWtvXNNcAQAAAA==\r\n", "Cookie: x=1\r\nCookie: uid=fwAAAWXvp4ksAyMbAwMEAgX=\r\n"}
	for i, h := range cookies {
		for _, path := range []string{"/", "/r/", "/v1/", "/log/", "/off/"} {
			req := modGet(path+"?c="+strconv.Itoa(i), h)
			ng := sendRaw(t, p.nginx, strings.ReplaceAll(req, "{{HOST}}", p.nginx))
			ws := sendRaw(t, p.wsgate, strings.ReplaceAll(req, "{{HOST}}", p.wsgate))
			if nv, wv := uidView(ng), uidView(ws); nv != wv {
				t.Errorf("%s %q:\nnginx:  %s\nwsgate: %s", path, h, nv, wv)
			}
		}
	}
	// Two new identifiers differ, and both start with the server's address.
	a := sendRaw(t, p.wsgate, strings.ReplaceAll(modGet("/", ""), "{{HOST}}", p.wsgate)).Header.Get("Set-Cookie")
	b := sendRaw(t, p.wsgate, strings.ReplaceAll(modGet("/", ""), "{{HOST}}", p.wsgate)).Header.Get("Set-Cookie")
	if a == b || !strings.HasPrefix(a, "uid=fwAAAW") {
		t.Errorf("new identifiers: %q and %q", a, b)
	}
	// Bad cookies are logged as nginx logs them; reading $uid_reset
	// where no `set` gave it a value is no warning.
	logged, err := os.ReadFile(filepath.Join(p.gate.dir, "logs", "error.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`client sent too short userid cookie "short"`, "client sent invalid userid cookie"} {
		if !strings.Contains(string(logged), want) {
			t.Errorf("the error log lacks %q:\n%s", want, logged)
		}
	}
	if strings.Contains(string(logged), "uninitialized") {
		t.Errorf("the error log warns of an uninitialized variable:\n%s", logged)
	}
}

// TestDiffEmptyGif compares empty_gif with nginx: the 43 bytes, the
// headers, HEAD, If-Modified-Since and a POST.
func TestDiffEmptyGif(t *testing.T) {
	p := startPair(t, diffConf{HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    location = /px.gif { empty_gif; }
    location = /before.gif { empty_gif; if_modified_since before; }
}`})
	p.compare(t, modGet("/px.gif", ""))
	p.compare(t, "HEAD /px.gif HTTP/1.1\r\nHost: {{HOST}}\r\nConnection: close\r\n\r\n")
	p.compare(t, modGet("/px.gif", "If-Modified-Since: Mon, 28 Sep 1970 06:00:00 GMT\r\n"))
	p.compare(t, modGet("/px.gif", "If-Modified-Since: Tue, 29 Sep 1970 06:00:00 GMT\r\n"))
	p.compare(t, modGet("/before.gif", "If-Modified-Since: Tue, 29 Sep 1970 06:00:00 GMT\r\n"))
	p.compare(t, "POST /px.gif HTTP/1.1\r\nHost: {{HOST}}\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc")
	r := sendRaw(t, p.wsgate, strings.ReplaceAll(modGet("/px.gif", ""), "{{HOST}}", p.wsgate))
	if len(r.Body) != 43 || !strings.HasPrefix(string(r.Body), "GIF89a") {
		t.Errorf("wsgate sent %d bytes: %q", len(r.Body), r.Body)
	}
}

// mirrorSeen is what the mirror backend saw of one request.
type mirrorSeen struct {
	Method, URI, Orig, Body string
}

// TestDiffMirror sends requests through mirror locations of nginx and
// wsgate and compares what the mirror backend receives (method, URI,
// the original $request_uri, body), the main answers, mirror off and
// two mirrors.
func TestDiffMirror(t *testing.T) {
	seen := make(chan mirrorSeen, 64)
	mb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if strings.HasPrefix(r.URL.Path, "/mirrored") {
			seen <- mirrorSeen{r.Method, r.URL.RequestURI(), r.Header.Get("X-Orig"), string(b)}
		}
		io.WriteString(w, "main answer for "+r.URL.RequestURI())
	}))
	t.Cleanup(mb.Close)
	backend := strings.TrimPrefix(mb.URL, "http://")
	p := startPair(t, diffConf{HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    mirror /m;
    location /app/ { proxy_pass http://` + backend + `/main/; }
    location /two/ { mirror /m; mirror /m2; proxy_pass http://` + backend + `/main/; }
    location /off/ { mirror off; proxy_pass http://` + backend + `/main/; }
    location /post/ { mirror_request_body off; proxy_pass http://` + backend + `/main/; }
    location = /m { internal; proxy_set_header X-Orig $request_uri; proxy_set_header Content-Length ""; proxy_pass http://` + backend + `/mirrored; }
    location = /m2 { internal; proxy_set_header X-Orig $request_uri; proxy_pass http://` + backend + `/mirrored2; }
    location /body/ { mirror /mb; client_body_buffer_size 16; proxy_pass http://` + backend + `/main/; }
    location = /mb { internal; proxy_set_header X-Orig $request_uri; proxy_pass http://` + backend + `/mirrored; }
}`})
	next := func(n int) []mirrorSeen {
		var got []mirrorSeen
		deadline := time.After(slow(10 * time.Second))
		for len(got) < n {
			select {
			case s := <-seen:
				got = append(got, s)
			case <-deadline:
				t.Fatalf("the mirror backend saw %d of %d requests: %v", len(got), n, got)
			}
		}
		return got
	}
	for _, req := range []string{
		modGet("/app/x?a=1", ""),
		"DELETE /app/y HTTP/1.1\r\nHost: {{HOST}}\r\nConnection: close\r\n\r\n",
		"POST /post/z?q HTTP/1.1\r\nHost: {{HOST}}\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbody",
		"POST /body/small HTTP/1.1\r\nHost: {{HOST}}\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbody",
		"POST /body/large HTTP/1.1\r\nHost: {{HOST}}\r\nContent-Length: 40\r\nConnection: close\r\n\r\n" + strings.Repeat("0123456789", 4),
		"POST /body/chunked HTTP/1.1\r\nHost: {{HOST}}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
	} {
		// compare sends the request to each server: the mirror backend
		// hears one copy from each, and the two must be the same.
		p.compare(t, req)
		got := next(2)
		if got[0] != got[1] {
			t.Errorf("%s: nginx and wsgate mirrored differently:\n  %+v\n  %+v", firstLine(req), got[0], got[1])
		}
		if got[0].Orig == "" || strings.Contains(req, "/body/") && got[0].Body == "" {
			t.Errorf("%s: no $request_uri or body in the mirror: %+v", firstLine(req), got[0])
		}
	}
	// mirror off sends nothing: the next requests the backend hears are
	// those of a later request.
	p.compare(t, modGet("/off/none", ""))
	p.compare(t, modGet("/app/marker", ""))
	for _, s := range next(2) {
		if s.Orig != "/app/marker" {
			t.Errorf("mirror off mirrored: %+v", s)
		}
	}
	// Two mirrors each see the request once.
	sendRaw(t, p.wsgate, strings.ReplaceAll(modGet("/two/k", ""), "{{HOST}}", p.wsgate))
	got := map[string]bool{}
	for len(got) < 2 {
		select {
		case s := <-seen:
			got[s.URI] = true
		case <-time.After(slow(10 * time.Second)):
			t.Fatalf("wsgate's two mirrors: saw %v", got)
		}
	}
	if !got["/mirrored"] || !got["/mirrored2"] {
		t.Errorf("wsgate's two mirrors: %v", got)
	}
}

// TestDiffCharset compares the charset filter's Content-Type with
// nginx's: files of listed and unlisted types, return bodies, redirects,
// error pages, proxied answers with and without a charset, charset_types
// *, charset off and a matching source_charset.
func TestDiffCharset(t *testing.T) {
	root := t.TempDir()
	for name, body := range map[string]string{"a.html": "<p>hi</p>", "a.json": "{}", "a.txt": "txt"} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bk := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/koi":
			w.Header().Set("Content-Type", "text/html; charset=koi8-r")
		default:
			w.Header().Set("Content-Type", "text/html")
		}
		io.WriteString(w, "proxied")
	}))
	t.Cleanup(bk.Close)
	backend := strings.TrimPrefix(bk.URL, "http://")
	p := startPair(t, diffConf{Root: root, HTTP: `
types { text/html html; text/plain txt; application/json json; }
server {
    listen 127.0.0.1:{{PORT}};
    root {{ROOT}};
    charset utf-8;
    location /same/ { alias {{ROOT}}/; source_charset utf-8; }
    location /ret { return 200 "r"; }
    location /redir { return 301 /x; }
    location /p/ { proxy_pass http://` + backend + `/; }
    location /po/ { override_charset on; proxy_pass http://` + backend + `/; }
    location /all/ { alias {{ROOT}}/; charset_types *; }
    location /json/ { alias {{ROOT}}/; charset_types application/json; }
    location /off/ { alias {{ROOT}}/; charset off; }
    location /win/ { alias {{ROOT}}/; charset windows-1251; }
    location /var/ { alias {{ROOT}}/; charset $arg_cs; }
}`})
	for _, path := range []string{"/a.html", "/a.json", "/a.txt", "/same/a.html", "/ret", "/redir", "/missing",
		"/p/plain", "/p/koi", "/po/koi", "/all/a.json", "/json/a.json", "/json/a.html", "/off/a.html", "/win/a.txt", "/var/a.html?cs=koi8-r"} {
		p.compare(t, modGet(path, ""))
	}
	r := sendRaw(t, p.wsgate, strings.ReplaceAll(modGet("/a.html", ""), "{{HOST}}", p.wsgate))
	if ct := r.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("wsgate: Content-Type %q", ct)
	}
}

// TestDiffSubFilter compares sub_filter's bodies and headers with nginx:
// static files, return bodies, proxied answers (one split so a match
// spans two writes), once and everywhere, several strings, case,
// variables, types, sub_filter_last_modified and gzip after it.
func TestDiffSubFilter(t *testing.T) {
	root := t.TempDir()
	page := "<html><head></head><body>Hello World, hello world, HELLO WORLD.</body></html>\n"
	for name, body := range map[string]string{"p.html": page, "p.txt": "hello world text\n", "p.css": "hello world css\n"} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bk := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		if r.URL.Path == "/enc" {
			w.Header().Set("Content-Encoding", "identity-x")
		}
		io.WriteString(w, "<p>split hel")
		w.(http.Flusher).Flush()
		io.WriteString(w, "lo world</p></body>")
	}))
	t.Cleanup(bk.Close)
	backend := strings.TrimPrefix(bk.URL, "http://")
	p := startPair(t, diffConf{Root: root, HTTP: `
types { text/html html; text/plain txt; text/css css; }
server {
    listen 127.0.0.1:{{PORT}};
    root {{ROOT}};
    sub_filter "hello world" "bye";
    location /all/ { alias {{ROOT}}/; sub_filter_once off; }
    location /multi/ { alias {{ROOT}}/; sub_filter_once off; sub_filter "world" "earth"; sub_filter "</body>" "<script>x</script></body>"; sub_filter "$arg_f" "[$arg_t]"; }
    location /types/ { alias {{ROOT}}/; sub_filter_types text/plain; }
    location /anytype/ { alias {{ROOT}}/; sub_filter_types *; }
    location /lm/ { alias {{ROOT}}/; sub_filter_last_modified on; }
    location /gz/ { alias {{ROOT}}/; gzip on; gzip_min_length 1; sub_filter_once off; }
    location /ret { sub_filter_once off; default_type text/html; return 200 "hello world and Hello World"; }
    location /p/ { sub_filter_once off; sub_filter "</body>" "<!--x--></body>"; proxy_pass http://` + backend + `/; }
    location /enc/ { proxy_pass http://` + backend + `/enc; }
}`})
	for _, path := range []string{"/p.html", "/p.txt", "/all/p.html", "/multi/p.html?f=HEAD&t=h", "/multi/p.html", "/types/p.txt",
		"/types/p.css", "/anytype/p.css", "/lm/p.html", "/ret", "/p/x", "/enc/"} {
		p.compare(t, modGet(path, ""))
	}
	p.compare(t, modGet("/gz/p.html", "Accept-Encoding: gzip\r\n"))
	p.compare(t, "HEAD /all/p.html HTTP/1.1\r\nHost: {{HOST}}\r\nConnection: close\r\n\r\n")
	p.compare(t, modGet("/all/p.html", "Range: bytes=0-9\r\n"))
	p.compare(t, modGet("/p.txt", "Range: bytes=0-4\r\n"))
	r := sendRaw(t, p.wsgate, strings.ReplaceAll(modGet("/all/p.html", ""), "{{HOST}}", p.wsgate))
	if want := "<html><head></head><body>bye, bye, bye.</body></html>\n"; string(r.Body) != want {
		t.Errorf("wsgate: %q, want %q", r.Body, want)
	}
}
