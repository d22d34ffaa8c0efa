package regex

import (
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

type matchCase struct {
	pattern  string
	caseless bool
	subject  string
	want     []string // nil: no match
	bt       bool     // expected to need the backtracking engine
}

func TestPCRESemantics(t *testing.T) {
	cases := []matchCase{
		// $ matches before a final newline in PCRE, RE2's only at the end.
		{`^/a$`, false, "/a\n", []string{"/a"}, false},
		{`^/a$`, false, "/a", []string{"/a"}, false},
		{`^/a$`, false, "/a\n\n", nil, false},
		{`^/a\Z`, false, "/a\n", []string{"/a"}, false},
		{`^/a\z`, false, "/a\n", nil, false},
		{`\A/a`, false, "/a", []string{"/a"}, false},
		{`(?:$|/)`, false, "x\n", []string{""}, false},
		// \s includes the vertical tab; \S excludes it.
		{`^a\sb$`, false, "a\x0bb", []string{"a\x0bb"}, false},
		{`^a[\s]b$`, false, "a\x0bb", []string{"a\x0bb"}, false},
		{`^a\Sb$`, false, "a\x0bb", nil, false},
		{`^a[\S]b$`, false, "a\x0bb", nil, false},
		// ASCII classes: a non-ASCII letter is no word character.
		{`^\w+$`, false, "é", nil, false},
		{`(?=x)\w+`, false, "xé", []string{"x"}, true},
		// look-ahead, look-behind, back-references, atomic groups.
		{`^/(?!index|remote)`, false, "/remote.php", nil, true},
		{`^/(?!index|remote)`, false, "/foo", []string{"/"}, true},
		{`(?<=/api)/v(\d+)`, false, "/api/v2", []string{"/v2", "2"}, true},
		{`(?<!/api)/v\d+`, false, "/api/v2", nil, true},
		{`^/(\w+)/\1$`, false, "/ab/ab", []string{"/ab/ab", "ab"}, true},
		{`^/(\w+)/\1$`, false, "/ab/ac", nil, true},
		{`^/(?P<w>\w+)/(?P=w)$`, false, "/ab/ab", []string{"/ab/ab", "ab"}, true},
		{`^(?<w>a)\k<w>$`, false, "aa", []string{"aa", "a"}, true},
		{`^(a)\g{-1}$`, false, "aa", []string{"aa", "a"}, true},
		{`^(?>a+)b`, false, "aaab", []string{"aaab"}, true},
		{`^(?>a+)a`, false, "aaaa", nil, true},
		{`^a++a`, false, "aaaa", nil, true},
		{`^a{2,}+a`, false, "aaaa", nil, true},
		// case-insensitive ~*
		{`^/PHP/(.*)$`, true, "/php/X", []string{"/php/X", "X"}, false},
		{`^/(?!PHP)`, true, "/php/X", nil, true},
		// named captures in all three syntaxes, numbered in pattern order.
		{`^/(?<a>x)(y)(?P<b>z)(?'c'w)$`, false, "/xyzw", []string{"/xyzw", "x", "y", "z", "w"}, false},
		{`^/(?<a>x)(y)(?=z)(?P<b>z)(?'c'w)$`, false, "/xyzw", []string{"/xyzw", "x", "y", "z", "w"}, true},
		// groups that did not take part are empty.
		{`^/(a)?(b)$`, false, "/b", []string{"/b", "", "b"}, false},
		{`^/(a)?(?=b)(b)$`, false, "/b", []string{"/b", "", "b"}, true},
		// escapes and classes
		{`^\Q.*\E$`, false, ".*", []string{".*"}, false},
		{`^\x41\x{42}\e$`, false, "AB\x1b", []string{"AB\x1b"}, false},
		{`^[[:alpha:]]+\d$`, false, "ab1", []string{"ab1"}, false},
		{`^(?=a)[[:alpha:]]+$`, false, "ab", []string{"ab"}, true},
		{`^a(?#comment)b$`, false, "ab", []string{"ab"}, false},
		{`a\bb`, false, "ab", nil, false},
		{`(?=a)a\b`, false, "aé", []string{"a"}, true},
		{`^(?x) a b # comment`, false, "ab", []string{"ab"}, true},
		{`^a{,2}$`, false, "a{,2}", []string{"a{,2}"}, false},
		{`^\.(jpg|png)$`, false, ".png", []string{".png", "png"}, false},
	}
	for _, c := range cases {
		re, err := Compile(c.pattern, c.caseless)
		if err != nil {
			t.Errorf("%q: %v", c.pattern, err)
			continue
		}
		if got := re.re2 == nil; got != c.bt {
			t.Errorf("%q: backtracking only = %v, want %v", c.pattern, got, c.bt)
		}
		got, err := re.FindStringSubmatch(c.subject)
		if err != nil {
			t.Errorf("%q on %q: %v", c.pattern, c.subject, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q on %q: got %q, want %q", c.pattern, c.subject, got, c.want)
		}
		ok, _ := re.MatchString(c.subject)
		if ok != (c.want != nil) {
			t.Errorf("%q on %q: MatchString %v", c.pattern, c.subject, ok)
		}
	}
}

func TestSubexpNames(t *testing.T) {
	for _, p := range []string{`(?<a>x)(y)(?P<b>z)(?'c'w)`, `(?<a>x)(y)(?!q)(?P<b>z)(?'c'w)`} {
		re, err := Compile(p, false)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"", "a", "", "b", "c"}
		if !reflect.DeepEqual(re.SubexpNames(), want) || re.NumSubexp() != 4 {
			t.Errorf("%q: names %q, %d groups", p, re.SubexpNames(), re.NumSubexp())
		}
	}
}

func TestRefused(t *testing.T) {
	for p, construct := range map[string]string{
		`^(a|(?R))$`:        "(?R)",
		`^(a)(?1)$`:         "(?1)",
		`^(?<n>a)(?&n)$`:    "(?&n)",
		`^(?<n>a)(?P>n)$`:   "(?P>n)",
		`^(a)\g<1>$`:        `\g<`,
		`^/foo\Kbar`:        `\K`,
		`^a(?C1)b`:          "callout",
		`(*SKIP)a`:          "(*SKIP)",
		`^(?|(a)|(b))`:      "branch reset",
		`^\Ca`:              `\C`,
		`(?J)(?<a>x)`:       "(?J)",
		`(?U)a+(?=b)`:       "(?U)",
		`[[:^alpha:]](?=a)`: "[:^alpha:]",
	} {
		_, err := Compile(p, false)
		var r refusal
		if !errors.As(err, &r) || !strings.Contains(err.Error(), construct) {
			t.Errorf("%q: err %v, want a refusal naming %s", p, err, construct)
		}
	}
	for _, p := range []string{`(`, `[a`, `a\`, `(?<1a>x)`, `\i`} {
		if _, err := Compile(p, false); err == nil {
			t.Errorf("%q compiled", p)
		}
	}
}

// TestMatchLimit: a catastrophic pattern on a subject that cannot match
// stops with ErrMatchLimit instead of running for ages.
func TestMatchLimit(t *testing.T) {
	old := MatchTimeout
	MatchTimeout = 50 * time.Millisecond
	defer func() { MatchTimeout = old }()
	re, err := Compile(`^(\w+\s?)*(?=x)$`, false)
	if err != nil {
		t.Fatal(err)
	}
	subject := strings.Repeat("a", 40) + "!"
	if _, err := re.FindStringSubmatch(subject); !errors.Is(err, ErrMatchLimit) {
		t.Fatalf("err = %v, want ErrMatchLimit", err)
	}
	if _, err := re.MatchString(subject); !errors.Is(err, ErrMatchLimit) {
		t.Fatalf("MatchString err = %v, want ErrMatchLimit", err)
	}
	// RE2 patterns have no limit to trip: ^(a+)+$ is linear there.
	re2, _ := Compile(`^(a+)+$`, false)
	if m, err := re2.FindStringSubmatch(subject); m != nil || err != nil {
		t.Fatalf("RE2: %q %v", m, err)
	}
}

// TestCommonPatternsStayOnRE2: the patterns real configurations use most
// run on RE2, and agree with Go's regexp on ASCII subjects without
// newlines or vertical tabs, where PCRE and RE2 do not differ.
func TestCommonPatternsStayOnRE2(t *testing.T) {
	patterns := []string{
		`\.(?:css|js|svg|gif|png|jpe?g|ico|woff2?)$`, `^/static/(.*)$`, `^(.+\.php)(/.+)$`,
		`^/(?:build|tests|config|lib|3rdparty|templates|data)(?:$|/)`, `\.php(?:$|/)`,
		`^/api/v[12]/(?<rest>.*)`, `^/[a-z0-9_-]+/\d{2,4}\.html$`, `[^/]+$`, `^/(\w+)/(\w+)\.json$`,
		`^/~(?P<user>[^/]+)`, `^/a\/b\-c\.d$`, `^/x{2}y{1,}z{0,3}$`, `/\.(?!well-known)`,
	}
	subjects := []string{"/", "/static/a.css", "/index.php/x", "/build", "/build/", "/builder", "/api/v2/u",
		"/abc_1/2024.html", "/~bob/x", "/a/b-c.d", "/xxyz", "/xxyyzzz", "/a.JPG", "/x.php", "/.git"}
	for _, p := range patterns {
		re, err := Compile(p, false)
		if err != nil {
			t.Errorf("%q: %v", p, err)
			continue
		}
		if p == `/\.(?!well-known)` {
			if re.re2 != nil {
				t.Errorf("%q runs on RE2", p)
			}
			continue
		}
		if re.re2 == nil {
			t.Errorf("%q needs backtracking", p)
			continue
		}
		std := regexp.MustCompile(p)
		for _, s := range subjects {
			got, _ := re.FindStringSubmatch(s)
			if want := std.FindStringSubmatch(s); !reflect.DeepEqual(got, want) {
				t.Errorf("%q on %q: %q, Go's regexp %q", p, s, got, want)
			}
		}
	}
}

// TestTranslatedClasses: classes with shorthands, literal ] and -, and
// escapes read the same on both engines.
func TestTranslatedClasses(t *testing.T) {
	for _, c := range []struct{ pattern, yes, no string }{
		{`^[\w-]+$`, "a-b_9", "a.b"},
		{`^[]a]+$`, "]a]", "b"},
		{`^[^]a]$`, "b", "]"},
		{`^[a\-z]+$`, "a-z", "b"},
		{`^[\d.]+$`, "1.2", "a"},
		{`^[^\s]+$`, "ab", "a\x0bb"},
		{`^[[:alpha:][:digit:]]+$`, "a1", "-"},
		{`^[\Q]-\E]+$`, "]-", "a"},
		{`^\d+(?=x)`, "12x", "12y"},
		{`^[\d-]+(?=x)`, "1-2x", "1a"},
		{`^[[:punct:]]+(?=x)`, "!/x", "ax"},
	} {
		re, err := Compile(c.pattern, false)
		if err != nil {
			t.Errorf("%q: %v", c.pattern, err)
			continue
		}
		if ok, _ := re.MatchString(c.yes); !ok {
			t.Errorf("%q does not match %q", c.pattern, c.yes)
		}
		if ok, _ := re.MatchString(c.no); ok {
			t.Errorf("%q matches %q", c.pattern, c.no)
		}
	}
}
