package config

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/wsgate/wsgate/internal/conf"
)

// Readers of the ssl_* and HTTP/2 directives.

// dSSL reads the ssl_* directives of http and server blocks. Certificate
// paths resolve from the main configuration file's directory, as nginx.
func dSSL(l *loader, d *conf.Directive, s *scope) error {
	c := &s.lc.SSL
	a := d.Args
	path := func(p string) string {
		if p == "" || filepath.IsAbs(p) || strings.HasPrefix(p, "data:") || isACMEVar(p) {
			return p
		}
		return filepath.Join(filepath.Dir(l.cfg.File), p)
	}
	flagArg := func() (bool, error) {
		v, err := parseFlag(a[0])
		if err != nil {
			return false, conf.Errorf(d, "invalid value \"%s\" in \"%s\" directive, it must be \"on\" or \"off\"", a[0], d.Name)
		}
		return v, nil
	}
	var err error
	switch d.Name {
	case "ssl_certificate":
		if err := checkCertTemplate(a[0]); err != nil {
			return conf.Errorf(d, "%v", err)
		}
		if !s.lc.set["ssl_certificate"] {
			c.Certs = nil
		}
		c.Certs = append(c.Certs, path(a[0]))
		s.lc.set["ssl_certificate"] = true
		return nil
	case "ssl_certificate_key":
		if strings.HasPrefix(a[0], "engine:") {
			return conf.Errorf(d, "\"engine:\" keys in \"ssl_certificate_key\" are not supported: Go's TLS has no OpenSSL engines")
		}
		if err := checkCertTemplate(a[0]); err != nil {
			return conf.Errorf(d, "%v", err)
		}
		if !s.lc.set["ssl_certificate_key"] {
			c.Keys = nil
		}
		c.Keys = append(c.Keys, path(a[0]))
		s.lc.set["ssl_certificate_key"] = true
		return nil
	case "ssl_protocols":
		c.Protocols = append([]string(nil), a...)
	case "ssl_ciphers":
		c.Ciphers = a[0]
	case "ssl_prefer_server_ciphers":
		c.PreferServerCiphers, err = flagArg()
	case "ssl_ecdh_curve":
		c.ECDHCurve = a[0]
	case "ssl_session_cache":
		c.SessionCache = strings.Join(a, " ")
	case "ssl_session_timeout":
		if c.SessionTimeout, err = ParseDuration(a[0]); err != nil {
			return conf.Errorf(d, "\"ssl_session_timeout\" directive invalid value")
		}
	case "ssl_session_tickets":
		c.SessionTickets, err = flagArg()
	case "ssl_stapling":
		c.Stapling, err = flagArg()
	case "ssl_stapling_verify":
		c.StaplingVerify, err = flagArg()
	case "ssl_trusted_certificate":
		c.TrustedCertificate = path(a[0])
	case "ssl_stapling_file":
		c.StaplingFile = path(a[0])
	case "ssl_stapling_responder":
		c.StaplingResponder = a[0]
	}
	if err != nil {
		return err
	}
	return s.lc.mark(d, d.Name)
}

// dH2WebSocket reads `http2_websocket on|off` (http level, default on):
// whether HTTP/2 connections offer WebSocket over RFC 8441. Turning it off
// makes browsers open WebSockets over HTTP/1.1 instead, for clients whose
// RFC 8441 support is broken.
func dH2WebSocket(l *loader, d *conf.Directive, s *scope) error {
	v, err := parseFlag(d.Args[0])
	if err != nil {
		return conf.Errorf(d, "invalid value \"%s\" in \"%s\" directive, it must be \"on\" or \"off\"", d.Args[0], d.Name)
	}
	l.cfg.HTTP.H2WebSocket = v
	return nil
}

// tlsDirectives are the ssl_* directives beyond certificates, protocols,
// sessions and stapling: client certificates and the settings Go's TLS
// implements differently or not at all (docs/directives.md, TLS).
var tlsDirectives = map[string]dirSpec{
	"ssl":                    {ctx: cHTTP | cServer, min: 1, max: 1, fn: dSSLMore},
	"ssl_verify_client":      {ctx: cHTTP | cServer, min: 1, max: 1, fn: dSSLMore},
	"ssl_client_certificate": {ctx: cHTTP | cServer, min: 1, max: 1, fn: dSSLMore},
	"ssl_verify_depth":       {ctx: cHTTP | cServer, min: 1, max: 1, fn: dSSLMore},
	"ssl_crl":                {ctx: cHTTP | cServer, min: 1, max: 1, fn: dSSLMore},
	"ssl_ocsp":               {ctx: cHTTP | cServer, min: 1, max: 1, fn: dSSLMore},
	"ssl_ocsp_responder":     {ctx: cHTTP | cServer, min: 1, max: 1, fn: dSSLMore},
	"ssl_ocsp_cache":         {ctx: cHTTP | cServer, min: 1, max: 1, fn: dSSLMore},
	"ssl_reject_handshake":   {ctx: cHTTP | cServer, min: 1, max: 1, fn: dSSLMore},
	"ssl_password_file":      {ctx: cHTTP | cServer, min: 1, max: 1, fn: dSSLMore},
	"ssl_dhparam":            {ctx: cHTTP | cServer, min: 1, max: 1, fn: dSSLMore},
	"ssl_early_data":         {ctx: cHTTP | cServer, min: 1, max: 1, fn: dSSLMore},
	"ssl_buffer_size":        {ctx: cHTTP | cServer, min: 1, max: 1, fn: dSSLMore},
	"ssl_conf_command":       {ctx: cHTTP | cServer, min: 2, max: 2, fn: dSSLMore},
	"ssl_certificate_cache":  {ctx: cHTTP | cServer, min: 1, max: 3, fn: dSSLMore},
	"ssl_session_ticket_key": {ctx: cHTTP | cServer, min: 1, max: 1, fn: dSSLMore},
}

func init() {
	inherit := func(name string, f func(c, p *SSL)) {
		mergers[name] = func(c, p *LocConf) { f(&c.SSL, &p.SSL) }
	}
	inherit("ssl", func(c, p *SSL) { c.On = p.On })
	inherit("ssl_verify_client", func(c, p *SSL) { c.VerifyClient = p.VerifyClient })
	inherit("ssl_client_certificate", func(c, p *SSL) { c.ClientCertificate = p.ClientCertificate })
	inherit("ssl_verify_depth", func(c, p *SSL) { c.VerifyDepth = p.VerifyDepth })
	inherit("ssl_crl", func(c, p *SSL) { c.CRL = p.CRL })
	inherit("ssl_ocsp", func(c, p *SSL) { c.OCSP = p.OCSP })
	inherit("ssl_ocsp_responder", func(c, p *SSL) { c.OCSPResponder = p.OCSPResponder })
	inherit("ssl_ocsp_cache", func(c, p *SSL) { c.OCSPCache = p.OCSPCache })
	inherit("ssl_reject_handshake", func(c, p *SSL) { c.RejectHandshake = p.RejectHandshake })
	inherit("ssl_password_file", func(c, p *SSL) { c.PasswordFile = p.PasswordFile })
	inherit("ssl_dhparam", func(c, p *SSL) { c.DHParam = p.DHParam })
	inherit("ssl_early_data", func(c, p *SSL) { c.EarlyData = p.EarlyData })
	inherit("ssl_buffer_size", func(c, p *SSL) { c.BufferSize = p.BufferSize })
	inherit("ssl_conf_command", func(c, p *SSL) { c.ConfCommands = p.ConfCommands })
	inherit("ssl_certificate_cache", func(c, p *SSL) { c.CertCache = p.CertCache })
	inherit("ssl_session_ticket_key", func(c, p *SSL) { c.TicketKeys = p.TicketKeys })
}

// dSSLMore reads the directives of tlsDirectives. Files resolve from the
// main configuration file's directory; their contents are checked when
// the TLS configuration is built (and by -t).
func dSSLMore(l *loader, d *conf.Directive, s *scope) error {
	c := &s.lc.SSL
	a := d.Args
	path := func(p string) string {
		if filepath.IsAbs(p) || strings.HasPrefix(p, "data:") {
			return p
		}
		return filepath.Join(filepath.Dir(l.cfg.File), p)
	}
	flagArg := func(dst *bool) error {
		v, err := parseFlag(a[0])
		if err != nil {
			return conf.Errorf(d, "invalid value \"%s\" in \"%s\" directive, it must be \"on\" or \"off\"", a[0], d.Name)
		}
		*dst = v
		return nil
	}
	var err error
	switch d.Name {
	case "ssl":
		l.warn(d, "the \"ssl\" directive is deprecated, use the \"listen ... ssl\" directive instead")
		err = flagArg(&c.On)
	case "ssl_verify_client":
		switch a[0] {
		case "off":
			c.VerifyClient = ""
		case "on", "optional", "optional_no_ca":
			c.VerifyClient = a[0]
		default:
			return conf.Errorf(d, "invalid value \"%s\" in \"ssl_verify_client\" directive, it must be \"on\", \"off\", \"optional\" or \"optional_no_ca\"", a[0])
		}
	case "ssl_client_certificate":
		c.ClientCertificate = path(a[0])
	case "ssl_verify_depth":
		n, perr := strconv.Atoi(a[0])
		if perr != nil || n < 0 {
			return conf.Errorf(d, "invalid value \"%s\" in \"ssl_verify_depth\" directive", a[0])
		}
		c.VerifyDepth = n
	case "ssl_crl":
		c.CRL = path(a[0])
	case "ssl_ocsp":
		switch a[0] {
		case "off":
			c.OCSP = ""
		case "on", "leaf":
			c.OCSP = a[0]
		default:
			return conf.Errorf(d, "invalid value \"%s\" in \"ssl_ocsp\" directive, it must be \"on\", \"off\" or \"leaf\"", a[0])
		}
	case "ssl_ocsp_responder":
		c.OCSPResponder = a[0]
	case "ssl_ocsp_cache":
		c.OCSPCache = a[0]
	case "ssl_reject_handshake":
		err = flagArg(&c.RejectHandshake)
	case "ssl_password_file":
		c.PasswordFile = path(a[0])
	case "ssl_dhparam":
		c.DHParam = path(a[0])
		l.warn(d, "\"ssl_dhparam\" has no effect: Go's TLS has no finite-field DHE key exchange (the file is still checked)")
	case "ssl_early_data":
		err = flagArg(&c.EarlyData)
		if err == nil && c.EarlyData {
			l.warn(d, "\"ssl_early_data\" has no effect over TCP: Go's TLS server has no 0-RTT; over HTTP/3 it enables QUIC 0-RTT")
		}
	case "ssl_buffer_size":
		if c.BufferSize, err = ParseSize(a[0]); err != nil || c.BufferSize <= 0 {
			return conf.Errorf(d, "\"ssl_buffer_size\" directive invalid value")
		}
	case "ssl_conf_command":
		if !s.lc.set[d.Name] {
			c.ConfCommands = nil
		}
		c.ConfCommands = append(c.ConfCommands, [2]string{a[0], a[1]})
		s.lc.set[d.Name] = true
		return nil
	case "ssl_certificate_cache":
		c.CertCache = strings.Join(a, " ")
	case "ssl_session_ticket_key":
		if !s.lc.set[d.Name] {
			c.TicketKeys = nil
		}
		c.TicketKeys = append(c.TicketKeys, path(a[0]))
		s.lc.set[d.Name] = true
		return nil
	}
	if err != nil {
		return err
	}
	return s.lc.mark(d, d.Name)
}

// applySSLOn makes every listen of a server with `ssl on` an ssl one, as
// nginx did before the directive was removed.
func applySSLOn(srv *Server) {
	if !srv.Loc.Conf.SSL.On {
		return
	}
	for i := range srv.Listens {
		srv.Listens[i].SSL = true
	}
}

// checkCertTemplate admits $ssl_server_name as the only variable of a
// certificate or key path: nothing else is known during the handshake.
// $acme_certificate and $acme_certificate_key stand alone: they name
// the server's acme_certificate.
func checkCertTemplate(p string) error {
	if isACMEVar(p) {
		return nil
	}
	if strings.HasPrefix(p, "data:") {
		if strings.Contains(p, "$") {
			return fmt.Errorf("variables in \"data:\" are not supported: write the PEM text inline, or name files with $ssl_server_name")
		}
		return nil
	}
	rest := strings.NewReplacer("${ssl_server_name}", "", "$ssl_server_name", "").Replace(p)
	if strings.Contains(rest, "$") {
		return fmt.Errorf("only $ssl_server_name can be used in \"%s\" ($acme_certificate and $acme_certificate_key alone): no other variable is known during the handshake", p)
	}
	return nil
}

// isACMEVar reports whether a certificate or key path is one of the
// variables of acme_certificate.
func isACMEVar(p string) bool { return p == "$acme_certificate" || p == "$acme_certificate_key" }
