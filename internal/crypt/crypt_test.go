package crypt

import (
	"bufio"
	"crypto/des"
	"encoding/binary"
	"os"
	"strings"
	"testing"
)

// vectors reads testdata/vectors.tsv: password, tab, hash, as made by
// mkpasswd, openssl passwd and htpasswd on Debian 12.
func vectors(t *testing.T) [][2]string {
	t.Helper()
	f, err := os.Open("testdata/vectors.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][2]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pw, hash, ok := strings.Cut(sc.Text(), "\t")
		if ok && !strings.HasPrefix(pw, "#") {
			out = append(out, [2]string{pw, hash})
		}
	}
	if len(out) < 60 {
		t.Fatalf("only %d vectors", len(out))
	}
	return out
}

// Every vector matches its password and no other; every format is there.
func TestVectors(t *testing.T) {
	seen := map[string]bool{}
	for _, v := range vectors(t) {
		pw, hash := v[0], v[1]
		seen[format(hash)] = true
		if !Check(hash, pw) {
			t.Errorf("%q does not match %s (computed %s)", pw, hash, hashFor(hash, pw))
		}
		wrongs := []string{pw + "x", "", strings.ToUpper(pw), pw[:len(pw)-1]}
		if slow(hash) {
			wrongs = wrongs[:1]
			if seen[format(hash)+" wrong"] {
				wrongs = nil // one wrong try per costly format
			}
			seen[format(hash)+" wrong"] = true
		}
		for _, wrong := range wrongs {
			if sameDESKey(hash, pw, wrong) {
				continue // DES reads eight characters
			}
			if wrong != pw && Check(hash, wrong) {
				t.Errorf("%q matches %s", wrong, hash)
			}
		}
	}
	for _, f := range []string{"des", "$1$", "$apr1$", "$5$", "$6$", "$2a$", "$2b$", "$2y$", "$y$", "{SHA}", "{SSHA}", "{PLAIN}", "$3$", "$7$", "_"} {
		if !seen[f] {
			t.Errorf("no vector of %s", f)
		}
	}
}

// slow reports the deliberately costly formats, tried less.
func slow(hash string) bool {
	return strings.HasPrefix(hash, "$y$") || strings.HasPrefix(hash, "$2") || strings.HasPrefix(hash, "$7$")
}

func sameDESKey(hash, a, b string) bool {
	return format(hash) == "des" && len(a) >= 8 && len(b) >= 8 && a[:8] == b[:8]
}

func format(hash string) string {
	if strings.HasPrefix(hash, "_") {
		return "_"
	}
	if len(hash) == 13 && hash[0] != '$' && hash[0] != '{' {
		return "des"
	}
	if i := strings.IndexAny(hash[1:], "$}"); i >= 0 {
		return hash[:i+2]
	}
	return hash
}

// Unknown or malformed hashes never match, not even an empty password.
func TestUnknownFormats(t *testing.T) {
	for _, h := range []string{"", "*", "!", "*0", "$gy$j9T$x$y", "$3$abc", "$5$rounds=x$salt$h", "{SSHA}!!", "{SSHA}YWJj", "$y$jZZ$a$b", "$2y$99$short", "abc"} {
		for _, pw := range []string{"", "a", h} {
			if Check(h, pw) {
				t.Errorf("%q matches %q", pw, h)
			}
		}
	}
}

// With the salt "..", traditional crypt is DES itself, applied 25 times
// to a zero block: the DES core agrees with crypto/des.
func TestDESCore(t *testing.T) {
	for _, pw := range []string{"", "a", "password", "longer than eight"} {
		var key [8]byte
		for i := 0; i < 8 && i < len(pw); i++ {
			key[i] = pw[i] << 1
		}
		c, err := des.NewCipher(key[:])
		if err != nil {
			t.Fatal(err)
		}
		block := make([]byte, 8)
		for range 25 {
			c.Encrypt(block, block)
		}
		got := DES(pw, "..")
		v := binary.BigEndian.Uint64(block)
		want := []byte("..")
		for i := range 11 {
			shift := 58 - 6*i
			if shift >= 0 {
				want = append(want, itoa64[v>>uint(shift)&0x3f])
			} else {
				want = append(want, itoa64[v<<uint(-shift)&0x3f])
			}
		}
		if got != string(want) {
			t.Errorf("DES(%q) = %s, want %s", pw, got, want)
		}
	}
}
