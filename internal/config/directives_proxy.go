package config

import (
	"maps"
	"net/netip"
	"regexp"
	"strings"

	"github.com/wsgate/wsgate/internal/conf"
	"github.com/wsgate/wsgate/internal/vars"
)

// ProxyRest holds the ngx_http_proxy_module settings that shape what goes
// between client and backend beyond proxy_pass and proxy_set_header.
type ProxyRest struct {
	// Redirects are the proxy_redirect rules in file order; the first one
	// that matches rewrites a Location or Refresh header.
	Redirects []Redirect
	// RedirectSet says proxy_redirect was written here or above: without
	// it a location with proxy_pass uses `proxy_redirect default`.
	RedirectSet bool
	RedirectOff bool // proxy_redirect off

	HideHeaders   []string // proxy_hide_header, added to nginx's default list
	PassHeaders   []string // proxy_pass_header, taken from that list
	IgnoreHeaders uint16   // proxy_ignore_headers: Ignore* bits

	CookieDomains []CookieRewrite // proxy_cookie_domain; nil: off
	CookiePaths   []CookieRewrite // proxy_cookie_path; nil: off
	CookieFlags   []CookieFlags   // proxy_cookie_flags; nil: off

	Method           *vars.Template // proxy_method; nil: the client's
	NoRequestHeaders bool           // proxy_pass_request_headers off
	NoRequestBody    bool           // proxy_pass_request_body off
	SetBody          *vars.Template // proxy_set_body; nil: the client's body
	PassTrailers     bool           // proxy_pass_trailers
	IgnoreAbort      bool           // proxy_ignore_client_abort
	LimitRate        RateValue      // proxy_limit_rate: bytes per second read from the backend; 0: unlimited
	SocketKeepalive  bool           // proxy_socket_keepalive: SO_KEEPALIVE on backend sockets
	ForceRanges      bool           // proxy_force_ranges
	Bind             *Bind          // proxy_bind; nil: off
}

// Bind is proxy_bind: the local address of backend connections.
type Bind struct {
	Addr        *vars.Template // an IP address, with an optional port; empty at run time: no bind
	Transparent bool           // IP_TRANSPARENT: the address may be another host's
}

// CookieRewrite is one proxy_cookie_domain or proxy_cookie_path rule: a
// string (with variables) or a regex, and its replacement.
type CookieRewrite struct {
	Pattern     *vars.Template
	Regex       *regexp.Regexp
	Replacement *vars.Template
}

// CookieFlags is one proxy_cookie_flags rule: the cookie's name (a string
// with variables, or a regex) and the flags to set or remove.
type CookieFlags struct {
	Name  *vars.Template
	Regex *regexp.Regexp
	Flags []string // secure, httponly, samesite=strict|lax|none, nosecure, nohttponly, nosamesite
}

// The proxy_ignore_headers bits: a backend header that is ignored is not
// acted on (it is still passed or hidden as the header lists say).
const (
	IgnoreXAccelRedirect uint16 = 1 << iota
	IgnoreXAccelExpires
	IgnoreXAccelLimitRate
	IgnoreXAccelBuffering
	IgnoreXAccelCharset
	IgnoreExpires
	IgnoreCacheControl
	IgnoreSetCookie
	IgnoreVary
)

var ignoreNames = map[string]uint16{
	"X-Accel-Redirect": IgnoreXAccelRedirect, "X-Accel-Expires": IgnoreXAccelExpires,
	"X-Accel-Limit-Rate": IgnoreXAccelLimitRate, "X-Accel-Buffering": IgnoreXAccelBuffering,
	"X-Accel-Charset": IgnoreXAccelCharset, "Expires": IgnoreExpires, "Cache-Control": IgnoreCacheControl,
	"Set-Cookie": IgnoreSetCookie, "Vary": IgnoreVary,
}

// Redirect is one proxy_redirect rule.
type Redirect struct {
	Default     bool           // `default`: the proxy_pass URL becomes the location's name
	LocName     string         // the location's name, for Default
	Pattern     *vars.Template // a prefix of the header value to replace
	Regex       *regexp.Regexp // ~ or ~*: the value is replaced whole
	Replacement *vars.Template
}

var proxyDirectives = map[string]dirSpec{
	"proxy_redirect":             {ctx: cHSL, min: 1, max: 2, fn: dProxyRedirect},
	"proxy_hide_header":          {ctx: cHSL, min: 1, max: 1, fn: headerList("proxy_hide_header", func(p *ProxyRest) *[]string { return &p.HideHeaders })},
	"proxy_pass_header":          {ctx: cHSL, min: 1, max: 1, fn: headerList("proxy_pass_header", func(p *ProxyRest) *[]string { return &p.PassHeaders })},
	"proxy_ignore_headers":       {ctx: cHSL, min: 1, max: -1, fn: dProxyIgnoreHeaders},
	"proxy_cookie_domain":        {ctx: cHSL, min: 1, max: 2, fn: dCookieRewrite},
	"proxy_cookie_path":          {ctx: cHSL, min: 1, max: 2, fn: dCookieRewrite},
	"proxy_cookie_flags":         {ctx: cHSL, min: 1, max: 9, fn: dCookieFlags},
	"proxy_method":               {ctx: cHSL, min: 1, max: 1, fn: restTemplate("proxy_method", func(p *ProxyRest) **vars.Template { return &p.Method })},
	"proxy_set_body":             {ctx: cHSL, min: 1, max: 1, fn: restTemplate("proxy_set_body", func(p *ProxyRest) **vars.Template { return &p.SetBody })},
	"proxy_pass_request_headers": {ctx: cHSL, min: 1, max: 1, fn: restFlag("proxy_pass_request_headers", true, func(p *ProxyRest) *bool { return &p.NoRequestHeaders })},
	"proxy_pass_request_body":    {ctx: cHSL, min: 1, max: 1, fn: restFlag("proxy_pass_request_body", true, func(p *ProxyRest) *bool { return &p.NoRequestBody })},
	"proxy_pass_trailers":        {ctx: cHSL, min: 1, max: 1, fn: restFlag("proxy_pass_trailers", false, func(p *ProxyRest) *bool { return &p.PassTrailers })},
	"proxy_ignore_client_abort":  {ctx: cHSL, min: 1, max: 1, fn: restFlag("proxy_ignore_client_abort", false, func(p *ProxyRest) *bool { return &p.IgnoreAbort })},
	"proxy_socket_keepalive":     {ctx: cHSL, min: 1, max: 1, fn: restFlag("proxy_socket_keepalive", false, func(p *ProxyRest) *bool { return &p.SocketKeepalive })},
	"proxy_force_ranges":         {ctx: cHSL, min: 1, max: 1, fn: restFlag("proxy_force_ranges", false, func(p *ProxyRest) *bool { return &p.ForceRanges })},
	"proxy_limit_rate":           {ctx: cHSL, min: 1, max: 1, fn: dProxyLimitRate},
	"proxy_bind":                 {ctx: cHSL, min: 1, max: 2, fn: dProxyBind},
	// keepalive_time of the core module, also in upstream blocks.
	"keepalive_time": {ctx: cHSL | cUpstream, min: 1, max: 1, fn: dKeepaliveTime},
}

func init() {
	maps.Copy(mergers, map[string]func(c, p *LocConf){
		"proxy_redirect": func(c, p *LocConf) {
			c.ProxyRest.Redirects, c.ProxyRest.RedirectSet, c.ProxyRest.RedirectOff =
				p.ProxyRest.Redirects, p.ProxyRest.RedirectSet, p.ProxyRest.RedirectOff
		},
		"proxy_hide_header":          func(c, p *LocConf) { c.ProxyRest.HideHeaders = p.ProxyRest.HideHeaders },
		"proxy_pass_header":          func(c, p *LocConf) { c.ProxyRest.PassHeaders = p.ProxyRest.PassHeaders },
		"proxy_ignore_headers":       func(c, p *LocConf) { c.ProxyRest.IgnoreHeaders = p.ProxyRest.IgnoreHeaders },
		"proxy_cookie_domain":        func(c, p *LocConf) { c.ProxyRest.CookieDomains = p.ProxyRest.CookieDomains },
		"proxy_cookie_path":          func(c, p *LocConf) { c.ProxyRest.CookiePaths = p.ProxyRest.CookiePaths },
		"proxy_cookie_flags":         func(c, p *LocConf) { c.ProxyRest.CookieFlags = p.ProxyRest.CookieFlags },
		"proxy_method":               func(c, p *LocConf) { c.ProxyRest.Method = p.ProxyRest.Method },
		"proxy_set_body":             func(c, p *LocConf) { c.ProxyRest.SetBody = p.ProxyRest.SetBody },
		"proxy_pass_request_headers": func(c, p *LocConf) { c.ProxyRest.NoRequestHeaders = p.ProxyRest.NoRequestHeaders },
		"proxy_pass_request_body":    func(c, p *LocConf) { c.ProxyRest.NoRequestBody = p.ProxyRest.NoRequestBody },
		"proxy_pass_trailers":        func(c, p *LocConf) { c.ProxyRest.PassTrailers = p.ProxyRest.PassTrailers },
		"proxy_ignore_client_abort":  func(c, p *LocConf) { c.ProxyRest.IgnoreAbort = p.ProxyRest.IgnoreAbort },
		"proxy_socket_keepalive":     func(c, p *LocConf) { c.ProxyRest.SocketKeepalive = p.ProxyRest.SocketKeepalive },
		"proxy_force_ranges":         func(c, p *LocConf) { c.ProxyRest.ForceRanges = p.ProxyRest.ForceRanges },
		"proxy_limit_rate":           func(c, p *LocConf) { c.ProxyRest.LimitRate = p.ProxyRest.LimitRate },
		"proxy_bind":                 func(c, p *LocConf) { c.ProxyRest.Bind = p.ProxyRest.Bind },
	})
}

// headerList reads a directive that adds one header name to a list
// inherited only by levels that add none.
func headerList(name string, field func(*ProxyRest) *[]string) func(*loader, *conf.Directive, *scope) error {
	return func(l *loader, d *conf.Directive, s *scope) error {
		if !validHeaderName(d.Args[0]) {
			return conf.Errorf(d, "invalid header name \"%s\"", d.Args[0])
		}
		list := field(&s.lc.ProxyRest)
		if !s.lc.set[name] {
			*list = nil
		}
		*list = append(*list, d.Args[0])
		s.lc.set[name] = true
		return nil
	}
}

func dProxyIgnoreHeaders(l *loader, d *conf.Directive, s *scope) error {
	var mask uint16
	for _, a := range d.Args {
		bit, ok := ignoreNames[canonicalIgnore(a)]
		if !ok {
			return conf.Errorf(d, "invalid value \"%s\" in \"%s\" directive", a, d.Name)
		}
		mask |= bit
	}
	if !s.lc.set["proxy_ignore_headers"] {
		s.lc.ProxyRest.IgnoreHeaders = 0
	}
	s.lc.ProxyRest.IgnoreHeaders |= mask // several add up, as nginx's bitmask
	s.lc.set["proxy_ignore_headers"] = true
	return nil
}

// canonicalIgnore finds a proxy_ignore_headers name whatever its case.
func canonicalIgnore(a string) string {
	for n := range ignoreNames {
		if strings.EqualFold(n, a) {
			return n
		}
	}
	return a
}

// dProxyRedirect reads proxy_redirect: `off`, `default`, or a pattern
// (a prefix with variables, or ~ / ~* a regex) and its replacement.
func dProxyRedirect(l *loader, d *conf.Directive, s *scope) error {
	pr := &s.lc.ProxyRest
	if pr.RedirectOff && s.lc.set["proxy_redirect"] {
		return conf.Errorf(d, "\"off\" cannot be used with other \"proxy_redirect\" directives")
	}
	if !s.lc.set["proxy_redirect"] {
		pr.Redirects = nil
	}
	s.lc.set["proxy_redirect"] = true
	pr.RedirectSet = true
	a := d.Args[0]
	if len(d.Args) == 1 {
		switch a {
		case "off", "false":
			if len(pr.Redirects) > 0 {
				return conf.Errorf(d, "\"off\" cannot be used with other \"proxy_redirect\" directives")
			}
			pr.RedirectOff = true
			return nil
		case "default":
			if !s.lc.set["proxy_pass"] {
				return conf.Errorf(d, "\"proxy_redirect default\" should be placed after the \"proxy_pass\" directive")
			}
			name := ""
			if s.loc != nil {
				name = s.loc.Path
			}
			pr.Redirects = append(pr.Redirects, Redirect{Default: true, LocName: name})
			return nil
		}
		return conf.Errorf(d, "invalid parameter \"%s\"", a)
	}
	r, err := l.redirectRule(d)
	if err != nil {
		return err
	}
	pr.Redirects = append(pr.Redirects, r)
	return nil
}

func (l *loader) redirectRule(d *conf.Directive) (Redirect, error) {
	var r Redirect
	rep, err := l.cfg.Vars.Compile(d.Args[1])
	if err != nil {
		return r, conf.Errorf(d, "%v", err)
	}
	r.Replacement = rep
	a := d.Args[0]
	if strings.HasPrefix(a, "~") {
		expr := a[1:]
		if strings.HasPrefix(expr, "*") {
			expr = "(?i)" + expr[1:]
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return r, conf.Errorf(d, "invalid regex \"%s\": %v", a, err)
		}
		r.Regex = re
		return r, nil
	}
	pat, err := l.cfg.Vars.Compile(a)
	if err != nil {
		return r, conf.Errorf(d, "%v", err)
	}
	r.Pattern = pat
	return r, nil
}

// dCookieRewrite reads proxy_cookie_domain and proxy_cookie_path: `off`,
// or a pattern and its replacement. A domain is compared without case and
// without its leading dot; a domain regex is always caseless, a path
// regex caseless with ~*.
func dCookieRewrite(l *loader, d *conf.Directive, s *scope) error {
	list := &s.lc.ProxyRest.CookiePaths
	domain := d.Name == "proxy_cookie_domain"
	if domain {
		list = &s.lc.ProxyRest.CookieDomains
	}
	first := !s.lc.set[d.Name]
	s.lc.set[d.Name] = true
	if len(d.Args) == 1 {
		if d.Args[0] != "off" {
			return conf.Errorf(d, "invalid parameter \"%s\"", d.Args[0])
		}
		if !first && *list != nil {
			return conf.Errorf(d, "\"off\" cannot be used with other \"%s\" directives", d.Name)
		}
		*list = []CookieRewrite{} // off: nothing rewritten, not nil so that it is not taken for unset
		return nil
	}
	if first {
		*list = nil
	}
	pat, rep := d.Args[0], d.Args[1]
	var r CookieRewrite
	if strings.HasPrefix(pat, "~") {
		expr := pat[1:]
		if strings.HasPrefix(expr, "*") || domain {
			expr = "(?i)" + strings.TrimPrefix(expr, "*")
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return conf.Errorf(d, "invalid regex \"%s\": %v", pat, err)
		}
		r.Regex = re
	} else {
		if domain {
			pat = strings.TrimPrefix(pat, ".")
		}
		t, err := l.cfg.Vars.Compile(pat)
		if err != nil {
			return conf.Errorf(d, "%v", err)
		}
		r.Pattern = t
	}
	if domain {
		rep = strings.TrimPrefix(rep, ".")
	}
	t, err := l.cfg.Vars.Compile(rep)
	if err != nil {
		return conf.Errorf(d, "%v", err)
	}
	r.Replacement = t
	*list = append(*list, r)
	return nil
}

// dCookieFlags reads proxy_cookie_flags: `off`, or a cookie name (or ~
// regex) and its flags.
func dCookieFlags(l *loader, d *conf.Directive, s *scope) error {
	pr := &s.lc.ProxyRest
	first := !s.lc.set[d.Name]
	s.lc.set[d.Name] = true
	if d.Args[0] == "off" && len(d.Args) == 1 {
		if !first && pr.CookieFlags != nil {
			return conf.Errorf(d, "\"off\" cannot be used with other \"proxy_cookie_flags\" directives")
		}
		pr.CookieFlags = []CookieFlags{}
		return nil
	}
	if first {
		pr.CookieFlags = nil
	}
	var cf CookieFlags
	if name := d.Args[0]; strings.HasPrefix(name, "~") {
		re, err := regexp.Compile("(?i)" + name[1:]) // names compare without case, as nginx
		if err != nil {
			return conf.Errorf(d, "invalid regex \"%s\": %v", name, err)
		}
		cf.Regex = re
	} else {
		t, err := l.cfg.Vars.Compile(name)
		if err != nil {
			return conf.Errorf(d, "%v", err)
		}
		cf.Name = t
	}
	for _, f := range d.Args[1:] {
		switch lf := strings.ToLower(f); lf {
		case "secure", "httponly", "samesite=strict", "samesite=lax", "samesite=none", "nosecure", "nohttponly", "nosamesite":
			cf.Flags = append(cf.Flags, lf)
		default:
			return conf.Errorf(d, "invalid parameter \"%s\"", f)
		}
	}
	if len(cf.Flags) == 0 {
		return conf.Errorf(d, "invalid number of arguments in \"proxy_cookie_flags\" directive")
	}
	pr.CookieFlags = append(pr.CookieFlags, cf)
	return nil
}

// restTemplate reads a directive whose one argument is a value with
// variables.
func restTemplate(name string, field func(*ProxyRest) **vars.Template) func(*loader, *conf.Directive, *scope) error {
	return func(l *loader, d *conf.Directive, s *scope) error {
		t, err := l.cfg.Vars.Compile(d.Args[0])
		if err != nil {
			return conf.Errorf(d, "%v", err)
		}
		*field(&s.lc.ProxyRest) = t
		return s.lc.mark(d, name)
	}
}

// restFlag reads an on/off directive; negated fields hold "off" so that
// their zero value is nginx's default "on".
func restFlag(name string, negated bool, field func(*ProxyRest) *bool) func(*loader, *conf.Directive, *scope) error {
	return func(l *loader, d *conf.Directive, s *scope) error {
		v, err := parseFlag(d.Args[0])
		if err != nil {
			return conf.Errorf(d, "invalid value \"%s\" in \"%s\" directive, it must be \"on\" or \"off\"", d.Args[0], d.Name)
		}
		*field(&s.lc.ProxyRest) = v != negated
		return s.lc.mark(d, name)
	}
}

func dProxyLimitRate(l *loader, d *conf.Directive, s *scope) error {
	n, err := ParseSize(d.Args[0])
	if err != nil || n < 0 {
		return conf.Errorf(d, "\"%s\" directive invalid value", d.Name)
	}
	s.lc.ProxyRest.LimitRate = RateValue{N: n}
	return s.lc.mark(d, "proxy_limit_rate")
}

// dProxyBind reads proxy_bind: `off`, or an address (variables allowed)
// with an optional `transparent`.
func dProxyBind(l *loader, d *conf.Directive, s *scope) error {
	if err := s.lc.mark(d, "proxy_bind"); err != nil {
		return err
	}
	if d.Args[0] == "off" {
		if len(d.Args) > 1 {
			return conf.Errorf(d, "invalid number of arguments in \"%s\" directive", d.Name)
		}
		s.lc.ProxyRest.Bind = nil
		return nil
	}
	b := &Bind{}
	if len(d.Args) == 2 {
		if d.Args[1] != "transparent" {
			return conf.Errorf(d, "invalid parameter \"%s\"", d.Args[1])
		}
		b.Transparent = true
	}
	t, err := l.cfg.Vars.Compile(d.Args[0])
	if err != nil {
		return conf.Errorf(d, "%v", err)
	}
	if t.IsConst() {
		if _, err := ParseBindAddr(d.Args[0]); err != nil {
			return conf.Errorf(d, "invalid address \"%s\"", d.Args[0])
		}
	}
	b.Addr = t
	s.lc.ProxyRest.Bind = b
	return nil
}

// ParseBindAddr parses a proxy_bind address: an IP, or IP:port ([IPv6]:port).
func ParseBindAddr(a string) (netip.AddrPort, error) {
	if ip, err := netip.ParseAddr(strings.Trim(a, "[]")); err == nil {
		return netip.AddrPortFrom(ip, 0), nil
	}
	return netip.ParseAddrPort(a)
}

// dKeepaliveTime reads keepalive_time: in an upstream block the longest a
// backend connection serves requests (ngx_http_upstream_keepalive_module),
// elsewhere the client connection's (ngx_http_core_module).
func dKeepaliveTime(l *loader, d *conf.Directive, s *scope) error {
	if s.kind != cUpstream {
		return duration("keepalive_time", func(c *LocConf) *durationField { return &c.KeepaliveTime })(l, d, s)
	}
	v, err := ParseDuration(d.Args[0])
	if err != nil || v <= 0 {
		return conf.Errorf(d, "\"%s\" directive invalid value", d.Name)
	}
	s.ups.KeepaliveTime = v
	return nil
}
