package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// ClientOptions are a location's proxy_ssl_* settings: how wsgate, as a
// TLS client, talks to an https:// backend. The zero value plus
// VerifyDepth 1 and SessionReuse true is nginx's default: no
// verification at all, no SNI.
type ClientOptions struct {
	Verify       bool     // proxy_ssl_verify
	Trusted      string   // proxy_ssl_trusted_certificate: PEM bundle
	VerifyDepth  int      // proxy_ssl_verify_depth
	CRL          string   // proxy_ssl_crl
	SNI          bool     // proxy_ssl_server_name
	Cert, Key    string   // proxy_ssl_certificate, proxy_ssl_certificate_key
	PasswordFile string   // proxy_ssl_password_file
	Protocols    []string // proxy_ssl_protocols; empty: TLSv1.2 TLSv1.3
	Ciphers      string   // proxy_ssl_ciphers, an OpenSSL cipher string
	SessionReuse bool     // proxy_ssl_session_reuse
	// ConfCommands are proxy_ssl_conf_command pairs, mapped as
	// ssl_conf_command's.
	ConfCommands [][2]string
}

// Client is the TLS client side of one location. For returns the
// *tls.Config for a given proxy_ssl_name; configs are cached per name so
// that connections to the same name share one session cache and one
// identity (the backend package pools idle connections by it).
type Client struct {
	base   *tls.Config // without ServerName and verification
	verify *clientChecker

	mu    sync.Mutex
	names map[string]*tls.Config
}

// clientNamesMax bounds the per-name cache: a proxy_ssl_name with
// variables gets a fresh config (and no session reuse) past it.
const clientNamesMax = 256

// clientChecker is proxy_ssl_verify on.
type clientChecker struct {
	roots *x509.CertPool
	depth int
	crls  []*x509.RevocationList
}

// NewClient checks and loads o; errors name the directive at fault.
func NewClient(o ClientOptions) (*Client, error) {
	minV, maxV, err := parseProtocols(o.Protocols)
	if err != nil {
		return nil, fmt.Errorf("proxy_%s", err)
	}
	so := Options{Ciphers: o.Ciphers, ConfCommands: o.ConfCommands}
	if err := applyConfCommands(&so, &minV, &maxV); err != nil {
		return nil, fmt.Errorf("proxy_%s", strings.ReplaceAll(err.Error(), "with ssl_protocols", "with proxy_ssl_protocols"))
	}
	cfg := &tls.Config{
		MinVersion: minV, MaxVersion: maxV,
		// Verification, when on, is clientChecker's: nginx checks the
		// name against proxy_ssl_name whether or not SNI is sent.
		InsecureSkipVerify: true,
	}
	if so.Ciphers != "" {
		if cfg.CipherSuites, err = ParseCiphers(so.Ciphers); err != nil {
			return nil, fmt.Errorf("proxy_ssl_ciphers: %w", err)
		}
	}
	if so.ECDHCurve != "" {
		if cfg.CurvePreferences, err = parseCurves(so.ECDHCurve); err != nil {
			return nil, fmt.Errorf("proxy_ssl_conf_command: %w", err)
		}
	}
	if o.Cert != "" {
		if err := loadClientCert(cfg, o); err != nil {
			return nil, err
		}
	}
	if o.SessionReuse && !so.DisableSessionTickets {
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(0)
	}
	c := &Client{base: cfg, names: map[string]*tls.Config{}}
	if o.Verify {
		if c.verify, err = newClientChecker(o); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func loadClientCert(cfg *tls.Config, o ClientOptions) error {
	if o.Key == "" {
		return fmt.Errorf("no \"proxy_ssl_certificate_key\" is defined for certificate \"%s\"", o.Cert)
	}
	pw, err := readPasswords(o.PasswordFile)
	if err != nil {
		return fmt.Errorf("proxy_ssl_password_file: %w", err)
	}
	cert, _, err := loadPair(CertPair{Cert: o.Cert, Key: o.Key}, pw)
	if err != nil {
		return errors.New(strings.ReplaceAll(err.Error(), "\"ssl_password_file\"", "\"proxy_ssl_password_file\""))
	}
	cfg.Certificates = []tls.Certificate{*cert}
	return nil
}

func newClientChecker(o ClientOptions) (*clientChecker, error) {
	v := &clientChecker{depth: o.VerifyDepth}
	if o.Trusted == "" {
		return nil, errors.New("no \"proxy_ssl_trusted_certificate\" for \"proxy_ssl_verify\"")
	}
	certs, err := readPool(o.Trusted)
	if err != nil {
		return nil, err
	}
	v.roots = x509.NewCertPool()
	for _, c := range certs {
		v.roots.AddCert(c)
	}
	if o.CRL != "" {
		if v.crls, err = readCRLs(o.CRL); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// For returns the config for connections whose proxy_ssl_name is name
// (a host name or an address; a port is stripped, as nginx does). SNI is
// sent when the options ask for it and name is not an IP address.
func (c *Client) For(name string, sni bool) *tls.Config {
	name = stripPort(name)
	key := name
	if sni {
		key = "\x00" + name
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cfg := c.names[key]; cfg != nil {
		return cfg
	}
	cfg := c.base.Clone()
	if _, err := netip.ParseAddr(name); sni && err != nil && name != "" {
		cfg.ServerName = name
	}
	if c.verify != nil {
		v := c.verify
		cfg.VerifyConnection = func(cs tls.ConnectionState) error { return v.check(cs.PeerCertificates, name) }
	}
	if len(c.names) < clientNamesMax {
		c.names[key] = cfg
	}
	return cfg
}

// stripPort drops a ":port" from name ("[::1]:443" gives "::1").
func stripPort(name string) string {
	if strings.HasPrefix(name, "[") {
		if i := strings.Index(name, "]"); i > 0 {
			return name[1:i]
		}
	}
	if i := strings.LastIndexByte(name, ':'); i >= 0 && strings.Count(name, ":") == 1 {
		return name[:i]
	}
	return name
}

// VerifyError is a backend certificate proxy_ssl_verify refused; its
// text is nginx's error log wording.
type VerifyError struct {
	Code   int // OpenSSL's X509_V_ERR number; 0 for a name mismatch
	Reason string
	Name   string // the name that did not match, for Code 0
}

func (e *VerifyError) Error() string {
	if e.Code == 0 {
		return fmt.Sprintf("upstream SSL certificate does not match \"%s\"", e.Name)
	}
	return fmt.Sprintf("upstream SSL certificate verify error: (%d:%s)", e.Code, e.Reason)
}

// check verifies a backend's chain as nginx with proxy_ssl_verify on:
// trusted roots, a chain no longer than the depth allows (as
// ssl_verify_depth: depth 1 admits a certificate issued by a trusted CA
// directly, 2 one intermediate), the CRLs when given, then the name.
func (v *clientChecker) check(peer []*x509.Certificate, name string) error {
	if len(peer) == 0 {
		return &VerifyError{Code: 50, Reason: "application verification failure"}
	}
	inter := x509.NewCertPool()
	for _, c := range peer[1:] {
		inter.AddCert(c)
	}
	chains, err := peer[0].Verify(x509.VerifyOptions{Roots: v.roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return verifyFailure(err, len(peer))
	}
	chain := shortest(chains)
	if len(chain) > v.depth+1 {
		return &VerifyError{Code: 22, Reason: "certificate chain too long"}
	}
	if r := v.revoked(chain); r != nil {
		return r
	}
	if err := peer[0].VerifyHostname(name); err != nil {
		return &VerifyError{Name: name}
	}
	return nil
}

func shortest(chains [][]*x509.Certificate) []*x509.Certificate {
	best := chains[0]
	for _, c := range chains[1:] {
		if len(c) < len(best) {
			best = c
		}
	}
	return best
}

// revoked checks each certificate of chain below its root against the
// CRLs of its issuer.
func (v *clientChecker) revoked(chain []*x509.Certificate) error {
	if len(v.crls) == 0 {
		return nil
	}
	now := time.Now()
	for i := 0; i+1 < len(chain); i++ {
		cert, issuer := chain[i], chain[i+1]
		found := false
		for _, l := range v.crls {
			if l.CheckSignatureFrom(issuer) != nil {
				continue
			}
			found = true
			if !l.NextUpdate.IsZero() && now.After(l.NextUpdate) {
				return &VerifyError{Code: 12, Reason: "CRL has expired"}
			}
			for _, e := range l.RevokedCertificateEntries {
				if e.SerialNumber.Cmp(cert.SerialNumber) == 0 {
					return &VerifyError{Code: 23, Reason: "certificate revoked"}
				}
			}
		}
		if !found {
			return &VerifyError{Code: 3, Reason: "unable to get certificate CRL"}
		}
	}
	return nil
}

// verifyFailure maps Go's chain error onto OpenSSL's code and reason; sent
// is how many certificates the peer sent (OpenSSL says 21, not 20, when
// the leaf alone came and its issuer is unknown).
func verifyFailure(err error, sent int) error {
	var ce x509.CertificateInvalidError
	if errors.As(err, &ce) && ce.Reason == x509.Expired {
		return &VerifyError{Code: 10, Reason: "certificate has expired"}
	}
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) {
		switch {
		case ua.Cert != nil && selfSigned(ua.Cert) && sent == 1:
			return &VerifyError{Code: 18, Reason: "self-signed certificate"}
		case sent == 1:
			return &VerifyError{Code: 21, Reason: "unable to verify the first certificate"}
		}
		return &VerifyError{Code: 20, Reason: "unable to get local issuer certificate"}
	}
	return &VerifyError{Code: 50, Reason: "application verification failure (" + err.Error() + ")"}
}

// HandshakeMessage renders a failed TLS handshake with a backend for the
// error log, as nginx words it.
func HandshakeMessage(err error) string {
	var ve *VerifyError
	if errors.As(err, &ve) {
		return ve.Error()
	}
	if isTimeout(err) {
		return "upstream timed out (110: Connection timed out)"
	}
	return fmt.Sprintf("SSL_do_handshake() failed (%v)", err)
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
