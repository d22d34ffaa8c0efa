package userid

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestParseAndVar(t *testing.T) {
	g, bad := Parse([]string{"a=b; uid=fwAAAWXvp4ksAyMbAwMEAg=="}, "uid")
	if bad != "" || g.UID.Zero() {
		t.Fatalf("parse: %+v %q", g, bad)
	}
	if v := g.UID.Var("uid"); v != "uid=0100007F89A7EF651B23032C02040303" {
		t.Errorf("var: %s", v)
	}
	for _, c := range []string{"uid=short", "uid=!!!!AAAAAAAAAAAAAAAAAAAAAA"} {
		if g, bad := Parse([]string{c}, "uid"); bad == "" || !g.UID.Zero() {
			t.Errorf("%q accepted", c)
		}
	}
	if g, _ := Parse([]string{"x=1"}, "uid"); g.Raw != "" {
		t.Errorf("absent cookie: %+v", g)
	}
}

func TestNewAndCookie(t *testing.T) {
	now := time.Unix(1700000000, 0)
	c := &Conf{Mode: On, Mark: 'X', Expires: 86400, Domain: "example.com", Flags: []string{"secure"}}
	u := New(c, netip.MustParseAddr("127.0.0.1"), now)
	v := New(c, netip.MustParseAddr("127.0.0.1"), now)
	if u == v || u.Zero() {
		t.Fatalf("identifiers %x %x", u, v)
	}
	got := Cookie(c, u, "", false, now)
	if !strings.HasPrefix(got, "uid=fwAAAW") || !strings.Contains(got, "X=; expires=Wed, 15-Nov-23 22:13:20 GMT; domain=example.com; path=/; secure") {
		t.Errorf("cookie: %s", got)
	}
	v1 := &Conf{Mode: V1, Service: 77, HasService: true, Expires: MaxExpires}
	if got := Cookie(v1, New(v1, netip.Addr{}, now), "", false, now); !strings.HasPrefix(got, "uid=TQAAAA") || !strings.Contains(got, "==; expires=Thu, 31-Dec-37 23:55:55 GMT; path=/") {
		t.Errorf("v1 cookie: %s", got)
	}
}

func TestNeedsCookie(t *testing.T) {
	c := &Conf{Mode: On, Mark: 'X'}
	marked, _ := Parse([]string{"uid=fwAAAWXvp4ksAyMbAwMEAgX="}, "uid")
	plain, _ := Parse([]string{"uid=fwAAAWXvp4ksAyMbAwMEAg=="}, "uid")
	if NeedsCookie(c, marked, false) || !NeedsCookie(c, plain, false) || !NeedsCookie(c, marked, true) || !NeedsCookie(c, Got{}, false) {
		t.Error("wrong decision")
	}
	if NeedsCookie(&Conf{Mode: Log}, Got{}, false) {
		t.Error("log mode sets a cookie")
	}
}
