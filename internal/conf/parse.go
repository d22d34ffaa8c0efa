package conf

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// Options tunes parsing. The zero value is ready to use.
type Options struct {
	// Warn, when non-nil, receives non-fatal notices (e.g. a skipped mime.types include).
	Warn func(file string, line int, msg string)
}

// maxIncludeDepth bounds include nesting below the main file.
const maxIncludeDepth = 32

// filesystem is what the parser reads includes through; tests swap it to
// keep arbitrary input away from the real disk.
type filesystem struct {
	readFile func(name string) ([]byte, error)
	glob     func(pattern string) ([]string, error)
}

var osFS = filesystem{readFile: os.ReadFile, glob: filepath.Glob}

// ParseFile reads path and every file it includes and returns the top-level directives with includes expanded in place.
func ParseFile(path string, opts Options) ([]*Directive, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Msg: sysFailure(path, err)}
	}
	return Parse(path, src, opts)
}

// Parse parses src as if it were the file named name (includes resolve relative to filepath.Dir(name)).
func Parse(name string, src []byte, opts Options) ([]*Directive, error) {
	return parseWith(name, src, opts, osFS)
}

func parseWith(name string, src []byte, opts Options, fsys filesystem) ([]*Directive, error) {
	p := &parser{mainDir: absPath(filepath.Dir(name)), opts: opts, fs: fsys}
	return p.file(name, absPath(name), src)
}

// absPath anchors relative include paths so that error messages and
// Directive.File name the file unambiguously, as nginx's conf prefix does.
func absPath(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return filepath.Clean(path)
}

type parser struct {
	mainDir string
	opts    Options
	fs      filesystem
	// open lists the files being parsed, outermost first, to catch cycles.
	open []string
}

func (p *parser) file(name, abs string, src []byte) ([]*Directive, error) {
	p.open = append(p.open, abs)
	defer func() { p.open = p.open[:len(p.open)-1] }()
	return p.block(newLexer(name, src), false)
}

// statement reads a name and its arguments up to the token that ends them.
// d is nil when that token came first.
func statement(lx *lexer) (d *Directive, end token, err error) {
	for {
		tok, err := lx.next()
		if err != nil {
			return nil, tok, err
		}
		if tok.kind != tokWord {
			return d, tok, nil
		}
		if d == nil {
			d = &Directive{Name: tok.text, File: lx.file, Line: tok.line}
			continue
		}
		d.Args = append(d.Args, tok.text)
		d.Quoted = append(d.Quoted, tok.quoted)
	}
}

// block reads directives until the '}' closing a nested block, or the end
// of the file at top level. The result is never nil, so an empty block
// still reads as a block.
func (p *parser) block(lx *lexer, nested bool) ([]*Directive, error) {
	ds := []*Directive{}
	for {
		d, end, err := statement(lx)
		if err != nil {
			return nil, err
		}
		switch end.kind {
		case tokEOF:
			if d != nil {
				return nil, lx.errAt(end.line, `unexpected end of file, expecting ";" or "}"`)
			}
			if nested {
				return nil, lx.errAt(end.line, `unexpected end of file, expecting "}"`)
			}
			return ds, nil
		case tokRBrace:
			if d != nil || !nested {
				return nil, lx.errAt(end.line, `unexpected "}"`)
			}
			return ds, nil
		case tokSemi:
			if d == nil {
				return nil, lx.errAt(end.line, `unexpected ";"`)
			}
			if d.Name == "include" {
				inc, err := p.include(d)
				if err != nil {
					return nil, err
				}
				ds = append(ds, inc...)
				continue
			}
		case tokLBrace:
			if d == nil {
				return nil, lx.errAt(end.line, `unexpected "{"`)
			}
			if d.Name == "include" {
				return nil, lx.errAt(end.line, `directive "include" is not terminated by ";"`)
			}
			if d.Block, err = p.block(lx, true); err != nil {
				return nil, err
			}
		}
		ds = append(ds, d)
	}
}

// include returns the directives of the files d names. Relative paths
// start from the main file's directory, not the including file's, like
// nginx's conf prefix.
func (p *parser) include(d *Directive) ([]*Directive, error) {
	if len(d.Args) != 1 {
		return nil, Errorf(d, `invalid number of arguments in "include" directive`)
	}
	path := filepath.Clean(d.Args[0])
	if !filepath.IsAbs(path) {
		path = filepath.Join(p.mainDir, path)
	}
	isGlob := strings.ContainsAny(path, "*?[")
	files := []string{path}
	if isGlob {
		m, err := p.fs.glob(path)
		if err != nil {
			return nil, Errorf(d, `glob() "%s" failed (%v)`, path, err)
		}
		files = visible(m, path)
	}
	var out []*Directive
	for _, f := range files {
		if slices.Contains(p.open, f) {
			return nil, Errorf(d, `include nesting too deep: "%s" includes itself`, f)
		}
		if len(p.open) > maxIncludeDepth {
			return nil, Errorf(d, "include nesting too deep")
		}
		src, err := p.fs.readFile(f)
		if err != nil {
			// nginx configs routinely include mime.types, which only matters
			// for serving files; a proxy can do without it.
			if !isGlob && filepath.Base(f) == "mime.types" && errors.Is(err, fs.ErrNotExist) {
				if p.opts.Warn != nil {
					p.opts.Warn(d.File, d.Line, fmt.Sprintf(`skipping missing "%s" include (static files get default_type)`, f))
				}
				continue
			}
			return nil, Errorf(d, "%s", sysFailure(f, err))
		}
		ds, err := p.file(f, f, src)
		if err != nil {
			return nil, err
		}
		out = append(out, ds...)
	}
	return out, nil
}

// visible sorts glob matches and drops dot files the pattern did not ask
// for explicitly, as glob(3), which nginx uses, does.
func visible(matches []string, pattern string) []string {
	slices.Sort(matches)
	if strings.HasPrefix(filepath.Base(pattern), ".") {
		return matches
	}
	return slices.DeleteFunc(matches, func(m string) bool {
		return strings.HasPrefix(filepath.Base(m), ".")
	})
}

// sysFailure words a failed system call the way nginx logs one:
// `open() "/path" failed (2: No such file or directory)`.
func sysFailure(path string, err error) string {
	op := "open"
	var pe *fs.PathError
	if errors.As(err, &pe) {
		op, err = pe.Op, pe.Err
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		msg := errno.Error()
		if msg != "" {
			msg = strings.ToUpper(msg[:1]) + msg[1:]
		}
		return fmt.Sprintf(`%s() "%s" failed (%d: %s)`, op, path, int(errno), msg)
	}
	return fmt.Sprintf(`%s() "%s" failed (%v)`, op, path, err)
}
