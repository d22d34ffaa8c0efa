package config

import (
	"strings"
	"testing"
	"time"
)

// TestProxyRedirectConfig: proxy_redirect is a list inherited only by
// levels without one; off, default and the rule forms load, and what nginx
// refuses is refused with its message.
func TestProxyRedirectConfig(t *testing.T) {
	cfg, err := load(t, `http {
    proxy_redirect http://a/ /b/;
    server {
        location /i { proxy_pass http://127.0.0.1:1; }
        location /o { proxy_pass http://127.0.0.1:1; proxy_redirect off; }
        location /d { proxy_pass http://127.0.0.1:1/x/; proxy_redirect default; proxy_redirect ~*^http://(.*)$ /$1; }
    }
}`)
	if err != nil {
		t.Fatal(err)
	}
	ps := cfg.HTTP.Servers[0].Locations.Prefixes
	i, o, d := ps[0].Conf.ProxyRest, ps[1].Conf.ProxyRest, ps[2].Conf.ProxyRest
	if !i.RedirectSet || len(i.Redirects) != 1 || i.Redirects[0].Pattern.Raw() != "http://a/" {
		t.Errorf("/i: %+v", i)
	}
	if !o.RedirectOff || len(o.Redirects) != 0 {
		t.Errorf("/o: %+v", o)
	}
	if len(d.Redirects) != 2 || !d.Redirects[0].Default || d.Redirects[0].LocName != "/d" || !d.Redirects[1].Regex.MatchString("HTTP://x") {
		t.Errorf("/d: %+v", d)
	}
	for conf, want := range map[string]string{
		"proxy_redirect default;":                         `"proxy_redirect default" should be placed after the "proxy_pass" directive`,
		"proxy_redirect off; proxy_redirect http://a/ /;": `"off" cannot be used with other "proxy_redirect" directives`,
		"proxy_redirect http://a/ /; proxy_redirect off;": `"off" cannot be used with other "proxy_redirect" directives`,
		"proxy_redirect sometimes;":                       `invalid parameter "sometimes"`,
		"proxy_redirect ~(a /;":                           `invalid regex`,
	} {
		_, err := load(t, "http { server { location / { "+conf+" } } }")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", conf, err, want)
		}
	}
}

// TestProxyHeaderListsConfig: proxy_hide_header and proxy_pass_header are
// lists inherited only by levels without one; proxy_ignore_headers takes
// nginx's names in any case and refuses others.
func TestProxyHeaderListsConfig(t *testing.T) {
	cfg, err := load(t, `http {
    proxy_hide_header X-A;
    proxy_ignore_headers x-accel-buffering;
    proxy_ignore_headers Vary;
    server {
        location /i { }
        location /o { proxy_hide_header X-B; proxy_hide_header X-C; proxy_pass_header Server; }
    }
}`)
	if err != nil {
		t.Fatal(err)
	}
	ps := cfg.HTTP.Servers[0].Locations.Prefixes
	i, o := ps[0].Conf.ProxyRest, ps[1].Conf.ProxyRest
	if len(i.HideHeaders) != 1 || i.IgnoreHeaders != IgnoreXAccelBuffering|IgnoreVary {
		t.Errorf("/i: %+v", i)
	}
	if strings.Join(o.HideHeaders, ",") != "X-B,X-C" || strings.Join(o.PassHeaders, ",") != "Server" {
		t.Errorf("/o: %+v", o)
	}
	for conf, want := range map[string]string{
		"proxy_ignore_headers X-Foo;": `invalid value "X-Foo"`,
		`proxy_hide_header "X Y";`:    `invalid header name "X Y"`,
	} {
		_, err := load(t, "http { server { location / { "+conf+" } } }")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", conf, err, want)
		}
	}
}

// TestProxyCookieConfig: the cookie rules load, off cancels the level
// above, and bad flags are refused.
func TestProxyCookieConfig(t *testing.T) {
	cfg, err := load(t, `http {
    proxy_cookie_domain .a.example b.example;
    proxy_cookie_path ~*^/X(.*) /y$1;
    proxy_cookie_flags ~ secure SameSite=Lax;
    server {
        location /i { }
        location /o { proxy_cookie_domain off; proxy_cookie_path off; proxy_cookie_flags off; }
    }
}`)
	if err != nil {
		t.Fatal(err)
	}
	ps := cfg.HTTP.Servers[0].Locations.Prefixes
	i, o := ps[0].Conf.ProxyRest, ps[1].Conf.ProxyRest
	if len(i.CookieDomains) != 1 || i.CookieDomains[0].Pattern.Raw() != "a.example" || !i.CookiePaths[0].Regex.MatchString("/x") ||
		strings.Join(i.CookieFlags[0].Flags, ",") != "secure,samesite=lax" {
		t.Errorf("/i: %+v", i)
	}
	if len(o.CookieDomains)+len(o.CookiePaths)+len(o.CookieFlags) != 0 {
		t.Errorf("/o: %+v", o)
	}
	for conf, want := range map[string]string{
		"proxy_cookie_flags c sometimes;":                `invalid parameter "sometimes"`,
		"proxy_cookie_flags c;":                          `invalid number of arguments`,
		"proxy_cookie_domain on;":                        `invalid parameter "on"`,
		"proxy_cookie_path / /a; proxy_cookie_path off;": `"off" cannot be used with other "proxy_cookie_path" directives`,
		"proxy_cookie_path ~( /a;":                       `invalid regex`,
	} {
		_, err := load(t, "http { server { location / { "+conf+" } } }")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", conf, err, want)
		}
	}
}

// TestProxyRequestConfig: the request-shaping directives load with their
// defaults, inherit, and refuse bad values.
func TestProxyRequestConfig(t *testing.T) {
	cfg, err := load(t, `http {
    proxy_method $arg_m;
    proxy_pass_request_headers off;
    proxy_limit_rate 10k;
    proxy_bind 127.0.0.2 transparent;
    server {
        location /i { }
        location /o { proxy_pass_request_headers on; proxy_pass_request_body off; proxy_bind off; proxy_set_body x; proxy_pass_trailers on; proxy_ignore_client_abort on; proxy_socket_keepalive on; proxy_force_ranges on; }
    }
}`)
	if err != nil {
		t.Fatal(err)
	}
	ps := cfg.HTTP.Servers[0].Locations.Prefixes
	i, o := ps[0].Conf.ProxyRest, ps[1].Conf.ProxyRest
	if i.Method == nil || !i.NoRequestHeaders || i.NoRequestBody || i.LimitRate.N != 10240 || i.Bind == nil || !i.Bind.Transparent {
		t.Errorf("/i: %+v", i)
	}
	if o.NoRequestHeaders || !o.NoRequestBody || o.Bind != nil || o.SetBody.Raw() != "x" || !o.PassTrailers || !o.IgnoreAbort || !o.SocketKeepalive || !o.ForceRanges {
		t.Errorf("/o: %+v", o)
	}
	for conf, want := range map[string]string{
		"proxy_bind 300.1.1.1;":                `invalid address "300.1.1.1"`,
		"proxy_bind 127.0.0.1 sometimes;":      `invalid parameter "sometimes"`,
		"proxy_limit_rate fast;":               `"proxy_limit_rate" directive invalid value`,
		"proxy_pass_request_body maybe;":       `it must be "on" or "off"`,
		"proxy_method GET; proxy_method POST;": `"proxy_method" directive is duplicate`,
	} {
		_, err := load(t, "http { server { location / { "+conf+" } } }")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", conf, err, want)
		}
	}
}

// TestUpstreamKeepaliveTime: keepalive_time is accepted in an upstream
// block as well as in http, server and location.
func TestUpstreamKeepaliveTime(t *testing.T) {
	cfg, err := load(t, `http {
    keepalive_time 30s;
    upstream u { server 127.0.0.1:1; keepalive 4; keepalive_time 10m; keepalive_timeout 5s; keepalive_requests 50; }
    server { location / { proxy_pass http://u; } }
}`)
	if err != nil {
		t.Fatal(err)
	}
	u := cfg.HTTP.Servers[0].Locations.Prefixes[0].Conf.Proxy.Upstream
	if u.KeepaliveTime != 10*time.Minute || u.KeepaliveRequests != 50 || cfg.HTTP.Loc.KeepaliveTime != 30*time.Second {
		t.Errorf("upstream %+v, http keepalive_time %v", u, cfg.HTTP.Loc.KeepaliveTime)
	}
	if _, err := load(t, "http { upstream u { server 127.0.0.1:1; keepalive_time 0; } }"); err == nil || !strings.Contains(err.Error(), "invalid value") {
		t.Errorf("keepalive_time 0: %v", err)
	}
}
