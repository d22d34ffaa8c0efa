package server

import (
	"net/netip"
	"testing"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/vars"
)

func TestEscapeSet(t *testing.T) {
	for _, tc := range []struct{ in, set, want string }{
		{"plain/path", "#%?", "plain/path"},
		{"a b", "#%?", "a%20b"},
		{"a+b&c", "#%?", "a+b&c"},
		{"a+b&c", "#%&+?", "a%2Bb%26c"},
		{"été", "#%?", "%C3%A9t%C3%A9"},
		{"x?y#z%", "#%?", "x%3Fy%23z%25"},
		{"\r\n", "", "%0D%0A"},
	} {
		if got := escapeSet(tc.in, tc.set); got != tc.want {
			t.Errorf("escapeSet(%q, %q) = %q, want %q", tc.in, tc.set, got, tc.want)
		}
	}
}

func TestHasBuiltinPage(t *testing.T) {
	for code, want := range map[int]bool{301: true, 304: false, 400: true, 404: true, 416: true, 418: false, 429: true, 444: false, 500: true, 503: true, 507: true, 520: false} {
		if hasBuiltinPage(code) != want {
			t.Errorf("hasBuiltinPage(%d) = %v", code, !want)
		}
	}
}

// TestAbsoluteLocation: a Location starting with '/' gets the scheme, the
// request's host (else the local address) and the port unless it is the
// scheme's own, as nginx's header filter with its defaults.
func TestAbsoluteLocation(t *testing.T) {
	lc := &config.LocConf{}
	lc.Files.AbsoluteRedirect, lc.Files.PortInRedirect = true, true
	for _, tc := range []struct {
		scheme, host, local, want string
	}{
		{"http", "example.com", "127.0.0.1:80", "http://example.com/x"},
		{"http", "example.com", "127.0.0.1:8080", "http://example.com:8080/x"},
		{"https", "example.com", "127.0.0.1:443", "https://example.com/x"},
		{"https", "example.com", "127.0.0.1:80", "https://example.com:80/x"},
		{"http", "", "127.0.0.2:80", "http://127.0.0.2/x"},
	} {
		x := &exchange{lc: lc, vc: &vars.Ctx{Scheme: tc.scheme, Host: tc.host, Local: netip.MustParseAddrPort(tc.local)}}
		if got := x.absoluteLocation("/x"); got != tc.want {
			t.Errorf("%+v: %q", tc, got)
		}
	}
	if got := (&exchange{lc: lc, vc: &vars.Ctx{}}).absoluteLocation("http://a/b"); got != "http://a/b" {
		t.Errorf("an absolute Location changed: %q", got)
	}
}
