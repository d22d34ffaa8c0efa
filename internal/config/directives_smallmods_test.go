package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/vars"
)

// TestSmallModuleErrors: the small http modules refuse what nginx refuses,
// with nginx's messages.
func TestSmallModuleErrors(t *testing.T) {
	cases := map[string]string{
		`http { server { location / { charset utf-8; source_charset koi8-r; } } }`: `no "charset_map" between the charsets "koi8-r" and "utf-8"`,
		`http { server { location / { mirror /m; mirror off; } } }`:                `"mirror" directive is duplicate`,
		`http { server { valid_referers none blocked; } }`:                         `"none" or "blocked" referers`,
		`http { split_clients $a $b { 60% x; 50% y; } }`:                           `percent total is greater than 100%`,
		`http { split_clients $a $b { 1.234% x; } }`:                               `invalid percent value`,
		`http { geo $g { 10.0.0.0/33 x; } }`:                                       `invalid network`,
		`http { geo $g { ranges; 10.0.0.9-10.0.0.1 x; } }`:                         `invalid range`,
		`http { server { userid maybe; } }`:                                        `it must be "off", "log", "v1" or "on"`,
		`http { server { userid_mark ab; } }`:                                      `single letter, digit or "="`,
		`http { server { location / { secure_link $uri; secure_link $args; } } }`:  `"secure_link" directive is duplicate`,
		`http { map $a $g { default 1; } geo $g { default 2; } }`:                  `duplicate`,
	}
	for src, want := range cases {
		_, err := load(t, src)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error with %q", src, err, want)
		}
	}
}

// TestSmallModuleSettings: inheritance of the userid, mirror and charset
// settings from http down to a location.
func TestSmallModuleSettings(t *testing.T) {
	cfg, err := load(t, `http {
    userid on; userid_name sid; mirror /m; charset utf-8;
    server {
        location /a { userid_mark X; mirror /n; mirror /o; }
        location /b { mirror off; charset off; charset_types *; }
    }
}`)
	if err != nil {
		t.Fatal(err)
	}
	srv := cfg.HTTP.Servers[0]
	a, b := srv.Locations.Prefixes[0].Conf, srv.Locations.Prefixes[1].Conf
	if a.UserID.Name != "sid" || a.UserID.Mark != 'X' || len(a.Mirrors) != 2 || a.Charset.Charset == nil {
		t.Errorf("/a: %+v %v", a.UserID, a.Mirrors)
	}
	if len(b.Mirrors) != 0 || b.Charset.Charset != nil || !b.Charset.AnyType || b.UserID.Name != "sid" {
		t.Errorf("/b: %v %+v", b.Mirrors, b.Charset)
	}
}

// TestGeoInclude: a geo block reads its networks from an included file,
// and the variable answers from them.
func TestGeoInclude(t *testing.T) {
	dir := t.TempDir()
	nets := filepath.Join(dir, "nets.conf")
	if err := os.WriteFile(nets, []byte("10.0.0.0/8 ten;\n192.168.0.0/16 lan;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := load(t, `http { geo $arg_ip $net { default none; include `+nets+`; delete 192.168.0.0/16; } }`)
	if err != nil {
		t.Fatal(err)
	}
	i, ok := cfg.Vars.Lookup("net")
	if !ok {
		t.Fatal("$net is not declared")
	}
	for ip, want := range map[string]string{"10.1.2.3": "ten", "192.168.1.1": "none", "8.8.8.8": "none"} {
		var c vars.Ctx
		c.Reset(cfg.Vars)
		c.Args = "ip=" + ip
		if got := c.Get(i); got != want {
			t.Errorf("%s: %q, want %q", ip, got, want)
		}
	}
}
