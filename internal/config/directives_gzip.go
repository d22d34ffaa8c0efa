package config

import (
	"maps"
	"strconv"
	"strings"

	"github.com/wsgate/wsgate/internal/conf"
	"github.com/wsgate/wsgate/internal/gzipfilter"
	"github.com/wsgate/wsgate/internal/regex"
)

// The directives of nginx's ngx_http_gzip_module and
// ngx_http_gzip_static_module; the settings live in LocConf.Gzip.
var gzipDirectives = map[string]dirSpec{
	"gzip":              {ctx: cHSLIf, min: 1, max: 1, fn: gzipFlag(func(g *gzipfilter.Conf) *bool { return &g.On })},
	"gzip_vary":         {ctx: cHSL, min: 1, max: 1, fn: gzipFlag(func(g *gzipfilter.Conf) *bool { return &g.Vary })},
	"gzip_buffers":      {ctx: cHSL, min: 2, max: 2, fn: dGzipBuffers},
	"gzip_comp_level":   {ctx: cHSL, min: 1, max: 1, fn: dGzipCompLevel},
	"gzip_disable":      {ctx: cHSL, min: 1, max: -1, fn: dGzipDisable},
	"gzip_http_version": {ctx: cHSL, min: 1, max: 1, fn: dGzipHTTPVersion},
	"gzip_min_length":   {ctx: cHSL, min: 1, max: 1, fn: dGzipMinLength},
	"gzip_proxied":      {ctx: cHSL, min: 1, max: -1, fn: dGzipProxied},
	"gzip_types":        {ctx: cHSL, min: 1, max: -1, fn: dGzipTypes},
	"gzip_static":       {ctx: cHSL, min: 1, max: 1, fn: dGzipStatic},
}

func init() {
	maps.Copy(mergers, map[string]func(c, p *LocConf){
		"gzip":              func(c, p *LocConf) { c.Gzip.On = p.Gzip.On },
		"gzip_vary":         func(c, p *LocConf) { c.Gzip.Vary = p.Gzip.Vary },
		"gzip_buffers":      func(c, p *LocConf) { c.Gzip.Buffers = p.Gzip.Buffers },
		"gzip_comp_level":   func(c, p *LocConf) { c.Gzip.Level = p.Gzip.Level },
		"gzip_disable":      func(c, p *LocConf) { c.Gzip.Disable, c.Gzip.DisableMSIE6 = p.Gzip.Disable, p.Gzip.DisableMSIE6 },
		"gzip_http_version": func(c, p *LocConf) { c.Gzip.HTTPVersion = p.Gzip.HTTPVersion },
		"gzip_min_length":   func(c, p *LocConf) { c.Gzip.MinLength = p.Gzip.MinLength },
		"gzip_proxied":      func(c, p *LocConf) { c.Gzip.Proxied = p.Gzip.Proxied },
		"gzip_types":        func(c, p *LocConf) { c.Gzip.Types, c.Gzip.AnyType = p.Gzip.Types, p.Gzip.AnyType },
		"gzip_static":       func(c, p *LocConf) { c.Gzip.Static = p.Gzip.Static },
	})
}

func gzipFlag(field func(*gzipfilter.Conf) *bool) func(*loader, *conf.Directive, *scope) error {
	return func(l *loader, d *conf.Directive, s *scope) error {
		v, err := parseFlag(d.Args[0])
		if err != nil {
			return conf.Errorf(d, "invalid value \"%s\" in \"%s\" directive, it must be \"on\" or \"off\"", d.Args[0], d.Name)
		}
		*field(&s.lc.Gzip) = v
		return s.lc.mark(d, d.Name)
	}
}

func dGzipBuffers(l *loader, d *conf.Directive, s *scope) error {
	n, err := strconv.Atoi(d.Args[0])
	size, serr := ParseSize(d.Args[1])
	if err != nil || n < 1 || serr != nil || size < 1 {
		return conf.Errorf(d, "invalid value \"%s %s\" in \"%s\" directive", d.Args[0], d.Args[1], d.Name)
	}
	s.lc.Gzip.Buffers = [2]int{n, int(size)}
	return s.lc.mark(d, d.Name)
}

func dGzipCompLevel(l *loader, d *conf.Directive, s *scope) error {
	n, err := strconv.Atoi(d.Args[0])
	if err != nil {
		return conf.Errorf(d, "invalid number \"%s\" in \"%s\" directive", d.Args[0], d.Name)
	}
	if n < 1 || n > 9 {
		return conf.Errorf(d, "the value must be in 1..9 range")
	}
	s.lc.Gzip.Level = n
	return s.lc.mark(d, d.Name)
}

// dGzipDisable reads gzip_disable: case-insensitive regular expressions
// on User-Agent, and "msie6". Repeated directives at one level add up.
func dGzipDisable(l *loader, d *conf.Directive, s *scope) error {
	g := &s.lc.Gzip
	if !s.lc.set[d.Name] {
		g.Disable, g.DisableMSIE6 = nil, false
	}
	for _, a := range d.Args {
		if a == "msie6" {
			g.DisableMSIE6 = true
			continue
		}
		re, err := regex.Compile(a, true)
		if err != nil {
			return conf.Errorf(d, "pcre2_compile() failed: %v in \"%s\"", err, a)
		}
		g.Disable = append(g.Disable, re)
	}
	s.lc.set[d.Name] = true
	return nil
}

func dGzipHTTPVersion(l *loader, d *conf.Directive, s *scope) error {
	switch d.Args[0] {
	case "1.0":
		s.lc.Gzip.HTTPVersion = 1000
	case "1.1":
		s.lc.Gzip.HTTPVersion = 1001
	default:
		return conf.Errorf(d, "invalid value \"%s\" in \"%s\" directive, it must be \"1.0\" or \"1.1\"", d.Args[0], d.Name)
	}
	return s.lc.mark(d, d.Name)
}

func dGzipMinLength(l *loader, d *conf.Directive, s *scope) error {
	n, err := ParseSize(d.Args[0])
	if err != nil {
		return conf.Errorf(d, "\"%s\" directive invalid value", d.Name)
	}
	s.lc.Gzip.MinLength = n
	return s.lc.mark(d, d.Name)
}

func dGzipProxied(l *loader, d *conf.Directive, s *scope) error {
	var p gzipfilter.Proxied
	for _, a := range d.Args {
		bit, ok := gzipfilter.ProxiedNames[a]
		if !ok {
			return conf.Errorf(d, "invalid value \"%s\" in \"%s\" directive", a, d.Name)
		}
		p |= bit
	}
	s.lc.Gzip.Proxied = p
	return s.lc.mark(d, d.Name)
}

// dGzipTypes reads gzip_types: MIME types besides text/html, which is
// always in, or "*" for any.
func dGzipTypes(l *loader, d *conf.Directive, s *scope) error {
	g := &s.lc.Gzip
	g.Types, g.AnyType = map[string]bool{"text/html": true}, false
	for _, a := range d.Args {
		if a == "*" {
			g.AnyType = true
			continue
		}
		t := strings.ToLower(a)
		if g.Types[t] {
			l.warn(d, "duplicate MIME type \"%s\"", a)
		}
		g.Types[t] = true
	}
	return s.lc.mark(d, d.Name)
}

func dGzipStatic(l *loader, d *conf.Directive, s *scope) error {
	switch d.Args[0] {
	case "off":
		s.lc.Gzip.Static = gzipfilter.StaticOff
	case "on":
		s.lc.Gzip.Static = gzipfilter.StaticOn
	case "always":
		s.lc.Gzip.Static = gzipfilter.StaticAlways
	default:
		return conf.Errorf(d, "invalid value \"%s\" in \"%s\" directive, it must be \"on\", \"off\" or \"always\"", d.Args[0], d.Name)
	}
	return s.lc.mark(d, d.Name)
}
