package tlsconf

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestCiphersMatchOpenSSL compares ParseCiphers with the openssl binary, when
// there is one, over the suites both implement.
func TestCiphersMatchOpenSSL(t *testing.T) {
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("no openssl binary")
	}
	known := func() map[string]bool {
		out, err := exec.Command(bin, "ciphers", "ALL:COMPLEMENTOFALL:@SECLEVEL=0").Output()
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]bool{}
		for _, n := range strings.Split(strings.TrimSpace(string(out)), ":") {
			m[n] = true
		}
		return m
	}()
	for _, expr := range []string{
		"HIGH:!aNULL:!MD5",
		"DEFAULT",
		"ALL",
		"HIGH",
		"ECDHE+AESGCM",
		"EECDH+AESGCM:EDH+AESGCM",
		"AESGCM:-ECDSA:ECDHE-ECDSA-AES128-GCM-SHA256",
		"AESGCM:!ECDSA:ECDHE-ECDSA-AES128-GCM-SHA256",
		"ALL:!kRSA:!SHA1",
		"HIGH:!SHA256:!SHA384",
		"kRSA",
		"aECDSA:+AES256",
		"TLSv1.2:!AESGCM",
		"TLSv1",
		"SHA:!AES256",
		"CHACHA20:AES128",
		"AEAD",
		"MEDIUM:HIGH:!AES128",
		"RSA",
		"ECDH",
		"SSLv3",
		"TLSv1.0:SSLv3",
		"ECDSA:!SHA256",
		"ALL:+kRSA:-AES256",
		"ALL:-AES256:AES256-SHA",
		"ALL:!AES256:AES256-SHA",
		"AES:!aRSA",
		"HIGH:!aNULL:!eNULL:!EXPORT:!DES:!RC4:!MD5:!PSK:!SRP:!CAMELLIA",
		"ECDHE-RSA-AES128-GCM-SHA256+AESGCM",
		"ECDHE-RSA-AES128-GCM-SHA256+CHACHA20",
		// Mozilla's intermediate and old configurations.
		"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305",
		"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA:DHE-RSA-AES128-SHA256:DHE-RSA-AES256-SHA256:AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA256:AES256-SHA256:AES128-SHA:AES256-SHA:DES-CBC3-SHA",
		// Strings from real configurations.
		"EECDH+AESGCM:EDH+AESGCM:AES256+EECDH:AES256+EDH",
		"ECDH+AESGCM:ECDH+AES256:ECDH+AES128:DH+3DES:!ADH:!AECDH:!MD5",
		"EECDH+CHACHA20:EECDH+AES128:RSA+AES128:EECDH+AES256:RSA+AES256:EECDH+3DES:RSA+3DES:!MD5",
		"HIGH:!aNULL:!MD5:!3DES",
		"ECDHE:!COMPLEMENTOFDEFAULT",
		"kEECDH+ECDSA+AES128:kEECDH+ECDSA+AES256:kEECDH+AES128:kEECDH+AES256:kEDH+AES128:kEDH+AES256:DES-CBC3-SHA:+SHA:!aNULL:!eNULL:!LOW:!kECDH:!DSS:!MD5:!RC4:!EXP:!PSK:!SRP:!CAMELLIA:!SEED",
		"FOO-BAR:HIGH:ECDHE+NOSUCH",
	} {
		out, err := exec.Command(bin, "ciphers", expr+":@SECLEVEL=0").Output()
		var want []string
		if err == nil {
			for _, n := range strings.Split(strings.TrimSpace(string(out)), ":") {
				if _, ok := cipherSets[n]; ok && len(cipherSets[n]) == 1 {
					want = append(want, n)
				}
			}
		}
		ids, perr := ParseCiphers(expr)
		var got []string
		for _, id := range ids {
			for _, s := range suiteTable {
				if s.id == id && known[s.openssl] {
					got = append(got, s.openssl)
				}
			}
		}
		if perr != nil && len(want) > 0 {
			t.Errorf("%q: error %v, openssl selects %v", expr, perr, want)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%q:\n got  %v\n want %v", expr, got, want)
		}
	}
}
