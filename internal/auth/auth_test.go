package auth

import (
	"strings"
	"testing"
)

func TestCredentials(t *testing.T) {
	for _, tc := range []struct {
		h, user, pw string
		ok          bool
	}{
		{"Basic dTpw", "u", "p", true},               // u:p
		{"basic   dTpw", "u", "p", true},             // any case, spaces
		{"Basic dTpwOng=", "u", "p:x", true},         // u:p:x, padded
		{"Basic dTpwOng", "u", "p:x", true},          // unpadded
		{"Basic dTpwOng=garbage!", "u", "p:x", true}, // after '=' ignored
		{"Basic OnA=", "", "", false},                // empty user
		{"Basic dQ==", "", "", false},                // no colon
		{"Basic !!!!", "", "", false},                // not base64
		{"Basic dTpwO", "", "", false},               // length 1 mod 4
		{"Bearer dTpw", "", "", false},               // other scheme
		{"Basic", "", "", false},                     // nothing
		{"Basic ", "", "", false},                    // nothing
		{"Basic dXNlcjpwYXNzd29yZA==", "user", "password", true},
	} {
		u, p, ok := Credentials(tc.h)
		if u != tc.user || p != tc.pw || ok != tc.ok {
			t.Errorf("%q: %q %q %v", tc.h, u, p, ok)
		}
	}
}

func TestLookup(t *testing.T) {
	file := "# comment\n\r\nalice:{PLAIN}a:comment\nbob:{PLAIN}b\r\n\n  carol:{PLAIN}c\nal:{PLAIN}short\npartial\ndave:{PLAIN}d\neve:{PLAIN}e"
	for _, tc := range []struct {
		user, hash string
		found      bool
	}{
		{"alice", "{PLAIN}a", true},
		{"bob", "{PLAIN}b", true},
		{"carol", "", false}, // leading spaces are part of the login
		{"al", "{PLAIN}short", true},
		{"alic", "", false},
		{"eve", "{PLAIN}e", true}, // no final newline
		{"comment", "", false},
		{"part", "", false},
		{"dave", "{PLAIN}d", true},
	} {
		h, ok, err := Lookup(strings.NewReader(file), tc.user)
		if err != nil {
			t.Fatal(err)
		}
		if h != tc.hash || ok != tc.found {
			t.Errorf("%s: %q %v", tc.user, h, ok)
		}
	}
	// A line ending inside a partly matching login skips the next one, as
	// nginx's reader does.
	if _, ok, _ := Lookup(strings.NewReader("us\nuse:x\n"), "use"); ok {
		t.Errorf("found after a partial login")
	}
	if h, ok, _ := Lookup(strings.NewReader("us\nzz\nuse:x\n"), "use"); !ok || h != "x" {
		t.Errorf("%q %v", h, ok)
	}
}
