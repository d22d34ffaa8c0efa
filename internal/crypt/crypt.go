// Package crypt checks a password against a stored hash in the formats
// nginx's auth_basic reads: its own ({PLAIN}, {SHA}, {SSHA}, $apr1$) and
// those of the system's crypt(3) on Debian (traditional DES, $1$, $5$,
// $6$, bcrypt, yescrypt, scrypt $7$, NT $3$ and BSDi's extended DES).
package crypt

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"strings"

	"github.com/go-crypt/x/yescrypt"
	"golang.org/x/crypto/bcrypt"
)

// Check reports whether password matches hash. A hash in a format it does
// not know never matches, as crypt(3)'s failure token never equals a
// stored hash. Comparisons take the same time whatever bytes differ.
func Check(hash, password string) bool {
	h := hashFor(hash, password)
	return h != "" && subtle.ConstantTimeCompare([]byte(h), []byte(hash)) == 1
}

// hashFor hashes password with the settings (salt, rounds) that hash
// carries; "" for an unknown format.
func hashFor(hash, password string) string {
	switch {
	case strings.HasPrefix(hash, "{PLAIN}"):
		return "{PLAIN}" + password
	case strings.HasPrefix(hash, "{SHA}"):
		sum := sha1.Sum([]byte(password))
		return "{SHA}" + base64.StdEncoding.EncodeToString(sum[:])
	case strings.HasPrefix(hash, "{SSHA}"):
		return ssha(hash, password)
	case strings.HasPrefix(hash, "$apr1$"):
		return MD5(password, hash, "$apr1$")
	case strings.HasPrefix(hash, "$1$"):
		return MD5(password, hash, "$1$")
	case strings.HasPrefix(hash, "$5$"):
		return SHA(sha256.New, password, hash, "$5$")
	case strings.HasPrefix(hash, "$6$"):
		return SHA(sha512.New, password, hash, "$6$")
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		return bcryptHash(hash, password)
	case strings.HasPrefix(hash, "$y$"):
		h, err := yescrypt.Hash([]byte(password), []byte(hash))
		if err != nil {
			return ""
		}
		return string(h)
	case strings.HasPrefix(hash, "$3$$"):
		return NT(password)
	case strings.HasPrefix(hash, "$7$"):
		return Scrypt(password, hash)
	case strings.HasPrefix(hash, "_"):
		return BSDi(password, hash)
	case len(hash) == 13 && isB64(hash):
		return DES(password, hash)
	}
	return ""
}

// ssha is {SSHA}: base64 of SHA-1(password salt) followed by the salt.
func ssha(hash, password string) string {
	raw, err := base64.StdEncoding.DecodeString(hash[len("{SSHA}"):])
	if err != nil || len(raw) < sha1.Size {
		return ""
	}
	salt := raw[sha1.Size:]
	d := sha1.New()
	d.Write([]byte(password))
	d.Write(salt)
	return "{SSHA}" + base64.StdEncoding.EncodeToString(append(d.Sum(nil), salt...))
}

// bcryptHash answers hash itself when password matches it, as crypt(3)
// would rebuild it; crypt(3) reads at most 72 bytes of the password.
func bcryptHash(hash, password string) string {
	p := []byte(password)
	if len(p) > 72 {
		p = p[:72]
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), p) != nil {
		return ""
	}
	return hash
}

// itoa64 is crypt's alphabet of 6-bit values.
const itoa64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func isB64(s string) bool {
	for i := range len(s) {
		if strings.IndexByte(itoa64, s[i]) < 0 {
			return false
		}
	}
	return true
}
