// Package securelink checks the links of nginx's
// ngx_http_secure_link_module: an MD5 hash (base64url) of an expression
// with an optional expiry time, or the older form with a secret word in
// the URI.
package securelink

import (
	"crypto/md5"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// Result is what one link check yields for $secure_link and
// $secure_link_expires.
type Result struct {
	Value      string // "1" valid, "0" valid but expired; for the secret form, the URI's link part
	Found      bool   // false: $secure_link is not found (empty)
	Expires    string // the expiry text after the comma
	HasExpires bool
}

// Check judges link ("hash[,expires]", from secure_link) against the MD5
// of md5Input (from secure_link_md5) at now.
func Check(link, md5Input string, now time.Time) Result {
	var r Result
	hash, exp, comma := strings.Cut(link, ",")
	var expires int64
	if comma {
		n, ok := atotm(exp)
		if !ok || n <= 0 {
			return r
		}
		expires, r.Expires, r.HasExpires = n, exp, true
	}
	if len(hash) > 24 {
		return r
	}
	got, ok := decodeBase64URL(hash)
	if !ok || len(got) != 16 {
		return r
	}
	want := md5.Sum([]byte(md5Input))
	if subtle.ConstantTimeCompare(got, want[:]) != 1 {
		return r
	}
	r.Found, r.Value = true, "1"
	if expires != 0 && expires < now.Unix() {
		r.Value = "0"
	}
	return r
}

// CheckSecret judges the older form, "/prefix/hash/link" in the request
// URI (query included): hash is the hex MD5 of link followed by secret.
// The value is link.
func CheckSecret(requestURI, secret string) Result {
	var r Result
	if len(requestURI) < 1 {
		return r
	}
	_, rest, ok := strings.Cut(requestURI[1:], "/")
	if !ok {
		return r
	}
	hash, link, ok := strings.Cut(rest, "/")
	if !ok || len(hash) != 32 || link == "" {
		return r
	}
	got, err := hex.DecodeString(hash)
	if err != nil {
		return r
	}
	want := md5.Sum([]byte(link + secret))
	if subtle.ConstantTimeCompare(got, want[:]) != 1 {
		return r
	}
	return Result{Value: link, Found: true}
}

// atotm reads a decimal time as nginx's ngx_atotm: digits only.
func atotm(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// decodeBase64URL decodes as nginx's ngx_decode_base64url: the URL-safe
// alphabet, with anything from the first "=" on ignored.
func decodeBase64URL(s string) ([]byte, bool) {
	if i := strings.IndexByte(s, '='); i >= 0 {
		s = s[:i]
	}
	if len(s)%4 == 1 {
		return nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	return b, err == nil
}

// Expires returns $secure_link_expires for link: the text after the
// comma when it is a positive decimal time, whatever the hash.
func Expires(link string) (string, bool) {
	_, exp, comma := strings.Cut(link, ",")
	if !comma {
		return "", false
	}
	n, ok := atotm(exp)
	return exp, ok && n > 0
}
