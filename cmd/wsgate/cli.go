package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// cliFlag is one command-line option: nginx's one-letter name beside a
// GNU-style long one. The same table drives parsing, --help, the man page
// and shell completion, so they cannot disagree.
type cliFlag struct {
	short, long string
	arg         string // the value's name in help; "" for a switch
	help        string
	str         *string
	strs        *[]string // a repeatable option
	b           *bool
	hidden      bool // parsed, but left out of help, man page and completion
}

// takesValue reports whether the option reads an argument.
func (f cliFlag) takesValue() bool { return f.str != nil || f.strs != nil }

// mainFlags is the option table of `wsgate`, bound to o.
func mainFlags(o *options) []cliFlag {
	return []cliFlag{
		{short: "c", long: "conf", arg: "FILE", str: &o.conf,
			help: "configuration file (default " + defaultConfPath + " if it exists, else the embedded demo); a relative FILE is under --prefix when one is given"},
		{short: "p", long: "prefix", arg: "DIR", str: &o.prefix,
			help: "prefix for relative log, pid and root paths (default: the configuration file's directory)"},
		{short: "g", long: "global", arg: "DIRECTIVES", str: &o.globals,
			help: "main-level directives read before the file, e.g. \"worker_processes 2;\""},
		{short: "e", long: "error-log", arg: "FILE", str: &o.errLog,
			help: "error log used when the configuration names none (default logs/error.log)"},
		{short: "t", long: "test", b: &o.test,
			help: "test the configuration and exit"},
		{short: "T", long: "dump", b: &o.dump,
			help: "test the configuration, print it (secrets shown as <redacted>) and exit"},
		{short: "q", long: "quiet", b: &o.quiet,
			help: "suppress warnings and success lines while testing"},
		{short: "s", long: "signal", arg: "SIGNAL", str: &o.signal,
			help: "send SIGNAL to the running instance through its pid file: stop, quit, reopen, reload, upgrade"},
		{short: "v", long: "version", b: &o.version,
			help: "print the version and exit"},
		{short: "V", long: "build-info", b: &o.versionLong,
			help: "print the version, commit, commit time and Go version and exit"},
		{short: "h", long: "help", b: &o.help,
			help: "print this help and exit"},
		{long: "man", b: &o.man, hidden: true, help: "print the wsgate(8) manual page as roff"},
		{long: "completion", arg: "SHELL", str: &o.completion, hidden: true, help: "print a completion script (bash)"},
	}
}

// stringList is a flag.Value that appends every occurrence.
type stringList struct{ p *[]string }

func (s stringList) String() string {
	if s.p == nil {
		return ""
	}
	return strings.Join(*s.p, ",")
}

func (s stringList) Set(v string) error { *s.p = append(*s.p, v); return nil }

// parseFlags parses args against table. Beside Go's `-c FILE`,
// `--conf FILE` and `--conf=FILE` it accepts nginx's grouped forms:
// `-tq` and `-cFILE`. Errors are printed to stderr with a pointer to
// --help; the returned error is only for the exit status.
func parseFlags(name string, table []cliFlag, args []string, stderr io.Writer) ([]string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	for _, f := range table {
		for _, n := range []string{f.short, f.long} {
			if n == "" {
				continue
			}
			switch {
			case f.strs != nil:
				fs.Var(stringList{f.strs}, n, f.help)
			case f.str != nil:
				fs.StringVar(f.str, n, *f.str, f.help)
			default:
				fs.BoolVar(f.b, n, *f.b, f.help)
			}
		}
	}
	if err := fs.Parse(expandGrouped(table, args)); err != nil {
		fmt.Fprintf(stderr, "%s: %v\nTry '%s --help' for more information.\n", name, err, name)
		return nil, err
	}
	return fs.Args(), nil
}

// expandGrouped rewrites nginx's grouped short options (`-tq`, `-cFILE`,
// `-sreload`) into separate arguments; everything else passes unchanged.
// Option values are never expanded, and parsing stops, as Go's flag
// package does, at the first argument that is not an option.
func expandGrouped(table []cliFlag, args []string) []string {
	byName := map[string]cliFlag{}
	short := map[string]cliFlag{}
	for _, f := range table {
		if f.short != "" {
			short[f.short] = f
			byName[f.short] = f
		}
		byName[f.long] = f
	}
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if _, ok := short["h"]; ok && a == "-?" {
			a = "-h" // nginx's spelling of help
		}
		if a == "--" || len(a) < 2 || a[0] != '-' {
			return append(out, args[i:]...)
		}
		name := strings.TrimLeft(a, "-")
		f, known := byName[name]
		if known || strings.Contains(name, "=") || strings.HasPrefix(a, "--") || len(name) < 2 {
			out = append(out, a)
			if known && f.takesValue() && i+1 < len(args) {
				i++
				out = append(out, args[i])
			}
			continue
		}
		out = append(out, splitGroup(short, name)...)
	}
	return out
}

// splitGroup splits `tq` into -t -q and `cFILE` into -c FILE; an unknown
// letter leaves the whole word for the parser to refuse.
func splitGroup(short map[string]cliFlag, body string) []string {
	var out []string
	for j := 0; j < len(body); j++ {
		f, ok := short[body[j:j+1]]
		if !ok {
			return []string{"-" + body}
		}
		out = append(out, "-"+f.short)
		if f.takesValue() {
			if rest := body[j+1:]; rest != "" {
				out = append(out, rest)
			}
			return out
		}
	}
	return out
}

// usageLine is the name column of one option in --help.
func usageLine(f cliFlag) string {
	var names []string
	if f.short != "" {
		names = append(names, "-"+f.short)
	}
	if f.long != "" {
		names = append(names, "--"+f.long)
	}
	s := strings.Join(names, ", ")
	if f.short == "" {
		s = "    " + s
	}
	if f.arg != "" {
		s += " " + f.arg
	}
	return s
}

// helpText renders --help from a command's page and option table.
func helpText(p page, table []cliFlag) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: %s\n\n%s\n\nOptions:\n", strings.Join(p.synopsis, "\n       "), wrap(p.summary, 76, ""))
	for _, f := range table {
		if f.hidden {
			continue
		}
		fmt.Fprintf(&b, "  %-26s %s\n", usageLine(f), wrap(f.help, 48, strings.Repeat(" ", 29)))
	}
	for _, s := range p.sections {
		fmt.Fprintf(&b, "\n%s:\n", s.title)
		for _, l := range s.lines {
			if l == "" {
				b.WriteString("\n")
				continue
			}
			fmt.Fprintf(&b, "  %s\n", l)
		}
	}
	return b.String()
}

// wrap breaks s into lines of at most width characters, indenting the
// continuation lines.
func wrap(s string, width int, indent string) string {
	var b strings.Builder
	n := 0
	for i, w := range strings.Fields(s) {
		if i > 0 && n+1+len(w) > width {
			b.WriteString("\n" + indent)
			n = 0
		} else if i > 0 {
			b.WriteByte(' ')
			n++
		}
		b.WriteString(w)
		n += len(w)
	}
	return b.String()
}
