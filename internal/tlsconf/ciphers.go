package tlsconf

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// DefaultCiphers is nginx's default ssl_ciphers.
const DefaultCiphers = "HIGH:!aNULL:!MD5"

// suite describes one TLS 1.0-1.2 cipher suite Go implements, with the
// OpenSSL name operators write and the OpenSSL aliases that select it.
type suite struct {
	id      uint16
	openssl string
	aliases []string
}

// Attribute aliases, grouped the way OpenSSL groups them (key exchange,
// authentication, encryption, MAC, strength, protocol). Every suite gets
// one of each group; the group lists are combined in suiteTable.
var (
	kRSA   = []string{"kRSA", "RSA"}
	kECDHE = []string{"kECDHE", "kEECDH", "ECDHE", "EECDH", "ECDH"}
	aRSA   = []string{"aRSA"}
	aECDSA = []string{"aECDSA", "ECDSA"}

	aes128gcm = []string{"AES128", "AES", "AESGCM", "HIGH"}
	aes256gcm = []string{"AES256", "AES", "AESGCM", "HIGH"}
	aes128    = []string{"AES128", "AES", "HIGH"}
	aes256    = []string{"AES256", "AES", "HIGH"}
	chacha    = []string{"CHACHA20", "HIGH"}
	des3      = []string{"3DES", "MEDIUM"}
	rc4       = []string{"RC4", "MEDIUM"}

	// MAC aliases: AEAD suites have none, whatever their PRF hash.
	sha1   = []string{"SHA1", "SHA"}
	sha256 = []string{"SHA256"}
	aead   = []string(nil)

	// Protocol aliases select suites by the first version defining them,
	// not by the versions they work with: "TLSv1" is the ECDHE CBC
	// suites, "SSLv3" the RSA key exchange ones.
	v30 = []string{"SSLv3"}
	v10 = []string{"TLSv1", "TLSv1.0"}
	v12 = []string{"TLSv1.2"}
)

func cat(groups ...[]string) []string {
	var out []string
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

// suiteTable holds every TLS 1.0-1.2 suite crypto/tls implements (both
// tls.CipherSuites and tls.InsecureCipherSuites), in the order expansions
// add them. The order only shows in the list New builds: Go orders TLS 1.2
// suites itself (see doc.go), so the expression decides the set, not the
// preference.
var suiteTable = []suite{
	{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, "ECDHE-ECDSA-AES256-GCM-SHA384", cat(kECDHE, aECDSA, aes256gcm, aead, v12)},
	{tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, "ECDHE-RSA-AES256-GCM-SHA384", cat(kECDHE, aRSA, aes256gcm, aead, v12)},
	{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, "ECDHE-ECDSA-CHACHA20-POLY1305", cat(kECDHE, aECDSA, chacha, aead, v12)},
	{tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, "ECDHE-RSA-CHACHA20-POLY1305", cat(kECDHE, aRSA, chacha, aead, v12)},
	{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, "ECDHE-ECDSA-AES128-GCM-SHA256", cat(kECDHE, aECDSA, aes128gcm, aead, v12)},
	{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, "ECDHE-RSA-AES128-GCM-SHA256", cat(kECDHE, aRSA, aes128gcm, aead, v12)},
	{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, "ECDHE-ECDSA-AES128-SHA256", cat(kECDHE, aECDSA, aes128, sha256, v12)},
	{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256, "ECDHE-RSA-AES128-SHA256", cat(kECDHE, aRSA, aes128, sha256, v12)},
	{tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, "ECDHE-ECDSA-AES256-SHA", cat(kECDHE, aECDSA, aes256, sha1, v10)},
	{tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA, "ECDHE-RSA-AES256-SHA", cat(kECDHE, aRSA, aes256, sha1, v10)},
	{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, "ECDHE-ECDSA-AES128-SHA", cat(kECDHE, aECDSA, aes128, sha1, v10)},
	{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, "ECDHE-RSA-AES128-SHA", cat(kECDHE, aRSA, aes128, sha1, v10)},
	{tls.TLS_RSA_WITH_AES_256_GCM_SHA384, "AES256-GCM-SHA384", cat(kRSA, aRSA, aes256gcm, aead, v12)},
	{tls.TLS_RSA_WITH_AES_128_GCM_SHA256, "AES128-GCM-SHA256", cat(kRSA, aRSA, aes128gcm, aead, v12)},
	{tls.TLS_RSA_WITH_AES_128_CBC_SHA256, "AES128-SHA256", cat(kRSA, aRSA, aes128, sha256, v12)},
	{tls.TLS_RSA_WITH_AES_256_CBC_SHA, "AES256-SHA", cat(kRSA, aRSA, aes256, sha1, v30)},
	{tls.TLS_RSA_WITH_AES_128_CBC_SHA, "AES128-SHA", cat(kRSA, aRSA, aes128, sha1, v30)},
	{tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA, "ECDHE-RSA-DES-CBC3-SHA", cat(kECDHE, aRSA, des3, sha1, v10)},
	{tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA, "DES-CBC3-SHA", cat(kRSA, aRSA, des3, sha1, v30)},
	{tls.TLS_ECDHE_ECDSA_WITH_RC4_128_SHA, "ECDHE-ECDSA-RC4-SHA", cat(kECDHE, aECDSA, rc4, sha1, v10)},
	{tls.TLS_ECDHE_RSA_WITH_RC4_128_SHA, "ECDHE-RSA-RC4-SHA", cat(kECDHE, aRSA, rc4, sha1, v10)},
	{tls.TLS_RSA_WITH_RC4_128_SHA, "RC4-SHA", cat(kRSA, aRSA, rc4, sha1, v30)},
}

// emptyAliases are OpenSSL aliases (and TLS 1.3 suite names) that select
// nothing Go implements for TLS 1.2: they are valid in an expression and
// match no suite, as they would in OpenSSL with no such ciphers compiled.
// TLS 1.3 names are here because ssl_ciphers never configures TLS 1.3 in
// nginx either.
var emptyAliases = []string{
	"aNULL", "eNULL", "NULL", "MD5", "EXP", "EXPORT", "EXPORT40", "EXPORT56",
	"LOW", "DES", "IDEA", "SEED", "RC2", "CAMELLIA", "CAMELLIA128", "CAMELLIA256",
	"ARIA", "ARIA128", "ARIA256", "ARIAGCM", "AESCCM", "AESCCM8", "CCM",
	"PSK", "kPSK", "aPSK", "kECDHEPSK", "kDHEPSK", "kRSAPSK", "ECDHEPSK", "DHEPSK", "RSAPSK",
	"SRP", "kSRP", "aSRP", "DSS", "aDSS", "aDH", "aECDH", "ADH", "AECDH",
	"DH", "kDH", "kDHE", "kEDH", "DHE", "EDH", "kDHr", "kDHd", "kECDHr", "kECDHe",
	"GOST94", "GOST89MAC", "GOST2012", "kGOST", "aGOST", "aGOST01", "aGOST12",
	"kGOST18", "GOST89", "MAGMA", "KUZNYECHIK", "SHA384", "KRB5", "kKRB5", "aKRB5",
	"FZA", "kFZA", "aFZA", "eFZA", "SSLv2",
	"COMPLEMENTOFALL",
	"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
	"TLS_AES_128_CCM_SHA256", "TLS_AES_128_CCM_8_SHA256",
}

// errNoCiphers lets New accept an expression that leaves nothing for
// TLS 1.2 when TLS 1.2 and below are disabled anyway.
var errNoCiphers = errors.New("no ciphers left for TLS 1.2 and below")

// cipherSets maps every accepted name (suite names in OpenSSL and IANA
// spelling, and aliases) to the suites it selects, as indexes in suiteTable.
var cipherSets = buildCipherSets()

func buildCipherSets() map[string][]int {
	m := make(map[string][]int)
	for _, a := range emptyAliases {
		m[a] = nil
	}
	for _, n := range strings.Fields(foreignSuites) {
		m[n] = nil
	}
	var all, weak []int
	for i, s := range suiteTable {
		m[s.openssl] = []int{i}
		m[tls.CipherSuiteName(s.id)] = []int{i}
		for _, a := range s.aliases {
			m[a] = append(m[a], i)
		}
		// RC4 stays out of ALL and DEFAULT, as in OpenSSL builds without
		// enable-weak-ssl-ciphers; it is reachable only by name or alias.
		if strings.Contains(s.openssl, "RC4") {
			weak = append(weak, i)
		} else {
			all = append(all, i)
		}
	}
	m["ALL"] = all
	m["DEFAULT"] = all
	m["COMPLEMENTOFDEFAULT"] = weak
	return m
}

// lookupCipher resolves one name or alias. Case-sensitive as in OpenSSL,
// with a case-insensitive fallback because "high" can only mean HIGH.
func lookupCipher(name string) ([]int, bool) {
	if set, ok := cipherSets[name]; ok {
		return set, true
	}
	for k, set := range cipherSets {
		if strings.EqualFold(k, name) {
			return set, true
		}
	}
	return nil, false
}

// ParseCiphers is ParseCipherString without its notes.
func ParseCiphers(expr string) ([]uint16, error) {
	ids, _, err := ParseCipherString(expr)
	return ids, err
}

// ParseCipherString evaluates an OpenSSL cipher expression (nginx's
// ssl_ciphers) over the TLS 1.0-1.2 suites crypto/tls implements and
// returns the selected suite IDs. Elements are separated by ':', ',' or
// spaces; "A+B" selects suites matching both; a leading '!' removes for
// good, '-' removes (a later element may add back), '+' moves to the end.
// "@STRENGTH" has no effect (Go orders suites itself); "@SECLEVEL=n"
// is mapped only partly (3 and above drop the RSA key exchange). As in
// OpenSSL, an element naming something unknown is skipped; the notes
// say so, name OpenSSL suites Go lacks, and list what will be
// negotiated then. Only an expression selecting nothing, or an unknown
// @command, is an error. An empty expression means DefaultCiphers.
func ParseCipherString(expr string) (ids []uint16, notes []string, err error) {
	if strings.TrimSpace(expr) == "" {
		expr = DefaultCiphers
	}
	var foreign []string
	var (
		order  []int // active suites, in list order
		active = make([]bool, len(suiteTable))
		killed = make([]bool, len(suiteTable))
	)
	remove := func(match []bool) {
		kept := order[:0]
		for _, i := range order {
			if match[i] {
				active[i] = false
			} else {
				kept = append(kept, i)
			}
		}
		order = kept
	}
	fields := strings.FieldsFunc(expr, func(r rune) bool {
		return r == ':' || r == ',' || r == ' ' || r == '\t'
	})
	for _, f := range fields {
		op := byte(0)
		switch f[0] {
		case '!', '-', '+':
			op, f = f[0], f[1:]
		}
		if strings.HasPrefix(f, "@") {
			if f == "@STRENGTH" {
				continue
			}
			if lv, ok := strings.CutPrefix(f, "@SECLEVEL="); ok {
				if n, err := strconv.Atoi(lv); err == nil && n >= 0 && n <= 5 {
					if n >= 3 {
						remove(attrMatch("kRSA"))
					}
					notes = append(notes, fmt.Sprintf("ssl_ciphers: %s is mapped only partly: Go's TLS has no security levels; levels 3 and above drop the RSA key exchange, key sizes are not checked", f))
					continue
				}
			}
			return nil, nil, fmt.Errorf("ssl_ciphers: unsupported command %q", f)
		}
		if f == "" {
			return nil, nil, fmt.Errorf("ssl_ciphers: empty element in %q", expr)
		}
		match := make([]bool, len(suiteTable))
		for i := range match {
			match[i] = true
		}
		known := true
		for _, part := range strings.Split(f, "+") {
			set, ok := lookupCipher(part)
			if !ok {
				notes = append(notes, fmt.Sprintf("ssl_ciphers: unknown cipher %q skipped", part))
				known = false
				break
			}
			if op == 0 && set == nil && foreignName[part] {
				foreign = append(foreign, part)
			}
			in := make([]bool, len(suiteTable))
			for _, i := range set {
				in[i] = true
			}
			for i := range match {
				match[i] = match[i] && in[i]
			}
		}
		if !known {
			continue
		}
		switch op {
		case 0:
			for i, m := range match {
				if m && !active[i] && !killed[i] {
					active[i] = true
					order = append(order, i)
				}
			}
		case '-':
			remove(match)
		case '!':
			remove(match)
			for i, m := range match {
				if m {
					killed[i] = true
				}
			}
		case '+':
			var moved []int
			for _, i := range order {
				if match[i] {
					moved = append(moved, i)
				}
			}
			remove(match)
			for _, i := range moved {
				active[i] = true
			}
			order = append(order, moved...)
		}
	}
	if len(order) == 0 {
		return nil, notes, fmt.Errorf("ssl_ciphers %q: %w", expr, errNoCiphers)
	}
	ids = make([]uint16, len(order))
	names := make([]string, len(order))
	for k, i := range order {
		ids[k] = suiteTable[i].id
		names[k] = suiteTable[i].openssl
	}
	if len(foreign) > 0 {
		notes = append(notes, fmt.Sprintf("ssl_ciphers: Go's TLS lacks %s; TLS 1.2 and below will negotiate only %s (TLS 1.3 suites are Go's fixed three)",
			strings.Join(foreign, ", "), strings.Join(names, ":")))
	}
	return ids, notes, nil
}

// attrMatch marks the suites an alias selects.
func attrMatch(alias string) []bool {
	m := make([]bool, len(suiteTable))
	for _, i := range cipherSets[alias] {
		m[i] = true
	}
	return m
}

// foreignName holds the OpenSSL suite names Go does not implement (not
// the aliases that select nothing, such as aNULL, which only ever
// exclude).
var foreignName = func() map[string]bool {
	m := map[string]bool{}
	for _, n := range strings.Fields(foreignSuites) {
		m[n] = true
	}
	for _, n := range []string{"DHE", "EDH", "kDHE", "kEDH", "CAMELLIA", "ARIA", "AESCCM", "CCM", "PSK", "SRP", "SEED", "IDEA",
		"TLS_AES_128_CCM_SHA256", "TLS_AES_128_CCM_8_SHA256"} {
		m[n] = true
	}
	return m
}()

// foreignSuites are OpenSSL suite names (OpenSSL 3.0's list, plus names
// older OpenSSL releases had and old configurations still exclude) for
// suites crypto/tls does not implement: they select nothing, as a name
// OpenSSL knows but did not compile in would.
const foreignSuites = `
ADH-AES128-GCM-SHA256 ADH-AES128-SHA ADH-AES128-SHA256
ADH-AES256-GCM-SHA384 ADH-AES256-SHA ADH-AES256-SHA256 ADH-CAMELLIA128-SHA
ADH-CAMELLIA128-SHA256 ADH-CAMELLIA256-SHA ADH-CAMELLIA256-SHA256
ADH-DES-CBC3-SHA ADH-RC4-MD5 AECDH-AES128-SHA AECDH-AES256-SHA
AECDH-NULL-SHA AES128-CCM AES128-CCM8 AES256-CCM AES256-CCM8 AES256-SHA256
ARIA128-GCM-SHA256 ARIA256-GCM-SHA384 CAMELLIA128-SHA CAMELLIA128-SHA256
CAMELLIA256-SHA CAMELLIA256-SHA256 DES-CBC-SHA DES-CBC3-MD5
DHE-DSS-AES128-GCM-SHA256 DHE-DSS-AES128-SHA DHE-DSS-AES128-SHA256
DHE-DSS-AES256-GCM-SHA384 DHE-DSS-AES256-SHA DHE-DSS-AES256-SHA256
DHE-DSS-ARIA128-GCM-SHA256 DHE-DSS-ARIA256-GCM-SHA384
DHE-DSS-CAMELLIA128-SHA DHE-DSS-CAMELLIA128-SHA256 DHE-DSS-CAMELLIA256-SHA
DHE-DSS-CAMELLIA256-SHA256 DHE-DSS-SEED-SHA DHE-PSK-AES128-CBC-SHA
DHE-PSK-AES128-CBC-SHA256 DHE-PSK-AES128-CCM DHE-PSK-AES128-CCM8
DHE-PSK-AES128-GCM-SHA256 DHE-PSK-AES256-CBC-SHA DHE-PSK-AES256-CBC-SHA384
DHE-PSK-AES256-CCM DHE-PSK-AES256-CCM8 DHE-PSK-AES256-GCM-SHA384
DHE-PSK-ARIA128-GCM-SHA256 DHE-PSK-ARIA256-GCM-SHA384
DHE-PSK-CAMELLIA128-SHA256 DHE-PSK-CAMELLIA256-SHA384
DHE-PSK-CHACHA20-POLY1305 DHE-PSK-NULL-SHA DHE-PSK-NULL-SHA256
DHE-PSK-NULL-SHA384 DHE-RSA-AES128-CCM DHE-RSA-AES128-CCM8
DHE-RSA-AES128-GCM-SHA256 DHE-RSA-AES128-SHA DHE-RSA-AES128-SHA256
DHE-RSA-AES256-CCM DHE-RSA-AES256-CCM8 DHE-RSA-AES256-GCM-SHA384
DHE-RSA-AES256-SHA DHE-RSA-AES256-SHA256 DHE-RSA-ARIA128-GCM-SHA256
DHE-RSA-ARIA256-GCM-SHA384 DHE-RSA-CAMELLIA128-SHA
DHE-RSA-CAMELLIA128-SHA256 DHE-RSA-CAMELLIA256-SHA
DHE-RSA-CAMELLIA256-SHA256 DHE-RSA-CHACHA20-POLY1305
DHE-RSA-CHACHA20-POLY1305-OLD DHE-RSA-SEED-SHA ECDH-ECDSA-AES128-GCM-SHA256
ECDH-ECDSA-AES128-SHA ECDH-ECDSA-AES256-GCM-SHA384 ECDH-ECDSA-AES256-SHA
ECDH-ECDSA-DES-CBC3-SHA ECDH-ECDSA-RC4-SHA ECDH-RSA-AES128-GCM-SHA256
ECDH-RSA-AES128-SHA ECDH-RSA-AES256-GCM-SHA384 ECDH-RSA-AES256-SHA
ECDH-RSA-DES-CBC3-SHA ECDH-RSA-RC4-SHA ECDHE-ARIA128-GCM-SHA256
ECDHE-ARIA256-GCM-SHA384 ECDHE-ECDSA-AES128-CCM ECDHE-ECDSA-AES128-CCM8
ECDHE-ECDSA-AES256-CCM ECDHE-ECDSA-AES256-CCM8 ECDHE-ECDSA-AES256-SHA384
ECDHE-ECDSA-ARIA128-GCM-SHA256 ECDHE-ECDSA-ARIA256-GCM-SHA384
ECDHE-ECDSA-CAMELLIA128-SHA256 ECDHE-ECDSA-CAMELLIA256-SHA384
ECDHE-ECDSA-CHACHA20-POLY1305-OLD ECDHE-ECDSA-DES-CBC3-SHA
ECDHE-ECDSA-NULL-SHA ECDHE-PSK-AES128-CBC-SHA ECDHE-PSK-AES128-CBC-SHA256
ECDHE-PSK-AES256-CBC-SHA ECDHE-PSK-AES256-CBC-SHA384
ECDHE-PSK-CAMELLIA128-SHA256 ECDHE-PSK-CAMELLIA256-SHA384
ECDHE-PSK-CHACHA20-POLY1305 ECDHE-PSK-NULL-SHA ECDHE-PSK-NULL-SHA256
ECDHE-PSK-NULL-SHA384 ECDHE-RSA-AES256-SHA384 ECDHE-RSA-CAMELLIA128-SHA256
ECDHE-RSA-CAMELLIA256-SHA384 ECDHE-RSA-CHACHA20-POLY1305-OLD
ECDHE-RSA-NULL-SHA EDH-DSS-DES-CBC-SHA EDH-DSS-DES-CBC3-SHA
EDH-RSA-AES128-SHA EDH-RSA-DES-CBC-SHA EDH-RSA-DES-CBC3-SHA EXP-DES-CBC-SHA
EXP-RC2-CBC-MD5 EXP-RC4-MD5 IDEA-CBC-SHA KRB5-DES-CBC3-MD5
KRB5-DES-CBC3-SHA KRB5-RC4-MD5 KRB5-RC4-SHA NULL-MD5 NULL-SHA NULL-SHA256
PSK-AES128-CBC-SHA PSK-AES128-CBC-SHA256 PSK-AES128-CCM PSK-AES128-CCM8
PSK-AES128-GCM-SHA256 PSK-AES256-CBC-SHA PSK-AES256-CBC-SHA384
PSK-AES256-CCM PSK-AES256-CCM8 PSK-AES256-GCM-SHA384 PSK-ARIA128-GCM-SHA256
PSK-ARIA256-GCM-SHA384 PSK-CAMELLIA128-SHA256 PSK-CAMELLIA256-SHA384
PSK-CHACHA20-POLY1305 PSK-NULL-SHA PSK-NULL-SHA256 PSK-NULL-SHA384 RC4-MD5
RSA-PSK-AES128-CBC-SHA RSA-PSK-AES128-CBC-SHA256 RSA-PSK-AES128-GCM-SHA256
RSA-PSK-AES256-CBC-SHA RSA-PSK-AES256-CBC-SHA384 RSA-PSK-AES256-GCM-SHA384
RSA-PSK-ARIA128-GCM-SHA256 RSA-PSK-ARIA256-GCM-SHA384
RSA-PSK-CAMELLIA128-SHA256 RSA-PSK-CAMELLIA256-SHA384
RSA-PSK-CHACHA20-POLY1305 RSA-PSK-NULL-SHA RSA-PSK-NULL-SHA256
RSA-PSK-NULL-SHA384 SEED-SHA SRP-AES-128-CBC-SHA SRP-AES-256-CBC-SHA
SRP-DSS-AES-128-CBC-SHA SRP-DSS-AES-256-CBC-SHA SRP-RSA-AES-128-CBC-SHA
SRP-RSA-AES-256-CBC-SHA
`

// CipherName is OpenSSL's name of a suite, as nginx's $ssl_cipher shows
// it: "ECDHE-RSA-AES128-GCM-SHA256" for TLS 1.2, the IANA name (which
// OpenSSL uses too) for TLS 1.3.
func CipherName(id uint16) string {
	for _, s := range suiteTable {
		if s.id == id {
			return s.openssl
		}
	}
	return tls.CipherSuiteName(id)
}
