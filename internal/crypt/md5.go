package crypt

import (
	"crypto/md5"
	"strings"
)

// MD5 is MD5-crypt with the given magic: "$1$" (crypt(3)) or "$apr1$"
// (Apache's htpasswd). setting is a hash or "magic+salt"; the salt is at
// most 8 characters, up to a '$'.
func MD5(password, setting, magic string) string {
	salt := strings.TrimPrefix(setting, magic)
	if i := strings.IndexByte(salt, '$'); i >= 0 {
		salt = salt[:i]
	}
	if len(salt) > 8 {
		salt = salt[:8]
	}
	pw := []byte(password)
	alt := md5.Sum([]byte(password + salt + password))
	d := md5.New()
	d.Write([]byte(password + magic + salt))
	for n := len(pw); n > 0; n -= 16 {
		d.Write(alt[:min(n, 16)])
	}
	for i := len(pw); i > 0; i >>= 1 {
		if i&1 != 0 {
			d.Write([]byte{0})
		} else {
			d.Write(pw[:1])
		}
	}
	sum := d.Sum(nil)
	for i := range 1000 {
		r := md5.New()
		if i&1 != 0 {
			r.Write(pw)
		} else {
			r.Write(sum)
		}
		if i%3 != 0 {
			r.Write([]byte(salt))
		}
		if i%7 != 0 {
			r.Write(pw)
		}
		if i&1 != 0 {
			r.Write(sum)
		} else {
			r.Write(pw)
		}
		sum = r.Sum(nil)
	}
	out := []byte(magic + salt + "$")
	for _, t := range [...][3]int{{0, 6, 12}, {1, 7, 13}, {2, 8, 14}, {3, 9, 15}, {4, 10, 5}} {
		out = to64(out, uint32(sum[t[0]])<<16|uint32(sum[t[1]])<<8|uint32(sum[t[2]]), 4)
	}
	return string(to64(out, uint32(sum[11]), 2))
}

// to64 appends n characters of v, least significant six bits first.
func to64(out []byte, v uint32, n int) []byte {
	for range n {
		out = append(out, itoa64[v&0x3f])
		v >>= 6
	}
	return out
}
