package vars

import (
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/tlsconf"
)

// SSL is a TLS connection as the $ssl_* variables see it. The server
// fills it once per connection and shares it between the connection's
// requests; it is read-only afterwards.
type SSL struct {
	State     *tls.ConnectionState
	Cipher    string // OpenSSL's name of the negotiated suite
	Verify    string // $ssl_client_verify: NONE, SUCCESS or FAILED:reason
	EarlyData bool   // the request arrived in 0-RTT data (HTTP/3)
	// The client's offer as sent: $ssl_ciphers and $ssl_curves print it
	// when asked, so that a connection does not hold the names.
	OfferedCiphers []uint16
	OfferedCurves  []tls.CurveID
}

func init() {
	for name, f := range sslVars {
		builtins[name] = f
	}
}

// sslVars are ngx_http_ssl_module's variables. Each is empty on a plain
// connection, and the client certificate ones without a certificate.
var sslVars = map[string]func(*Ctx) string{
	"ssl_session_reused": func(c *Ctx) string {
		if st := sslState(c); st != nil {
			if st.DidResume {
				return "r"
			}
			return "."
		}
		return ""
	},
	"ssl_session_id": func(c *Ctx) string { return "" },
	"ssl_early_data": func(c *Ctx) string {
		if c.TLS != nil && c.TLS.EarlyData {
			return "1"
		}
		return ""
	},
	"ssl_alpn_protocol": func(c *Ctx) string {
		if st := sslState(c); st != nil {
			return st.NegotiatedProtocol
		}
		return ""
	},
	"ssl_ciphers": func(c *Ctx) string {
		if c.TLS != nil {
			return cipherList(c.TLS.OfferedCiphers)
		}
		return ""
	},
	"ssl_curves": func(c *Ctx) string {
		if c.TLS != nil {
			return curveList(c.TLS.OfferedCurves)
		}
		return ""
	},
	"ssl_curve": func(c *Ctx) string {
		if st := sslState(c); st != nil && st.CurveID != 0 {
			return CurveName(st.CurveID)
		}
		return ""
	},
	"ssl_client_verify": func(c *Ctx) string {
		if c.TLS != nil {
			if c.TLS.Verify == "" {
				return "NONE"
			}
			return c.TLS.Verify
		}
		return ""
	},
	"ssl_client_raw_cert": clientCert(func(x *x509.Certificate) string { return certPEM(x) }),
	"ssl_client_cert": clientCert(func(x *x509.Certificate) string {
		return strings.ReplaceAll(strings.TrimSuffix(certPEM(x), "\n"), "\n", "\n\t") + "\n"
	}),
	"ssl_client_escaped_cert": clientCert(func(x *x509.Certificate) string { return escapeComponent(certPEM(x)) }),
	"ssl_client_fingerprint": clientCert(func(x *x509.Certificate) string {
		sum := sha1.Sum(x.Raw)
		return hex.EncodeToString(sum[:])
	}),
	"ssl_client_s_dn":        clientCert(func(x *x509.Certificate) string { return RFC2253(x.RawSubject) }),
	"ssl_client_i_dn":        clientCert(func(x *x509.Certificate) string { return RFC2253(x.RawIssuer) }),
	"ssl_client_s_dn_legacy": clientCert(func(x *x509.Certificate) string { return legacyDN(x.RawSubject) }),
	"ssl_client_i_dn_legacy": clientCert(func(x *x509.Certificate) string { return legacyDN(x.RawIssuer) }),
	"ssl_client_serial":      clientCert(func(x *x509.Certificate) string { return serialHex(x.SerialNumber) }),
	"ssl_client_v_start":     clientCert(func(x *x509.Certificate) string { return asn1Time(x.NotBefore) }),
	"ssl_client_v_end":       clientCert(func(x *x509.Certificate) string { return asn1Time(x.NotAfter) }),
	"ssl_client_v_remain": func(c *Ctx) string {
		x := clientLeaf(c)
		if x == nil {
			return ""
		}
		days := (x.NotAfter.Unix() - now(c).Unix()) / 86400
		return strconv.FormatInt(max(days, 0), 10)
	},
}

func sslState(c *Ctx) *tls.ConnectionState {
	if c.TLS == nil {
		return nil
	}
	return c.TLS.State
}

func clientLeaf(c *Ctx) *x509.Certificate {
	if st := sslState(c); st != nil && len(st.PeerCertificates) > 0 {
		return st.PeerCertificates[0]
	}
	return nil
}

func clientCert(f func(*x509.Certificate) string) func(*Ctx) string {
	return func(c *Ctx) string {
		if x := clientLeaf(c); x != nil {
			return f(x)
		}
		return ""
	}
}

func certPEM(x *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: x.Raw}))
}

// serialHex prints a serial number as OpenSSL's i2a_ASN1_INTEGER does:
// upper-case hex, two digits a byte.
func serialHex(n *big.Int) string {
	if n.Sign() == 0 {
		return "00"
	}
	s := strings.ToUpper(hex.EncodeToString(new(big.Int).Abs(n).Bytes()))
	if n.Sign() < 0 {
		return "-" + s
	}
	return s
}

// asn1Time prints a time as OpenSSL's ASN1_TIME_print: "Jan  2 15:04:05 2006 GMT".
func asn1Time(t time.Time) string {
	return t.UTC().Format("Jan _2 15:04:05 2006") + " GMT"
}

// cipherList prints a ClientHello's suites as nginx does: OpenSSL names
// joined by ':', unknown ones as 0x hex.
func cipherList(ids []uint16) string {
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(':')
		}
		if name := tlsconf.CipherName(id); !strings.HasPrefix(name, "0x") {
			b.WriteString(name)
		} else {
			fmt.Fprintf(&b, "0x%04x", id)
		}
	}
	return b.String()
}

// curveList prints a ClientHello's groups as nginx does.
func curveList(ids []tls.CurveID) string {
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(CurveName(id))
	}
	return b.String()
}

// CurveName is OpenSSL's name of a TLS group, as $ssl_curve shows it.
func CurveName(id tls.CurveID) string {
	switch id {
	case tls.X25519:
		return "X25519"
	case tls.CurveP256:
		return "prime256v1"
	case tls.CurveP384:
		return "secp384r1"
	case tls.CurveP521:
		return "secp521r1"
	case tls.X25519MLKEM768:
		return "X25519MLKEM768"
	case tls.SecP256r1MLKEM768:
		return "SecP256r1MLKEM768"
	case tls.SecP384r1MLKEM1024:
		return "SecP384r1MLKEM1024"
	}
	return fmt.Sprintf("0x%04x", uint16(id))
}

// attrNames are OpenSSL's short names of distinguished name attributes.
var attrNames = map[string]string{
	"2.5.4.3": "CN", "2.5.4.4": "SN", "2.5.4.5": "serialNumber", "2.5.4.6": "C",
	"2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.9": "street", "2.5.4.10": "O",
	"2.5.4.11": "OU", "2.5.4.12": "title", "2.5.4.17": "postalCode",
	"2.5.4.42": "GN", "2.5.4.43": "initials", "2.5.4.44": "generationQualifier",
	"2.5.4.46": "dnQualifier", "2.5.4.65": "pseudonym", "2.5.4.97": "organizationIdentifier",
	"0.9.2342.19200300.100.1.25": "DC", "0.9.2342.19200300.100.1.1": "UID",
	"1.2.840.113549.1.9.1": "emailAddress",
}

// RFC2253 prints a DER distinguished name as OpenSSL's
// X509_NAME_print_ex with XN_FLAG_RFC2253, nginx's $ssl_client_s_dn: the
// last RDN first, short attribute names, RFC 2253 escapes, bytes above
// 0x7f as \XX, and unknown attributes as #hex of their DER value.
func RFC2253(der []byte) string {
	rdns, ok := parseName(der)
	if !ok {
		return ""
	}
	var b strings.Builder
	for i := len(rdns) - 1; i >= 0; i-- {
		if i != len(rdns)-1 {
			b.WriteByte(',')
		}
		for j, atv := range rdns[i] {
			if j > 0 {
				b.WriteByte('+')
			}
			writeATV(&b, atv, true)
		}
	}
	return b.String()
}

// legacyDN prints a name as X509_NAME_oneline: "/C=US/O=Example/CN=name",
// nginx's $ssl_client_s_dn_legacy.
func legacyDN(der []byte) string {
	rdns, ok := parseName(der)
	if !ok {
		return ""
	}
	var b strings.Builder
	for _, rdn := range rdns {
		for j, atv := range rdn {
			if j > 0 {
				b.WriteByte('+')
			} else {
				b.WriteByte('/')
			}
			writeATV(&b, atv, false)
		}
	}
	return b.String()
}

func parseName(der []byte) ([][]rawATV, bool) {
	var seq []asn1.RawValue
	if rest, err := asn1.Unmarshal(der, &seq); err != nil || len(rest) > 0 {
		return nil, false
	}
	out := make([][]rawATV, 0, len(seq))
	for _, set := range seq {
		var atvs []rawATV
		if _, err := asn1.UnmarshalWithParams(set.FullBytes, &atvs, "set"); err != nil {
			return nil, false
		}
		out = append(out, atvs)
	}
	return out, true
}

type rawATV struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

// writeATV writes one attribute. An attribute without a short name is
// written with its OID, and its value as #hex of the DER in RFC 2253
// form (XN_FLAG_DUMP_UNKNOWN_FIELDS), as text in the legacy form.
func writeATV(b *strings.Builder, atv rawATV, rfc2253 bool) {
	esc := escapeOneline
	if rfc2253 {
		esc = escape2253
	}
	name, known := attrNames[atv.Type.String()]
	if !known {
		name = atv.Type.String()
		if rfc2253 {
			b.WriteString(name + "=#" + strings.ToUpper(hex.EncodeToString(atv.Value.FullBytes)))
			return
		}
	}
	b.WriteString(name)
	b.WriteByte('=')
	esc(b, stringValue(atv.Value))
}

// stringValue decodes the string types names use; BMPString is UTF-16.
func stringValue(v asn1.RawValue) string {
	if v.Tag == asn1.TagBMPString {
		var r []rune
		for i := 0; i+1 < len(v.Bytes); i += 2 {
			r = append(r, rune(v.Bytes[i])<<8|rune(v.Bytes[i+1]))
		}
		return string(r)
	}
	return string(v.Bytes)
}

func escape2253(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch < 0x20 || ch >= 0x7f:
			fmt.Fprintf(b, "\\%02X", ch)
		case strings.IndexByte(",+\"\\<>;", ch) >= 0,
			(ch == '#' || ch == ' ') && i == 0,
			ch == ' ' && i == len(s)-1:
			b.WriteByte('\\')
			b.WriteByte(ch)
		default:
			b.WriteByte(ch)
		}
	}
}

func escapeOneline(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch < 0x20 || ch >= 0x7f:
			fmt.Fprintf(b, "\\x%02X", ch)
		case ch == '/' || ch == '+':
			b.WriteByte('\\')
			b.WriteByte(ch)
		default:
			b.WriteByte(ch)
		}
	}
}

// escapeComponent escapes all but RFC 3986's unreserved characters, as
// nginx's ngx_escape_uri with NGX_ESCAPE_URI_COMPONENT.
func escapeComponent(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if 'a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' || strings.IndexByte("-._~", ch) >= 0 {
			b.WriteByte(ch)
		} else {
			fmt.Fprintf(&b, "%%%02X", ch)
		}
	}
	return b.String()
}
