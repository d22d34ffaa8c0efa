package conf

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"
)

func TestDumpFormat(t *testing.T) {
	src := "user nginx;\nevents {}\nhttp {\n  map $a $b { '' close; default x; }\n" +
		"  log_format w '$a '\n '\"$r\"';\n  server { location ~*\\.(png)$ { return 200 \"ok\\n\"; } }\n}\n"
	want := `user nginx;
events {
}
http {
    map $a $b {
        "" close;
        default x;
    }
    log_format w "$a " '"$r"';
    server {
        location ~*\.(png)$ {
            return 200 "ok\n";
        }
    }
}
`
	ds, err := Parse("t.conf", []byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := Dump(&b, ds); err != nil {
		t.Fatal(err)
	}
	if b.String() != want {
		t.Errorf("Dump:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestEncode(t *testing.T) {
	tests := []struct {
		s      string
		quoted bool
		want   string
	}{
		{"plain", false, "plain"},
		{"plain", true, `"plain"`},
		{"", false, `""`},
		{"", true, `""`},
		{"a b", false, `"a b"`},
		{"a;b", false, `"a;b"`},
		{"a{b", false, `"a{b"`},
		{"a}b", false, `"a}b"`},
		{"${host}", false, "${host}"},
		{"#x", false, `"#x"`},
		{"a#x", false, "a#x"},
		{`~*\.(png)$`, false, `~*\.(png)$`},
		{`~*\.(png)$`, true, `"~*\.(png)$"`},
		{`say "hi"`, true, `'say "hi"'`},
		{`it's "x"`, true, `"it's \"x\""`},
		{"line\n", true, `"line\n"`},
		{"tab\t", false, `tab\t`},
		{`\n`, false, `\\n`},
		{`\n`, true, `"\\n"`},
		{`end\`, true, `"end\\"`},
		{`end\`, false, `end\\`},
		{`"x`, false, `\"x`},
		{`a\ b`, false, `a\ b`},
	}
	for _, tt := range tests {
		got := encode(tt.s, tt.quoted)
		if got != tt.want {
			t.Errorf("encode(%q, %v) = %s, want %s", tt.s, tt.quoted, got, tt.want)
			continue
		}
		// Whatever the form, it must read back as the same argument.
		ds, err := Parse("enc.conf", []byte("x "+got+";"), Options{})
		if err != nil {
			t.Errorf("re-parse %s: %v", got, err)
			continue
		}
		if a := ds[0].Args; len(a) != 1 || a[0] != tt.s {
			t.Errorf("%s reads back as %q, want %q", got, a, tt.s)
		}
	}
}

func TestDumpRoundTripSeeds(t *testing.T) {
	paths, err := filepath.Glob("testdata/seed/*.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			ds, err := ParseFile(path, Options{Warn: func(string, int, string) {}})
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if err := Dump(&b, ds); err != nil {
				t.Fatal(err)
			}
			again, err := Parse("dump.conf", b.Bytes(), Options{})
			if err != nil {
				t.Fatalf("re-parse: %v\n%s", err, b.String())
			}
			if !sameTree(ds, again) {
				t.Errorf("round trip changed the tree:\n%s\n%s", render(ds), render(again))
			}
		})
	}
}

var errWrite = errors.New("disk full")

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errWrite }

func TestDumpWriteError(t *testing.T) {
	ds := []*Directive{{Name: "a", Args: []string{"b"}}}
	if err := Dump(failingWriter{}, ds); !errors.Is(err, errWrite) {
		t.Fatalf("Dump error = %v, want %v", err, errWrite)
	}
}

// sameTree compares names, arguments, quoting and block structure, not
// positions.
func sameTree(a, b []*Directive) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Name != y.Name || len(x.Args) != len(y.Args) || (x.Block == nil) != (y.Block == nil) {
			return false
		}
		for j := range x.Args {
			if x.Args[j] != y.Args[j] || x.Quoted[j] != y.Quoted[j] {
				return false
			}
		}
		if !sameTree(x.Block, y.Block) {
			return false
		}
	}
	return true
}
