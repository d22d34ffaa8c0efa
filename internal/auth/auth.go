// Package auth reads HTTP Basic credentials and htpasswd files as nginx's
// ngx_http_auth_basic_module does.
package auth

import (
	"encoding/base64"
	"strings"
)

// Credentials parses an Authorization header value: "Basic" in any case,
// a space, optional spaces, then base64 of "user:password" (padding
// optional; what follows a '=' is ignored). ok is false for any other
// value, an empty user or no colon, as nginx treats them as absent.
func Credentials(header string) (user, password string, ok bool) {
	if len(header) < 6 || !strings.EqualFold(header[:6], "Basic ") {
		return "", "", false
	}
	enc := strings.TrimLeft(header[6:], " ")
	if i := strings.IndexByte(enc, '='); i >= 0 {
		enc = enc[:i]
	}
	if enc == "" || len(enc)%4 == 1 {
		return "", "", false
	}
	raw, err := base64.RawStdEncoding.DecodeString(enc)
	if err != nil {
		return "", "", false
	}
	user, password, ok = strings.Cut(string(raw), ":")
	if !ok || user == "" {
		return "", "", false
	}
	return user, password, true
}

// Lookup finds user's stored hash in an htpasswd file: lines of
// "user:hash[:comment]"; a line that starts with '#' or CR is skipped. It
// follows nginx's reader character by character, quirks included: a line
// that ends inside a partly matching login also skips the next line.
func Lookup(data []byte, user string) (hash string, found bool) {
	const (
		login = iota
		passwd
		skip
	)
	key := user + ":"
	state, n, start := login, 0, 0
	for i, c := range data {
		switch state {
		case login:
			if n == 0 && (c == '#' || c == '\r') {
				state = skip
				continue
			}
			if n == 0 && c == '\n' {
				continue
			}
			if c != key[n] {
				state = skip
				continue
			}
			if n == len(user) {
				state, start = passwd, i+1
			}
			n++
		case passwd:
			if c == '\n' || c == '\r' || c == ':' {
				return cString(data[start:i]), true
			}
		case skip:
			if c == '\n' {
				state, n = login, 0
			}
		}
	}
	if state == passwd {
		return cString(data[start:]), true
	}
	return "", false
}

// cString ends b at its first NUL, as the C string nginx hands to crypt.
func cString(b []byte) string {
	s := string(b)
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return s
}

// Challenge is the WWW-Authenticate value for realm.
func Challenge(realm string) string {
	return `Basic realm="` + realm + `"`
}
