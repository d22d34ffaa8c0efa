package config

import (
	"maps"
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
	"proxy_redirect":       {ctx: cHSL, min: 1, max: 2, fn: dProxyRedirect},
	"proxy_hide_header":    {ctx: cHSL, min: 1, max: 1, fn: headerList("proxy_hide_header", func(p *ProxyRest) *[]string { return &p.HideHeaders })},
	"proxy_pass_header":    {ctx: cHSL, min: 1, max: 1, fn: headerList("proxy_pass_header", func(p *ProxyRest) *[]string { return &p.PassHeaders })},
	"proxy_ignore_headers": {ctx: cHSL, min: 1, max: -1, fn: dProxyIgnoreHeaders},
}

func init() {
	maps.Copy(mergers, map[string]func(c, p *LocConf){
		"proxy_redirect": func(c, p *LocConf) {
			c.ProxyRest.Redirects, c.ProxyRest.RedirectSet, c.ProxyRest.RedirectOff =
				p.ProxyRest.Redirects, p.ProxyRest.RedirectSet, p.ProxyRest.RedirectOff
		},
		"proxy_hide_header":    func(c, p *LocConf) { c.ProxyRest.HideHeaders = p.ProxyRest.HideHeaders },
		"proxy_pass_header":    func(c, p *LocConf) { c.ProxyRest.PassHeaders = p.ProxyRest.PassHeaders },
		"proxy_ignore_headers": func(c, p *LocConf) { c.ProxyRest.IgnoreHeaders = p.ProxyRest.IgnoreHeaders },
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
