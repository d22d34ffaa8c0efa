package conf

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// The seed configs are the guide wsgate is built from; every one of them
// must parse, including the parts wsgate later rejects or ignores.
func TestSeedConfigs(t *testing.T) {
	paths, err := filepath.Glob("testdata/seed/*.conf")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 14 {
		t.Fatalf("found %d seed configs, want 14", len(paths))
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			ds, err := ParseFile(path, Options{Warn: func(string, int, string) {}})
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) == 0 {
				t.Fatal("no directives")
			}
		})
	}
}

// find walks the path of directive names from ds and returns every match
// of the last one.
func find(ds []*Directive, names ...string) []*Directive {
	var out []*Directive
	for _, d := range ds {
		if d.Name != names[0] {
			continue
		}
		if len(names) == 1 {
			out = append(out, d)
		} else {
			out = append(out, find(d.Block, names[1:]...)...)
		}
	}
	return out
}

func parseSeed(t *testing.T, name string, opts Options) []*Directive {
	t.Helper()
	ds, err := ParseFile(filepath.Join("testdata/seed", name), opts)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func TestSeedValues(t *testing.T) {
	t.Run("11 log_format", func(t *testing.T) {
		lf := find(parseSeed(t, "11-logging.conf", Options{}), "http", "log_format")
		if len(lf) != 1 {
			t.Fatalf("found %d log_format", len(lf))
		}
		d := lf[0]
		wantArgs := []string{
			"websocket",
			"$remote_addr - $remote_user [$time_local] ",
			`"$request" $status $body_bytes_sent `,
			"upgrade=$http_upgrade ",
			"upstream_addr=$upstream_addr ",
			"upstream_response_time=$upstream_response_time",
		}
		if !slices.Equal(d.Args, wantArgs) {
			t.Errorf("args = %q, want %q", d.Args, wantArgs)
		}
		if want := []bool{false, true, true, true, true, true}; !slices.Equal(d.Quoted, want) {
			t.Errorf("quoted = %v, want %v", d.Quoted, want)
		}
		if d.Line != 3 {
			t.Errorf("line = %d, want 3", d.Line)
		}
		m := find(parseSeed(t, "11-logging.conf", Options{}), "http", "map")
		if len(m) != 1 || len(m[0].Block) != 2 || m[0].Block[0].Name != "~^/health$" || m[0].Block[0].Line != 13 {
			t.Errorf("map = %s", render(m))
		}
	})
	t.Run("02 map empty key", func(t *testing.T) {
		m := find(parseSeed(t, "02-connection-upgrade-map.conf", Options{}), "http", "map")
		if len(m) != 1 {
			t.Fatalf("found %d map", len(m))
		}
		if got, want := render(m), `map $http_upgrade $connection_upgrade { default upgrade; "" close; }`; got != want {
			t.Errorf("map = %s, want %s", got, want)
		}
		if e := m[0].Block[1]; e.Name != "" || e.Line != 5 {
			t.Errorf("empty key entry = %q at line %d, want \"\" at 5", e.Name, e.Line)
		}
	})
	t.Run("12 if with quotes", func(t *testing.T) {
		ifs := find(parseSeed(t, "12-cors.conf", Options{}), "http", "server", "location", "if")
		if len(ifs) != 1 {
			t.Fatalf("found %d if", len(ifs))
		}
		if want := []string{"($request_method", "=", "OPTIONS", ")"}; !slices.Equal(ifs[0].Args, want) {
			t.Errorf("if args = %q, want %q", ifs[0].Args, want)
		}
		if len(ifs[0].Block) != 5 {
			t.Errorf("if block = %s", render(ifs[0].Block))
		}
	})
	t.Run("09 single-quoted header", func(t *testing.T) {
		ah := find(parseSeed(t, "09-http3.conf", Options{}), "http", "server", "add_header")
		if len(ah) != 1 || !slices.Equal(ah[0].Args, []string{"Alt-Svc", `h3=":443"; ma=86400`, "always"}) {
			t.Errorf("add_header = %s", render(ah))
		}
	})
	t.Run("14 production", func(t *testing.T) {
		var warned []string
		ds := parseSeed(t, "14-complete-production.conf", Options{Warn: func(_ string, _ int, msg string) {
			warned = append(warned, msg)
		}})
		ret := find(ds, "http", "server", "location", "return")
		if len(ret) != 1 || !slices.Equal(ret[0].Args, []string{"200", "healthy\n"}) || ret[0].Line != 82 {
			t.Errorf("return = %s", render(ret))
		}
		// The guide includes the system's mime.types by absolute path: read
		// when present, skipped with a warning otherwise.
		_, statErr := os.Stat("/etc/nginx/mime.types")
		types := find(ds, "http", "types")
		if statErr == nil && (len(types) != 1 || len(warned) != 0) {
			t.Errorf("mime.types present: types = %d, warnings = %q", len(types), warned)
		}
		if statErr != nil && (len(types) != 0 || len(warned) != 1) {
			t.Errorf("mime.types absent: types = %d, warnings = %q", len(types), warned)
		}
		if n := len(find(ds, "http", "server")); n != 2 {
			t.Errorf("%d servers, want 2", n)
		}
	})
}
