package conf

import (
	"bytes"
	"errors"
	"io/fs"
	"path/filepath"
	"syscall"
	"testing"
)

// noFiles keeps fuzzed include directives off the real disk: every file is
// missing and every glob matches nothing.
var noFiles = filesystem{
	readFile: func(name string) ([]byte, error) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.ENOENT}
	},
	glob: func(pattern string) ([]string, error) {
		_, err := filepath.Match(pattern, "") // keeps the bad-pattern error path
		return nil, err
	},
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"a;",
		"http { server { listen 80; } }",
		`a "x\"y" 'z' '' ${v}w b\;c;`,
		"if ($a = 'b') { return 204; }",
		"include x.conf;\ninclude /etc/mime.types;\ninclude *.conf;",
		"a 'x\n\ny'}",
	} {
		f.Add([]byte(s))
	}
	const name = "/nonexistent-wsgate-fuzz/fuzz.conf"
	f.Fuzz(func(t *testing.T, src []byte) {
		ds, err := parseWith(name, src, Options{}, noFiles)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is %T, want *Error", err, err)
			}
			maxLine := 1 + bytes.Count(src, []byte("\n"))
			if ce.File != name || ce.Line < 1 || ce.Line > maxLine {
				t.Fatalf("error %q at %s:%d, want %s:1..%d", ce.Msg, ce.File, ce.Line, name, maxLine)
			}
			return
		}
		var out bytes.Buffer
		if err := Dump(&out, ds); err != nil {
			t.Fatal(err)
		}
		again, err := parseWith(name, out.Bytes(), Options{}, noFiles)
		if err != nil {
			t.Fatalf("dump does not parse: %v\n%s", err, out.Bytes())
		}
		if !sameTree(ds, again) {
			t.Fatalf("dump changed the tree\nfirst:  %s\nsecond: %s\ndump:\n%s", render(ds), render(again), out.Bytes())
		}
	})
}
