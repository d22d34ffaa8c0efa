package crypt

import (
	"hash"
	"strconv"
	"strings"

	gocrypt "github.com/go-crypt/x/crypt"
)

// SHA is SHA-crypt ($5$ with SHA-256, $6$ with SHA-512): setting is
// magic, an optional "rounds=N$" (5000 without; kept within 1000 and
// 999999999), and a salt of at most 16 characters up to a '$'.
func SHA(h func() hash.Hash, password, setting, magic string) string {
	rest := strings.TrimPrefix(setting, magic)
	rounds, prefix := 5000, ""
	if r, ok := strings.CutPrefix(rest, "rounds="); ok {
		num, after, found := strings.Cut(r, "$")
		n, err := strconv.ParseUint(num, 10, 32)
		if !found || err != nil {
			return ""
		}
		rounds = min(max(int(n), 1000), 999999999)
		prefix, rest = "rounds="+strconv.Itoa(rounds)+"$", after
	}
	salt := rest
	if i := strings.IndexByte(salt, '$'); i >= 0 {
		salt = salt[:i]
	}
	if len(salt) > 16 {
		salt = salt[:16]
	}
	key := gocrypt.KeySHACrypt(h, []byte(password), []byte(salt), rounds)
	return magic + prefix + salt + "$" + string(key)
}
