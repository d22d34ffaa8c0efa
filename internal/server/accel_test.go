package server

import (
	"testing"
	"time"
)

// TestParseAccelExpires: X-Accel-Expires as nginx reads it: seconds from
// now, "@" and a Unix time, 0 for no caching, anything else ignored.
func TestParseAccelExpires(t *testing.T) {
	now := time.Unix(1000, 0)
	for v, want := range map[string]accelExpiry{
		"":      {},
		"x":     {},
		"-5":    {},
		"@":     {},
		"0":     {set: true, noCache: true},
		"60":    {set: true, until: time.Unix(1060, 0)},
		"@5000": {set: true, until: time.Unix(5000, 0)},
	} {
		if got := parseAccelExpires(v, now); got != want {
			t.Errorf("%q: %+v, want %+v", v, got, want)
		}
	}
}

// TestSafeURI: an X-Accel-Redirect path is decoded, and refused with a
// ".." segment, a NUL, or when not absolute.
func TestSafeURI(t *testing.T) {
	for in, want := range map[string]string{
		"/files/a.html":   "/files/a.html",
		"/files/%61%20b":  "/files/a b",
		"/files/..a":      "/files/..a",
		"/files/../x":     "",
		"/files/%2e%2e/x": "",
		"/files/%00":      "",
		"files/a":         "",
		"/files/%zz":      "",
		"/files/a/..":     "",
	} {
		got, ok := safeURI(in)
		if ok != (want != "") || got != want {
			t.Errorf("%q: %q %v, want %q", in, got, ok, want)
		}
	}
}
