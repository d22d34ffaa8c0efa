package config

import (
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/expires"
)

// TestExpiresAndTrailers: expires parses at load (constants) or keeps its
// template (variables), inherits, and refuses what nginx refuses;
// add_trailer is a list inherited only by levels without one.
func TestExpiresAndTrailers(t *testing.T) {
	cfg, err := load(t, `http {
    expires 1h;
    add_trailer X-A a;
    server {
        location /v { expires modified $arg_e; add_trailer X-B b always; add_trailer X-C c; }
        location /i { }
    }
}`)
	if err != nil {
		t.Fatal(err)
	}
	srv := cfg.HTTP.Servers[0]
	v, i := srv.Locations.Prefixes[0].Conf, srv.Locations.Prefixes[1].Conf
	if v.Expires.Value == nil || !v.Expires.Modified || len(v.Trailers) != 2 || !v.Trailers[0].Always || v.Trailers[1].Always {
		t.Errorf("/v: %+v %+v", v.Expires, v.Trailers)
	}
	if i.Expires.Spec != (expires.Spec{Kind: expires.Access, Seconds: 3600}) || len(i.Trailers) != 1 || i.Trailers[0].Name != "X-A" {
		t.Errorf("/i: %+v %+v", i.Expires, i.Trailers)
	}
	for conf, want := range map[string]string{
		"expires 1h; expires 2h;":   `"expires" directive is duplicate`,
		"expires sometime 1h;":      "invalid value",
		"expires modified @1h;":     `daily time cannot be used with "modified" parameter`,
		"expires @25h;":             "daily time value must be less than 24 hours",
		"expires 1q;":               "invalid value",
		"add_trailer X;":            "invalid number of arguments",
		"add_trailer X v sometime;": `invalid parameter "sometime"`,
		"add_trailer \"X Y\" v;":    `invalid header name "X Y"`,
	} {
		_, err := load(t, "http { server { "+conf+" } }")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", conf, err, want)
		}
	}
}
