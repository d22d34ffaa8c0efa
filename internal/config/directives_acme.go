package config

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/wsgate/wsgate/internal/conf"
)

// Readers of ngx_http_acme_module's directives: acme_issuer blocks,
// acme_shared_zone and acme_certificate. What they name is checked when
// the TLS configuration is built (and by -t); certificates are obtained
// by internal/acme.

// ACMEIssuer is one acme_issuer block. Paths are absolute.
type ACMEIssuer struct {
	Name               string
	URI                string
	AccountKey         string // alg[:size] or a key file
	Challenge          string // "http-01" or "tls-alpn-01"
	Contact            []string
	EABKeyID, EABKey   string // external_account_key: kid and file or data:
	PreferredChain     string
	Profile            string
	TrustedCertificate string
	Verify             bool   // ssl_verify, on by default
	StatePath          string // "" for state_path off
	AcceptTOS          bool
	File               string
	Line               int
}

// ACMECertificate is a server's acme_certificate.
type ACMECertificate struct {
	Issuer *ACMEIssuer
	// Names are the identifiers: the directive's, else the server's
	// exact server_name entries.
	Names []string
	Key   string // alg[:size], "" for ecdsa:256
	File  string
	Line  int

	issuer string
}

var acmeDirectives = map[string]dirSpec{
	"acme_issuer":      {ctx: cHTTP, min: 1, max: 1, block: true, fn: dACMEIssuer},
	"acme_shared_zone": {ctx: cHTTP, min: 1, max: 1, once: true, fn: dACMESharedZone},
	"acme_certificate": {ctx: cServer, min: 1, max: -1, fn: dACMECertificate},
}

// acmeIssuerDirectives are read inside an acme_issuer block only; their
// names (ssl_verify, ssl_trusted_certificate...) mean something else
// elsewhere, so they stay out of the main table.
var acmeIssuerDirectives = map[string]struct{ min, max int }{
	"uri": {1, 1}, "account_key": {1, 1}, "challenge": {1, 1}, "contact": {1, 1},
	"external_account_key": {2, 2}, "preferred_chain": {1, 1}, "profile": {1, 1},
	"ssl_trusted_certificate": {1, 1}, "ssl_verify": {1, 1}, "state_path": {1, 1},
	"accept_terms_of_service": {0, 0},
}

func dACMEIssuer(l *loader, d *conf.Directive, s *scope) error {
	name := d.Args[0]
	if l.cfg.HTTP.ACMEIssuers == nil {
		l.cfg.HTTP.ACMEIssuers = map[string]*ACMEIssuer{}
	}
	if _, dup := l.cfg.HTTP.ACMEIssuers[name]; dup {
		return conf.Errorf(d, "duplicate acme_issuer \"%s\"", name)
	}
	iss := &ACMEIssuer{Name: name, Verify: true, File: d.File, Line: d.Line,
		StatePath: filepath.Join(l.cfg.Prefix, "acme_"+name)}
	seen := map[string]bool{}
	for _, c := range d.Block {
		spec, ok := acmeIssuerDirectives[c.Name]
		if !ok {
			return l.unknownDirective(c)
		}
		if c.IsBlock() {
			return conf.Errorf(c, "directive \"%s\" is not terminated by \";\"", c.Name)
		}
		if len(c.Args) < spec.min || len(c.Args) > spec.max {
			return conf.Errorf(c, "invalid number of arguments in \"%s\" directive", c.Name)
		}
		if seen[c.Name] && c.Name != "contact" {
			return conf.Errorf(c, "\"%s\" directive is duplicate", c.Name)
		}
		seen[c.Name] = true
		if err := l.acmeIssuerSetting(iss, c); err != nil {
			return err
		}
	}
	if iss.URI == "" {
		return conf.Errorf(d, "\"uri\" is missing in acme_issuer \"%s\"", name)
	}
	l.cfg.HTTP.ACMEIssuers[name] = iss
	return nil
}

func (l *loader) acmeIssuerSetting(iss *ACMEIssuer, c *conf.Directive) error {
	a := c.Args
	confPath := func(p string) string {
		if filepath.IsAbs(p) || strings.HasPrefix(p, "data:") {
			return p
		}
		return filepath.Join(filepath.Dir(l.cfg.File), p)
	}
	switch c.Name {
	case "uri":
		if !strings.HasPrefix(a[0], "https://") && !strings.HasPrefix(a[0], "http://") {
			return conf.Errorf(c, "invalid \"uri\" \"%s\": an http:// or https:// directory URL is expected", a[0])
		}
		iss.URI = a[0]
	case "account_key":
		iss.AccountKey = a[0]
		if !strings.HasPrefix(a[0], "ecdsa") && !strings.HasPrefix(a[0], "rsa") {
			iss.AccountKey = confPath(a[0])
		}
	case "challenge":
		switch a[0] {
		case "http-01", "http":
			iss.Challenge = "http-01"
		case "tls-alpn-01", "tls-alpn":
			iss.Challenge = "tls-alpn-01"
		default:
			return conf.Errorf(c, "invalid challenge type \"%s\", it must be \"http-01\" or \"tls-alpn-01\"", a[0])
		}
	case "contact":
		iss.Contact = append(iss.Contact, a[0])
	case "external_account_key":
		iss.EABKeyID, iss.EABKey = a[0], confPath(a[1])
	case "preferred_chain":
		iss.PreferredChain = a[0]
	case "profile":
		iss.Profile = a[0]
	case "ssl_trusted_certificate":
		iss.TrustedCertificate = confPath(a[0])
	case "ssl_verify":
		v, err := parseFlag(a[0])
		if err != nil {
			return conf.Errorf(c, "invalid value \"%s\" in \"ssl_verify\" directive, it must be \"on\" or \"off\"", a[0])
		}
		iss.Verify = v
	case "state_path":
		switch {
		case a[0] == "off":
			iss.StatePath = ""
		case filepath.IsAbs(a[0]):
			iss.StatePath = a[0]
		default:
			iss.StatePath = filepath.Join(l.cfg.Prefix, a[0])
		}
	case "accept_terms_of_service":
		iss.AcceptTOS = true
	}
	return nil
}

// dACMESharedZone checks zone=name:size. wsgate runs one process, whose
// memory holds the certificates, so no zone is allocated.
func dACMESharedZone(l *loader, d *conf.Directive, s *scope) error {
	v, ok := strings.CutPrefix(d.Args[0], "zone=")
	name, size, ok2 := strings.Cut(v, ":")
	if !ok || !ok2 || name == "" {
		return conf.Errorf(d, "invalid \"%s\" in \"acme_shared_zone\" directive, it must be \"zone=name:size\"", d.Args[0])
	}
	if n, err := ParseSize(size); err != nil || n <= 0 {
		return conf.Errorf(d, "invalid zone size \"%s\"", size)
	}
	return nil
}

// dACMECertificate reads `acme_certificate issuer [identifier ...]
// [key=alg[:size]]`; the issuer may be defined later in the http block.
func dACMECertificate(l *loader, d *conf.Directive, s *scope) error {
	if s.server.ACME != nil {
		return conf.Errorf(d, "\"acme_certificate\" directive is duplicate")
	}
	c := &ACMECertificate{issuer: d.Args[0], File: d.File, Line: d.Line}
	for _, a := range d.Args[1:] {
		if k, ok := strings.CutPrefix(a, "key="); ok {
			c.Key = k
			continue
		}
		if strings.ContainsAny(a, "*~") || strings.HasPrefix(a, ".") {
			return conf.Errorf(d, "invalid identifier \"%s\" in \"acme_certificate\": wildcards and regular expressions are not supported", a)
		}
		c.Names = append(c.Names, strings.ToLower(a))
	}
	s.server.ACME = c
	return nil
}

// finishACME binds every acme_certificate to its issuer and fills in the
// identifiers taken from server_name.
func (l *loader) finishACME() error {
	h := l.cfg.HTTP
	for _, srv := range h.Servers {
		c := srv.ACME
		if c == nil {
			continue
		}
		if c.Issuer = h.ACMEIssuers[c.issuer]; c.Issuer == nil {
			return &conf.Error{File: c.File, Line: c.Line, Msg: fmt.Sprintf("issuer \"%s\" is missing", c.issuer)}
		}
		if len(c.Names) == 0 {
			for _, n := range srv.Names {
				if n.Kind == NameExact && n.Name != "" {
					c.Names = append(c.Names, n.Name)
				}
			}
		}
		if len(c.Names) == 0 {
			return &conf.Error{File: c.File, Line: c.Line, Msg: "no valid identifiers in \"acme_certificate\" or \"server_name\""}
		}
	}
	return nil
}
