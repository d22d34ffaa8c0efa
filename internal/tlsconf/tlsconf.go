package tlsconf

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ocsp"
)

// CertPair is one ssl_certificate / ssl_certificate_key pair. Cert holds
// the leaf first, then intermediates; both are absolute file paths.
type CertPair struct {
	Cert, Key string
}

// Options are the ssl_* settings of one server{} block, as plain values.
// The zero value of each field is nginx's default for its directive.
type Options struct {
	// Certs are tried in the order ECDSA, Ed25519, then the rest (each
	// class in the given order), and the first one the client supports is
	// served, so a client that can take ECDSA gets it, as OpenSSL's
	// signature algorithm order gives it with nginx. At least one.
	Certs []CertPair

	// Protocols is ssl_protocols: any of "TLSv1", "TLSv1.1", "TLSv1.2",
	// "TLSv1.3" without a gap. Empty means "TLSv1.2 TLSv1.3".
	Protocols []string

	// Ciphers is ssl_ciphers, an OpenSSL expression (see ParseCiphers).
	// It selects TLS 1.0-1.2 suites only: Go's TLS 1.3 suites are fixed.
	// Empty means DefaultCiphers, which, as with OpenSSL, includes the
	// RSA key exchange suites Go leaves out by default. Nothing left for
	// TLS 1.2 is an error unless Protocols is TLS 1.3 only.
	Ciphers string

	// PreferServerCiphers is ssl_prefer_server_ciphers. Accepted and
	// ignored: since Go 1.18 crypto/tls orders suites itself, by hardware
	// support and strength, whatever the client or the list says.
	PreferServerCiphers bool

	// ECDHCurve is ssl_ecdh_curve: "auto" (or empty) keeps Go's
	// preference, which includes post-quantum hybrids; otherwise a
	// ':'-separated list such as "X25519:prime256v1:secp384r1".
	ECDHCurve string

	// SessionCache is ssl_session_cache: "off", "none" (or empty),
	// "builtin[:N]", "shared:NAME:SIZE", or several of the last two.
	SessionCache string

	// SessionTimeout is ssl_session_timeout; zero means 5 minutes.
	SessionTimeout time.Duration

	// DisableSessionTickets is "ssl_session_tickets off". With a session
	// cache, resumption then goes through a server-side store; without
	// one, sessions are not resumed.
	DisableSessionTickets bool

	// Stapling is ssl_stapling. A response is stapled only when its
	// status is good and it is current. StaplingVerify
	// (ssl_stapling_verify) also requires its signature to chain to the
	// certificate's issuer, directly or through a delegated responder
	// certificate the issuer signed.
	Stapling, StaplingVerify bool
	// TrustedCertificate is ssl_trusted_certificate: a PEM bundle where
	// a certificate's issuer is looked for when its chain lacks it.
	TrustedCertificate string
	// StaplingFile is ssl_stapling_file: a DER OCSP response served
	// instead of asking a responder.
	StaplingFile string
	// StaplingResponder is ssl_stapling_responder: overrides the
	// certificate's OCSP URL.
	StaplingResponder string

	// VerifyClient is ssl_verify_client: VerifyOff, VerifyOn,
	// VerifyOptional or VerifyOptionalNoCA. ClientCertificate
	// (ssl_client_certificate) is a PEM bundle of CAs trusted for client
	// certificates and named in the certificate request;
	// TrustedCertificate is trusted too but not named. VerifyDepth is
	// ssl_verify_depth (zero means 1); CRL is ssl_crl, a PEM file of
	// revocation lists, one needed for every CA of a chain.
	VerifyClient      string
	ClientCertificate string
	VerifyDepth       int
	CRL               string

	// OCSP is ssl_ocsp: OCSPOff, OCSPOn (every certificate of the client's
	// chain) or OCSPLeaf. OCSPResponder (ssl_ocsp_responder) overrides the
	// certificates' URLs; OCSPCache is how many answers ssl_ocsp_cache
	// keeps (see ParseOCSPCache), 0 for none. The checks of one
	// connection wait at most 5 seconds in all; a responder that does not
	// answer in time fails the certificate, as in nginx.
	OCSP          string
	OCSPResponder string
	OCSPCache     int

	// RejectHandshake is ssl_reject_handshake: every handshake this
	// Config serves fails with an unrecognized_name alert; Certs may be
	// empty and nothing else is checked.
	RejectHandshake bool

	// PasswordFile is ssl_password_file: pass phrases, one a line, tried
	// in turn on encrypted keys.
	PasswordFile string

	// DHParam is ssl_dhparam: checked to hold DH parameters, then unused.
	DHParam string

	// ConfCommands are ssl_conf_command pairs, applied in order on top of
	// the other settings (see applyConfCommands).
	ConfCommands [][2]string

	// TicketKeys are ssl_session_ticket_key files; the first encrypts.
	TicketKeys []string

	// CertCache is ssl_certificate_cache, for certificate paths naming
	// $ssl_server_name (see HasVariables). Such pairs are loaded during
	// the handshake, never by New, and are not stapled.
	CertCache CertCache

	// GetCertificate, when set, serves every handshake instead of Certs,
	// which may then be empty (certificates obtained by ACME).
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)

	// NextProtos is the ALPN list offered, in preference order.
	NextProtos []string

	// Logf receives stapling warnings (nginx logs them at warn). Nil
	// discards them. Called from the refresher goroutine.
	Logf func(format string, args ...any)

	// Test knobs: zero means the production default.
	minRefresh, maxRefresh, retryAfter, fetchTimeout, ocspWait time.Duration
	now                                                        func() time.Time
}

// Config is a loaded, checked TLS setup for one server{}. TLS may be called
// concurrently; Close stops background OCSP refreshes and must be called
// once the listeners using TLS() are closed (later handshakes still work,
// with the last staple until it expires). Create it with New.
type Config struct {
	tls    *tls.Config
	certs  []*certEntry
	store  *sessionStore // nil unless tickets are off and a cache is on
	cancel context.CancelFunc
	wg     sync.WaitGroup
	dyn    *dynCerts       // nil unless certificate paths name variables
	client *clientVerifier // nil without ssl_verify_client
	http   *http.Client    // nil unless a responder is queried
	once   sync.Once
}

// certEntry is one certificate pair, with the copy currently served (the
// base plus the current OCSP staple, if any).
type certEntry struct {
	path  string
	base  *tls.Certificate
	cur   atomic.Pointer[tls.Certificate]
	chain []*x509.Certificate
}

// New loads the certificates and checks every setting. Errors name the
// file or directive and what is wrong, as nginx does. Failing to fetch an
// OCSP response is not an error: stapling happens in the background.
func New(o Options) (*Config, error) {
	if o.RejectHandshake {
		return &Config{tls: rejectConfig()}, nil
	}
	if len(o.Certs) == 0 && o.GetCertificate == nil {
		return nil, errors.New(`no "ssl_certificate" is defined`)
	}
	minV, maxV, err := parseProtocols(o.Protocols)
	if err != nil {
		return nil, err
	}
	if err := applyConfCommands(&o, &minV, &maxV); err != nil {
		return nil, err
	}
	if o.DHParam != "" {
		if err := checkDHParam(o.DHParam); err != nil {
			return nil, err
		}
	}
	passwords, err := readPasswords(o.PasswordFile)
	if err != nil {
		return nil, err
	}
	ticketKeys, err := readTicketKeys(o.TicketKeys)
	if err != nil {
		return nil, err
	}
	suites, notes, err := ParseCipherString(o.Ciphers)
	for _, n := range notes {
		if o.Logf != nil {
			o.Logf("%s", n)
		}
	}
	if err != nil && !(errors.Is(err, errNoCiphers) && minV >= tls.VersionTLS13) {
		return nil, err
	}
	curves, err := parseCurves(o.ECDHCurve)
	if err != nil {
		return nil, err
	}
	cacheSize, err := parseSessionCache(o.SessionCache)
	if err != nil {
		return nil, err
	}
	ttl := o.SessionTimeout
	if ttl <= 0 {
		ttl = 5 * time.Minute
	}

	now := o.now
	if now == nil {
		now = time.Now
	}
	c := &Config{}
	if dynamic(o.Certs) {
		c.dyn = &dynCerts{pairs: o.Certs, passwords: passwords, cache: o.CertCache, now: now}
	} else {
		for _, p := range o.Certs {
			cert, chain, err := loadPair(p, passwords)
			if err != nil {
				return nil, err
			}
			e := &certEntry{path: p.Cert, base: cert, chain: chain}
			e.cur.Store(cert)
			c.certs = append(c.certs, e)
		}
		c.certs = preferECDSA(c.certs)
	}

	c.tls = &tls.Config{
		MinVersion:       minV,
		MaxVersion:       maxV,
		CipherSuites:     suites,
		CurvePreferences: curves,
		NextProtos:       o.NextProtos,
		GetCertificate:   c.getCertificate,
	}
	if c.dyn != nil {
		c.tls.GetCertificate = c.dyn.get
	}
	if o.GetCertificate != nil {
		c.tls.GetCertificate = o.GetCertificate
	}
	switch {
	case !o.DisableSessionTickets:
		t := &ticketTimeout{cfg: c.tls, ttl: ttl, now: now}
		c.tls.WrapSession, c.tls.UnwrapSession = t.wrap, t.unwrap
	case cacheSize > 0:
		c.store = newSessionStore(cacheSize, ttl)
		c.store.now = now
		c.tls.WrapSession, c.tls.UnwrapSession = c.store.wrap, c.store.unwrap
	default:
		c.tls.SessionTicketsDisabled = true
	}
	if len(ticketKeys) > 0 {
		c.tls.SetSessionTicketKeys(ticketKeys)
	}
	if err := c.setupClientAuth(o, now); err != nil {
		return nil, err
	}

	if o.Stapling {
		if err := c.startStapling(o); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// TLS returns the configuration to serve with. The same value on every
// call; callers must not modify it (clone it to change NextProtos, for
// instance: the clone keeps serving this Config's certificates).
func (c *Config) TLS() *tls.Config { return c.tls }

// Close stops the OCSP refreshers and waits for them. Safe to call more
// than once.
func (c *Config) Close() {
	c.once.Do(func() {
		if c.cancel != nil {
			c.cancel()
		}
		c.wg.Wait()
		if c.http != nil {
			c.http.CloseIdleConnections()
		}
	})
}

func (c *Config) getCertificate(chi *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if len(c.certs) == 1 {
		return c.certs[0].cur.Load(), nil
	}
	for _, e := range c.certs {
		if cert := e.cur.Load(); chi.SupportsCertificate(cert) == nil {
			return cert, nil
		}
	}
	// Nothing fits: let the handshake fail with the usual alert.
	return c.certs[0].cur.Load(), nil
}

// preferECDSA orders certificates ECDSA, Ed25519, then others, stably.
func preferECDSA(in []*certEntry) []*certEntry {
	rank := func(e *certEntry) int {
		switch e.base.PrivateKey.(type) {
		case *ecdsa.PrivateKey:
			return 0
		case ed25519.PrivateKey:
			return 1
		}
		return 2
	}
	out := make([]*certEntry, 0, len(in))
	for r := range 3 {
		for _, e := range in {
			if rank(e) == r {
				out = append(out, e)
			}
		}
	}
	return out
}

var protocolVersions = []struct {
	name string
	v    uint16
}{
	{"TLSv1", tls.VersionTLS10},
	{"TLSv1.1", tls.VersionTLS11},
	{"TLSv1.2", tls.VersionTLS12},
	{"TLSv1.3", tls.VersionTLS13},
}

// parseProtocols maps ssl_protocols onto Go's version range.
func parseProtocols(names []string) (minV, maxV uint16, err error) {
	if len(names) == 0 {
		return tls.VersionTLS12, tls.VersionTLS13, nil
	}
	on := make([]bool, len(protocolVersions))
	for _, n := range names {
		if n == "SSLv2" || n == "SSLv3" {
			return 0, 0, fmt.Errorf("ssl_protocols %s: Go's TLS does not implement %s", n, n)
		}
		found := false
		for i, p := range protocolVersions {
			if p.name == n {
				on[i], found = true, true
			}
		}
		if !found {
			return 0, 0, fmt.Errorf("ssl_protocols: invalid value %q", n)
		}
	}
	lo, hi := -1, -1
	for i, b := range on {
		if b {
			if lo < 0 {
				lo = i
			}
			hi = i
		}
	}
	var missing []string
	for i := lo; i <= hi; i++ {
		if !on[i] {
			missing = append(missing, protocolVersions[i].name)
		}
	}
	if len(missing) > 0 {
		return 0, 0, fmt.Errorf("ssl_protocols with a gap (%s without %s) is not supported: Go enables a contiguous range of versions",
			strings.Join(names, " "), strings.Join(missing, " "))
	}
	return protocolVersions[lo].v, protocolVersions[hi].v, nil
}

// curveNames holds OpenSSL's group names (and NIST's) for Go's curves.
var curveNames = map[string]tls.CurveID{
	"x25519":             tls.X25519,
	"prime256v1":         tls.CurveP256,
	"secp256r1":          tls.CurveP256,
	"p-256":              tls.CurveP256,
	"secp384r1":          tls.CurveP384,
	"p-384":              tls.CurveP384,
	"secp521r1":          tls.CurveP521,
	"p-521":              tls.CurveP521,
	"x25519mlkem768":     tls.X25519MLKEM768,
	"secp256r1mlkem768":  tls.SecP256r1MLKEM768,
	"secp384r1mlkem1024": tls.SecP384r1MLKEM1024,
}

// parseCurves maps ssl_ecdh_curve; nil keeps Go's defaults.
func parseCurves(v string) ([]tls.CurveID, error) {
	if v == "" || v == "auto" {
		return nil, nil
	}
	var out []tls.CurveID
	for _, n := range strings.Split(v, ":") {
		id, ok := curveNames[strings.ToLower(n)]
		if !ok {
			return nil, fmt.Errorf("ssl_ecdh_curve: unknown or unsupported curve %q (Go supports X25519, prime256v1, secp384r1, secp521r1 and the ML-KEM hybrids)", n)
		}
		out = append(out, id)
	}
	return out, nil
}

// startStapling sets up OCSP stapling for every certificate that can have
// it, and starts one refresher goroutine per certificate fetched from a
// responder.
func (c *Config) startStapling(o Options) error {
	var trusted []*x509.Certificate
	if o.TrustedCertificate != "" {
		var err error
		if trusted, err = readPool(o.TrustedCertificate); err != nil {
			return err
		}
	}
	var file []byte
	if o.StaplingFile != "" {
		var err error
		if file, err = os.ReadFile(o.StaplingFile); err != nil {
			return fmt.Errorf("cannot load OCSP stapling file %q: %w", o.StaplingFile, err)
		}
		if _, err := ocsp.ParseResponse(file, nil); err != nil {
			return fmt.Errorf("cannot load OCSP stapling file %q: %w", o.StaplingFile, err)
		}
	}
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	for _, e := range c.certs {
		s := &stapler{
			entry:        e,
			issuer:       findIssuer(e.chain, trusted),
			verify:       o.StaplingVerify,
			logf:         logf,
			minRefresh:   orDefault(o.minRefresh, time.Minute),
			maxRefresh:   orDefault(o.maxRefresh, time.Hour),
			retryAfter:   orDefault(o.retryAfter, time.Minute),
			fetchTimeout: orDefault(o.fetchTimeout, 10*time.Second),
		}
		first := time.Duration(0) // the first fetch happens at once, in the background
		if file != nil {
			// Served from the first handshake on; the goroutine re-reads
			// the file on the refresh schedule and drops an expired one.
			s.fetch = func(context.Context) ([]byte, error) { return os.ReadFile(o.StaplingFile) }
			first = s.update(file, nil, time.Now())
		} else {
			if s.issuer == nil {
				logf(`"ssl_stapling" ignored, issuer certificate not found for certificate %q`, e.path)
				continue
			}
			url := o.StaplingResponder
			if url == "" && len(e.chain[0].OCSPServer) > 0 {
				url = e.chain[0].OCSPServer[0]
			}
			if url == "" {
				logf(`"ssl_stapling" ignored, no OCSP responder URL in the certificate %q`, e.path)
				continue
			}
			if c.http == nil {
				c.http = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
			}
			s.fetch = s.httpFetcher(c.http, url)
		}
		c.wg.Add(1)
		go s.run(ctx, &c.wg, first)
	}
	return nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// dynamic reports whether any pair names a variable: then all are loaded
// per handshake, as nginx does.
func dynamic(pairs []CertPair) bool {
	for _, p := range pairs {
		if HasVariables(p.Cert) || HasVariables(p.Key) {
			return true
		}
	}
	return false
}
