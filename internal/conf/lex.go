package conf

type tokKind int

const (
	tokEOF tokKind = iota
	tokWord
	tokSemi   // ;
	tokLBrace // {
	tokRBrace // }
)

type token struct {
	kind   tokKind
	text   string // unescaped value of a tokWord
	quoted bool
	line   int
}

// lexer splits one file into tokens. Line counts every '\n' consumed so far,
// including those inside quoted strings, so it always names the line the
// scanner stands on, as nginx's error messages do.
type lexer struct {
	file string
	src  []byte
	pos  int
	line int
}

func newLexer(file string, src []byte) *lexer {
	return &lexer{file: file, src: src, line: 1}
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n'
}

func (l *lexer) errAt(line int, msg string) *Error {
	return &Error{File: l.file, Line: line, Msg: msg}
}

// advance consumes one byte, keeping the line count.
func (l *lexer) advance() {
	if l.src[l.pos] == '\n' {
		l.line++
	}
	l.pos++
}

func (l *lexer) next() (token, error) {
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		if isSpace(c) {
			l.advance()
			continue
		}
		if c != '#' {
			break
		}
		// A '#' is a comment only where a token would start; inside a
		// word it is an ordinary character.
		for l.pos < len(l.src) && l.src[l.pos] != '\n' {
			l.pos++
		}
	}
	if l.pos >= len(l.src) {
		return token{kind: tokEOF, line: l.line}, nil
	}
	line := l.line
	switch c := l.src[l.pos]; c {
	case ';':
		l.pos++
		return token{kind: tokSemi, line: line}, nil
	case '{':
		l.pos++
		return token{kind: tokLBrace, line: line}, nil
	case '}':
		l.pos++
		return token{kind: tokRBrace, line: line}, nil
	case '"', '\'':
		return l.quoted(c)
	}
	return l.bare(), nil
}

// quoted reads a string between q quotes. The closing quote must be
// followed by a separator; ')' is allowed too because nginx lets
// `if ($x = 'y')` through, and it then starts a word of its own.
func (l *lexer) quoted(q byte) (token, error) {
	line := l.line
	l.pos++
	start := l.pos
	for {
		if l.pos >= len(l.src) {
			return token{}, l.errAt(l.line, `unexpected end of file, expecting ";" or "}"`)
		}
		c := l.src[l.pos]
		if c == q {
			break
		}
		l.advance()
		if c == '\\' && l.pos < len(l.src) {
			l.advance()
		}
	}
	raw := l.src[start:l.pos]
	l.pos++
	if l.pos < len(l.src) {
		c := l.src[l.pos]
		if !isSpace(c) && c != ';' && c != '{' && c != '}' && c != ')' {
			return token{}, l.errAt(l.line, `unexpected "`+string(c)+`"`)
		}
	}
	return token{kind: tokWord, text: unescape(raw), quoted: true, line: line}, nil
}

// bare reads an unquoted word. A backslash protects the next byte from
// ending the word (and stays in the value unless it forms one of the escapes
// unescape knows). "${" opens a variable name whose "}" belongs to the word
// rather than closing a block.
func (l *lexer) bare() token {
	line := l.line
	start := l.pos
	dollar, brace := false, false
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == '\\':
			l.advance()
			if l.pos < len(l.src) {
				l.advance()
			}
			dollar = false
			continue
		case c == '$':
			dollar = true
			l.pos++
			continue
		case c == '{' && dollar:
			brace = true
		case c == '}' && brace:
			brace = false
		case isSpace(c) || c == ';' || c == '{' || c == '}':
			return token{kind: tokWord, text: unescape(l.src[start:l.pos]), line: line}
		}
		dollar = false
		l.pos++
	}
	return token{kind: tokWord, text: unescape(l.src[start:l.pos]), line: line}
}

// unescape applies nginx's escapes: \" \' \\ stand for the character,
// \n \t \r for the control character, and any other backslash is kept.
func unescape(raw []byte) string {
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '\\' && i+1 < len(raw) {
			switch raw[i+1] {
			case '"', '\'', '\\':
				i++
				c = raw[i]
			case 'n':
				i++
				c = '\n'
			case 't':
				i++
				c = '\t'
			case 'r':
				i++
				c = '\r'
			}
		}
		out = append(out, c)
	}
	return string(out)
}
