package crypt

import (
	"encoding/hex"
	"strings"

	"github.com/go-crypt/x/yescrypt"
	"golang.org/x/crypto/md4"
	"golang.org/x/crypto/scrypt"
)

// NT is libxcrypt's NT hash ("$3$$" and MD4 of the password's bytes
// widened to 16 bits, in hex).
func NT(password string) string {
	wide := make([]byte, 0, 2*len(password))
	for i := range len(password) {
		wide = append(wide, password[i], 0)
	}
	d := md4.New()
	d.Write(wide)
	return "$3$$" + hex.EncodeToString(d.Sum(nil))
}

// Scrypt is libxcrypt's scrypt ("$7$"): one character of log2 N, five
// each of r and p (30 bits, least significant first), then the salt,
// used as written; the key is 32 bytes.
func Scrypt(password, setting string) string {
	rest := strings.TrimPrefix(setting, "$7$")
	if len(rest) < 11 {
		return ""
	}
	logN := strings.IndexByte(itoa64, rest[0])
	r, okR := uint30(rest[1:6])
	p, okP := uint30(rest[6:11])
	if logN < 1 || logN > 31 || !okR || !okP || r == 0 || p == 0 {
		return ""
	}
	salt := rest[11:]
	if i := strings.IndexByte(salt, '$'); i >= 0 {
		salt = salt[:i]
	}
	key, err := scrypt.Key([]byte(password), []byte(salt), 1<<logN, r, p, 32)
	if err != nil {
		return ""
	}
	return "$7$" + rest[:11] + salt + "$" + string(yescrypt.Encode64(key))
}

func uint30(s string) (int, bool) {
	v := 0
	for i := range len(s) {
		d := strings.IndexByte(itoa64, s[i])
		if d < 0 {
			return 0, false
		}
		v |= d << (6 * i)
	}
	return v, true
}
