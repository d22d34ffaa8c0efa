// Package auth reads HTTP Basic credentials and htpasswd files as nginx's
// ngx_http_auth_basic_module does.
package auth

import (
	"bytes"
	"encoding/base64"
	"io"
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

// Lookup finds user's stored hash in an htpasswd file read from r:
// lines of "user:hash[:comment]"; a line that starts with '#' or CR is
// skipped. It follows nginx's reader character by character, quirks
// included: a line that ends inside a partly matching login also skips
// the next line. Only the matching line's hash is kept in memory. err is
// a read error of r.
func Lookup(r io.ByteReader, user string) (hash string, found bool, err error) {
	const (
		login = iota
		passwd
		skip
	)
	key := user + ":"
	state, n := login, 0
	var pw []byte
	for {
		c, err := r.ReadByte()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", false, err
		}
		switch state {
		case login:
			switch {
			case n == 0 && (c == '#' || c == '\r'):
				state = skip
			case n == 0 && c == '\n':
			case c != key[n]:
				state = skip
			case n == len(user):
				state = passwd
			default:
				n++
			}
		case passwd:
			if c == '\n' || c == '\r' || c == ':' {
				return cString(pw), true, nil
			}
			pw = append(pw, c)
		case skip:
			if c == '\n' {
				state, n = login, 0
			}
		}
	}
	if state == passwd {
		return cString(pw), true, nil
	}
	return "", false, nil
}

// cString ends b at its first NUL, as the C string nginx hands to crypt.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// Challenge is the WWW-Authenticate value for realm.
func Challenge(realm string) string {
	return `Basic realm="` + realm + `"`
}
