package config

import (
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/gzipfilter"
)

// TestGzipDirectives: nginx's defaults, every directive's value, and
// inheritance from http down to a location and its if block.
func TestGzipDirectives(t *testing.T) {
	cfg, err := load(t, `http {
    gzip on;
    gzip_types text/css application/json;
    gzip_proxied expired no-cache auth;
    server {
        gzip_comp_level 6;
        gzip_vary on;
        location /a { gzip_min_length 1k; gzip_http_version 1.0; gzip_disable "bot" msie6; gzip_disable "spider"; gzip_buffers 16 8k; gzip_static always; }
        location /b { gzip off; gzip_types *; if ($args) { gzip on; } }
    }
}`)
	if err != nil {
		t.Fatal(err)
	}
	srv := cfg.HTTP.Servers[0]
	a, b := &srv.Locations.Prefixes[0].Conf.Gzip, &srv.Locations.Prefixes[1].Conf.Gzip
	if !a.On || a.Level != 6 || !a.Vary || a.MinLength != 1024 || a.HTTPVersion != 1000 || !a.DisableMSIE6 ||
		len(a.Disable) != 2 || a.Buffers != [2]int{16, 8192} || a.Static != gzipfilter.StaticAlways ||
		a.Proxied != gzipfilter.ProxiedExpired|gzipfilter.ProxiedNoCache|gzipfilter.ProxiedAuth ||
		!a.Types["text/css"] || !a.Types["application/json"] || !a.Types["text/html"] || a.AnyType {
		t.Errorf("location /a: %+v", a)
	}
	if b.On || !b.AnyType || b.Level != 6 || b.MinLength != 20 {
		t.Errorf("location /b: %+v", b)
	}
	cfg, err = load(t, "http { server { } }")
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.HTTP.Servers[0].Loc.Conf.Gzip
	if d.On || d.Level != 1 || d.MinLength != 20 || d.HTTPVersion != 1001 || d.Proxied != gzipfilter.ProxiedOff || !d.Types["text/html"] || len(d.Types) != 1 {
		t.Errorf("defaults: %+v", d)
	}
}

func TestGzipDirectiveErrors(t *testing.T) {
	for conf, want := range map[string]string{
		"gzip maybe;":             `invalid value "maybe" in "gzip" directive`,
		"gzip_comp_level 10;":     "the value must be in 1..9 range",
		"gzip_comp_level x;":      `invalid number "x"`,
		"gzip_http_version 2.0;":  `invalid value "2.0"`,
		"gzip_proxied sometimes;": `invalid value "sometimes" in "gzip_proxied" directive`,
		"gzip_min_length lots;":   `"gzip_min_length" directive invalid value`,
		"gzip_buffers 0 4k;":      `invalid value "0 4k"`,
		"gzip_static yes;":        `invalid value "yes" in "gzip_static" directive`,
		"gzip_disable \"(\";":     "pcre2_compile() failed",
		"gzip on; gzip off;":      `"gzip" directive is duplicate`,
	} {
		_, err := load(t, "http { server { "+conf+" } }")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", conf, err, want)
		}
	}
	cfg, err := load(t, "http { gzip_types text/html text/css; server { } }")
	if err != nil || len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], `duplicate MIME type "text/html"`) {
		t.Errorf("duplicate type: %v %q", err, cfg.Warnings)
	}
}
