package vars

import (
	"iter"
	"net/netip"
	"strings"
	"testing"
	"time"
)

type testHdr [][2]string

func (h testHdr) Get(n string) string {
	for _, f := range h {
		if strings.EqualFold(f[0], n) {
			return f[1]
		}
	}
	return ""
}

func (h testHdr) Join(n, sep string) string {
	var out []string
	for v := range h.Values(n) {
		out = append(out, v)
	}
	return strings.Join(out, sep)
}

func (h testHdr) Values(n string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for _, f := range h {
			if strings.EqualFold(f[0], n) && !yield(f[1]) {
				return
			}
		}
	}
}

func newCtx(t *Table) *Ctx {
	c := &Ctx{}
	c.Reset(t)
	c.Method, c.RequestURI, c.Path, c.Args, c.Proto = "GET", "/ws?a=1&B=two", "/ws", "a=1&B=two", "HTTP/1.1"
	c.Header = testHdr{{"Host", "WS.Example.com:8080"}, {"Upgrade", "websocket"}, {"X-Forwarded-For", "10.0.0.1"}, {"x-forwarded-for", "10.0.0.2"}, {"Cookie", "a=1; sid=xyz"}}
	c.Host, c.Scheme, c.ServerName = "ws.example.com", "http", "ws.example.com"
	c.Remote = netip.MustParseAddrPort("127.0.0.9:5555")
	c.Local = netip.MustParseAddrPort("127.0.0.1:8080")
	c.Start = time.Unix(100, 0)
	c.End = time.Unix(101, 250_000_000)
	c.Status = 101
	return c
}

func TestTemplates(t *testing.T) {
	tab := NewTable()
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"", ""},
		{"$http_upgrade", "websocket"},
		{"${http_upgrade}s", "websockets"},
		{"$remote_addr:$remote_port", "127.0.0.9:5555"},
		{"$proxy_add_x_forwarded_for", "10.0.0.1, 10.0.0.2, 127.0.0.9"},
		{"$scheme://$host$request_uri", "http://ws.example.com/ws?a=1&B=two"},
		{"$arg_a/$arg_b/$arg_c", "1/two/"},
		{"$cookie_sid", "xyz"},
		{"$request", "GET /ws?a=1&B=two HTTP/1.1"},
		{"$status $request_time $server_port", "101 1.250 8080"},
		{"$msec", "101.250"},
		{"$binary_remote_addr", "\x7f\x00\x00\x09"},
		{"$uri$is_args$args", "/ws?a=1&B=two"},
	}
	for _, tt := range tests {
		tpl, err := tab.Compile(tt.in)
		if err != nil {
			t.Fatalf("%q: %v", tt.in, err)
		}
		c := newCtx(tab)
		if got := tpl.Eval(c); got != tt.want {
			t.Errorf("%q = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	tab := NewTable()
	for _, in := range []string{"$", "${", "${}", "$nope", "a $unknown_var b"} {
		if _, err := tab.Compile(in); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func TestSetAndLazyOnce(t *testing.T) {
	tab := NewTable()
	calls := 0
	i, err := tab.DefineFunc("counted", func(*Ctx) string { calls++; return "x" })
	if err != nil {
		t.Fatal(err)
	}
	s, _ := tab.DefineSet("mine")
	tpl := tab.MustCompile("$counted$counted$mine")
	c := newCtx(tab)
	c.Set(s, "!")
	if got := tpl.Eval(c); got != "xx!" || calls != 1 {
		t.Fatalf("got %q calls %d", got, calls)
	}
	_ = i
	if _, err := tab.DefineFunc("counted", func(*Ctx) string { return "" }); err == nil {
		t.Error("duplicate map variable accepted")
	}
	if _, err := tab.DefineFunc("host", func(*Ctx) string { return "" }); err == nil {
		t.Error("redefining a built-in accepted")
	}
}

func TestMap(t *testing.T) {
	tab := NewTable()
	specs := []MapSpec{
		{Source: "$http_upgrade", Result: "connection_upgrade", Default: "upgrade", Entries: []MapEntry{{"", "close"}}},
		{Source: "$request_uri", Result: "loggable", Default: "1", Entries: []MapEntry{{"~^/health$", "0"}}},
		{Source: "$http_host", Result: "site", Default: "none", Hostnames: true, Entries: []MapEntry{
			{"*.example.com", "wild"}, {"api.example.com", "api"}, {".example.org", "org"}, {"www.example.*", "www"}, {"~*^(?P<n>[a-z]+)\\.test$", "re-$1"},
		}},
	}
	var compiles []func() error
	for _, sp := range specs {
		f, err := tab.DeclareMap(sp)
		if err != nil {
			t.Fatal(err)
		}
		compiles = append(compiles, f)
	}
	for _, f := range compiles {
		if err := f(); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		h    testHdr
		uri  string
		v    string
		want string
	}{
		{testHdr{{"Upgrade", "websocket"}}, "/", "connection_upgrade", "upgrade"},
		{testHdr{}, "/", "connection_upgrade", "close"},
		{testHdr{}, "/health", "loggable", "0"},
		{testHdr{}, "/health?x", "loggable", "1"},
		{testHdr{{"Host", "API.example.com"}}, "/", "site", "api"},
		{testHdr{{"Host", "a.b.example.com"}}, "/", "site", "wild"},
		{testHdr{{"Host", "example.org."}}, "/", "site", "org"},
		{testHdr{{"Host", "www.example.net"}}, "/", "site", "www"},
		{testHdr{{"Host", "Foo.TEST"}}, "/", "site", "re-Foo"},
		{testHdr{{"Host", "other"}}, "/", "site", "none"},
	}
	for _, tt := range tests {
		c := newCtx(tab)
		c.Header, c.RequestURI = tt.h, tt.uri
		got, _ := c.GetName(tt.v)
		if got != tt.want {
			t.Errorf("%v %s: $%s = %q, want %q", tt.h, tt.uri, tt.v, got, tt.want)
		}
	}
}

func TestMapCycleIsEmpty(t *testing.T) {
	tab := NewTable()
	f1, _ := tab.DeclareMap(MapSpec{Source: "$b", Result: "a", Default: "$b"})
	f2, _ := tab.DeclareMap(MapSpec{Source: "$a", Result: "b", Default: "$a"})
	if err := f1(); err != nil {
		t.Fatal(err)
	}
	if err := f2(); err != nil {
		t.Fatal(err)
	}
	c := newCtx(tab)
	if got, _ := c.GetName("a"); got != "" {
		t.Errorf("cycle gave %q", got)
	}
}

func BenchmarkProxyHeaders(b *testing.B) {
	tab := NewTable()
	tpls := []*Template{tab.MustCompile("$http_upgrade"), tab.MustCompile("$host"), tab.MustCompile("$remote_addr"), tab.MustCompile("$proxy_add_x_forwarded_for"), tab.MustCompile("$scheme")}
	c := newCtx(tab)
	var dst []byte
	b.ReportAllocs()
	for b.Loop() {
		h := c.Header
		c.Reset(tab)
		c.Header = h
		dst = dst[:0]
		for _, t := range tpls {
			dst = t.Append(dst, c)
		}
	}
}

func TestSetRemoteInvalidates(t *testing.T) {
	tab := NewTable()
	c := newCtx(tab)
	if got, _ := c.GetName("remote_addr"); got != "127.0.0.9" {
		t.Fatal(got)
	}
	c.SetRemote(netip.MustParseAddrPort("198.51.100.1:0"))
	a, _ := c.GetName("remote_addr")
	r, _ := c.GetName("realip_remote_addr")
	x, _ := c.GetName("proxy_add_x_forwarded_for")
	if a != "198.51.100.1" || r != "127.0.0.9" || x != "10.0.0.1, 10.0.0.2, 198.51.100.1" {
		t.Errorf("after SetRemote: %q %q %q", a, r, x)
	}
}

// TestSeconds: nginx's millisecond-resolution seconds, as
// $upstream_response_time and $request_time print them.
func TestSeconds(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0.000"},
		{0, "0.000"},
		{999 * time.Microsecond, "0.000"},
		{5 * time.Millisecond, "0.005"},
		{50 * time.Millisecond, "0.050"},
		{999 * time.Millisecond, "0.999"},
		{1234 * time.Millisecond, "1.234"},
		{61*time.Second + 5*time.Millisecond, "61.005"},
		{3600 * time.Second, "3600.000"},
	} {
		if got := Seconds(tt.d); got != tt.want {
			t.Errorf("Seconds(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}
