package server

import (
	"crypto/tls"
	"errors"

	"github.com/wsgate/wsgate/internal/acme"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/tlsconf"
)

// newACME returns the process's certificate manager, logging to the
// running configuration's error log.
func (s *Server) newACME() *acme.Manager {
	levels := map[acme.Level]errlog.Level{acme.Notice: errlog.Notice, acme.Warn: errlog.Warn, acme.Error: errlog.Error}
	return acme.NewManager(func(l acme.Level, format string, args ...any) {
		s.log.Load().Printf(levels[l], 0, "acme: "+format, args...)
	})
}

// buildACME starts (or finds, after a reload) the certificate of every
// acme_certificate. Without a manager (wsgate -t) it only checks them.
func (rt *generation) buildACME(m *acme.Manager) error {
	rt.acme = m
	rt.acmeCerts = map[*config.Server]*acme.Cert{}
	for _, srv := range rt.cfg.HTTP.Servers {
		c := srv.ACME
		if c == nil {
			continue
		}
		iss := c.Issuer
		o := acme.Order{Names: c.Names, Key: c.Key, Issuer: &acme.Issuer{
			Name: iss.Name, URI: iss.URI, AccountKey: iss.AccountKey, Challenge: iss.Challenge,
			Contact: iss.Contact, EABKeyID: iss.EABKeyID, EABKey: iss.EABKey,
			PreferredChain: iss.PreferredChain, Profile: iss.Profile,
			TrustedCertificate: iss.TrustedCertificate, NoVerify: !iss.Verify,
			StatePath: iss.StatePath, AcceptTOS: iss.AcceptTOS,
		}}
		var err error
		if m == nil {
			err = o.Validate()
		} else {
			rt.acmeCerts[srv], err = m.Cert(o)
		}
		if err != nil {
			return &config.PosError{File: c.File, Line: c.Line, Err: err}
		}
	}
	return nil
}

// useACME replaces the $acme_certificate pair of a server's certificates
// with its acme_certificate.
func (rt *generation) useACME(srv *config.Server, o *tlsconf.Options) error {
	uses := false
	var rest []tlsconf.CertPair
	for _, p := range o.Certs {
		a, b := p.Cert == "$acme_certificate", p.Key == "$acme_certificate_key"
		if a != b {
			return errors.New("$acme_certificate and $acme_certificate_key go together in ssl_certificate and ssl_certificate_key")
		}
		if a {
			uses = true
		} else {
			rest = append(rest, p)
		}
	}
	switch {
	case !uses:
		return nil
	case srv.ACME == nil:
		return errors.New("$acme_certificate is used in a server without acme_certificate")
	case len(rest) > 0:
		return errors.New("$acme_certificate cannot be combined with other ssl_certificate files in one server")
	}
	o.Certs = nil
	if c := rt.acmeCerts[srv]; c != nil {
		o.GetCertificate = c.GetCertificate
	} else {
		o.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, errors.New("no certificate") }
	}
	return nil
}

// acmeList returns the certificates this generation uses.
func (rt *generation) acmeList() []*acme.Cert {
	if rt == nil {
		return nil
	}
	var out []*acme.Cert
	for _, c := range rt.acmeCerts {
		out = append(out, c)
	}
	return out
}

// acmeChallenge answers an http-01 challenge under way on a plain
// listener (not a plain client of an ssl one), before any server rewrite
// or location: true when it did (keep says whether the connection goes
// on).
func (x *exchange) acmeChallenge() (answered, keep bool) {
	if x.conn.tls != nil || x.conn.plainOnTLS || x.rt.acme == nil {
		return false, false
	}
	ka, ok := x.rt.acme.HTTP01(x.req.URI)
	if !ok {
		return false, false
	}
	hdr := http1.Header{{Name: "Content-Type", Value: "text/plain"}}
	return true, x.finish(x.head(200, hdr, int64(len(ka)), false), ka)
}
