package http1

import (
	"bufio"
	"errors"
	"strings"
	"testing"
)

// TestCleanPath checks $uri against nginx's ngx_http_parse_complex_uri
// (merge_slashes on) and the escapes wsgate refuses on top of it.
func TestCleanPath(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"/", "/"},
		{"/ws", "/ws"},
		{"/a//b", "/a/b"},
		{"/a/./b", "/a/b"},
		{"/a/../b", "/b"},
		{"/a/b/..", "/a/"},
		{"/a/b/.", "/a/b/"},
		{"/a/b//", "/a/b/"},
		{"/a/b/", "/a/b/"},
		{"/a/b%2f", "/a/b/"},
		{"/a/b%2F%2e", "/a/b/"},
		{"/%61dmin", "/admin"},
		{"/ws/%2e%2e/admin", "/admin"},
		{"/a%2Fb", "/a/b"},
		{"/a/..b/...", "/a/..b/..."},
		{"/%25/%3f/%23", "/%/?/#"},
		{"/a%09b", "/a\tb"},
		// Refused: 400.
		{"/..", ""},
		{"/../../etc/passwd", ""},
		{"/a/../..", ""},
		{"/%2e%2e/x", ""},
		{"/bad%zz", ""},
		{"/bad%2", ""},
		{"/bad%", ""},
		{"/nul%00", ""},
		{"/cr%0d", ""},
		{"/lf%0A", ""},
	} {
		got, ok := cleanPath(tt.in, false)
		if tt.want == "" {
			if ok {
				t.Errorf("cleanPath(%q) = %q, want refused", tt.in, got)
			}
			continue
		}
		if !ok || got != tt.want {
			t.Errorf("cleanPath(%q) = %q, %v; want %q", tt.in, got, ok, tt.want)
		}
	}
}

// TestRequestURIForms: $request_uri is origin form whatever the form
// of the target; Target keeps it as sent; an escaped NUL is a 400.
func TestRequestURIForms(t *testing.T) {
	for _, tt := range []struct{ line, target, requestURI, uri, host string }{
		{"GET /a/./b?x HTTP/1.1", "/a/./b?x", "/a/./b?x", "/a/b", "h"},
		{"GET http://Evil.Example:99/r%2fx?q=1 HTTP/1.1", "http://Evil.Example:99/r%2fx?q=1", "/r%2fx?q=1", "/r/x", "evil.example"},
		{"GET http://evil.example HTTP/1.1", "http://evil.example", "/", "/", "evil.example"},
		{"OPTIONS * HTTP/1.1", "*", "*", "*", "h"},
	} {
		r, err := ReadRequest(bufio.NewReader(strings.NewReader(tt.line+"\r\nHost: h\r\n\r\n")), Limits{})
		if err != nil {
			t.Errorf("%q: %v", tt.line, err)
			continue
		}
		if r.Target != tt.target || r.RequestURI != tt.requestURI || r.URI != tt.uri || r.HostName != tt.host {
			t.Errorf("%q: target %q request_uri %q uri %q host %q", tt.line, r.Target, r.RequestURI, r.URI, r.HostName)
		}
	}
	for _, line := range []string{"GET /a%00b HTTP/1.1", "GET http://h/a%00 HTTP/1.1", "GET /a%0d%0aX:y HTTP/1.1", "GET /../x HTTP/1.1"} {
		_, err := ReadRequest(bufio.NewReader(strings.NewReader(line+"\r\nHost: h\r\n\r\n")), Limits{})
		var se *StatusError
		if !errors.As(err, &se) || se.Status != 400 {
			t.Errorf("%q: %v, want 400", line, err)
		}
	}
}

// FuzzCleanPath: for a path the request line admits, $uri is absolute, has no empty, "." or ".." segment
// and no NUL, CR or LF, ends in '/' whenever the path did (or ended in a
// dot segment), and cleaning it again changes nothing.
func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"/", "/a//b/./c/../d/", "/a%2f%2E%2e/b", "/x.secret%2f", "/%25%32%66", "/a/b/.."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if p == "" || p[0] != '/' || !validURI(p) {
			return // the request line's parser refuses it before
		}
		uri, ok := cleanPath(p, false)
		if !ok {
			return
		}
		if uri[0] != '/' || strings.ContainsAny(uri, "\x00\r\n") {
			t.Fatalf("%q -> %q", p, uri)
		}
		for _, seg := range strings.Split(uri[1:], "/")[:strings.Count(uri[1:], "/")] {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("%q -> %q: segment %q", p, uri, seg)
			}
		}
		if strings.HasSuffix(p, "/") && !strings.HasSuffix(uri, "/") {
			t.Fatalf("%q -> %q lost its trailing slash", p, uri)
		}
		if !strings.Contains(uri, "%") {
			if again, ok := cleanPath(uri, false); !ok || again != uri {
				t.Fatalf("%q -> %q -> %q, %v", p, uri, again, ok)
			}
		}
	})
}

// TestCleanPathKeepSlashes checks $uri with merge_slashes off against
// what nginx 1.22 answers for the same paths.
func TestCleanPathKeepSlashes(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"//a//b", "//a//b"},
		{"/a//../b", "/a/b"},
		{"/a/b//..", "/a/b/"},
		{"/a//./b", "/a//b"},
		{"//..", "/"},
		{"/a%2F%2Fb", "/a//b"},
		{"/a/%2E%2E//b", "//b"},
		{"/a///", "/a///"},
		{"/./", "/"},
		{"/a/..//b", "//b"},
		{"/a/b/..//../c", "/a/c"},
		{"///../x", "//x"},
		{"/a//.", "/a//"},
		{"/a//..", "/a/"},
		{"//a/../..", "/"},
		{"/a/.//", "/a//"},
		{"/%2F%2F..", "//"},
		{"/..", ""},
		{"/a/../..", ""},
	} {
		got, ok := cleanPath(tt.in, true)
		if tt.want == "" {
			if ok {
				t.Errorf("cleanPath(%q, keep) = %q, want refused", tt.in, got)
			}
			continue
		}
		if !ok || got != tt.want {
			t.Errorf("cleanPath(%q, keep) = %q, %v; want %q", tt.in, got, ok, tt.want)
		}
	}
	r, err := ReadRequest(bufio.NewReader(strings.NewReader("GET //a//..//b HTTP/1.1\r\nHost: h\r\n\r\n")), Limits{KeepSlashes: true})
	if err != nil || r.URI != "//a//b" {
		t.Fatalf("ReadRequest with KeepSlashes: %v %q", err, r.URI)
	}
}
