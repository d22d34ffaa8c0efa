package server

import (
	"net/netip"
	"testing"

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

func TestHostForRedirect(t *testing.T) {
	for _, tc := range []struct {
		scheme, host, name, local, want string
	}{
		{"http", "example.com", "srv", "127.0.0.1:80", "example.com"},
		{"http", "example.com", "srv", "127.0.0.1:8080", "example.com:8080"},
		{"https", "example.com", "srv", "127.0.0.1:443", "example.com"},
		{"https", "example.com", "srv", "127.0.0.1:80", "example.com:80"},
		{"http", "", "srv", "127.0.0.1:80", "srv"},
	} {
		x := &exchange{vc: &vars.Ctx{Scheme: tc.scheme, Host: tc.host, ServerName: tc.name, Local: netip.MustParseAddrPort(tc.local)}}
		if got := x.hostForRedirect(); got != tc.want {
			t.Errorf("%+v: %q", tc, got)
		}
	}
}
