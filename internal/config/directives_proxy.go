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
	"proxy_redirect": {ctx: cHSL, min: 1, max: 2, fn: dProxyRedirect},
}

func init() {
	maps.Copy(mergers, map[string]func(c, p *LocConf){
		"proxy_redirect": func(c, p *LocConf) {
			c.ProxyRest.Redirects, c.ProxyRest.RedirectSet, c.ProxyRest.RedirectOff =
				p.ProxyRest.Redirects, p.ProxyRest.RedirectSet, p.ProxyRest.RedirectOff
		},
	})
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
