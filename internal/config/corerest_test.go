package config

import (
	"strings"
	"testing"
)

// TestCoreRestDirectives: merge_slashes and max_headers are read at http
// and server level and inherited; the subrequest settings load and check
// their argument.
func TestCoreRestDirectives(t *testing.T) {
	cfg, err := load(t, `http {
	merge_slashes off;
	log_subrequest on;
	subrequest_output_buffer_size 8k;
	server { listen 1; location / { log_subrequest off; subrequest_output_buffer_size 16k; } }
	server { listen 2; merge_slashes on; max_headers 0; }
	server { listen 3; max_headers 50; }
}`)
	if err != nil {
		t.Fatal(err)
	}
	srv := cfg.HTTP.Servers
	if !cfg.HTTP.Loc.Client.KeepSlashes || !srv[0].Loc.Conf.Client.KeepSlashes || srv[1].Loc.Conf.Client.KeepSlashes {
		t.Errorf("merge_slashes: http %v, inherited %v, on %v", cfg.HTTP.Loc.Client.KeepSlashes, srv[0].Loc.Conf.Client.KeepSlashes, srv[1].Loc.Conf.Client.KeepSlashes)
	}
	if srv[0].Loc.Conf.Client.MaxHeaders != 0 || srv[1].Loc.Conf.Client.MaxHeaders != -1 || srv[2].Loc.Conf.Client.MaxHeaders != 50 {
		t.Errorf("max_headers: default %d, 0 as %d, 50 as %d", srv[0].Loc.Conf.Client.MaxHeaders, srv[1].Loc.Conf.Client.MaxHeaders, srv[2].Loc.Conf.Client.MaxHeaders)
	}
	def, err := load(t, "http { server { listen 1; } }")
	if err != nil {
		t.Fatal(err)
	}
	if def.HTTP.Servers[0].Loc.Conf.Client.KeepSlashes {
		t.Error("merge_slashes is off by default; nginx's default is on")
	}
	for _, tt := range []struct{ src, want string }{
		{"http { merge_slashes yes; }", `invalid value "yes" in "merge_slashes" directive`},
		{"http { server { location / { merge_slashes off; } } }", `"merge_slashes" directive is not allowed here`},
		{"http { merge_slashes off; merge_slashes on; }", `"merge_slashes" directive is duplicate`},
		{"http { log_subrequest maybe; }", `it must be "on" or "off"`},
		{"http { subrequest_output_buffer_size big; }", `"subrequest_output_buffer_size" directive invalid value`},
		{"merge_slashes off;", `"merge_slashes" directive is not allowed here`},
		{"http { max_headers x; }", `"max_headers" directive invalid number`},
		{"http { max_headers -1; }", `"max_headers" directive invalid number`},
		{"http { server { location / { max_headers 5; } } }", `"max_headers" directive is not allowed here`},
	} {
		_, err := load(t, tt.src)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.src, err, tt.want)
		}
	}
}
