package tlsconf

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"
)

// Client certificate verification (ssl_verify_client). As with nginx, the
// handshake never fails because of a client certificate: the server asks
// for one, records why it is or is not acceptable, and the HTTP layer
// answers 495 or 496 on the first request (see Verify).

// Verify modes of ssl_verify_client.
const (
	VerifyOff          = ""
	VerifyOn           = "on"
	VerifyOptional     = "optional"
	VerifyOptionalNoCA = "optional_no_ca"
)

// Reasons are OpenSSL's X509_verify_cert_error_string texts (OpenSSL 3),
// which nginx puts after "FAILED:" in $ssl_client_verify.
const (
	reasonExpired         = "certificate has expired"
	reasonNotYetValid     = "certificate is not yet valid"
	reasonNoIssuer        = "unable to get local issuer certificate"
	reasonLeafSignature   = "unable to verify the first certificate"
	reasonSelfSigned      = "self-signed certificate"
	reasonSelfSignedChain = "self-signed certificate in certificate chain"
	reasonTooLong         = "certificate chain too long"
	reasonRevoked         = "certificate revoked"
	reasonNoCRL           = "unable to get certificate CRL"
	reasonCRLExpired      = "CRL has expired"
	reasonCRLNotYetValid  = "CRL is not yet valid"
	reasonPurpose         = "unsuitable certificate purpose"
	reasonSignature       = "certificate signature failure"
)

// ClientResult is the outcome of checking a connection's client
// certificate: Verify is $ssl_client_verify ("NONE", "SUCCESS" or
// "FAILED:reason"); Status is 0 when requests may proceed, 495 for a
// certificate nginx refuses and 496 for a missing required one. Code is
// OpenSSL's X509_V_ERR number of a chain failure, which nginx logs with
// the reason; 0 for an OCSP failure (logged without one) or none.
type ClientResult struct {
	Verify string
	Status int
	Code   int

	// Presented says the client sent a certificate; IssuerOnly that the
	// failure is only an untrusted issuer (what optional_no_ca accepts).
	Presented, IssuerOnly bool
}

// StatusUnder is the answer to a request for a server whose
// ssl_verify_client is mode, on a connection whose certificate was
// checked with r: 0 (go on), 495 or 496. As in nginx, the mode is the
// requested server's, which differs from the checking one's when the
// client sent no SNI (the default server's handshake then asked for no
// certificate, and a server requiring one answers 496).
func (r ClientResult) StatusUnder(mode string) int {
	switch {
	case mode == VerifyOff:
		return 0
	case strings.HasPrefix(r.Verify, "FAILED:") && !(mode == VerifyOptionalNoCA && r.IssuerOnly):
		return 495
	case !r.Presented && mode == VerifyOn:
		return 496
	}
	return 0
}

// reasonCodes are OpenSSL's numbers for the reasons above.
var reasonCodes = map[string]int{
	reasonNoCRL: 3, reasonSignature: 7, reasonNotYetValid: 9, reasonExpired: 10,
	reasonCRLNotYetValid: 11, reasonCRLExpired: 12, reasonSelfSigned: 18,
	reasonSelfSignedChain: 19, reasonNoIssuer: 20, reasonLeafSignature: 21,
	reasonTooLong: 22, reasonRevoked: 23, reasonPurpose: 26,
}

// clientVerifier holds what one server{} checks client certificates with.
type clientVerifier struct {
	mode  string
	roots *x509.CertPool
	depth int
	crls  []*x509.RevocationList
	now   func() time.Time
	ocsp  *ocspChecker // nil without ssl_ocsp
}

// setupClientAuth reads ssl_client_certificate, ssl_trusted_certificate
// and ssl_crl and makes the handshake ask for a certificate. The
// certificate is requested, never required, and never checked by
// crypto/tls: Verify decides, so that the answer is nginx's page.
func (c *Config) setupClientAuth(o Options, now func() time.Time) error {
	switch o.VerifyClient {
	case VerifyOff:
		return nil
	case VerifyOn, VerifyOptional, VerifyOptionalNoCA:
	default:
		return fmt.Errorf("ssl_verify_client: invalid value %q, it must be \"on\", \"off\", \"optional\" or \"optional_no_ca\"", o.VerifyClient)
	}
	if o.VerifyClient != VerifyOptionalNoCA && o.ClientCertificate == "" && o.TrustedCertificate == "" {
		return errors.New(`no ssl_client_certificate or ssl_trusted_certificate for ssl_verify_client`)
	}
	v := &clientVerifier{mode: o.VerifyClient, roots: x509.NewCertPool(), depth: o.VerifyDepth, now: now}
	if v.depth <= 0 {
		v.depth = 1
	}
	c.tls.ClientAuth = tls.RequestClientCert
	if o.ClientCertificate != "" {
		certs, _, err := readCertChain(o.ClientCertificate)
		if err != nil {
			return fmt.Errorf("cannot load client certificate %q: %w", o.ClientCertificate, err)
		}
		// Named in the CertificateRequest, as nginx sends the names of
		// ssl_client_certificate (and not those of ssl_trusted_certificate).
		c.tls.ClientCAs = x509.NewCertPool()
		for _, ca := range certs {
			v.roots.AddCert(ca)
			c.tls.ClientCAs.AddCert(ca)
		}
	}
	if o.TrustedCertificate != "" {
		certs, err := readPool(o.TrustedCertificate)
		if err != nil {
			return err
		}
		for _, ca := range certs {
			v.roots.AddCert(ca)
		}
	}
	if o.CRL != "" {
		crls, err := readCRLs(o.CRL)
		if err != nil {
			return err
		}
		v.crls = crls
	}
	if err := v.setupOCSP(o); err != nil {
		return err
	}
	c.client = v
	return nil
}

// setupOCSP reads ssl_ocsp, ssl_ocsp_responder and ssl_ocsp_cache.
func (v *clientVerifier) setupOCSP(o Options) error {
	switch o.OCSP {
	case OCSPOff:
		return nil
	case OCSPOn, OCSPLeaf:
	default:
		return fmt.Errorf("ssl_ocsp: invalid value %q", o.OCSP)
	}
	if v.mode == VerifyOptionalNoCA {
		return errors.New(`"ssl_ocsp" is incompatible with "ssl_verify_client optional_no_ca"`)
	}
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	v.ocsp = &ocspChecker{
		leafOnly: o.OCSP == OCSPLeaf, responder: o.OCSPResponder,
		client: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}},
		wait:   orDefault(o.ocspWait, 5*time.Second),
		now:    v.now, logf: logf, capacity: o.OCSPCache,
	}
	if o.OCSPCache > 0 {
		v.ocsp.cache = make(map[string]ocspEntry)
	}
	return nil
}

// readCRLs reads a PEM file of certificate revocation lists (ssl_crl).
func readCRLs(path string) ([]*x509.RevocationList, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot load CRL %q: %w", path, err)
	}
	var out []*x509.RevocationList
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "X509 CRL" {
			continue
		}
		l, err := x509.ParseRevocationList(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("cannot load CRL %q: %w", path, err)
		}
		out = append(out, l)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("cannot load CRL %q: no PEM X509 CRL block found", path)
	}
	return out, nil
}

// VerifiesClients reports whether ssl_verify_client is on, optional or
// optional_no_ca for this server.
func (c *Config) VerifiesClients() bool { return c.client != nil }

// VerifyClient checks the client certificate of a finished handshake
// made with this Config, as nginx checks it when a request arrives: its
// chain to ssl_client_certificate or ssl_trusted_certificate, validity
// dates, ssl_verify_depth, ssl_crl and ssl_ocsp. Safe for concurrent use;
// it may block for the capped OCSP wait.
func (c *Config) VerifyClient(st *tls.ConnectionState) ClientResult {
	v := c.client
	if v == nil || len(st.PeerCertificates) == 0 {
		r := ClientResult{Verify: "NONE"}
		if v != nil {
			r.Status = r.StatusUnder(v.mode)
		}
		return r
	}
	chain, reason := v.verify(st.PeerCertificates)
	r := ClientResult{Verify: "SUCCESS", Presented: true, Code: reasonCodes[reason], IssuerOnly: optionalNoCA(reason)}
	if reason == "" && v.ocsp != nil {
		reason = v.ocsp.check(chain)
	}
	if reason != "" {
		r.Verify = "FAILED:" + reason
	}
	r.Status = r.StatusUnder(v.mode)
	return r
}

// optionalNoCA lists the failures optional_no_ca lets through: those
// saying only that the issuer is not trusted (ngx_ssl_verify_error_optional).
func optionalNoCA(reason string) bool {
	switch reason {
	case reasonNoIssuer, reasonLeafSignature, reasonSelfSigned, reasonSelfSignedChain:
		return true
	}
	return false
}

// verify builds and checks the chain as OpenSSL does under nginx, whose
// callback lets verification go on past a failure: the result is the
// last failure found, in OpenSSL's order (building the chain, the
// certificate's purpose, revocation, then validity dates from the root
// down to the leaf). It returns the chain (leaf first; the peer's own
// certificates when no trusted chain exists) and the reason, or "".
func (v *clientVerifier) verify(peer []*x509.Certificate) ([]*x509.Certificate, string) {
	leaf := peer[0]
	now := v.now()
	chain, last := v.build(peer, now)
	trusted := last == ""
	if len(chain)-1 > v.depth {
		last = reasonTooLong
	}
	if !clientPurpose(leaf) {
		last = reasonPurpose
	}
	if r := v.checkCRL(chain, trusted, now); r != "" {
		last = r
	}
	for i := len(chain) - 1; i >= 0; i-- {
		switch c := chain[i]; {
		case now.Before(c.NotBefore):
			last = reasonNotYetValid
		case now.After(c.NotAfter):
			last = reasonExpired
		}
	}
	return chain, last
}

// build finds a chain from the peer's certificates to a trusted one,
// ignoring dates (they are checked afterwards, as OpenSSL orders it).
func (v *clientVerifier) build(peer []*x509.Certificate, now time.Time) ([]*x509.Certificate, string) {
	leaf := peer[0]
	inter := x509.NewCertPool()
	for _, c := range peer[1:] {
		inter.AddCert(c)
	}
	at := now
	if at.Before(leaf.NotBefore) || at.After(leaf.NotAfter) {
		at = leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
	}
	opts := x509.VerifyOptions{Roots: v.roots, Intermediates: inter, CurrentTime: at,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
	chains, err := leaf.Verify(opts)
	if err == nil {
		chain := chains[0]
		for _, ch := range chains[1:] {
			if len(ch) < len(chain) {
				chain = ch
			}
		}
		return chain, ""
	}
	var ua x509.UnknownAuthorityError
	if !errors.As(err, &ua) {
		return peer, reasonSignature
	}
	top := peer[len(peer)-1]
	switch {
	case selfSigned(top) && len(peer) == 1:
		return peer, reasonSelfSigned
	case selfSigned(top):
		return peer, reasonSelfSignedChain
	case len(peer) == 1:
		return peer, reasonLeafSignature
	}
	return peer, reasonNoIssuer
}

// clientPurpose is OpenSSL's "SSL client" purpose check of a leaf: if
// the certificate limits its uses, client authentication and digital
// signatures (or key agreement) must be among them.
func clientPurpose(c *x509.Certificate) bool {
	if len(c.ExtKeyUsage) > 0 || len(c.UnknownExtKeyUsage) > 0 {
		ok := false
		for _, u := range c.ExtKeyUsage {
			ok = ok || u == x509.ExtKeyUsageClientAuth || u == x509.ExtKeyUsageAny
		}
		if !ok {
			return false
		}
	}
	if c.KeyUsage != 0 && c.KeyUsage&(x509.KeyUsageDigitalSignature|x509.KeyUsageKeyAgreement) == 0 {
		return false
	}
	return true
}

// checkCRL checks the chain's certificates against their issuers' CRLs,
// as nginx asks OpenSSL to (X509_V_FLAG_CRL_CHECK_ALL): a missing CRL is
// a failure. A trusted root is not checked; in an untrusted chain a
// self-signed certificate is its own issuer, and one whose issuer is
// unknown is skipped. The last failure is returned, as OpenSSL reports it.
func (v *clientVerifier) checkCRL(chain []*x509.Certificate, trusted bool, now time.Time) string {
	if len(v.crls) == 0 {
		return ""
	}
	n := len(chain)
	if trusted {
		n--
	}
	last := ""
	for i := 0; i < n; i++ {
		var issuer *x509.Certificate
		switch {
		case i+1 < len(chain):
			issuer = chain[i+1]
		case selfSigned(chain[i]):
			issuer = chain[i]
		default:
			continue // OpenSSL looks for no CRL without an issuer
		}
		if r := v.crlStatus(chain[i], issuer, now); r != "" {
			last = r
		}
	}
	return last
}

// crlStatus checks one certificate against the CRL of its issuer.
func (v *clientVerifier) crlStatus(cert, issuer *x509.Certificate, now time.Time) string {
	var crl *x509.RevocationList
	for _, l := range v.crls {
		if bytes.Equal(l.RawIssuer, issuer.RawSubject) && l.CheckSignatureFrom(issuer) == nil {
			crl = l
			break
		}
	}
	switch {
	case crl == nil:
		return reasonNoCRL
	case now.Before(crl.ThisUpdate):
		return reasonCRLNotYetValid
	case !crl.NextUpdate.IsZero() && now.After(crl.NextUpdate):
		return reasonCRLExpired
	}
	for _, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(cert.SerialNumber) == 0 {
			return reasonRevoked
		}
	}
	return ""
}

func selfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil
}
