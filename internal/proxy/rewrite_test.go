package proxy

import (
	"testing"

	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/vars"
)

// TestRewriteRedirects: the implicit default, prefix rules, regexes with
// captures, Refresh's url=, and off.
func TestRewriteRedirects(t *testing.T) {
	for _, tt := range []struct{ conf, name, in, want string }{
		{"", "Location", "http://127.0.0.1:1/app/x", "/ws/x"},
		{"", "Location", "http://other/app/x", "http://other/app/x"},
		{"", "Refresh", "3; URL=http://127.0.0.1:1/app/r", "3; URL=/ws/r"},
		{"proxy_redirect off;", "Location", "http://127.0.0.1:1/app/x", "http://127.0.0.1:1/app/x"},
		{"proxy_redirect http://a/ /b/;", "Location", "http://a/x", "/b/x"},
		{"proxy_redirect http://a/ /b/;", "Location", "http://127.0.0.1:1/app/x", "http://127.0.0.1:1/app/x"},
		{`proxy_redirect ~^http://(\w+)/(.*)$ /$1/$2;`, "Location", "http://h/p/q", "/h/p/q"},
		{`proxy_redirect ~*^HTTP://h/ /ci;`, "Location", "http://h/p", "/ci"},
	} {
		cfg, loc := location(t, "http { server { location /ws/ { proxy_pass http://127.0.0.1:1/app/; "+tt.conf+" } } }")
		vc := &vars.Ctx{}
		vc.Reset(cfg.Vars)
		h := http1.Header{{Name: tt.name, Value: tt.in}}
		RewriteRedirects(h, loc.Conf, loc, vc)
		if h[0].Value != tt.want {
			t.Errorf("%s %s: %q, want %q", tt.conf, tt.in, h[0].Value, tt.want)
		}
	}
}

// TestRewriteCookies: domain, path and flags rules on Set-Cookie; a
// cookie no rule changes is left byte for byte.
func TestRewriteCookies(t *testing.T) {
	cfg, loc := location(t, `http { server { location / { proxy_pass http://127.0.0.1:1;
        proxy_cookie_domain back.example front.example; proxy_cookie_path /app/ /;
        proxy_cookie_flags s secure samesite=lax; proxy_cookie_flags n nosecure nohttponly; } } }`)
	vc := &vars.Ctx{}
	vc.Reset(cfg.Vars)
	for in, want := range map[string]string{
		"a=1; Domain=.BACK.example; Path=/app/x": "a=1; Domain=.front.example; Path=/x",
		"a=1;path=/other":                        "a=1;path=/other",
		"s=1; SameSite=None":                     "s=1; SameSite=Lax; Secure",
		"n=1; Secure; HttpOnly; Max-Age=5":       "n=1; Max-Age=5",
	} {
		h := http1.Header{{Name: "Set-Cookie", Value: in}}
		RewriteCookies(h, &loc.Conf.ProxyRest, vc)
		if h[0].Value != want {
			t.Errorf("%q: %q, want %q", in, h[0].Value, want)
		}
	}
}
