package vars

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"testing"
	"time"
)

func TestDistinguishedNames(t *testing.T) {
	oid := func(ints ...int) asn1.ObjectIdentifier { return ints }
	name := pkix.RDNSequence{
		{{Type: oid(2, 5, 4, 6), Value: "DE"}},
		{{Type: oid(2, 5, 4, 10), Value: "A, B + C"}},
		{{Type: oid(2, 5, 4, 11), Value: "#lead"}, {Type: oid(2, 5, 4, 3), Value: " pad "}},
		{{Type: oid(1, 2, 840, 113549, 1, 9, 1), Value: "a@b.c"}},
		{{Type: oid(1, 2, 3, 4), Value: "x"}},
		{{Type: oid(2, 5, 4, 3), Value: "caf\u00e9/<x>"}},
	}
	der, err := asn1.Marshal(name)
	if err != nil {
		t.Fatal(err)
	}
	want := `CN=caf\C3\A9/\<x\>,1.2.3.4=#130178,emailAddress=a@b.c,CN=\ pad\ +OU=\#lead,O=A\, B \+ C,C=DE`
	if got := RFC2253(der); got != want {
		t.Errorf("RFC2253:\n got  %s\n want %s", got, want)
	}
	wantLegacy := `/C=DE/O=A, B \+ C/CN= pad +OU=#lead/emailAddress=a@b.c/1.2.3.4=x/CN=caf\xC3\xA9\/<x>`
	if got := legacyDN(der); got != wantLegacy {
		t.Errorf("legacy:\n got  %s\n want %s", got, wantLegacy)
	}
}

func TestClientCertificateVariables(t *testing.T) {
	c := &x509.Certificate{SerialNumber: big.NewInt(0x0102), Raw: []byte{1, 2, 3},
		NotBefore: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), NotAfter: time.Date(2026, 12, 25, 0, 0, 0, 0, time.UTC)}
	st := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c}, DidResume: true}
	ctx := &Ctx{TLS: &SSL{State: st, Verify: "SUCCESS"}, End: time.Date(2026, 12, 20, 12, 0, 0, 0, time.UTC)}
	for name, want := range map[string]string{
		"ssl_client_serial":      "0102",
		"ssl_client_v_start":     "Jan  2 03:04:05 2026 GMT",
		"ssl_client_v_end":       "Dec 25 00:00:00 2026 GMT",
		"ssl_client_v_remain":    "4",
		"ssl_client_fingerprint": "7037807198c22a7d2b0807371d763779a84fdfcf",
		"ssl_session_reused":     "r",
		"ssl_client_verify":      "SUCCESS",
	} {
		if got := sslVars[name](ctx); got != want {
			t.Errorf("$%s = %q, want %q", name, got, want)
		}
	}
	plain := &Ctx{}
	for name, f := range sslVars {
		if got := f(plain); got != "" {
			t.Errorf("$%s on a plain connection = %q", name, got)
		}
	}
	if serialHex(big.NewInt(0)) != "00" || serialHex(big.NewInt(-255)) != "-FF" {
		t.Error("serialHex")
	}
}
