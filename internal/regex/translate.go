package regex

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Word and space classes as PCRE has them for nginx (8-bit, C locale):
// ASCII only, and \s includes the vertical tab.
const (
	wordSet  = `0-9A-Za-z_`
	spaceSet = `\t\n\x0B\f\r `
	wordOut  = `[` + wordSet + `]`
	nwordOut = `[^` + wordSet + `]`
	spaceOut = `[` + spaceSet + `]`
	nspcOut  = `[^` + spaceSet + `]`
	// btWordB is \b in the backtracking engine, whose own \b knows
	// Unicode letters as word characters.
	btWordB  = `(?:(?<=` + wordOut + `)(?!` + wordOut + `)|(?<!` + wordOut + `)(?=` + wordOut + `))`
	btNWordB = `(?:(?<=` + wordOut + `)(?=` + wordOut + `)|(?<!` + wordOut + `)(?!` + wordOut + `))`
)

// posixSets are the POSIX classes spelled out for the backtracking
// engine, which does not know [:name:].
var posixSets = map[string]string{
	"alpha": `A-Za-z`, "digit": `0-9`, "alnum": `0-9A-Za-z`, "upper": `A-Z`, "lower": `a-z`,
	"space": spaceSet, "blank": `\t `, "xdigit": `0-9A-Fa-f`, "word": wordSet,
	"cntrl": `\x00-\x1F\x7F`, "print": `\x20-\x7E`, "graph": `\x21-\x7E`,
	"punct": `!-/:-@\[-` + "`" + `{-~`, "ascii": `\x00-\x7F`,
}

// translation is a PCRE pattern rewritten for both Go engines.
type translation struct {
	re2, bt strings.Builder
	needBT  bool   // only the backtracking engine can run it
	dollar  bool   // has $ or \Z: a subject ending in "\n" needs the backtracking engine
	ungreed bool   // (?U), which only RE2 knows
	groups  int    // capturing groups so far
	noBT    string // a construct only RE2 knows
}

// refusal is a construct no Go engine runs.
type refusal struct{ construct string }

func (r refusal) Error() string {
	return r.construct + " is not supported (no Go regex engine runs it)"
}

func (t *translation) emit(re2, bt string) {
	t.re2.WriteString(re2)
	t.bt.WriteString(bt)
}

func (t *translation) both(s string) { t.emit(s, s) }

// translate rewrites a PCRE pattern, as nginx compiles it (no UTF mode,
// so classes are ASCII), for RE2 and for the backtracking engine.
func translate(p string) (*translation, error) {
	t := &translation{}
	quant := false // the last token may take a quantifier suffix
	for i := 0; i < len(p); {
		c := p[i]
		wasQuant := false
		switch {
		case c == '\\':
			n, err := t.escape(p, i, false)
			if err != nil {
				return nil, err
			}
			i = n
		case c == '[':
			n, err := t.class(p, i)
			if err != nil {
				return nil, err
			}
			i = n
		case c == '(':
			n, err := t.group(p, i)
			if err != nil {
				return nil, err
			}
			i = n
		case c == '$':
			t.dollar = true
			t.both("$")
			i++
		case c == '*' || c == '+' || c == '?':
			switch {
			case quant && c == '+':
				t.needBT = true // possessive
			case quant && c == '?': // lazy
			default:
				wasQuant = true
			}
			t.both(p[i : i+1])
			i++
		case c == '{':
			if m := repeatRe.FindString(p[i:]); m != "" {
				if i+len(m) < len(p) && p[i+len(m)] == '+' {
					t.needBT = true
					t.emit(m, m+"+")
					i += len(m) + 1
					break
				}
				t.both(m)
				wasQuant = true
				i += len(m)
				break
			}
			t.both(`\{`)
			i++
		default:
			t.both(p[i : i+1])
			i++
		}
		quant = wasQuant
	}
	if t.ungreed && t.needBT {
		return nil, refusal{"(?U) together with look-around, back-references or atomic groups"}
	}
	if t.noBT != "" && t.needBT {
		return nil, refusal{t.noBT + " together with look-around, back-references or atomic groups"}
	}
	return t, nil
}

var (
	repeatRe = regexp.MustCompile(`^\{[0-9]+(,[0-9]*)?\}`)
	nameRe   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*`)
	flagsRe  = regexp.MustCompile(`^\(\?([A-Za-z^-]*)([:)])`)
)

// group translates the opening of a group at p[i] == '('.
func (t *translation) group(p string, i int) (int, error) {
	rest := p[i:]
	switch {
	case strings.HasPrefix(rest, "(*"):
		return 0, refusal{"(*VERB) " + strings.SplitN(rest, ")", 2)[0] + ")"}
	case !strings.HasPrefix(rest, "(?"):
		t.groups++
		t.both("(")
		return i + 1, nil
	case strings.HasPrefix(rest, "(?#"):
		end := strings.IndexByte(rest, ')')
		if end < 0 {
			return 0, fmt.Errorf("missing ) after (?# comment")
		}
		return i + end + 1, nil
	case strings.HasPrefix(rest, "(?:"):
		t.both("(?:")
		return i + 3, nil
	case strings.HasPrefix(rest, "(?<=") || strings.HasPrefix(rest, "(?<!"):
		t.needBT = true
		t.both(rest[:4])
		return i + 4, nil
	case strings.HasPrefix(rest, "(?=") || strings.HasPrefix(rest, "(?!") || strings.HasPrefix(rest, "(?>"):
		t.needBT = true
		t.both(rest[:3])
		return i + 3, nil
	case strings.HasPrefix(rest, "(?P<"), strings.HasPrefix(rest, "(?<"), strings.HasPrefix(rest, "(?'"):
		open := strings.Index(rest, "<")
		if strings.HasPrefix(rest, "(?'") {
			open = 2
		}
		name := nameRe.FindString(rest[open+1:])
		closer := byte('>')
		if rest[open] == '\'' {
			closer = '\''
		}
		end := open + 1 + len(name)
		if name == "" || end >= len(rest) || rest[end] != closer {
			return 0, fmt.Errorf("invalid group name at %q", rest)
		}
		t.groups++
		t.emit("(?P<"+name+">", "(?<"+name+">")
		return i + end + 1, nil
	case strings.HasPrefix(rest, "(?P="):
		name := nameRe.FindString(rest[4:])
		if name == "" || len(rest) <= 4+len(name) || rest[4+len(name)] != ')' {
			return 0, fmt.Errorf("invalid back-reference at %q", rest)
		}
		t.needBT = true
		t.emit("", `\k<`+name+`>`)
		return i + 4 + len(name) + 1, nil
	case strings.HasPrefix(rest, "(?P>"), strings.HasPrefix(rest, "(?&"), strings.HasPrefix(rest, "(?R"),
		len(rest) > 2 && (rest[2] >= '0' && rest[2] <= '9' || (rest[2] == '+' || rest[2] == '-') && len(rest) > 3 && rest[3] >= '0' && rest[3] <= '9'):
		end := strings.IndexByte(rest, ')')
		if end < 0 {
			end = len(rest) - 1
		}
		return 0, refusal{"recursion " + rest[:end+1]}
	case strings.HasPrefix(rest, "(?C"):
		return 0, refusal{"callout (?C...)"}
	case strings.HasPrefix(rest, "(?|"):
		return 0, refusal{"branch reset (?|...)"}
	case strings.HasPrefix(rest, "(?("):
		if strings.HasPrefix(rest, "(?(R") || strings.HasPrefix(rest, "(?(DEFINE)") {
			return 0, refusal{"recursion condition " + rest[:4]}
		}
		t.needBT = true
		t.both("(?")
		return i + 2, nil
	}
	m := flagsRe.FindStringSubmatch(rest)
	if m == nil {
		return 0, fmt.Errorf("unrecognized character after (? at %q", rest)
	}
	for _, f := range m[1] {
		switch f {
		case 'i', 'm', 's', '-':
		case 'x', 'n':
			t.needBT = true
		case 'U':
			t.ungreed = true
		default:
			return 0, refusal{"option (?" + string(f) + ")"}
		}
	}
	t.both(m[0])
	return i + len(m[0]), nil
}

// escape translates the escape at p[i] == '\\', inside a class or not.
func (t *translation) escape(p string, i int, inClass bool) (int, error) {
	if i+1 >= len(p) {
		return 0, fmt.Errorf("\\ at end of pattern")
	}
	c := p[i+1]
	n := i + 2
	switch c {
	case 'd':
		t.emit(`\d`, pick(inClass, `0-9`, `[0-9]`))
	case 'D':
		t.emit(`\D`, pick(inClass, `\D`, `[^0-9]`))
	case 'w':
		t.emit(`\w`, pick(inClass, wordSet, wordOut))
	case 'W':
		t.emit(`\W`, pick(inClass, `\W`, nwordOut))
	case 's':
		t.both(pick(inClass, spaceSet, spaceOut))
	case 'S':
		t.emit(pick(inClass, `[:^space:]`, nspcOut), pick(inClass, `\S`, nspcOut))
	case 'h':
		t.emit(pick(inClass, `\t \x{A0}`, `[\t \x{A0}]`), pick(inClass, `\t \u00A0`, `[\t \u00A0]`))
	case 'v':
		t.emit(pick(inClass, `\n\x0B\f\r\x{85}`, `[\n\x0B\f\r\x{85}]`), pick(inClass, `\n\x0B\f\r\u0085`, `[\n\x0B\f\r\u0085]`))
	case 'H', 'V', 'R', 'N', 'X', 'b', 'B':
		if inClass {
			if c == 'b' {
				t.both(`\x08`)
				break
			}
			return 0, refusal{`\` + string(c) + " inside a character class"}
		}
		switch c {
		case 'H':
			t.emit(`[^\t \x{A0}]`, `[^\t \u00A0]`)
		case 'V':
			t.emit(`[^\n\x0B\f\r\x{85}]`, `[^\n\x0B\f\r\u0085]`)
		case 'N':
			t.both(`[^\n]`)
		case 'R':
			t.needBT = true
			t.emit("", `(?>\r\n|[\n\x0B\f\r\u0085])`)
		case 'X':
			t.needBT = true
			t.emit("", `\X`)
		case 'b':
			t.emit(`\b`, btWordB)
		case 'B':
			t.emit(`\B`, btNWordB)
		}
	case 'A':
		t.both(`\A`)
	case 'G':
		t.both(`\A`) // one match from the start: \G is the subject's start
	case 'z':
		t.both(`\z`)
	case 'Z':
		t.dollar = true
		t.emit(`(?-m:$)`, `\Z`)
	case 'K':
		return 0, refusal{`\K`}
	case 'C':
		return 0, refusal{`\C`}
	case 'Q':
		end := strings.Index(p[n:], `\E`)
		lit := p[n:]
		next := len(p)
		if end >= 0 {
			lit, next = p[n:n+end], n+end+2
		}
		for j := 0; j < len(lit); j++ {
			t.both(quoteByte(lit[j]))
		}
		return next, nil
	case 'E':
	case 'x':
		return t.hexEscape(p, n)
	case 'o':
		end := strings.IndexByte(p[n:], '}')
		if n >= len(p) || p[n] != '{' || end < 0 {
			return 0, fmt.Errorf(`invalid \o escape`)
		}
		v, err := strconv.ParseUint(p[n+1:n+end], 8, 32)
		if err != nil {
			return 0, fmt.Errorf(`invalid \o escape`)
		}
		return n + end + 1, t.char(rune(v))
	case 'c':
		if n >= len(p) {
			return 0, fmt.Errorf(`\c at end of pattern`)
		}
		return n + 1, t.char(rune(strings.ToUpper(p[n : n+1])[0] ^ 0x40))
	case 'a':
		t.both(`\x07`)
	case 'e':
		t.both(`\x1B`)
	case 'f', 'n', 'r', 't':
		t.both(p[i:n])
	case 'g':
		return t.gRef(p, n)
	case 'k':
		return t.kRef(p, n)
	case 'p', 'P':
		end := n + 1
		if n < len(p) && p[n] == '{' {
			end = n + strings.IndexByte(p[n:], '}') + 1
			if end <= n {
				return 0, fmt.Errorf(`invalid \p escape`)
			}
		}
		t.both(p[i:min(end, len(p))])
		return min(end, len(p)), nil
	case '0':
		j := n
		for j < len(p) && j < n+2 && p[j] >= '0' && p[j] <= '7' {
			j++
		}
		v, _ := strconv.ParseUint("0"+p[n:j], 8, 32)
		return j, t.char(rune(v))
	default:
		if c >= '1' && c <= '9' {
			return t.digits(p, i, inClass)
		}
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' {
			return 0, fmt.Errorf(`unrecognized character follows \ in \%c`, c)
		}
		t.both(quoteByte(c))
	}
	return n, nil
}

func pick(inClass bool, in, out string) string {
	if inClass {
		return in
	}
	return out
}

// quoteByte writes one byte as a literal both engines read alike.
func quoteByte(b byte) string {
	switch {
	case b >= 0x80:
		return string([]byte{b}) // part of a UTF-8 sequence, literal to both
	case b >= '0' && b <= '9' || b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b == '_':
		return string(b)
	case b < 0x20 || b == 0x7F || b == ' ' || b == '#':
		return fmt.Sprintf(`\x%02X`, b)
	}
	return `\` + string(b)
}

// char emits one code point as an escape both engines read.
func (t *translation) char(r rune) error {
	if r > 0xFFFF {
		return fmt.Errorf("character value \\x{%X} is too large", r)
	}
	if r < 0x80 {
		t.both(quoteByte(byte(r)))
		return nil
	}
	t.emit(fmt.Sprintf(`\x{%X}`, r), fmt.Sprintf(`\u%04X`, r))
	return nil
}

func (t *translation) hexEscape(p string, n int) (int, error) {
	if n < len(p) && p[n] == '{' {
		end := strings.IndexByte(p[n:], '}')
		if end < 0 {
			return 0, fmt.Errorf(`missing } in \x{...}`)
		}
		v, err := strconv.ParseUint(p[n+1:n+end], 16, 32)
		if err != nil {
			return 0, fmt.Errorf(`invalid \x{...} escape`)
		}
		return n + end + 1, t.char(rune(v))
	}
	j := n
	for j < len(p) && j < n+2 && isHex(p[j]) {
		j++
	}
	v, _ := strconv.ParseUint("0"+p[n:j], 16, 32)
	return j, t.char(rune(v))
}

func isHex(b byte) bool {
	return b >= '0' && b <= '9' || b >= 'a' && b <= 'f' || b >= 'A' && b <= 'F'
}

// digits handles \1..\9 and longer numbers: a back-reference outside a
// class when below 10 or at most the groups so far, else an octal escape.
func (t *translation) digits(p string, i int, inClass bool) (int, error) {
	j := i + 1
	for j < len(p) && p[j] >= '0' && p[j] <= '9' {
		j++
	}
	num, _ := strconv.Atoi(p[i+1 : j])
	if !inClass && (num < 10 || num <= t.groups) {
		t.backref(strconv.Itoa(num))
		return j, nil
	}
	k := i + 1
	for k < len(p) && k < i+4 && p[k] >= '0' && p[k] <= '7' {
		k++
	}
	if k == i+1 {
		return 0, fmt.Errorf(`invalid escape \%c`, p[i+1])
	}
	v, _ := strconv.ParseUint(p[i+1:k], 8, 32)
	return k, t.char(rune(v))
}

func (t *translation) backref(ref string) {
	t.needBT = true
	t.emit("", `\k<`+ref+`>`)
}

// gRef handles \g: \gN, \g{N}, \g{-N}, \g{name} are back-references;
// \g<...> and \g'...' are subroutine calls, which are refused.
func (t *translation) gRef(p string, n int) (int, error) {
	if n < len(p) && (p[n] == '<' || p[n] == '\'') {
		return 0, refusal{`subroutine call \g` + string(p[n])}
	}
	ref, next := "", n
	if n < len(p) && p[n] == '{' {
		end := strings.IndexByte(p[n:], '}')
		if end < 0 {
			return 0, fmt.Errorf(`missing } in \g{...}`)
		}
		ref, next = p[n+1:n+end], n+end+1
	} else {
		j := n
		if j < len(p) && p[j] == '-' {
			j++
		}
		for j < len(p) && p[j] >= '0' && p[j] <= '9' {
			j++
		}
		ref, next = p[n:j], j
	}
	if v, err := strconv.Atoi(ref); err == nil {
		if v < 0 {
			v = t.groups + 1 + v
		}
		if v <= 0 {
			return 0, fmt.Errorf(`invalid back-reference \g%s`, ref)
		}
		ref = strconv.Itoa(v)
	} else if nameRe.FindString(ref) != ref {
		return 0, fmt.Errorf(`invalid back-reference \g{%s}`, ref)
	}
	t.backref(ref)
	return next, nil
}

// kRef handles \k<name>, \k'name' and \k{name}.
func (t *translation) kRef(p string, n int) (int, error) {
	closers := map[byte]byte{'<': '>', '\'': '\'', '{': '}'}
	if n >= len(p) || closers[p[n]] == 0 {
		return 0, fmt.Errorf(`\k is not followed by a name`)
	}
	name := nameRe.FindString(p[n+1:])
	end := n + 1 + len(name)
	if name == "" || end >= len(p) || p[end] != closers[p[n]] {
		return 0, fmt.Errorf(`invalid \k back-reference`)
	}
	t.backref(name)
	return end + 1, nil
}

// class translates a character class at p[i] == '['.
func (t *translation) class(p string, i int) (int, error) {
	t.both("[")
	j := i + 1
	if j < len(p) && p[j] == '^' {
		t.both("^")
		j++
	}
	first := true
	for j < len(p) {
		c := p[j]
		switch {
		case c == ']' && !first:
			t.both("]")
			return j + 1, nil
		case c == '\\':
			n, err := t.escape(p, j, true)
			if err != nil {
				return 0, err
			}
			j = n
		case c == '[' && j+1 < len(p) && p[j+1] == ':':
			end := strings.Index(p[j:], ":]")
			if end < 0 {
				t.both(`\[`)
				j++
				break
			}
			name := p[j+2 : j+end]
			neg := strings.HasPrefix(name, "^")
			set, ok := posixSets[strings.TrimPrefix(name, "^")]
			if !ok {
				return 0, fmt.Errorf("unknown POSIX class name [:%s:]", name)
			}
			if neg {
				t.noBT = "negated POSIX class [:" + name + ":]"
				set = ""
			}
			t.emit(p[j:j+end+2], set)
			j += end + 2
		default:
			if c == '-' {
				t.both("-") // a range, or literal where PCRE reads it so
			} else {
				t.both(quoteByte(c))
			}
			j++
		}
		first = false
	}
	return 0, fmt.Errorf("missing terminating ] for character class")
}
