package config

import (
	"strings"
	"testing"
)

// TestRewriteDirectiveErrors: the rewrite module's and the internal
// redirect directives' mistakes are refused with nginx's messages.
func TestRewriteDirectiveErrors(t *testing.T) {
	for _, tc := range []struct{ conf, want string }{
		{`location / { rewrite ^/a /b lastt; }`, `invalid parameter "lastt"`},
		{`location / { rewrite "^/(a" /b; }`, `invalid regex "^/(a"`},
		{`location / { rewrite ^/a; }`, `invalid number of arguments in "rewrite"`},
		{`error_page 200 /x;`, `value "200" must be between 300 and 599`},
		{`error_page =200 /x;`, `invalid value "=200"`},
		{`error_page 404 =abc /x;`, `invalid value "=abc"`},
		{`error_page 404;`, `invalid number of arguments in "error_page"`},
		{`location / { try_files $uri =abc; }`, `invalid code "=abc"`},
		{`location / { try_files $uri =404; try_files $uri =404; }`, `"try_files" directive is duplicate`},
		{`location / { location @n { } }`, `named location "@n" can be on the server level only`},
		{`location @n { } location @n { }`, `duplicate location "@n"`},
		{`location / { limit_except FETCH { deny all; } }`, `invalid method "FETCH"`},
		{`location / { limit_except GET { deny all; } limit_except POST { } }`, `"limit_except" directive is duplicate`},
		{`location / { limit_except GET { return 403; } }`, `"return" directive is not allowed here`},
		{`internal;`, `"internal" directive is not allowed here`},
		{`location / { rewrite_log maybe; }`, `it must be "on" or "off"`},
		{`location @n { proxy_pass http://127.0.0.1:1/x; }`, `"proxy_pass" cannot have URI part in location given by regular expression, or inside named location`},
	} {
		_, err := load(t, "http { server { "+tc.conf+" } }")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.conf, err, tc.want)
		}
	}
}

func TestRewriteParsed(t *testing.T) {
	cfg, err := load(t, `http {
    error_page 404 /404.html;
    rewrite_log on;
    server {
        rewrite ^/a(?<rest>.*)$ /b$rest?x=1 last;
        rewrite ^/c$ /d? redirect;
        rewrite ^/e$ https://example.com/f;
        error_page 500 502 =200 @fallback;
        location @fallback { internal; }
        location / {
            try_files $uri $uri/ /index.php?$args;
            index index.php;
            index index.html;
            limit_except GET POST { deny all; }
            location /in/ { }
        }
        location /own/ { error_page 403 = /x; recursive_error_pages on; proxy_intercept_errors on; }
    }
}`)
	if err != nil {
		t.Fatal(err)
	}
	srv := cfg.HTTP.Servers[0]
	rws := srv.Loc.Rewrite
	if len(rws) != 3 || rws[0].Kind != OpRewrite {
		t.Fatalf("server rewrites %+v", rws)
	}
	a, c, e := rws[0].Rw, rws[1].Rw, rws[2].Rw
	if a.Flag != "last" || a.Redirect != 0 || a.URI.Raw() != "/b$rest" || a.Args.Raw() != "x=1" || !a.AddArgs {
		t.Errorf("rewrite a: %+v", a)
	}
	if c.Redirect != 302 || c.AddArgs || c.Args != nil || c.URI.Raw() != "/d" {
		t.Errorf("rewrite c: %+v", c)
	}
	if e.Redirect != 302 || e.URI.Raw() != "https://example.com/f" {
		t.Errorf("rewrite e: %+v", e)
	}
	if caps := cfg.Captures[a.Regex]; len(caps) != 1 || caps[0].Group != 1 {
		t.Errorf("named capture of rewrite a: %+v", caps)
	}
	named := srv.Named["@fallback"]
	if named == nil || !named.Conf.Internal || !named.Conf.RewriteLog {
		t.Fatalf("named location %+v", named)
	}
	root := srv.Locations.Prefixes[0]
	lc := root.Conf
	if len(lc.TryFiles) != 3 || !lc.TryFiles[1].TestDir || lc.TryFiles[1].Name.Raw() != "$uri" || lc.TryFiles[2].Name.Raw() != "/index.php?$args" {
		t.Errorf("try_files %+v", lc.TryFiles)
	}
	if len(lc.ErrorPages) != 1 || lc.ErrorPages[0].Codes[0] != 500 || lc.ErrorPages[0].Overwrite != 200 {
		t.Errorf("error_page inherited from server: %+v", lc.ErrorPages)
	}
	if in := root.Children[0].Conf; in.TryFiles != nil || in.Internal {
		t.Errorf("try_files and internal must not reach a nested location: %+v %v", in.TryFiles, in.Internal)
	}
	if len(lc.Index) != 2 || lc.Index[1] != "index.html" || len(lc.IndexVars) != 2 {
		t.Errorf("two index lines at one level: %v", lc.Index)
	}
	le := root.LimitExcept
	if le == nil || !le.Methods["HEAD"] || !le.Methods["POST"] || le.Methods["PUT"] || len(le.Loc.Conf.Access) != 1 || le.Loc.Conf.TryFiles != nil {
		t.Errorf("limit_except %+v", le)
	}
	own := srv.Locations.Prefixes[1].Conf
	if len(own.ErrorPages) != 1 || own.ErrorPages[0].Overwrite != 0 || !own.RecursiveErrorPages || !own.InterceptErrors {
		t.Errorf("own error_page: %+v", own.ErrorPages)
	}
	if h := cfg.HTTP.Loc.ErrorPages; len(h) != 1 || h[0].Overwrite != -1 || h[0].Codes[0] != 404 {
		t.Errorf("http error_page: %+v", h)
	}
	if !srv.Loc.Conf.UninitWarn {
		t.Error("uninitialized_variable_warn is on by default")
	}
}
