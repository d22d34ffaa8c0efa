package server

import (
	"crypto/tls"
	"net/netip"
	"time"

	"github.com/wsgate/wsgate/internal/acme"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/sockio"
	"github.com/wsgate/wsgate/internal/tlsconf"
)

// buildTLS loads the certificates and TLS settings of every server block
// that listens with ssl, and prepares one tls.Config per bound address that
// picks the server block by SNI, as nginx does. Certificates are read again
// on every reload; open connections keep the config they started with.
func (rt *generation) buildTLS(log *errlog.Logger) error {
	rt.tlsServers = map[*config.Server]*tlsconf.Config{}
	rt.tlsBinds = map[netip.AddrPort]*tls.Config{}
	for _, srv := range rt.cfg.HTTP.Servers {
		ssl := false
		for _, ls := range srv.Listens {
			ssl = ssl || ls.SSL
		}
		if !ssl {
			continue
		}
		c := srv.Loc.Conf.SSL
		o := tlsconf.Options{
			Protocols: c.Protocols, Ciphers: c.Ciphers, PreferServerCiphers: c.PreferServerCiphers,
			ECDHCurve: c.ECDHCurve, SessionCache: c.SessionCache, SessionTimeout: c.SessionTimeout,
			DisableSessionTickets: !c.SessionTickets, Stapling: c.Stapling, StaplingVerify: c.StaplingVerify,
			TrustedCertificate: c.TrustedCertificate, StaplingFile: c.StaplingFile, StaplingResponder: c.StaplingResponder,
			VerifyClient: c.VerifyClient, ClientCertificate: c.ClientCertificate, VerifyDepth: c.VerifyDepth, CRL: c.CRL,
			RejectHandshake: c.RejectHandshake, PasswordFile: c.PasswordFile, DHParam: c.DHParam,
			ConfCommands: c.ConfCommands, TicketKeys: c.TicketKeys,
			NextProtos: nextProtos(srv),
			Logf:       func(format string, args ...any) { log.Printf(errlog.Warn, 0, format, args...) },
		}
		cache, err := tlsconf.ParseCertCache(c.CertCache, config.ParseDuration)
		if err != nil {
			return &config.PosError{File: srv.File, Line: srv.Line, Err: err}
		}
		o.CertCache = cache
		if o.OCSPCache, err = tlsconf.ParseOCSPCache(c.OCSPCache, config.ParseSize); err != nil {
			return &config.PosError{File: srv.File, Line: srv.Line, Err: err}
		}
		o.OCSP, o.OCSPResponder = c.OCSP, c.OCSPResponder
		for i := range c.Certs {
			o.Certs = append(o.Certs, tlsconf.CertPair{Cert: c.Certs[i], Key: c.Keys[i]})
		}
		if err := rt.useACME(srv, &o); err != nil {
			return &config.PosError{File: srv.File, Line: srv.Line, Err: err}
		}
		tc, err := tlsconf.New(o)
		if err != nil {
			return &config.PosError{File: srv.File, Line: srv.Line, Err: err}
		}
		rt.tlsServers[srv] = tc
	}
	for _, ls := range rt.binds {
		if !rt.sslBind(ls.AddrPort) {
			continue
		}
		rt.tlsBinds[ls.AddrPort] = &tls.Config{
			GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
				recordOffer(hello)
				if cfg := rt.acme.ALPNConfig(hello); cfg != nil {
					return cfg, nil // a tls-alpn-01 challenge, before any server
				}
				if tc := rt.tlsServerFor(addrPort(hello.Conn.LocalAddr()), hello.ServerName); tc != nil {
					return tc.TLS(), nil
				}
				return nil, errNoServer
			},
		}
	}
	return nil
}

// sslBind reports whether any server listens with ssl on a bound address
// (directly, or through its wildcard socket).
func (rt *generation) sslBind(bind netip.AddrPort) bool {
	for _, srv := range rt.cfg.HTTP.Servers {
		for _, ls := range srv.Listens {
			if ls.SSL && (ls.AddrPort == bind || wildcardOf(ls.AddrPort) == bind) {
				return true
			}
		}
	}
	return false
}

func (rt *generation) tlsFor(bind netip.AddrPort) *tls.Config {
	if rt == nil {
		return nil
	}
	return rt.tlsBinds[bind]
}

type tlsError string

func (e tlsError) Error() string { return string(e) }

const errNoServer = tlsError("no server with a certificate for this address")

// handshakeTLS runs the TLS handshake under client_header_timeout; a
// failure is logged at info, as nginx logs SSL handshake errors. A client
// speaking plain HTTP instead is served as such, for the 497 page.
func (c *conn) handshakeTLS(cfg *tls.Config) bool {
	rt := c.srv.rt.Load()
	deadline := time.Now().Add(c.connConf(rt).Client.HeaderTimeout)
	if !rt.proxyProto[c.bind] && plainHTTP(c.tcp, deadline) {
		c.plainOnTLS = true
		return true
	}
	var hello helloVars
	tc := tls.Server(sockio.Wrap(c.tcp), cfg)
	tc.SetDeadline(deadline)
	if err := tc.HandshakeContext(hello.context()); err != nil {
		rt.log.Printf(errlog.Info, c.id, "SSL_do_handshake() failed (%v) while SSL handshaking, client: %s", err, c.remote.Addr())
		return false
	}
	tc.SetDeadline(time.Time{})
	st := tc.ConnectionState()
	if st.NegotiatedProtocol == acme.ALPNProto {
		tc.Close() // the challenge is answered by the handshake itself
		return false
	}
	c.c, c.tls = tc, &st
	c.ssl = rt.sslInfo(c.local, &st)
	c.ssl.OfferedCiphers, c.ssl.OfferedCurves = hello.ciphers, hello.curves
	return true
}

func tlsVersion(v uint16) string {
	switch v {
	case tls.VersionTLS13:
		return "TLSv1.3"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS10:
		return "TLSv1"
	}
	return ""
}

// nextProtos offers h2 on a server with `listen ... http2` or `http2 on`.
func nextProtos(srv *config.Server) []string {
	h2 := srv.Loc.Conf.HTTP2
	for _, ls := range srv.Listens {
		h2 = h2 || ls.HTTP2
	}
	if h2 {
		return []string{"h2", "http/1.1"}
	}
	return []string{"http/1.1"}
}

// earlyData reports whether a server listening with quic on bind has
// ssl_early_data on: the QUIC listener then accepts 0-RTT, for every
// server on it (QUIC settles 0-RTT per listener). Decided when the
// listener opens.
func (rt *generation) earlyData(bind netip.AddrPort) bool {
	for _, srv := range rt.cfg.HTTP.Servers {
		for _, ls := range srv.Listens {
			if ls.QUIC && srv.Loc.Conf.SSL.EarlyData && (ls.AddrPort == bind || wildcardOf(ls.AddrPort) == bind) {
				return true
			}
		}
	}
	return false
}
