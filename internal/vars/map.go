package vars

import (
	"fmt"
	"strings"

	"github.com/wsgate/wsgate/internal/regex"
)

// MapEntry is one line of a `map` block as written.
type MapEntry struct {
	Key   string
	Value string
}

// MapSpec is a `map $source $result { ... }` block.
type MapSpec struct {
	Source    string // template text, e.g. "$http_upgrade"
	Result    string // variable name without '$'
	Default   string
	Hostnames bool
	Entries   []MapEntry
}

type compiledMap struct {
	src      *Template
	def      *Template
	exact    map[string]*Template
	hostname bool
	prefix   []wildcard // "*.example.com" / ".example.com": matched on the suffix
	suffix   []wildcard // "www.example.*": matched on the prefix
	regexes  []mapRegex
}

type wildcard struct {
	part string
	val  *Template
	dot  bool // ".example.com" also matches "example.com"
}

type mapRegex struct {
	re   *regex.Regexp
	val  *Template
	vars []int // per group, the variable its named capture sets, or -1
}

// RegexErrorLogger is told of a map regex whose match was cut short
// (see regex.MatchError); the map then yields its default, as nginx's.
type RegexErrorLogger interface {
	RegexError(err error)
}

// DeclareMap reserves the map's result variable so that other templates
// (and other maps) can refer to it before it is compiled; call the returned
// function once every variable of the snapshot is declared.
func (t *Table) DeclareMap(spec MapSpec) (compile func() error, err error) {
	m := &compiledMap{exact: map[string]*Template{}, hostname: spec.Hostnames}
	if _, err := t.DefineFunc(spec.Result, m.eval); err != nil {
		return nil, err
	}
	if err := m.compileRegexes(t, spec); err != nil {
		return nil, err
	}
	return func() error { return m.compile(t, spec) }, nil
}

// compileRegexes compiles the "~" and "~*" keys, in order, and declares
// the variables of their named captures, as nginx.
func (m *compiledMap) compileRegexes(t *Table, spec MapSpec) error {
	for _, e := range spec.Entries {
		if !strings.HasPrefix(e.Key, "~") {
			continue
		}
		expr, caseless := strings.CutPrefix(e.Key[1:], "*")
		re, err := regex.Compile(expr, caseless)
		if err != nil {
			return fmt.Errorf("invalid regex %q: %v", e.Key, err)
		}
		r := mapRegex{re: re}
		for _, name := range re.SubexpNames() {
			idx := -1
			if name != "" {
				if idx, err = t.DefineCapture(name); err != nil {
					return err
				}
			}
			r.vars = append(r.vars, idx)
		}
		m.regexes = append(m.regexes, r)
	}
	return nil
}

func (m *compiledMap) compile(t *Table, spec MapSpec) error {
	nre := 0
	var err error
	if m.src, err = t.Compile(spec.Source); err != nil {
		return err
	}
	if m.def, err = t.Compile(spec.Default); err != nil {
		return err
	}
	for _, e := range spec.Entries {
		val, err := t.Compile(e.Value)
		if err != nil {
			return err
		}
		key := e.Key
		if strings.HasPrefix(key, "~") {
			m.regexes[nre].val = val
			nre++
			continue
		}
		if strings.HasPrefix(key, "\\") {
			key = key[1:] // "\~" escapes a literal leading tilde, as nginx
		}
		key = strings.ToLower(key)
		if m.hostname {
			switch {
			case strings.HasPrefix(key, "*."):
				m.prefix = append(m.prefix, wildcard{part: key[1:], val: val})
				continue
			case strings.HasPrefix(key, "."):
				m.prefix = append(m.prefix, wildcard{part: key, val: val, dot: true})
				continue
			case strings.HasSuffix(key, ".*"):
				m.suffix = append(m.suffix, wildcard{part: key[:len(key)-1], val: val})
				continue
			}
		}
		if _, dup := m.exact[key]; dup {
			return fmt.Errorf("conflicting parameter %q", e.Key)
		}
		m.exact[key] = val
	}
	return nil
}

func (m *compiledMap) eval(c *Ctx) string {
	v := m.src.Eval(c)
	if m.hostname {
		v = strings.TrimSuffix(v, ".")
	}
	if val, ok := m.exact[strings.ToLower(v)]; ok {
		return val.Eval(c)
	}
	if m.hostname {
		lv := strings.ToLower(v)
		if val := longest(m.prefix, lv, true); val != nil {
			return val.Eval(c)
		}
		if val := longest(m.suffix, lv, false); val != nil {
			return val.Eval(c)
		}
	}
	for _, r := range m.regexes {
		sub, err := r.re.FindStringSubmatch(v)
		if err != nil {
			if l, ok := c.Warn.(RegexErrorLogger); ok {
				l.RegexError(err)
			}
			break
		}
		if sub != nil {
			c.Captures = append(c.Captures[:0], sub...)
			for i, idx := range r.vars {
				if idx >= 0 {
					c.Set(idx, sub[i])
				}
			}
			return r.val.Eval(c)
		}
	}
	return m.def.Eval(c)
}

// longest picks the most specific wildcard, as nginx's wildcard hashes do.
func longest(ws []wildcard, host string, suffix bool) *Template {
	var best *Template
	n := -1
	for _, w := range ws {
		ok := false
		if suffix {
			ok = strings.HasSuffix(host, w.part) || (w.dot && host == w.part[1:])
		} else {
			ok = strings.HasPrefix(host, w.part)
		}
		if ok && len(w.part) > n {
			best, n = w.val, len(w.part)
		}
	}
	return best
}
