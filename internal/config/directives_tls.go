package config

import (
	"github.com/wsgate/wsgate/internal/conf"
	"path/filepath"
	"strings"
)

// Readers of the ssl_* and HTTP/2 directives.

// dSSL reads the ssl_* directives of http and server blocks. Certificate
// paths resolve from the main configuration file's directory, as nginx.
func dSSL(l *loader, d *conf.Directive, s *scope) error {
	c := &s.lc.SSL
	a := d.Args
	path := func(p string) string {
		if p == "" || filepath.IsAbs(p) || strings.HasPrefix(p, "data:") {
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
		if strings.Contains(a[0], "$") || strings.HasPrefix(a[0], "data:") {
			return conf.Errorf(d, "variables and data: in \"ssl_certificate\" are not supported")
		}
		if !s.lc.set["ssl_certificate"] {
			c.Certs = nil
		}
		c.Certs = append(c.Certs, path(a[0]))
		s.lc.set["ssl_certificate"] = true
		return nil
	case "ssl_certificate_key":
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
		if len(a) > 1 {
			return conf.Errorf(d, "several caches in \"ssl_session_cache\" are not supported")
		}
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
