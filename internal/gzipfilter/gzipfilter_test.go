package gzipfilter

import (
	"bytes"
	"compress/gzip"
	"io"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/regex"
)

func on() *Conf {
	c := Default()
	c.On = true
	return &c
}

func TestAcceptEncoding(t *testing.T) {
	for ae, want := range map[string]bool{
		"gzip": true, "gzip, deflate": true, "deflate, gzip": true, "GZIP": true, "deflate,gzip": true,
		"gzip;q=0": false, "gzip; q=0.000": false, "gzip;q=0.5": true, "gzip;q=1": true, "gzip;q=1.0": true,
		"xgzip": false, "gzipx": false, "br": false, "deflate, gzip;q=0": false, "gzip;q=2": false,
		"x-gzip": false, "gzip ;q=0.1": true, "gzip;level=1": false, "gzip;q=0.0001": false,
	} {
		r := &Request{Header: http1.Header{{Name: "Accept-Encoding", Value: ae}}, Major: 1, Minor: 1}
		if got := Accepts(on(), r, nil); got != want {
			t.Errorf("Accept-Encoding %q: %v, want %v", ae, got, want)
		}
	}
}

func TestMSIE6(t *testing.T) {
	for ua, want := range map[string]bool{
		"Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)":      true,
		"Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)": false,
		"Mozilla/4.0 (compatible; MSIE 5.5; Windows 98)":          true,
		"Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.0)":      false,
		"Opera/9.0 (compatible; MSIE 6.0; Windows NT 5.1)":        false,
		"MSIE 6.":     false, // too short, as nginx
		"Mozilla/5.0": false,
	} {
		if got := msie6(ua); got != want {
			t.Errorf("%q: %v, want %v", ua, got, want)
		}
	}
}

func TestEligible(t *testing.T) {
	c := on()
	html := http1.Header{{Name: "Content-Type", Value: "text/html; charset=utf-8"}}
	cases := []struct {
		name   string
		c      *Conf
		status int
		h      http1.Header
		length int64
		want   bool
	}{
		{"200 html", c, 200, html, 100, true},
		{"unknown length", c, 200, html, -1, true},
		{"short", c, 200, html, 19, false},
		{"404", c, 404, html, 100, true},
		{"403", c, 403, html, 100, true},
		{"201", c, 201, html, 100, false},
		{"206", c, 206, html, 100, false},
		{"101", c, 101, html, -1, false},
		{"encoded", c, 200, append(html, http1.Field{Name: "Content-Encoding", Value: "br"}), 100, false},
		{"css", c, 200, http1.Header{{Name: "Content-Type", Value: "text/css"}}, 100, false},
		{"off", &Conf{}, 200, html, 100, false},
		{"any without type", &Conf{On: true, AnyType: true}, 200, nil, 100, true},
	}
	for _, tc := range cases {
		if got := Eligible(tc.c, tc.status, tc.h, tc.length); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestAcceptsRules(t *testing.T) {
	req := func(h ...string) *Request {
		r := &Request{Header: http1.Header{{Name: "Accept-Encoding", Value: "gzip"}}, Major: 1, Minor: 1}
		for i := 0; i+1 < len(h); i += 2 {
			r.Header = append(r.Header, http1.Field{Name: h[i], Value: h[i+1]})
		}
		return r
	}
	c := on()
	if Accepts(c, &Request{Header: req().Header, Major: 1, Minor: 0}, nil) {
		t.Error("HTTP/1.0 accepted under gzip_http_version 1.1")
	}
	if Accepts(c, req("Via", "1.1 x"), nil) {
		t.Error("proxied request accepted under gzip_proxied off")
	}
	bot, err := regex.Compile("bot", true)
	if err != nil {
		t.Fatal(err)
	}
	c.Disable = []*regex.Regexp{bot}
	if Accepts(c, req("User-Agent", "SomeBOT/1"), nil) || !Accepts(c, req("User-Agent", "browser"), nil) {
		t.Error("gzip_disable")
	}
	c.Proxied = ProxiedExpired | ProxiedPrivate
	past := http1.Header{{Name: "Expires", Value: "Thu, 01 Jan 1970 00:00:01 GMT"}}
	private := http1.Header{{Name: "Cache-Control", Value: "no-cache, private"}}
	public := http1.Header{{Name: "Cache-Control", Value: "public"}}
	if !Accepts(c, req("Via", "x"), past) || !Accepts(c, req("Via", "x"), private) || Accepts(c, req("Via", "x"), public) {
		t.Error("gzip_proxied expired private")
	}
	c.Proxied = ProxiedNoETag
	if Accepts(c, req("Via", "x"), http1.Header{{Name: "ETag", Value: `"a"`}}) || !Accepts(c, req("Via", "x"), nil) {
		t.Error("gzip_proxied no_etag")
	}
	c.Proxied = ProxiedAuth
	if !Accepts(c, req("Via", "x", "Authorization", "Basic x"), nil) || Accepts(c, req("Via", "x"), public) {
		t.Error("gzip_proxied auth")
	}
}

func TestHeaders(t *testing.T) {
	h := Headers(http1.Header{{Name: "Content-Length", Value: "5"}, {Name: "ETag", Value: `"x"`}, {Name: "Accept-Ranges", Value: "bytes"}, {Name: "X", Value: "y"}})
	want := http1.Header{{Name: "ETag", Value: `W/"x"`}, {Name: "X", Value: "y"}, {Name: "Content-Encoding", Value: "gzip"}}
	if len(h) != len(want) {
		t.Fatalf("%v, want %v", h, want)
	}
	for i := range h {
		if h[i] != want[i] {
			t.Fatalf("%v, want %v", h, want)
		}
	}
	if h := Headers(http1.Header{{Name: "ETag", Value: "unquoted"}}); h.Has("ETag") {
		t.Error("an unquoted ETag is kept")
	}
	if h := Headers(http1.Header{{Name: "ETag", Value: `W/"w"`}}); h.Get("ETag") != `W/"w"` {
		t.Error("a weak ETag changed")
	}
}

func TestWriterAndRatio(t *testing.T) {
	var out bytes.Buffer
	z := NewWriter(&out, 6)
	text := strings.Repeat("ratio ", 1000)
	if n, err := z.ReadFrom(strings.NewReader(text[:100])); n != 100 || err != nil {
		t.Fatalf("ReadFrom: %d %v", n, err)
	}
	z.WriteString(text[100:])
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	if z.In() != int64(len(text)) || z.Out() != int64(out.Len()) {
		t.Fatalf("in %d out %d, buffer %d", z.In(), z.Out(), out.Len())
	}
	zr, err := gzip.NewReader(&out)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(zr)
	if string(b) != text {
		t.Fatal("round trip differs")
	}
	for _, c := range []struct {
		in, out int64
		want    string
	}{{100, 50, "2.00"}, {1000, 300, "3.33"}, {1000, 301, "3.32"}, {2, 3, "0.67"}, {1999, 1000, "2.00"}, {0, 10, ""}, {10, 0, ""}} {
		if got := Ratio(c.in, c.out); got != c.want {
			t.Errorf("Ratio(%d, %d) = %q, want %q", c.in, c.out, got, c.want)
		}
	}
}
