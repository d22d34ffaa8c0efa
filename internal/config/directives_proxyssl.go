package config

import (
	"fmt"
	"maps"
	"net"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/wsgate/wsgate/internal/conf"
	"github.com/wsgate/wsgate/internal/tlsconf"
	"github.com/wsgate/wsgate/internal/vars"
)

// ProxySSL is a location's proxy_ssl_* settings (ngx_http_proxy_module),
// used when proxy_pass names an https:// backend.
type ProxySSL struct {
	Options tlsconf.ClientOptions
	// Name is proxy_ssl_name; nil means $proxy_host.
	Name *vars.Template
	// Client is built from Options after the configuration is merged, for
	// each location that proxies to https://; nil elsewhere.
	Client *tlsconf.Client
}

// proxySSLDirectives are the proxy_ssl_* directives.
var proxySSLDirectives = map[string]dirSpec{
	"proxy_ssl_verify":              {ctx: cHSL, min: 1, max: 1, fn: dProxySSL},
	"proxy_ssl_trusted_certificate": {ctx: cHSL, min: 1, max: 1, fn: dProxySSL},
	"proxy_ssl_verify_depth":        {ctx: cHSL, min: 1, max: 1, fn: dProxySSL},
	"proxy_ssl_crl":                 {ctx: cHSL, min: 1, max: 1, fn: dProxySSL},
	"proxy_ssl_server_name":         {ctx: cHSL, min: 1, max: 1, fn: dProxySSL},
	"proxy_ssl_name":                {ctx: cHSL, min: 1, max: 1, fn: dProxySSL},
	"proxy_ssl_certificate":         {ctx: cHSL, min: 1, max: 1, fn: dProxySSL},
	"proxy_ssl_certificate_key":     {ctx: cHSL, min: 1, max: 1, fn: dProxySSL},
	"proxy_ssl_certificate_cache":   {ctx: cHSL, min: 1, max: 3, fn: dProxySSL},
	"proxy_ssl_password_file":       {ctx: cHSL, min: 1, max: 1, fn: dProxySSL},
	"proxy_ssl_protocols":           {ctx: cHSL, min: 1, max: -1, fn: dProxySSL},
	"proxy_ssl_ciphers":             {ctx: cHSL, min: 1, max: 1, fn: dProxySSL},
	"proxy_ssl_session_reuse":       {ctx: cHSL, min: 1, max: 1, fn: dProxySSL},
	"proxy_ssl_conf_command":        {ctx: cHSL, min: 2, max: 2, fn: dProxySSL},
}

// proxySSLMergers inherit each proxy_ssl_* setting on its own.
var proxySSLMergers = map[string]func(c, p *LocConf){
	"proxy_ssl_verify":              func(c, p *LocConf) { c.ProxySSL.Options.Verify = p.ProxySSL.Options.Verify },
	"proxy_ssl_trusted_certificate": func(c, p *LocConf) { c.ProxySSL.Options.Trusted = p.ProxySSL.Options.Trusted },
	"proxy_ssl_verify_depth":        func(c, p *LocConf) { c.ProxySSL.Options.VerifyDepth = p.ProxySSL.Options.VerifyDepth },
	"proxy_ssl_crl":                 func(c, p *LocConf) { c.ProxySSL.Options.CRL = p.ProxySSL.Options.CRL },
	"proxy_ssl_server_name":         func(c, p *LocConf) { c.ProxySSL.Options.SNI = p.ProxySSL.Options.SNI },
	"proxy_ssl_name":                func(c, p *LocConf) { c.ProxySSL.Name = p.ProxySSL.Name },
	"proxy_ssl_certificate":         func(c, p *LocConf) { c.ProxySSL.Options.Cert = p.ProxySSL.Options.Cert },
	"proxy_ssl_certificate_key":     func(c, p *LocConf) { c.ProxySSL.Options.Key = p.ProxySSL.Options.Key },
	"proxy_ssl_password_file":       func(c, p *LocConf) { c.ProxySSL.Options.PasswordFile = p.ProxySSL.Options.PasswordFile },
	"proxy_ssl_protocols":           func(c, p *LocConf) { c.ProxySSL.Options.Protocols = p.ProxySSL.Options.Protocols },
	"proxy_ssl_ciphers":             func(c, p *LocConf) { c.ProxySSL.Options.Ciphers = p.ProxySSL.Options.Ciphers },
	"proxy_ssl_session_reuse":       func(c, p *LocConf) { c.ProxySSL.Options.SessionReuse = p.ProxySSL.Options.SessionReuse },
	"proxy_ssl_conf_command":        func(c, p *LocConf) { c.ProxySSL.Options.ConfCommands = p.ProxySSL.Options.ConfCommands },
}

func init() {
	maps.Copy(mergers, proxySSLMergers)
}

// proxySSLDefaults sets nginx's defaults: no verification, depth 1, no
// SNI, sessions reused, TLSv1.2 and TLSv1.3.
func proxySSLDefaults(c *LocConf) {
	c.ProxySSL.Options = tlsconf.ClientOptions{VerifyDepth: 1, SessionReuse: true, Protocols: []string{"TLSv1.2", "TLSv1.3"}}
}

func dProxySSL(l *loader, d *conf.Directive, s *scope) error {
	o := &s.lc.ProxySSL.Options
	a := d.Args
	var err error
	switch d.Name {
	case "proxy_ssl_verify":
		o.Verify, err = onOff(d)
	case "proxy_ssl_server_name":
		o.SNI, err = onOff(d)
	case "proxy_ssl_session_reuse":
		o.SessionReuse, err = onOff(d)
	case "proxy_ssl_verify_depth":
		o.VerifyDepth, err = strconv.Atoi(a[0])
		if err != nil || o.VerifyDepth < 0 {
			return conf.Errorf(d, "invalid value \"%s\" in \"%s\" directive", a[0], d.Name)
		}
	case "proxy_ssl_trusted_certificate":
		o.Trusted, err = constPath(l, d)
	case "proxy_ssl_crl":
		o.CRL, err = constPath(l, d)
	case "proxy_ssl_certificate":
		o.Cert, err = constPath(l, d)
	case "proxy_ssl_certificate_key":
		o.Key, err = constPath(l, d)
	case "proxy_ssl_password_file":
		o.PasswordFile, err = constPath(l, d)
	case "proxy_ssl_certificate_cache":
		// Certificates are read once at load (no variables), so there is
		// nothing to cache; the value is checked as nginx does.
		if _, err = tlsconf.ParseCertCache(strings.Join(a, " "), ParseDuration); err != nil {
			return conf.Errorf(d, "%v", err)
		}
	case "proxy_ssl_protocols":
		o.Protocols = append([]string(nil), a...)
	case "proxy_ssl_ciphers":
		if _, err := tlsconf.ParseCiphers(a[0]); err != nil {
			return conf.Errorf(d, "proxy_ssl_ciphers: %v", err)
		}
		o.Ciphers = a[0]
	case "proxy_ssl_name":
		t, err := l.cfg.Vars.Compile(a[0])
		if err != nil {
			return conf.Errorf(d, "%v", err)
		}
		s.lc.ProxySSL.Name = t
	case "proxy_ssl_conf_command":
		if !s.lc.set[d.Name] {
			o.ConfCommands = nil
		}
		o.ConfCommands = append(append([][2]string(nil), o.ConfCommands...), [2]string{a[0], a[1]})
		s.lc.set[d.Name] = true
		return nil
	}
	if err != nil {
		return err
	}
	return s.lc.mark(d, d.Name)
}

func onOff(d *conf.Directive) (bool, error) {
	switch d.Args[0] {
	case "on":
		return true, nil
	case "off":
		return false, nil
	}
	return false, conf.Errorf(d, "invalid value \"%s\" in \"%s\" directive, it must be \"on\" or \"off\"", d.Args[0], d.Name)
}

// constPath is a file argument, relative to the configuration's folder as
// nginx's; variables in it are refused.
func constPath(l *loader, d *conf.Directive) (string, error) {
	if strings.Contains(d.Args[0], "$") {
		return "", conf.Errorf(d, "\"%s\" with variables is not supported", d.Name)
	}
	p := d.Args[0]
	if !filepath.IsAbs(p) {
		p = filepath.Join(filepath.Dir(l.cfg.File), p)
	}
	return p, nil
}

// buildProxySSL builds the TLS client of each location that proxies to
// https://, sharing one between locations whose settings are equal (and
// so their session caches).
func (l *loader) buildProxySSL() error {
	built := map[string]*tlsconf.Client{}
	for _, p := range l.pending {
		lc := p.lc
		if lc.Proxy == nil || (lc.Proxy.Scheme != "https" && (lc.Proxy.Dynamic == nil || lc.Proxy.Scheme != "")) {
			continue // a scheme given by a variable may be https
		}
		key := fmt.Sprintf("%#v", lc.ProxySSL.Options)
		c, ok := built[key]
		if !ok {
			var err error
			if c, err = tlsconf.NewClient(lc.ProxySSL.Options); err != nil {
				return conf.Errorf(p.d, "%v", err)
			}
			built[key] = c
		}
		lc.ProxySSL.Client = c
		if lc.Proxy.Upstream == nil {
			continue
		}
		if hc := lc.Proxy.Upstream.Health; hc != nil && hc.TLS == nil {
			hc.TLS = c.For(checkName(lc), lc.ProxySSL.Options.SNI)
		}
	}
	return nil
}

// checkName is the proxy_ssl_name health checks use: the location's when
// it has no variables, else $proxy_host.
func checkName(lc *LocConf) string {
	if n := lc.ProxySSL.Name; n != nil && n.IsConst() {
		return n.Raw()
	}
	return lc.Proxy.HostPort
}

// splitProxyURL splits what follows proxy_pass's scheme into the host (an
// upstream name, host:port, or "unix:/path") and the URI. A unix socket's
// path ends at the first ':' after it, as nginx's
// "http://unix:/tmp/app.sock:/uri".
func splitProxyURL(rest string) (hostport, uri string, hasURI bool) {
	if path, ok := strings.CutPrefix(rest, "unix:"); ok {
		p, u, found := strings.Cut(path, ":")
		return "unix:" + p, u, found
	}
	hostport, uri, hasURI = strings.Cut(rest, "/")
	if hasURI {
		uri = "/" + uri
	}
	return hostport, uri, hasURI
}

// unixUpstream is the implicit upstream of proxy_pass to a unix socket.
func (l *loader) unixUpstream(d *conf.Directive, addr string) *Upstream {
	if u, ok := l.upstreams["\x00"+addr]; ok {
		return u
	}
	u := &Upstream{Name: addr, Implicit: true, Method: "round_robin", File: d.File, Line: d.Line}
	u.Servers = []UpstreamServer{{Name: addr, Addr: addr, Weight: 1, MaxFails: 1, FailTimeout: 10e9}}
	l.upstreams["\x00"+addr] = u
	return u
}

// defaultPort adds https's port 443 to a host without one; http's 80 is
// implicitUpstream's default.
func defaultPort(hostport, scheme string) string {
	if _, _, err := net.SplitHostPort(hostport); err != nil && scheme == "https" {
		return net.JoinHostPort(strings.Trim(hostport, "[]"), "443")
	}
	return hostport
}
