package vars

import (
	"iter"
	"net/textproto"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestUpstreamVariables: per-try values joined with ", " within a pass and
// " : " between passes, "-" for unknown times, $proxy_port's default, and
// the families read from the last response.
func TestUpstreamVariables(t *testing.T) {
	tab := NewTable()
	var c Ctx
	c.Reset(tab)
	get := func(name string) string {
		t.Helper()
		v, ok := c.GetName(name)
		if !ok {
			t.Fatalf("$%s unknown", name)
		}
		return v
	}
	if v := get("upstream_connect_time"); v != "" {
		t.Errorf("before any try: %q", v)
	}
	u := &Upstream{}
	c.UpstreamHeader = testHeader{"Set-Cookie": {"a=1; Path=/", "b = 2"}, "X-Up": {"v"}}
	c.UpstreamTrailer = testHeader{"X-Sum": {"abc"}}
	g1, g2 := u.NewGroup(), u.NewGroup()
	u.Tries = []UpstreamTry{
		{Group: g1, ConnectTime: -1, HeaderTime: -1, BytesSent: 0},
		{Group: g1, ConnectTime: time.Millisecond, HeaderTime: 2 * time.Millisecond, BytesSent: 10},
		{Group: g2, ConnectTime: 0, HeaderTime: time.Second, BytesSent: 5},
	}
	c.Upstream, c.ProxyHost = u, "backend"
	for name, want := range map[string]string{
		"upstream_connect_time":  "-, 0.001 : 0.000",
		"upstream_header_time":   "-, 0.002 : 1.000",
		"upstream_bytes_sent":    "0, 10 : 5",
		"upstream_http_x_up":     "v",
		"upstream_cookie_b":      "2",
		"upstream_cookie_c":      "",
		"upstream_trailer_x":     "",
		"upstream_trailer_x_sum": "abc",
		"proxy_port":             "80",
	} {
		if got := get(name); got != want {
			t.Errorf("$%s = %q, want %q", name, got, want)
		}
	}
}

// testHeader is a Header over a map of canonical names, looked up
// without case as the real one.
type testHeader map[string][]string

func (h testHeader) Get(name string) string {
	if v := h[textproto.CanonicalMIMEHeaderKey(name)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (h testHeader) Values(name string) iter.Seq[string] {
	return slices.Values(h[textproto.CanonicalMIMEHeaderKey(name)])
}

func (h testHeader) Join(name, sep string) string {
	return strings.Join(h[textproto.CanonicalMIMEHeaderKey(name)], sep)
}

// TestUpstreamAdd: the first try is kept in the Upstream, without an
// allocation; further ones grow Tries past it, keeping every try in order.
func TestUpstreamAdd(t *testing.T) {
	var u Upstream
	if n := testing.AllocsPerRun(100, func() {
		u.Tries = nil
		u.Add(UpstreamTry{Addr: "a"})
	}); n != 0 {
		t.Errorf("the first try: %v allocations, want none", n)
	}
	u.Add(UpstreamTry{Addr: "b"})
	u.Add(UpstreamTry{Addr: "c"})
	var got []string
	for _, tr := range u.Tries {
		got = append(got, tr.Addr)
	}
	if strings.Join(got, ",") != "a,b,c" {
		t.Errorf("tries %v, want a, b, c", got)
	}
}
