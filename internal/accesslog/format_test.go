package accesslog

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/vars"
)

var testEnd = time.Date(2026, 11, 28, 17, 40, 54, 123e6, time.Local)

// newCtx fills a Ctx as the server would at the end of a WebSocket
// upgrade.
func newCtx(tab *vars.Table, c *vars.Ctx) *vars.Ctx {
	if c == nil {
		c = new(vars.Ctx)
	}
	c.Reset(tab)
	c.Method, c.RequestURI, c.Path, c.Proto = "GET", "/ws/chat?room=1", "/ws/chat", "HTTP/1.1"
	c.Args = "room=1"
	c.Header = http1.Header{
		{Name: "Host", Value: "example.com"},
		{Name: "User-Agent", Value: "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0"},
		{Name: "Referer", Value: "https://example.com/app"},
		{Name: "Upgrade", Value: "websocket"},
		{Name: "Connection", Value: "Upgrade"},
		{Name: "Sec-WebSocket-Key", Value: "dGhlIHNhbXBsZSBub25jZQ=="},
		{Name: "Sec-WebSocket-Version", Value: "13"},
	}
	c.Host, c.Scheme, c.ServerName = "example.com", "http", "example.com"
	c.Remote = netip.MustParseAddrPort("127.0.0.1:53124")
	c.Local = netip.MustParseAddrPort("127.0.0.1:8080")
	c.Start = testEnd.Add(-2500 * time.Millisecond)
	c.End = testEnd
	c.Status, c.BytesSent, c.BodyBytesSent, c.ReqLength = 101, 4321, 4192, 512
	return c
}

func TestEscape(t *testing.T) {
	tests := []struct {
		in                 string
		deflt, json, unesc string
	}{
		{"", "-", "", ""},
		{"plain /a?b=c&d", "plain /a?b=c&d", "plain /a?b=c&d", "plain /a?b=c&d"},
		{`say "hi"`, `say \x22hi\x22`, `say \"hi\"`, `say "hi"`},
		{`back\slash`, `back\x5Cslash`, `back\\slash`, `back\slash`},
		{"a\nb\rc\td", `a\x0Ab\x0Dc\x09d`, `a\nb\rc\td`, "a\nb\rc\td"},
		{"\b\f", `\x08\x0C`, `\b\f`, "\b\f"},
		{"\x00\x01\x1f", `\x00\x01\x1F`, `\u0000\u0001\u001F`, "\x00\x01\x1f"},
		{"del\x7f", `del\x7F`, "del\x7f", "del\x7f"},
		{"caf\xc3\xa9", `caf\xC3\xA9`, "caf\xc3\xa9", "caf\xc3\xa9"},
		{"bad\xff", `bad\xFF`, "bad\xff", "bad\xff"},
		{"-", "-", "-", "-"},
		{" ", " ", " ", " "},
	}
	for _, tt := range tests {
		for _, m := range []struct {
			esc  Escape
			want string
		}{{EscapeDefault, tt.deflt}, {EscapeJSON, tt.json}, {EscapeNone, tt.unesc}} {
			tab := vars.NewTable()
			x, _ := tab.DefineSet("x")
			f, err := CompileFormat(tab, m.esc, []string{"[$x]"})
			if err != nil {
				t.Fatal(err)
			}
			var c vars.Ctx
			c.Reset(tab)
			c.Set(x, tt.in)
			if got := string(f.Append(nil, &c)); got != "["+m.want+"]" {
				t.Errorf("escape %d of %q = %q, want %q", m.esc, tt.in, got, "["+m.want+"]")
			}
		}
	}
}

func TestParseEscape(t *testing.T) {
	tests := []struct {
		in   string
		want Escape
		err  string
	}{
		{"default", EscapeDefault, ""},
		{"json", EscapeJSON, ""},
		{"none", EscapeNone, ""},
		{"JSON", 0, `unknown log format escaping "JSON"`},
		{"", 0, `unknown log format escaping ""`},
	}
	for _, tt := range tests {
		got, err := ParseEscape(tt.in)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("ParseEscape(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseEscape(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestCompileFormatErrors(t *testing.T) {
	tests := []struct {
		parts []string
		err   string
	}{
		{[]string{"$nosuch"}, `unknown "nosuch" variable`},
		{[]string{"ok $status ", "${nosuch_either}x"}, `unknown "nosuch_either" variable`},
		{[]string{"trailing $"}, `invalid parameter "$"`},
		{[]string{"$ space"}, `invalid parameter "$ space"`},
		{[]string{"a $-b c"}, `invalid parameter "$-b c"`},
		{[]string{"${}"}, `invalid parameter "${}"`},
		{[]string{"${"}, `invalid parameter "${"`},
		{[]string{"${status"}, `the closing bracket in "status" variable is missing`},
		{[]string{"${sta tus}"}, `the closing bracket in "sta" variable is missing`},
		// A variable cannot span two arguments.
		{[]string{"x $", "status"}, `invalid parameter "$"`},
	}
	for _, tt := range tests {
		_, err := CompileFormat(vars.NewTable(), EscapeDefault, tt.parts)
		if err == nil || err.Error() != tt.err {
			t.Errorf("CompileFormat(%q) error = %v, want %q", tt.parts, err, tt.err)
		}
	}
	if _, err := CompileFormat(vars.NewTable(), Escape(7), []string{"x"}); err == nil {
		t.Error("CompileFormat accepted escape mode 7")
	}
}

func TestFormatAppend(t *testing.T) {
	tests := []struct {
		esc   Escape
		parts []string
		want  string
	}{
		{EscapeDefault, []string{"$status $body_bytes_sent $bytes_sent $request_length"}, "101 4192 4321 512"},
		{EscapeDefault, []string{"$request_time|$msec|$pipe"}, "2.500|" + "1795884054.123|."},
		{EscapeDefault, []string{"[$time_local]"}, "[" + testEnd.Format("02/Jan/2006:15:04:05 -0700") + "]"},
		{EscapeDefault, []string{"$time_iso8601"}, testEnd.Format("2006-01-02T15:04:05-07:00")},
		{EscapeDefault, []string{"${host}${uri}", "?", "$args"}, "example.com/ws/chat?room=1"},
		{EscapeDefault, []string{`"$http_x_missing" $remote_user`}, `"-" -`},
		{EscapeNone, []string{`"$http_x_missing" $remote_user|`}, `"" |`},
		{EscapeJSON, []string{`{"ref":"$http_referer","user":"$remote_user","s":$status}`},
			`{"ref":"https://example.com/app","user":"","s":101}`},
		{EscapeDefault, []string{"$remote_addr:$remote_port $server_port"}, "127.0.0.1:53124 8080"},
		{EscapeDefault, []string{"no variables at all"}, "no variables at all"},
		{EscapeDefault, nil, ""},
	}
	for _, tt := range tests {
		tab := vars.NewTable()
		f, err := CompileFormat(tab, tt.esc, tt.parts)
		if err != nil {
			t.Fatalf("CompileFormat(%q): %v", tt.parts, err)
		}
		got := string(f.Append(nil, newCtx(tab, nil)))
		if tt.parts != nil && strings.Contains(tt.parts[0], "msec") {
			tt.want = strings.Replace(tt.want, "1795884054.123", msecOf(testEnd), 1)
		}
		if got != tt.want {
			t.Errorf("%q: got %q, want %q", tt.parts, got, tt.want)
		}
	}
}

func msecOf(t time.Time) string {
	ms := t.UnixMilli()
	return fmt.Sprintf("%d.%03d", ms/1000, ms%1000)
}

func TestStatusPadding(t *testing.T) {
	tests := []struct {
		status int
		want   string
	}{{0, "000"}, {9, "009"}, {42, "042"}, {200, "200"}, {1000, "1000"}, {-1, "000"}}
	for _, tt := range tests {
		if got := string(appendStatus(nil, tt.status)); got != tt.want {
			t.Errorf("status %d = %q, want %q", tt.status, got, tt.want)
		}
	}
}

func TestRequestTimeWithoutStart(t *testing.T) {
	tab := vars.NewTable()
	f, err := CompileFormat(tab, EscapeDefault, []string{"$request_time"})
	if err != nil {
		t.Fatal(err)
	}
	c := newCtx(tab, nil)
	c.Start = time.Time{}
	if got := string(f.Append(nil, c)); got != "0.000" {
		t.Errorf("request_time without a start = %q, want 0.000", got)
	}
	c.Start = testEnd.Add(time.Second) // a clock step back must not go negative
	if got := string(f.Append(nil, c)); got != "0.000" {
		t.Errorf("request_time with start after end = %q, want 0.000", got)
	}
}

// combinedRE is the shape of a combined line, as log parsers read it.
var combinedRE = regexp.MustCompile(`^(\S+) - (\S+) \[(\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] "([^"]*)" (\d{3}) (\d+) "([^"]*)" "([^"]*)"$`)

func TestCombined(t *testing.T) {
	tab := vars.NewTable()
	f := Combined(tab) // compiled before any Ctx is reset, as at load
	c := newCtx(tab, nil)
	line := string(f.Append(nil, c))
	m := combinedRE.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("combined line %q does not parse", line)
	}
	want := []string{"127.0.0.1", "-", testEnd.Format("02/Jan/2006:15:04:05 -0700"),
		"GET /ws/chat?room=1 HTTP/1.1", "101", "4192", "https://example.com/app",
		"Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0"}
	for i, w := range want {
		if m[i+1] != w {
			t.Errorf("field %d = %q, want %q", i+1, m[i+1], w)
		}
	}

	// A hostile user agent cannot break the quoting.
	c = newCtx(tab, nil)
	c.Header = http1.Header{{Name: "User-Agent", Value: "evil\" \"x\n"}}
	line = string(f.Append(nil, c))
	m = combinedRE.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("combined line %q does not parse", line)
	}
	if m[7] != "-" || m[8] != `evil\x22 \x22x\x0A` {
		t.Errorf("referer, agent = %q, %q", m[7], m[8])
	}
}
