package conf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// render prints a tree compactly for comparisons: quoted arguments in Go
// syntax, bare ones as they are, blocks as `name { child; }`.
func render(ds []*Directive) string {
	parts := make([]string, 0, len(ds))
	for _, d := range ds {
		var b strings.Builder
		if d.Name == "" {
			b.WriteString(`""`)
		}
		b.WriteString(d.Name)
		for i, a := range d.Args {
			b.WriteByte(' ')
			if i < len(d.Quoted) && d.Quoted[i] {
				b.WriteString(strconv.Quote(a))
			} else {
				b.WriteString(a)
			}
		}
		if d.Block == nil {
			b.WriteByte(';')
		} else {
			b.WriteString(" {")
			if len(d.Block) > 0 {
				b.WriteString(" " + render(d.Block))
			}
			b.WriteString(" }")
		}
		parts = append(parts, b.String())
	}
	return strings.Join(parts, " ")
}

func TestParseSyntax(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"simple", "worker_processes auto;", "worker_processes auto;"},
		{"no args", "ip_hash;", "ip_hash;"},
		{"several on a line", "a 1;b 2; c;", "a 1; b 2; c;"},
		{"blocks", "http { server { listen 80; } }", "http { server { listen 80; } }"},
		{"empty block", "events {}", "events { }"},
		{"block with args", "location /ws {\n}", "location /ws { }"},
		{"empty file", "", ""},
		{"only comments", "# a\n   # b\n", ""},
		{"comments", "# head\na; # tail { ; }\nb; #", "a; b;"},
		{"hash inside word", "a b#c d#;", "a b#c d#;"},
		{"whitespace kinds", "a\tb\r\nc\n\n;", "a b c;"},
		{"separators end words", "a b;c{d;}", "a b; c { d; }"},
		{"double quoted", `a "x y" "{;}#";`, `a "x y" "{;}#";`},
		{"single quoted", `a 'x y';`, `a "x y";`},
		{"empty quoted", `map $a $b { '' close; "" x; }`, `map $a $b { "" close; "" x; }`},
		{"quoted escapes", `a "q\"q" 'b\'c' "d\\e" 'f\"g' "x\yz";`, `a "q\"q" "b'c" "d\\e" "f\"g" "x\\yz";`},
		{"control escapes", `a "n\nt\tr\r";`, `a "n\nt\tr\r";`},
		{"raw newline in quotes", "a \"x\ny\";", `a "x\ny";`},
		{"quoted name", `"a b" c;`, `a b c;`},
		{"quote inside word", `a b"c d'e;`, `a b"c d'e;`},
		{"bare backslash kept", `a b\;c d\ e \{;`, `a b\;c d\ e \{;`},
		{"bare escapes", `a \"f x\ny \\;`, "a \"f x\ny \\;"},
		{"variables", `set $x ${host}y;`, `set $x ${host}y;`},
		{"variable then block", `a ${b}{ c; }`, `a ${b} { c; }`},
		{"dollar brace in quotes", `a "${x}";`, `a "${x}";`},
		{"regex location", `location ~*\.(png|jpg)$ { }`, `location ~*\.(png|jpg)$ { }`},
		{"regex map key", "map $u $l {\n ~^/health$ 0;\n default 1;\n}", "map $u $l { ~^/health$ 0; default 1; }"},
		{"if with quoted operand", `if ($request_method = 'OPTIONS') { return 204; }`, `if ($request_method = "OPTIONS" ) { return 204; }`},
		{"multi-line strings", "log_format w 'a '\n    '\"b\" '\n    'c';", `log_format w "a " "\"b\" " "c";`},
		{"quote then separators", `a "x";b "y"{ }`, `a "x"; b "y" { }`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds, err := Parse("test.conf", []byte(tt.src), Options{})
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.src, err)
			}
			if got := render(ds); got != tt.want {
				t.Errorf("Parse(%q)\n got %s\nwant %s", tt.src, got, tt.want)
			}
		})
	}
}

// render cannot tell a quoted empty name from a name spelled `""`; check
// the field itself.
func TestParseEmptyQuotedName(t *testing.T) {
	ds, err := Parse("test.conf", []byte("'' close;"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].Name != "" || len(ds[0].Args) != 1 || ds[0].Args[0] != "close" {
		t.Fatalf("got %s, want an empty name with argument close", render(ds))
	}
}

func TestParseBlockness(t *testing.T) {
	ds, err := Parse("test.conf", []byte("events {}\npid x;\nhttp { include none/*.conf; }"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false, true} {
		if got := ds[i].IsBlock(); got != want {
			t.Errorf("%s: IsBlock() = %v, want %v", ds[i].Name, got, want)
		}
	}
	if len(ds[0].Block) != 0 || len(ds[2].Block) != 0 {
		t.Errorf("blocks should be empty: %s", render(ds))
	}
}

func TestParseQuotedFlags(t *testing.T) {
	ds, err := Parse("test.conf", []byte(`a b "c" '' d '~x';`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []bool{false, true, true, false, true}
	d := ds[0]
	if len(d.Quoted) != len(d.Args) {
		t.Fatalf("len(Quoted) = %d, len(Args) = %d", len(d.Quoted), len(d.Args))
	}
	for i := range want {
		if d.Quoted[i] != want[i] {
			t.Errorf("Quoted[%d] (%q) = %v, want %v", i, d.Args[i], d.Quoted[i], want[i])
		}
	}
}

func TestParseLines(t *testing.T) {
	src := "a;\n" + // 1
		"b \"x\n" + // 2
		"y\";\n" + // 3
		"c {\n" + // 4
		"  d\n" + // 5
		"  e;\n" + // 6
		"  'f\n\n' g;\n" + // 7-9
		"}\n" + // 10
		"# h;\n" + // 11
		"\n" + // 12
		"i\n" + // 13
		"{ }\n" // 14
	ds, err := Parse("lines.conf", []byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	var walk func([]*Directive)
	walk = func(ds []*Directive) {
		for _, d := range ds {
			got[strings.TrimSpace(d.Name)] = d.Line
			if d.File != "lines.conf" {
				t.Errorf("%s: File = %q, want lines.conf", d.Name, d.File)
			}
			walk(d.Block)
		}
	}
	walk(ds)
	want := map[string]int{"a": 1, "b": 2, "c": 4, "d": 5, "f": 7, "i": 13}
	for name, line := range want {
		if got[name] != line {
			t.Errorf("%s: Line = %d, want %d", name, got[name], line)
		}
	}
}

func TestParseErrors(t *testing.T) {
	const eofSemi = `unexpected end of file, expecting ";" or "}"`
	const eofBrace = `unexpected end of file, expecting "}"`
	tests := []struct {
		name, src string
		msg       string
		line      int
	}{
		{"stray close", "}", `unexpected "}"`, 1},
		{"stray close later", "a;\n\n}\n", `unexpected "}"`, 3},
		{"close after args", "s {\n  a b }\n", `unexpected "}"`, 2},
		{"close ends word", "s {\n  a}\n", `unexpected "}"`, 2},
		{"close after quoted arg", "a 'x'}", `unexpected "}"`, 1},
		{"unclosed block", "http {\n  a;\n", eofBrace, 3},
		{"unclosed block no newline", "http {\n  a;", eofBrace, 2},
		{"unclosed nested", "a {\n b {\n }\n", eofBrace, 4},
		{"no semicolon", "a b", eofSemi, 1},
		{"no semicolon, newlines", "a\nb\n", eofSemi, 3},
		{"no semicolon in block", "a {\n b\n", eofSemi, 3},
		{"unterminated quote", "a \"x\n", eofSemi, 2},
		{"unterminated single quote", "a 'x\\'", eofSemi, 1},
		{"lone semicolon", ";", `unexpected ";"`, 1},
		{"semicolon in block", "a {\n ;\n}", `unexpected ";"`, 2},
		{"lone open", "\n{", `unexpected "{"`, 2},
		{"open in block", "a { {} }", `unexpected "{"`, 1},
		{"word after quote", `a "x"y;`, `unexpected "y"`, 1},
		{"quote after quote", `a "x"'y';`, `unexpected "'"`, 1},
		{"comment after quote", "a 'x'#c\n;", `unexpected "#"`, 1},
		{"word after multi-line quote", "a \"x\n\"b;", `unexpected "b"`, 2},
		{"include without args", "\ninclude;", `invalid number of arguments in "include" directive`, 2},
		{"include two args", "include a b;", `invalid number of arguments in "include" directive`, 1},
		{"include block", "include a {\n}", `directive "include" is not terminated by ";"`, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds, err := Parse("err.conf", []byte(tt.src), Options{})
			if err == nil {
				t.Fatalf("Parse(%q) = %s, want error %q", tt.src, render(ds), tt.msg)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is %T, want *Error", err, err)
			}
			if ce.File != "err.conf" || ce.Line != tt.line || ce.Msg != tt.msg {
				t.Errorf("Parse(%q) error = {%q %d %q}, want {err.conf %d %q}", tt.src, ce.File, ce.Line, ce.Msg, tt.line, tt.msg)
			}
			if want := fmt.Sprintf("%s in err.conf:%d", tt.msg, tt.line); err.Error() != want {
				t.Errorf("Error() = %q, want %q", err.Error(), want)
			}
		})
	}
}

// writeTree creates files (relative path -> content) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestInclude(t *testing.T) {
	type warning struct {
		file string
		line int
		msg  string
	}
	tests := []struct {
		name  string
		files map[string]string // main.conf is the main file
		want  string
		// errMsg, errFile and errLine describe the expected error; "%d"
		// in them is replaced by the temporary directory.
		errMsg, errFile string
		errLine         int
		warns           []warning
	}{
		{
			name: "in place inside a block",
			files: map[string]string{
				"main.conf": "http {\n  a;\n  include x.conf;\n  b;\n}",
				"x.conf":    "x1;\nx2 { y; }\n",
			},
			want: "http { a; x1; x2 { y; } b; }",
		},
		{
			name: "relative to the main file, nested",
			files: map[string]string{
				"main.conf":     "include conf.d/a.conf;",
				"conf.d/a.conf": "a;\ninclude conf.d/b.conf;",
				"conf.d/b.conf": "b;",
			},
			want: "a; b;",
		},
		{
			name: "relative to the including file is not looked at",
			files: map[string]string{
				"main.conf":     "include conf.d/a.conf;",
				"conf.d/a.conf": "include b.conf;",
				"conf.d/b.conf": "b;",
			},
			errMsg: `open() "%d/b.conf" failed (2: No such file or directory)`, errFile: "%d/conf.d/a.conf", errLine: 1,
		},
		{
			name: "absolute path",
			files: map[string]string{
				"main.conf":  "include %d/sub/x.conf;",
				"sub/x.conf": "x;",
			},
			want: "x;",
		},
		{
			name: "glob sorted, dot files skipped",
			files: map[string]string{
				"main.conf":          "http {\n include sites/*.conf;\n}",
				"sites/b.conf":       "b;",
				"sites/a.conf":       "a;",
				"sites/c.conf":       "c { d; }",
				"sites/.hidden.conf": "hidden;",
				"sites/x.txt":        "txt;",
			},
			want: "http { a; b; c { d; } }",
		},
		{
			name: "glob with ? and []",
			files: map[string]string{
				"main.conf": "include s?.conf;\ninclude [t]*.conf;",
				"s1.conf":   "s1;",
				"s2.conf":   "s2;",
				"t.conf":    "t;",
			},
			want: "s1; s2; t;",
		},
		{
			name:  "glob matching nothing",
			files: map[string]string{"main.conf": "include none/*.conf;\nx;"},
			want:  "x;",
		},
		{
			name:   "missing file",
			files:  map[string]string{"main.conf": "a;\ninclude nope.conf;\n"},
			errMsg: `open() "%d/nope.conf" failed (2: No such file or directory)`, errFile: "%d/main.conf", errLine: 2,
		},
		{
			name:  "missing mime.types is skipped",
			files: map[string]string{"main.conf": "http {\n    include /nonexistent/mime.types;\n    a;\n}"},
			want:  "http { a; }",
			warns: []warning{{"%d/main.conf", 2, `skipping missing "/nonexistent/mime.types" include (static files get default_type)`}},
		},
		{
			name: "present mime.types is read",
			files: map[string]string{
				"main.conf":  "include mime.types;",
				"mime.types": "types { text/html html; }",
			},
			want: "types { text/html html; }",
		},
		{
			name:   "missing directory is an error",
			files:  map[string]string{"main.conf": "include nope/a.conf;"},
			errMsg: `open() "%d/nope/a.conf" failed (2: No such file or directory)`, errFile: "%d/main.conf", errLine: 1,
		},
		{
			name: "error inside included file",
			files: map[string]string{
				"main.conf": "include x.conf;",
				"x.conf":    "a;\nb {\n",
			},
			errMsg: `unexpected end of file, expecting "}"`, errFile: "%d/x.conf", errLine: 3,
		},
		{
			name: "cycle",
			files: map[string]string{
				"main.conf": "include a.conf;",
				"a.conf":    "include b.conf;",
				"b.conf":    "x;\ninclude a.conf;",
			},
			errMsg: `include nesting too deep: "%d/a.conf" includes itself`, errFile: "%d/b.conf", errLine: 2,
		},
		{
			name:   "glob that includes the main file",
			files:  map[string]string{"main.conf": "\ninclude *.conf;"},
			errMsg: `include nesting too deep: "%d/main.conf" includes itself`, errFile: "%d/main.conf", errLine: 2,
		},
		{
			name:  "32 levels are fine",
			files: chain(32),
			want:  "end;",
		},
		{
			name:   "33 levels are too deep",
			files:  chain(33),
			errMsg: "include nesting too deep", errFile: "%d/f32.conf", errLine: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			sub := func(s string) string { return strings.ReplaceAll(s, "%d", dir) }
			files := map[string]string{}
			for k, v := range tt.files {
				files[k] = sub(v)
			}
			writeTree(t, dir, files)
			var warns []warning
			opts := Options{Warn: func(file string, line int, msg string) {
				warns = append(warns, warning{file, line, msg})
			}}
			main := filepath.Join(dir, "main.conf")
			ds, err := ParseFile(main, opts)
			if tt.errMsg != "" {
				var ce *Error
				if !errors.As(err, &ce) {
					t.Fatalf("ParseFile = %s, %v; want *Error %q", render(ds), err, sub(tt.errMsg))
				}
				if ce.Msg != sub(tt.errMsg) || ce.File != sub(tt.errFile) || ce.Line != tt.errLine {
					t.Errorf("error = {%q %q %d}, want {%q %q %d}", ce.Msg, ce.File, ce.Line, sub(tt.errMsg), sub(tt.errFile), tt.errLine)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseFile: %v", err)
			}
			if got := render(ds); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if len(warns) != len(tt.warns) {
				t.Fatalf("warnings = %v, want %v", warns, tt.warns)
			}
			for i, w := range tt.warns {
				w.file = sub(w.file)
				if warns[i] != w {
					t.Errorf("warning %d = %v, want %v", i, warns[i], w)
				}
			}
		})
	}
}

// chain returns main.conf including f1.conf including ... fN.conf, which
// holds a single directive: N levels of include below the main file.
func chain(n int) map[string]string {
	files := map[string]string{"main.conf": "include f1.conf;"}
	for i := 1; i < n; i++ {
		files[fmt.Sprintf("f%d.conf", i)] = fmt.Sprintf("include f%d.conf;", i+1)
	}
	files[fmt.Sprintf("f%d.conf", n)] = "end;"
	return files
}

func TestIncludeKeepsPositions(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"main.conf":  "http {\n  include inc/x.conf;\n  after;\n}",
		"inc/x.conf": "\n\nx;",
	})
	main := filepath.Join(dir, "main.conf")
	ds, err := ParseFile(main, Options{})
	if err != nil {
		t.Fatal(err)
	}
	http := ds[0].Block
	if len(http) != 2 {
		t.Fatalf("got %s", render(ds))
	}
	if x := http[0]; x.File != filepath.Join(dir, "inc/x.conf") || x.Line != 3 {
		t.Errorf("x at %s:%d, want %s:3", x.File, x.Line, filepath.Join(dir, "inc/x.conf"))
	}
	if a := http[1]; a.File != main || a.Line != 3 {
		t.Errorf("after at %s:%d, want %s:3", a.File, a.Line, main)
	}
}

func TestParseRelativeMainName(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"x.conf": "x;"})
	t.Chdir(dir)
	ds, err := Parse("main.conf", []byte("include x.conf;"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].File != filepath.Join(dir, "x.conf") {
		t.Fatalf("got %s from %s, want x; from %s", render(ds), ds[0].File, filepath.Join(dir, "x.conf"))
	}
}

func TestParseFileMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nginx.conf")
	_, err := ParseFile(path, Options{})
	want := fmt.Sprintf(`open() "%s" failed (2: No such file or directory)`, path)
	if err == nil || err.Error() != want {
		t.Fatalf("ParseFile(missing) error = %v, want %q", err, want)
	}
}

func TestIncludeDirectory(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"d/x.conf": "x;"})
	_, err := Parse(filepath.Join(dir, "main.conf"), []byte("include d;"), Options{})
	want := fmt.Sprintf(`read() "%s" failed (21: Is a directory)`, filepath.Join(dir, "d"))
	var ce *Error
	if !errors.As(err, &ce) || ce.Msg != want || ce.Line != 1 {
		t.Fatalf("error = %v, want %q at line 1", err, want)
	}
}
