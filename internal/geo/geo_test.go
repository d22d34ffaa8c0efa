package geo

import (
	"net/netip"
	"testing"
)

func TestCIDRLongestMatch(t *testing.T) {
	g := New(false)
	g.SetDefault("def")
	for k, v := range map[string]string{"10.0.0.0/8": "ten", "10.1.0.0/16": "ten-one", "10.1.2.3": "host", "2001:db8::/32": "doc6", "192.168.1.7/16": "masked"} {
		if err := g.Add(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Delete("10.1.2.3"); err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{"10.9.9.9": "ten", "10.1.9.9": "ten-one", "10.1.2.3": "ten-one", "11.0.0.1": "def",
		"2001:db8::1": "doc6", "::ffff:10.1.0.1": "ten-one", "192.168.200.1": "masked"}
	for a, want := range cases {
		if got := g.Lookup(netip.MustParseAddr(a)); got != want {
			t.Errorf("%s: got %q, want %q", a, got, want)
		}
	}
	if got := g.Lookup(netip.Addr{}); got != "def" {
		t.Errorf("invalid address: got %q", got)
	}
	if err := g.Add("10.0.0.300", "x"); err == nil {
		t.Error("a bad network was accepted")
	}
}

func TestRangesLaterWins(t *testing.T) {
	g := New(true)
	g.SetDefault("no")
	_ = g.Add("10.0.0.0-10.0.0.255", "a")
	_ = g.Add("10.0.0.10-10.0.0.20", "b")
	_ = g.Delete("10.0.0.15-10.0.0.15")
	cases := map[string]string{"10.0.0.5": "a", "10.0.0.10": "b", "10.0.0.20": "b", "10.0.0.15": "no", "10.0.1.0": "no", "::1": "no"}
	for a, want := range cases {
		if got := g.Lookup(netip.MustParseAddr(a)); got != want {
			t.Errorf("%s: got %q, want %q", a, got, want)
		}
	}
	if err := g.Add("10.0.0.9-10.0.0.1", "x"); err == nil {
		t.Error("a reversed range was accepted")
	}
}

func TestClientFromForwardedFor(t *testing.T) {
	g := New(false)
	_ = g.AddProxy("127.0.0.0/8")
	_ = g.AddProxy("10.0.0.1")
	peer := netip.MustParseAddr("127.0.0.1")
	xff := []string{"1.2.3.4", " 10.0.0.1"}
	if got := g.Client(peer, xff); got.String() != "10.0.0.1" {
		t.Errorf("plain: got %v", got)
	}
	g.SetRecursive()
	if got := g.Client(peer, xff); got.String() != "1.2.3.4" {
		t.Errorf("recursive: got %v", got)
	}
	if got := g.Client(netip.MustParseAddr("8.8.8.8"), xff); got.String() != "8.8.8.8" {
		t.Errorf("untrusted peer: got %v", got)
	}
}
