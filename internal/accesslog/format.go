package accesslog

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/vars"
)

// Escape is a log_format escape= mode.
type Escape int

// The escape modes of log_format.
const (
	// EscapeDefault writes `"`, `\`, control bytes and bytes >= 0x7f as
	// \xHH, and a missing (empty) value as "-".
	EscapeDefault Escape = iota
	// EscapeJSON escapes as a JSON string body; a missing value is empty.
	EscapeJSON
	// EscapeNone copies values as they are; a missing value is empty.
	EscapeNone
)

// ParseEscape maps the value of escape= ("default", "json", "none").
func ParseEscape(s string) (Escape, error) {
	switch s {
	case "default":
		return EscapeDefault, nil
	case "json":
		return EscapeJSON, nil
	case "none":
		return EscapeNone, nil
	}
	return 0, fmt.Errorf("unknown log format escaping %q", s)
}

// CombinedText is nginx's predefined "combined" format.
const CombinedText = `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"`

// Format is a compiled log_format. It is immutable and safe for concurrent
// use; it is bound to the vars.Table it was compiled with, so it must only
// render Ctxs reset against that table.
type Format struct {
	esc Escape
	ops []op
}

type opKind uint8

// The op kinds past opVar are nginx's log-module variables: the log module
// renders them itself, straight into the line, rather than asking the
// variable layer for a string (that is also why they cost no allocation).
const (
	opLit opKind = iota
	opVar
	opPipe
	opTimeLocal
	opTimeISO
	opMsec
	opRequestTime
	opStatus
	opBytesSent
	opBodyBytesSent
	opRequestLength
)

var logOps = map[string]opKind{
	"pipe":            opPipe,
	"time_local":      opTimeLocal,
	"time_iso8601":    opTimeISO,
	"msec":            opMsec,
	"request_time":    opRequestTime,
	"status":          opStatus,
	"bytes_sent":      opBytesSent,
	"body_bytes_sent": opBodyBytesSent,
	"request_length":  opRequestLength,
}

type op struct {
	kind opKind
	lit  string
	tpl  *vars.Template // one variable, for opVar
}

// CompileFormat compiles the string arguments of log_format (after the name
// and any escape=), which nginx concatenates. Variables resolve through tab;
// the errors are nginx's messages, without the file:line the caller adds.
func CompileFormat(tab *vars.Table, esc Escape, parts []string) (*Format, error) {
	if esc < EscapeDefault || esc > EscapeNone {
		return nil, fmt.Errorf("unknown log format escaping %d", esc)
	}
	f := &Format{esc: esc}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			f.ops = append(f.ops, op{kind: opLit, lit: lit.String()})
			lit.Reset()
		}
	}
	// Variables never span arguments, as in nginx, which parses each one
	// on its own.
	for _, s := range parts {
		for i := 0; i < len(s); {
			if s[i] != '$' {
				j := strings.IndexByte(s[i:], '$')
				if j < 0 {
					j = len(s) - i
				}
				lit.WriteString(s[i : i+j])
				i += j
				continue
			}
			start := i
			name, next, err := scanVar(s, i)
			if err != nil {
				return nil, err
			}
			if name == "" {
				return nil, fmt.Errorf("invalid parameter %q", s[start:])
			}
			i = next
			flush()
			if k, ok := logOps[name]; ok {
				f.ops = append(f.ops, op{kind: k})
				continue
			}
			tpl, err := tab.Compile("${" + name + "}")
			if err != nil {
				return nil, err
			}
			f.ops = append(f.ops, op{kind: opVar, tpl: tpl})
		}
	}
	flush()
	return f, nil
}

// scanVar reads the variable name after the '$' at s[i] ("$name" or
// "${name}") and returns it with the index past it; an empty name means
// the parameter is invalid.
func scanVar(s string, i int) (name string, next int, err error) {
	i++
	if i == len(s) {
		return "", i, nil
	}
	bracket := s[i] == '{'
	if bracket {
		i++
		if i == len(s) {
			return "", i, nil
		}
	}
	j := i
	for j < len(s) && isNameChar(s[j]) {
		j++
	}
	name = s[i:j]
	if bracket {
		if j == len(s) || s[j] != '}' {
			return "", 0, fmt.Errorf("the closing bracket in %q variable is missing", name)
		}
		j++
	}
	return name, j, nil
}

func isNameChar(b byte) bool {
	return b == '_' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

// Combined returns nginx's predefined "combined" format compiled against
// tab.
func Combined(tab *vars.Table) *Format {
	f, err := CompileFormat(tab, EscapeDefault, []string{CombinedText})
	if err != nil {
		panic("accesslog: combined format: " + err.Error()) // only a broken vars table gets here
	}
	return f
}

// Append renders one line for c onto dst, without the trailing newline.
func (f *Format) Append(dst []byte, c *vars.Ctx) []byte {
	for i := range f.ops {
		o := &f.ops[i]
		switch o.kind {
		case opLit:
			dst = append(dst, o.lit...)
		case opVar:
			dst = appendValue(dst, o.tpl.Eval(c), f.esc)
		case opPipe:
			dst = append(dst, c.Pipe()...)
		case opTimeLocal:
			dst = logTime(c).AppendFormat(dst, "02/Jan/2006:15:04:05 -0700")
		case opTimeISO:
			dst = logTime(c).AppendFormat(dst, "2006-01-02T15:04:05-07:00")
		case opMsec:
			dst = appendMillis(dst, logTime(c).UnixMilli())
		case opRequestTime:
			var ms int64
			if !c.Start.IsZero() {
				ms = max(logTime(c).Sub(c.Start).Milliseconds(), 0)
			}
			dst = appendMillis(dst, ms)
		case opStatus:
			dst = appendStatus(dst, c.Status)
		case opBytesSent:
			dst = strconv.AppendInt(dst, max(c.BytesSent, 0), 10)
		case opBodyBytesSent:
			dst = strconv.AppendInt(dst, max(c.BodyBytesSent, 0), 10)
		case opRequestLength:
			dst = strconv.AppendInt(dst, max(c.ReqLength, 0), 10)
		}
	}
	return dst
}

// logTime is the moment the line describes: the request's end when the
// server recorded it, as vars does, else now. nginx writes local time.
func logTime(c *vars.Ctx) time.Time {
	if !c.End.IsZero() {
		return c.End.Local()
	}
	return time.Now()
}

// appendMillis writes ms as seconds with three decimals ("12.345").
func appendMillis(dst []byte, ms int64) []byte {
	dst = strconv.AppendInt(dst, ms/1000, 10)
	r := ms % 1000
	return append(dst, '.', byte('0'+r/100), byte('0'+r/10%10), byte('0'+r%10))
}

// appendStatus writes at least three digits, as nginx's "%03ui".
func appendStatus(dst []byte, s int) []byte {
	if s < 0 {
		s = 0
	}
	if s < 100 {
		dst = append(dst, '0')
		if s < 10 {
			dst = append(dst, '0')
		}
	}
	return strconv.AppendInt(dst, int64(s), 10)
}

// appendValue writes one variable's value in mode esc. vars reports a
// variable nginx would call "not found" as "", so an empty value is taken
// as missing: "-" in default mode, nothing otherwise (nginx writes nothing
// for a found but empty value in every mode; vars cannot tell the two
// apart).
func appendValue(dst []byte, v string, esc Escape) []byte {
	switch esc {
	case EscapeJSON:
		return appendJSON(dst, v)
	case EscapeNone:
		return append(dst, v...)
	}
	if v == "" {
		return append(dst, '-')
	}
	return appendDefault(dst, v)
}

const upperHex = "0123456789ABCDEF"

// needsEscape marks the bytes default mode writes as \xHH.
var needsEscape = func() (t [256]bool) {
	for b := range 256 {
		t[b] = b < 0x20 || b >= 0x7f || b == '"' || b == '\\'
	}
	return t
}()

func appendDefault(dst []byte, v string) []byte {
	start := 0
	for i := 0; i < len(v); i++ {
		b := v[i]
		if !needsEscape[b] {
			continue
		}
		dst = append(dst, v[start:i]...)
		dst = append(dst, '\\', 'x', upperHex[b>>4], upperHex[b&0xf])
		start = i + 1
	}
	return append(dst, v[start:]...)
}

// appendJSON escapes as nginx's ngx_escape_json: only `"`, `\` and bytes
// below 0x20; other bytes, invalid UTF-8 included, pass through.
func appendJSON(dst []byte, v string) []byte {
	start := 0
	for i := 0; i < len(v); i++ {
		b := v[i]
		if b > 0x1f && b != '"' && b != '\\' {
			continue
		}
		dst = append(dst, v[start:i]...)
		start = i + 1
		switch b {
		case '"', '\\':
			dst = append(dst, '\\', b)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		default:
			dst = append(dst, '\\', 'u', '0', '0', upperHex[b>>4], upperHex[b&0xf])
		}
	}
	return append(dst, v[start:]...)
}
