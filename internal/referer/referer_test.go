package referer

import (
	"github.com/wsgate/wsgate/internal/regex"
	"testing"
)

func TestInvalid(t *testing.T) {
	var r Rules
	for _, a := range []string{"none", "blocked", "example.com", "*.example.org", ".example.net", "www.example.*", "site.io/pics/", `~\.google\.`} {
		if err := r.Add(a); err != nil {
			t.Fatal(a, err)
		}
	}
	cases := []struct {
		ref     string
		present bool
		want    string
	}{
		{"", false, ""},
		{"", true, ""},                          // blocked: no scheme
		{"ftp://example.com/", true, ""},        // blocked
		{"http://example.com/x", true, ""},      // exact
		{"HTTPS://Example.COM:8443/", true, ""}, // case and port
		{"http://evil.com/", true, "1"},
		{"http://a.example.org/", true, ""},
		{"http://example.org/", true, "1"}, // "*." needs a subdomain
		{"http://example.net/", true, ""},  // "." also matches the name
		{"http://www.example.de/", true, ""},
		{"http://site.io/pics/a.png", true, ""},
		{"http://site.io/other", true, "1"},
		{"http://www.google.com/search", true, ""},
	}
	for _, c := range cases {
		if got := r.Invalid(c.ref, c.present); got != c.want {
			t.Errorf("%q (present %v): %q, want %q", c.ref, c.present, got, c.want)
		}
	}
	var empty Rules
	if empty.Invalid("http://evil.com/", true) != "" {
		t.Error("no rules: a referer was invalid")
	}
}

func TestCheck(t *testing.T) {
	var r Rules
	_ = r.Add("none")
	_ = r.Add(`~x`)
	if r.Check() == nil {
		t.Error("none with only a regex was accepted")
	}
	if err := r.Add("a*b.com"); err == nil {
		t.Error("a bad wildcard was accepted")
	}
	if err := r.Add("~"); err == nil {
		t.Error("an empty regex was accepted")
	}
}

func TestServerRegexAndInherit(t *testing.T) {
	var outer Rules
	_ = outer.Add("a.test")
	_ = outer.Add(`~^b\.test/x`)
	re, err := regex.Compile(`^img\d+\.test$`, true)
	if err != nil {
		t.Fatal(err)
	}
	outer.AddServerRegex(re)
	var inner Rules
	_ = inner.Add("c.test")
	inner.Inherit(&outer)
	for ref, want := range map[string]string{"http://img1.test/any": "", "http://b.test/x": "", "http://b.test/y": "1", "http://a.test/": "1"} {
		if got := inner.Invalid(ref, true); got != want {
			t.Errorf("%q: %q, want %q", ref, got, want)
		}
	}
}
