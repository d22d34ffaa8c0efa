package conf

import (
	"bufio"
	"io"
	"strings"
)

// Dump writes the directives back as nginx-syntax text (used by `wsgate -T`), one directive per line, indented blocks, args re-quoted when needed.
func Dump(w io.Writer, ds []*Directive) error {
	bw := bufio.NewWriter(w)
	dump(bw, ds, 0)
	return bw.Flush() // bufio keeps the first write error
}

func dump(w *bufio.Writer, ds []*Directive, depth int) {
	indent := strings.Repeat("    ", depth)
	for _, d := range ds {
		w.WriteString(indent)
		w.WriteString(encode(d.Name, false))
		for i, a := range d.Args {
			w.WriteByte(' ')
			w.WriteString(encode(a, i < len(d.Quoted) && d.Quoted[i]))
		}
		if d.Block == nil {
			w.WriteString(";\n")
			continue
		}
		w.WriteString(" {\n")
		dump(w, d.Block, depth+1)
		w.WriteString(indent)
		w.WriteString("}\n")
	}
}

// encode returns text that lexes back to exactly s, keeping it unquoted
// when it was and when that is possible, so `~regex` stays a regex and
// `"~x"` stays a literal.
func encode(s string, quoted bool) string {
	if !quoted {
		if e := escape(s, 0); lexesTo(e, s) {
			return e
		}
	}
	q := byte('"')
	if strings.IndexByte(s, '"') >= 0 && strings.IndexByte(s, '\'') < 0 {
		q = '\''
	}
	return string(q) + escape(s, q) + string(q)
}

// escape writes s so the lexer's unescape restores it: inside quotes q, or
// bare when q is 0. A backslash is doubled only where it would otherwise
// start an escape, which keeps regexes like `\.` readable.
func escape(s string, q byte) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			if i+1 == len(s) || strings.IndexByte("\"'\\ntr\n\t\r", s[i+1]) >= 0 {
				b.WriteString(`\\`)
			} else {
				b.WriteByte('\\')
			}
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\r':
			b.WriteString(`\r`)
		case q != 0 && c == q, q == 0 && i == 0 && (c == '"' || c == '\''):
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// lexesTo reports whether e reads back as the single bare word s.
func lexesTo(e, s string) bool {
	if e == "" {
		return false
	}
	lx := newLexer("", []byte(e))
	tok, err := lx.next()
	if err != nil || tok.kind != tokWord || tok.quoted || tok.text != s {
		return false
	}
	end, err := lx.next()
	return err == nil && end.kind == tokEOF
}
