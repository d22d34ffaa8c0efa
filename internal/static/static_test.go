package static

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/vars"
)

var stamp = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// tree writes files (name to content; a name ending in '/' is a folder)
// under a new folder with a fixed modification time.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, body := range files {
		p := filepath.Join(root, name)
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	filepath.Walk(root, func(p string, _ os.FileInfo, _ error) error { return os.Chtimes(p, stamp, stamp) })
	return root
}

type fixture struct {
	tab   *vars.Table
	files config.Files
}

func newFixture(root string) *fixture {
	tab := vars.NewTable()
	return &fixture{tab: tab, files: config.Files{
		Root: tab.MustCompile(root), Types: map[string]string{"txt": "text/plain", "html": "text/html"},
		ETag: true, MaxRanges: -1, AutoindexFormat: "html", AutoindexExactSize: true, LogNotFound: true,
	}}
}

func (f *fixture) req(method, uri string, hdr ...string) *Request {
	vc := new(vars.Ctx)
	vc.Reset(f.tab)
	var h http1.Header
	for i := 0; i+1 < len(hdr); i += 2 {
		h = append(h, http1.Field{Name: hdr[i], Value: hdr[i+1]})
	}
	uri, args, _ := strings.Cut(uri, "?")
	return &Request{Method: method, URI: uri, Args: args, Header: h, DefaultType: "application/octet-stream", Files: &f.files, Vars: vc}
}

// serve runs Serve or Dir as the server does and returns the answer and
// its body.
func (f *fixture) serve(t *testing.T, r *Request) (*Answer, string) {
	t.Helper()
	if strings.HasSuffix(r.URI, "/") {
		path, root := Map(r.Files, r.Vars, r.URI)
		uri, a := Dir(r, []string{"index.html"}, path, root)
		if a != nil {
			return a, body(t, a)
		}
		r.URI = uri
	}
	path, root := Map(r.Files, r.Vars, r.URI)
	a := Serve(r, path, root)
	return a, body(t, a)
}

func body(t *testing.T, a *Answer) string {
	t.Helper()
	defer a.Close()
	if a.Body == nil {
		return ""
	}
	var b bytes.Buffer
	n, err := a.Body.WriteTo(&b)
	if err != nil || (a.Length >= 0 && n != a.Length) {
		t.Fatalf("body: %d bytes of %d, %v", n, a.Length, err)
	}
	return b.String()
}

func TestMap(t *testing.T) {
	tab := vars.NewTable()
	cases := []struct {
		f         config.Files
		uri, path string
		root      string
	}{
		{config.Files{Root: tab.MustCompile("/srv")}, "/a/b", "/srv/a/b", "/srv"},
		{config.Files{Root: tab.MustCompile("www"), Prefix: "/pre/"}, "/a", "/pre/www/a", "/pre/www"},
		{config.Files{Root: tab.MustCompile("/data/"), Alias: true, AliasLen: len("/img/")}, "/img/x.png", "/data/x.png", "/data/"},
		{config.Files{Root: tab.MustCompile("/data/one"), Alias: true, AliasLen: len("/one")}, "/one", "/data/one", "/data/one"},
		{config.Files{Root: tab.MustCompile("/data/$1"), Alias: true, AliasAll: true}, "/x/a/b.txt", "/data/a/b.txt", "/data/a/b.txt"},
	}
	vc := new(vars.Ctx)
	vc.Reset(tab)
	vc.Captures = []string{"/x/a/b.txt", "a/b.txt"}
	for _, c := range cases {
		path, root := Map(&c.f, vc, c.uri)
		if path != c.path || root != c.root {
			t.Errorf("%q: %q %q, want %q %q", c.uri, path, root, c.path, c.root)
		}
	}
}

func TestContentTypeFromURIExtension(t *testing.T) {
	f := &config.Files{Types: map[string]string{"css": "text/css", "gz": "application/gzip"}}
	for uri, want := range map[string]string{
		"/a.css": "text/css", "/A.CSS": "text/css", "/a.tar.gz": "application/gzip", "/.css": "dflt",
		"/dir.css/x": "dflt", "/x.": "dflt", "/noext": "dflt", "/a/.b.css": "text/css",
	} {
		if got := ContentType(f, uri, "dflt"); got != want {
			t.Errorf("%s: %q, want %q", uri, got, want)
		}
	}
}

func TestServeFile(t *testing.T) {
	f := newFixture(tree(t, map[string]string{"a.txt": "hello", "d/": ""}))
	a, b := f.serve(t, f.req("GET", "/a.txt"))
	if a.Status != 200 || b != "hello" || a.Length != 5 {
		t.Fatalf("%d %q %d", a.Status, b, a.Length)
	}
	want := http1.Header{{Name: "Content-Type", Value: "text/plain"}, {Name: "Last-Modified", Value: "Fri, 02 Jan 2026 03:04:05 GMT"},
		{Name: "ETag", Value: `"695735a5-5"`}, {Name: "Accept-Ranges", Value: "bytes"}}
	if !equalHeader(a.Header, want) {
		t.Errorf("headers %v, want %v", a.Header, want)
	}
	f.files.ETag = false
	if a, _ := f.serve(t, f.req("GET", "/a.txt")); a.Header.Get("ETag") != "" {
		t.Errorf("etag off still sends %q", a.Header.Get("ETag"))
	}
	for _, c := range []struct {
		method, uri string
		status      int
	}{
		{"HEAD", "/a.txt", 200}, {"POST", "/a.txt", 405}, {"POST", "/none", 404}, {"PUT", "/none", 405},
		{"DELETE", "/d/", 405}, {"POST", "/d/", 403}, {"GET", "/d/", 403}, {"GET", "/none/", 404}, {"GET", "/a.txt/", 404},
		{"GET", "/none", 404}, {"GET", "/a.txt/x", 404},
	} {
		if a, _ := f.serve(t, f.req(c.method, c.uri)); a.Status != c.status {
			t.Errorf("%s %s: %d, want %d", c.method, c.uri, a.Status, c.status)
		}
	}
}

func equalHeader(a, b http1.Header) bool {
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

func TestDirectoryRedirect(t *testing.T) {
	f := newFixture(tree(t, map[string]string{"a dir/": "", "d/": ""}))
	for uri, want := range map[string]string{"/d": "/d/", "/d?x=1": "/d/?x=1", "/a dir": "/a%20dir/"} {
		a, _ := f.serve(t, f.req("GET", uri))
		if a.Status != 301 || a.Header.Get("Location") != want || a.Body != nil {
			t.Errorf("%s: %d %q, want 301 %q", uri, a.Status, a.Header.Get("Location"), want)
		}
	}
}

func TestNotFoundLogged(t *testing.T) {
	root := tree(t, map[string]string{})
	f := newFixture(root)
	a, _ := f.serve(t, f.req("GET", "/none"))
	if len(a.Log) != 1 || a.Log[0].Text != `open() "`+root+`/none" failed (2: No such file or directory)` {
		t.Errorf("log: %+v", a.Log)
	}
	f.files.LogNotFound = false
	if a, _ := f.serve(t, f.req("GET", "/none")); a.Status != 404 || len(a.Log) != 0 {
		t.Errorf("log_not_found off: %d %+v", a.Status, a.Log)
	}
}

// TestFIFONotServed: a FIFO is "not a regular file" (404) and opening it
// does not wait for a writer.
func TestFIFONotServed(t *testing.T) {
	root := tree(t, map[string]string{})
	if err := syscall.Mkfifo(filepath.Join(root, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := newFixture(root)
	a, _ := f.serve(t, f.req("GET", "/pipe"))
	if a.Status != 404 || len(a.Log) != 1 || !strings.Contains(a.Log[0].Text, "is not a regular file") {
		t.Errorf("%d %+v", a.Status, a.Log)
	}
}

func TestUnreadableForbidden(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads any file: permissions cannot refuse it")
	}
	root := tree(t, map[string]string{"a.txt": "x"})
	os.Chmod(filepath.Join(root, "a.txt"), 0)
	f := newFixture(root)
	if a, _ := f.serve(t, f.req("GET", "/a.txt")); a.Status != 403 {
		t.Errorf("%d", a.Status)
	}
}

func TestConditional(t *testing.T) {
	f := newFixture(tree(t, map[string]string{"a.txt": "hello"}))
	const lm, etag = "Fri, 02 Jan 2026 03:04:05 GMT", `"695735a5-5"`
	const later, earlier = "Sat, 03 Jan 2026 00:00:00 GMT", "Thu, 01 Jan 2026 00:00:00 GMT"
	for _, c := range []struct {
		ims    config.IMS
		hdr    []string
		status int
	}{
		{config.IMSExact, []string{"If-Modified-Since", lm}, 304},
		{config.IMSExact, []string{"If-Modified-Since", later}, 200},
		{config.IMSBefore, []string{"If-Modified-Since", later}, 304},
		{config.IMSBefore, []string{"If-Modified-Since", earlier}, 200},
		{config.IMSOff, []string{"If-Modified-Since", lm}, 200},
		{config.IMSExact, []string{"If-None-Match", etag}, 304},
		{config.IMSExact, []string{"If-None-Match", "W/" + etag}, 304},
		{config.IMSExact, []string{"If-None-Match", `"a", ` + etag + ` , "b"`}, 304},
		{config.IMSExact, []string{"If-None-Match", `"a"`}, 200},
		{config.IMSExact, []string{"If-None-Match", etag, "If-Modified-Since", earlier}, 200},
		{config.IMSExact, []string{"If-Match", etag}, 200},
		{config.IMSExact, []string{"If-Match", "W/" + etag}, 412},
		{config.IMSExact, []string{"If-Match", `"x"`}, 412},
		{config.IMSExact, []string{"If-Unmodified-Since", lm}, 200},
		{config.IMSExact, []string{"If-Unmodified-Since", earlier}, 412},
		{config.IMSExact, []string{"If-Unmodified-Since", "junk"}, 412},
	} {
		f.files.IfModifiedSince = c.ims
		a, b := f.serve(t, f.req("GET", "/a.txt", c.hdr...))
		if a.Status != c.status {
			t.Errorf("%v %q: %d, want %d", c.ims, c.hdr, a.Status, c.status)
		}
		if a.Status == 304 && (b != "" || a.Header.Get("Content-Type") != "" || a.Header.Get("ETag") != etag) {
			t.Errorf("304 carries %q and %v", b, a.Header)
		}
	}
}

func TestParseRanges(t *testing.T) {
	for _, c := range []struct {
		spec   string
		max    int
		status int
		ranges string
	}{
		{"0-4", -1, 206, "0-5"}, {"5-", -1, 206, "5-20"}, {"-3", -1, 206, "17-20"}, {"15-100", -1, 206, "15-20"},
		{"-100", -1, 206, "0-20"}, {"20-", -1, 416, ""}, {"5-2", -1, 416, ""}, {"abc", -1, 416, ""}, {"-0", -1, 416, ""},
		{"0-1,4-5", -1, 206, "0-2 4-6"}, {"0-1,4-5", 1, 200, ""}, {"0-1,4-5", 2, 206, "0-2 4-6"},
		{"0-10,5-15", -1, 200, ""}, {" 1 - 2 ", -1, 206, "1-3"}, {"1-2,", -1, 416, ""},
		{"99999999999999999999-", -1, 416, ""}, {"0-99999999999999999999", -1, 416, ""},
	} {
		rs, status := parseRanges(c.spec, 20, c.max)
		var got []string
		for _, r := range rs {
			got = append(got, itoa(r.start)+"-"+itoa(r.end))
		}
		if status != c.status || strings.Join(got, " ") != c.ranges {
			t.Errorf("%q max %d: %d %v, want %d %q", c.spec, c.max, status, got, c.status, c.ranges)
		}
	}
	if _, status := parseRanges("0-0", 0, -1); status != 200 {
		t.Errorf("an empty file: %d, want the whole (empty) file", status)
	}
}

func TestRangeAnswers(t *testing.T) {
	f := newFixture(tree(t, map[string]string{"a.txt": "0123456789"}))
	a, b := f.serve(t, f.req("GET", "/a.txt", "Range", "bytes=2-4"))
	if a.Status != 206 || b != "234" || a.Header.Get("Content-Range") != "bytes 2-4/10" || a.Header.Get("Accept-Ranges") != "" {
		t.Errorf("single: %d %q %v", a.Status, b, a.Header)
	}
	a, b = f.serve(t, f.req("GET", "/a.txt", "Range", "bytes=0-0,-2"))
	ct := a.Header.Get("Content-Type")
	boundary, ok := strings.CutPrefix(ct, "multipart/byteranges; boundary=")
	if a.Status != 206 || !ok || len(boundary) != 20 {
		t.Fatalf("multi: %d %q", a.Status, ct)
	}
	want := "\r\n--" + boundary + "\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-0/10\r\n\r\n0" +
		"\r\n--" + boundary + "\r\nContent-Type: text/plain\r\nContent-Range: bytes 8-9/10\r\n\r\n89" +
		"\r\n--" + boundary + "--\r\n"
	if b != want || a.Length != int64(len(want)) {
		t.Errorf("multipart body %q (length %d), want %q", b, a.Length, want)
	}
	a, _ = f.serve(t, f.req("GET", "/a.txt", "Range", "bytes=10-"))
	if a.Status != 416 || a.Header.Get("Content-Range") != "bytes */10" || a.Body != nil {
		t.Errorf("unsatisfiable: %d %v", a.Status, a.Header)
	}
	a, b = f.serve(t, f.req("GET", "/a.txt", "Range", "bytes=1-1", "If-Range", `"stale"`))
	if a.Status != 200 || b != "0123456789" {
		t.Errorf("stale If-Range: %d %q", a.Status, b)
	}
	f.files.MaxRanges = 0
	a, _ = f.serve(t, f.req("GET", "/a.txt", "Range", "bytes=1-1"))
	if a.Status != 200 || a.Header.Get("Accept-Ranges") != "" {
		t.Errorf("max_ranges 0: %d %v", a.Status, a.Header)
	}
}

// TestIndexAndAutoindex: an index file is named for the caller to serve;
// without one, autoindex lists the folder byte for byte as nginx.
func TestIndexAndAutoindex(t *testing.T) {
	root := tree(t, map[string]string{"with/index.html": "i", "list/b.txt": "bb", "list/a&b.txt": "x",
		"list/sub/": "", "list/.dot": "", "list/" + strings.Repeat("n", 55): strings.Repeat("z", 20000)})
	f := newFixture(root)
	path, r := Map(&f.files, f.req("GET", "/").Vars, "/with/")
	if uri, a := Dir(f.req("GET", "/with/"), []string{"none.html", "index.html"}, path, r); uri != "/with/index.html" || a != nil {
		t.Errorf("index: %q %v", uri, a)
	}
	if uri, _ := Dir(f.req("GET", "/with/"), []string{"none.html", "/fallback.html"}, path, r); uri != "/fallback.html" {
		t.Errorf("absolute index: %q", uri)
	}
	path, r = Map(&f.files, f.req("GET", "/").Vars, "/list/")
	if _, a := Dir(f.req("GET", "/list/"), nil, path, r); a.Status != 403 || !strings.Contains(a.Log[0].Text, "directory index of") {
		t.Errorf("autoindex off: %d %v", a.Status, a.Log)
	}
	f.files.Autoindex = true
	_, a := Dir(f.req("GET", "/list/"), nil, path, r)
	got := body(t, a)
	long := strings.Repeat("n", 55)
	want := "<html>\r\n<head><title>Index of /list/</title></head>\r\n<body>\r\n<h1>Index of /list/</h1><hr><pre><a href=\"../\">../</a>\r\n" +
		"<a href=\"sub/\">sub/</a>" + strings.Repeat(" ", 46) + " 02-Jan-2026 03:04                   -\r\n" +
		"<a href=\"a%26b.txt\">a&amp;b.txt</a>" + strings.Repeat(" ", 43) + " 02-Jan-2026 03:04                   1\r\n" +
		"<a href=\"b.txt\">b.txt</a>" + strings.Repeat(" ", 45) + " 02-Jan-2026 03:04                   2\r\n" +
		"<a href=\"" + long + "\">" + long[:47] + "..&gt;</a> 02-Jan-2026 03:04               20000\r\n" +
		"</pre><hr></body>\r\n</html>\r\n"
	if a.Status != 200 || got != want || a.Length != -1 {
		t.Errorf("listing %d:\n%s\nwant:\n%s", a.Status, got, want)
	}
	f.files.AutoindexFormat = "json"
	_, a = Dir(f.req("GET", "/list/"), nil, path, r)
	if got := body(t, a); !strings.HasPrefix(got, "[\r\n{ \"name\":\"sub\", \"type\":\"directory\", \"mtime\":\"Fri, 02 Jan 2026 03:04:05 GMT\" },\r\n") || !strings.HasSuffix(got, "\"size\":20000 }\r\n]") {
		t.Errorf("json: %q", got)
	}
}

func TestSizeColumn(t *testing.T) {
	for n, want := range map[int64]string{0: "      0", 9999: "   9999", 10000: "    10K", 10752: "    11K",
		1 << 20: "     1M", 3<<20 + 1<<19: "     4M", 5 << 30: "     5G"} {
		if got := sizeColumn(entry{size: n}, false); got != want {
			t.Errorf("%d: %q, want %q", n, got, want)
		}
	}
}

// TestDisableSymlinks: "on" refuses a symlink anywhere on the path with
// ELOOP (403) or, for a folder, ENOTDIR (404), as nginx; from= leaves the part before it unchecked, if_not_owner
// follows a link only to a file of the link's owner.
func TestDisableSymlinks(t *testing.T) {
	root := tree(t, map[string]string{"real/a.txt": "a", "other.txt": "o"})
	os.Symlink("real", filepath.Join(root, "linkdir"))
	os.Symlink("real/a.txt", filepath.Join(root, "link.txt"))
	os.Symlink("other.txt", filepath.Join(root, "link-other"))
	f := newFixture(root)
	check := func(mode config.Symlinks, from, uri string, status int) {
		t.Helper()
		f.files.DisableSymlinks, f.files.SymlinksFrom = mode, nil
		if from != "" {
			f.files.SymlinksFrom = f.tab.MustCompile(from)
		}
		a, _ := f.serve(t, f.req("GET", uri))
		if a.Status != status {
			t.Errorf("mode %d from %q %s: %d, want %d (%v)", mode, from, uri, a.Status, status, a.Log)
		}
		if status == 403 && (len(a.Log) != 1 || !strings.HasPrefix(a.Log[0].Text, "openat() ") || !strings.HasSuffix(a.Log[0].Text, "(40: Too many levels of symbolic links)")) {
			t.Errorf("log: %+v", a.Log)
		}
	}
	check(config.SymlinksOff, "", "/link.txt", 200)
	check(config.SymlinksOff, "", "/linkdir/a.txt", 200)
	check(config.SymlinksOn, "", "/link.txt", 403)
	check(config.SymlinksOn, "", "/linkdir/a.txt", 404) // O_DIRECTORY|O_NOFOLLOW: ENOTDIR, as nginx
	check(config.SymlinksOn, "", "/real/a.txt", 200)
	check(config.SymlinksOn, "", "/real/none", 404)
	check(config.SymlinksOn, root+"/linkdir", "/linkdir/a.txt", 200)
	check(config.SymlinksOn, root, "/linkdir/a.txt", 404)
	check(config.SymlinksIfNotOwner, "", "/link.txt", 200)
	if os.Geteuid() == 0 {
		if err := os.Chown(filepath.Join(root, "other.txt"), 65534, 65534); err != nil {
			t.Fatal(err)
		}
		check(config.SymlinksIfNotOwner, "", "/link-other", 403)
	}
}

// TestAliasJoinDotDotRefused: with `location /img { alias /data/img/; }`
// the URI "/img../x" would join to "/data/img/../x", outside the alias;
// it is refused where nginx serves it.
func TestAliasJoinDotDotRefused(t *testing.T) {
	root := tree(t, map[string]string{"data/img/in.txt": "in", "data/secret.txt": "secret", "data/dir/": ""})
	f := newFixture(root + "/data/img/")
	f.files.Alias, f.files.AliasLen = true, len("/img")
	if a, b := f.serve(t, f.req("GET", "/img/in.txt")); a.Status != 200 || b != "in" {
		t.Fatalf("inside the alias: %d %q", a.Status, b)
	}
	for _, uri := range []string{"/img../secret.txt", "/img..", "/img../dir/"} {
		if a, b := f.serve(t, f.req("GET", uri)); a.Status != 403 {
			t.Errorf("%s: %d %q, want 403", uri, a.Status, b)
		}
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	des, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(des)
}

// TestNoDescriptorLeak: every kind of answer releases its descriptors
// once closed, including refused symlinks and conditional answers.
func TestNoDescriptorLeak(t *testing.T) {
	root := tree(t, map[string]string{"a.txt": "0123456789", "d/index.html": "i", "e/": ""})
	os.Symlink("a.txt", filepath.Join(root, "link"))
	f := newFixture(root)
	f.files.Autoindex = true
	before := openFDs(t)
	for i := 0; i < 20; i++ {
		for _, c := range [][]string{
			{"/a.txt"}, {"/a.txt", "Range", "bytes=0-1,3-4"}, {"/a.txt", "Range", "bytes=50-"}, {"/a.txt", "If-None-Match", "*"},
			{"/a.txt", "If-Match", `"x"`}, {"/d/"}, {"/e/"}, {"/d"}, {"/none"}, {"/link"}, {"/link/x"},
		} {
			f.files.DisableSymlinks = config.Symlinks(i % 3)
			f.serve(t, f.req("GET", c[0], c[1:]...))
		}
	}
	if after := openFDs(t); after != before {
		t.Errorf("%d descriptors open before, %d after", before, after)
	}
}
