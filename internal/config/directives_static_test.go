package config

import (
	"os"
	"strings"
	"testing"
)

// TestTypesInheritAndReplace: a types block replaces the inherited table
// (it does not merge), blocks at one level add up, extensions are
// lowercased, and without any block nginx's three defaults apply.
func TestTypesInheritAndReplace(t *testing.T) {
	cfg, err := load(t, `http {
    types { text/html html; text/css CSS; }
    types { application/javascript js; text/x-late css; }
    server {
        location /a { }
        location /b { types { text/x-b txt; } location /b/c { } }
    }
}`)
	if err != nil {
		t.Fatal(err)
	}
	srv := cfg.HTTP.Servers[0]
	a, b := srv.Locations.Prefixes[0].Conf.Files.Types, srv.Locations.Prefixes[1].Conf.Files.Types
	c := srv.Locations.Prefixes[1].Prefixes[0].Conf.Files.Types
	if a["html"] != "text/html" || a["js"] != "application/javascript" || a["css"] != "text/x-late" || len(a) != 3 {
		t.Errorf("inherited: %v", a)
	}
	if b["txt"] != "text/x-b" || len(b) != 1 || c["txt"] != "text/x-b" || len(c) != 1 {
		t.Errorf("replaced: %v, nested %v", b, c)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], `duplicate extension "css", content type: "text/x-late", previous content type: "text/css"`) {
		t.Errorf("warnings: %q", cfg.Warnings)
	}
	cfg, err = load(t, "http { server { } }")
	if err != nil {
		t.Fatal(err)
	}
	if d := cfg.HTTP.Servers[0].Loc.Conf.Files.Types; len(d) != 3 || d["jpg"] != "image/jpeg" {
		t.Errorf("defaults: %v", d)
	}
}

// TestDebianMimeTypes reads the distribution's mime.types in place.
func TestDebianMimeTypes(t *testing.T) {
	if _, err := os.Stat("/etc/nginx/mime.types"); err != nil {
		t.Skip("Debian's nginx package is not installed")
	}
	cfg, err := load(t, "http { include /etc/nginx/mime.types; default_type application/octet-stream; server { } }")
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.HTTP.Servers[0].Loc.Conf
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings: %q", cfg.Warnings)
	}
	if c.Files.Types["css"] != "text/css" || c.Files.Types["js"] != "application/javascript" || c.DefaultType != "application/octet-stream" || len(c.Files.Types) < 50 {
		t.Errorf("%d types, css %q, js %q", len(c.Files.Types), c.Files.Types["css"], c.Files.Types["js"])
	}
}

func TestRootAndAlias(t *testing.T) {
	cfg, err := load(t, `http { root /srv/; server {
    location /a/ { alias /data/; }
    location ~ ^/r/(.*)$ { alias /data/$1; }
    location /x { root rel; }
} }`)
	if err != nil {
		t.Fatal(err)
	}
	srv := cfg.HTTP.Servers[0]
	if f := srv.Loc.Conf.Files; f.Root.Raw() != "/srv" || f.Alias {
		t.Errorf("root: %q (a trailing '/' is cut)", f.Root.Raw())
	}
	if f := srv.Locations.Prefixes[0].Conf.Files; !f.Alias || f.AliasLen != 3 || f.AliasAll || f.Root.Raw() != "/data/" {
		t.Errorf("alias: %+v", f)
	}
	if f := srv.Locations.Regexes[0].Conf.Files; !f.Alias || !f.AliasAll {
		t.Errorf("regex alias: %+v", f)
	}
	if f := srv.Locations.Prefixes[1].Conf.Files; f.Root.Raw() != "rel" || f.Prefix != cfg.Prefix {
		t.Errorf("relative root: %q from %q", f.Root.Raw(), f.Prefix)
	}
}

func TestStaticDirectiveErrors(t *testing.T) {
	for src, want := range map[string]string{
		"http { server { location / { root /a; alias /b; } } }":      `"alias" directive is duplicate, "root" directive was specified earlier`,
		"http { server { location / { alias /a; alias /b; } } }":     `"alias" directive is duplicate`,
		"http { server { alias /a; } }":                              `"alias" directive is not allowed here`,
		"http { root $document_root/x; }":                            `$document_root and $realpath_root variables cannot be used`,
		"http { etag maybe; }":                                       `it must be "on" or "off"`,
		"http { if_modified_since sometimes; }":                      `invalid value "sometimes"`,
		"http { max_ranges -1; }":                                    `"max_ranges" directive invalid number`,
		"http { autoindex_format yaml; }":                            `invalid value "yaml"`,
		"http { disable_symlinks off from=/x; }":                     `"from=" cannot be used with "off" parameter`,
		"http { disable_symlinks on to=/x; }":                        `invalid parameter "to=/x"`,
		"http { default_type a b; }":                                 `invalid number of arguments in "default_type" directive`,
		"http { server { location / { if ($uri) { alias /x; } } } }": `"alias" directive is not allowed here`,
		"http { absolute_redirect on; absolute_redirect off; }":      `"absolute_redirect" directive is duplicate`,
	} {
		_, err := load(t, src)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", src, err, want)
		}
	}
}

func TestStaticSettingsInherit(t *testing.T) {
	cfg, err := load(t, `http {
    etag off; if_modified_since before; max_ranges 2; autoindex on; autoindex_format json;
    autoindex_exact_size off; autoindex_localtime on; disable_symlinks if_not_owner from=$document_root;
    log_not_found off; absolute_redirect off; port_in_redirect off; server_name_in_redirect on;
    server { location / { } }
}`)
	if err != nil {
		t.Fatal(err)
	}
	f := cfg.HTTP.Servers[0].Locations.Prefixes[0].Conf.Files
	if f.ETag || f.IfModifiedSince != IMSBefore || f.MaxRanges != 2 || !f.Autoindex || f.AutoindexFormat != "json" ||
		f.AutoindexExactSize || !f.AutoindexLocaltime || f.DisableSymlinks != SymlinksIfNotOwner || f.SymlinksFrom == nil ||
		f.LogNotFound || f.AbsoluteRedirect || f.PortInRedirect || !f.ServerNameInRedirect {
		t.Errorf("not inherited: %+v", f)
	}
	cfg, err = load(t, "http { server { location / { } } }")
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.HTTP.Servers[0].Locations.Prefixes[0].Conf.Files
	if !d.ETag || d.IfModifiedSince != IMSExact || d.MaxRanges != -1 || d.Autoindex || d.AutoindexFormat != "html" ||
		!d.AutoindexExactSize || !d.LogNotFound || !d.AbsoluteRedirect || !d.PortInRedirect || d.ServerNameInRedirect || d.Root.Raw() != "html" {
		t.Errorf("defaults: %+v", d)
	}
}
