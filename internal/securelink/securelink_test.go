package securelink

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"testing"
	"time"
)

func sign(s string) string {
	h := md5.Sum([]byte(s))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

func TestCheck(t *testing.T) {
	now := time.Unix(2000000000, 0)
	cases := []struct {
		link, input, value string
		found              bool
		expires            string
	}{
		{sign("abc"), "abc", "1", true, ""},
		{sign("abc") + "==", "abc", "1", true, ""},
		{sign("abc"), "abd", "", false, ""},
		{sign("x2100000000") + ",2100000000", "x2100000000", "1", true, "2100000000"},
		{sign("x1") + ",1000", "x1", "0", true, "1000"},
		{sign("x1") + ",10a", "x1", "", false, ""},
		{sign("x1") + ",0", "x1", "", false, ""},
		{"", "", "", false, ""},
		{"not base64!!", "x", "", false, ""},
	}
	for _, c := range cases {
		r := Check(c.link, c.input, now)
		if r.Found != c.found || r.Value != c.value || r.Expires != c.expires {
			t.Errorf("%q: %+v", c.link, r)
		}
	}
}

func TestCheckSecret(t *testing.T) {
	h := md5.Sum([]byte("file.txt?a=1secret"))
	uri := "/p/" + hex.EncodeToString(h[:]) + "/file.txt?a=1"
	if r := CheckSecret(uri, "secret"); !r.Found || r.Value != "file.txt?a=1" {
		t.Errorf("good link: %+v", r)
	}
	for _, bad := range []string{"/p/" + hex.EncodeToString(h[:]) + "/other", "/p/short/file.txt", "/p", "/"} {
		if r := CheckSecret(bad, "secret"); r.Found {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestExpires(t *testing.T) {
	for link, want := range map[string]bool{"h,123": true, "h": false, "h,": false, "h,0": false, "h,1x": false} {
		if _, ok := Expires(link); ok != want {
			t.Errorf("%q: %v", link, ok)
		}
	}
}
