package config

import (
	"strings"

	"github.com/wsgate/wsgate/internal/charset"
	"github.com/wsgate/wsgate/internal/conf"
	"github.com/wsgate/wsgate/internal/vars"
)

// CharsetConf is a location's ngx_http_charset_module settings.
type CharsetConf struct {
	Charset  *vars.Template // nil: off
	Source   string         // source_charset; "" when unset
	Override bool           // override_charset
	Types    []string       // charset_types, lowercased; nil means the default list
	AnyType  bool           // charset_types *
}

// DefaultCharsetTypes is charset_types' default.
var DefaultCharsetTypes = []string{"text/html", "text/xml", "text/plain", "text/vnd.wap.wml", "application/javascript", "application/rss+xml"}

// The directives of nginx's ngx_http_charset_module. A source_charset
// other than charset needs a charset_map between the two, as nginx.
// charset_map blocks are read by the first pass (charsetBlockVars), so
// that a map may follow the lines that use it.
var charsetDirectives = map[string]dirSpec{
	"charset_map":      {ctx: cHTTP, min: 2, max: 2, block: true, fn: func(*loader, *conf.Directive, *scope) error { return nil }},
	"charset":          {ctx: cHSLIf, min: 1, max: 1, fn: dCharset},
	"source_charset":   {ctx: cHSLIf, min: 1, max: 1, fn: dSourceCharset},
	"override_charset": {ctx: cHSLIf, min: 1, max: 1, fn: flag("override_charset", func(c *LocConf) *bool { return &c.Charset.Override })},
	"charset_types":    {ctx: cHSL, min: 1, max: -1, fn: dCharsetTypes},
}

var charsetMergers = map[string]func(c, p *LocConf){
	"charset":          func(c, p *LocConf) { c.Charset.Charset = p.Charset.Charset },
	"source_charset":   func(c, p *LocConf) { c.Charset.Source = p.Charset.Source },
	"override_charset": func(c, p *LocConf) { c.Charset.Override = p.Charset.Override },
	"charset_types":    func(c, p *LocConf) { c.Charset.Types, c.Charset.AnyType = p.Charset.Types, p.Charset.AnyType },
}

var charsetBlockVars = map[string]func(*loader, *conf.Directive) error{"charset_map": declareCharsetMap}

// declareCharsetMap reads `charset_map charset1 charset2 { byte value; }`.
func declareCharsetMap(l *loader, d *conf.Directive) error {
	if !d.IsBlock() || len(d.Args) != 2 {
		return nil // reported with its position by the main pass
	}
	if m, _ := charset.Find(l.cfg.CharsetMaps, d.Args[0], d.Args[1]); m != nil {
		return conf.Errorf(d, "duplicate \"charset_map\" between the charsets \"%s\" and \"%s\"", d.Args[0], d.Args[1])
	}
	m, err := charset.NewMap(d.Args[0], d.Args[1])
	if err != nil {
		return conf.Errorf(d, "%v", err)
	}
	for _, e := range d.Block {
		if len(e.Args) != 1 || e.Block != nil {
			return conf.Errorf(e, "invalid parameter number")
		}
		if err := m.Add(e.Name, e.Args[0]); err != nil {
			return conf.Errorf(e, "%v", err)
		}
	}
	l.cfg.CharsetMaps = append(l.cfg.CharsetMaps, m)
	l.knowCharset(d.Args[0])
	l.knowCharset(d.Args[1])
	return nil
}

func dCharset(l *loader, d *conf.Directive, s *scope) error {
	if d.Args[0] == "off" {
		s.lc.Charset.Charset = nil
		return s.lc.mark(d, d.Name)
	}
	t, err := l.cfg.Vars.Compile(d.Args[0])
	if err != nil {
		return conf.Errorf(d, "%v", err)
	}
	s.lc.Charset.Charset = t
	if t.IsConst() {
		l.knowCharset(d.Args[0])
	}
	if err := l.checkCharsetPair(d, &s.lc.Charset); err != nil {
		return err
	}
	return s.lc.mark(d, d.Name)
}

func dSourceCharset(l *loader, d *conf.Directive, s *scope) error {
	if d.Args[0] == "off" {
		s.lc.Charset.Source = ""
		return s.lc.mark(d, d.Name)
	}
	s.lc.Charset.Source = d.Args[0]
	l.knowCharset(d.Args[0])
	if err := l.checkCharsetPair(d, &s.lc.Charset); err != nil {
		return err
	}
	return s.lc.mark(d, d.Name)
}

// knowCharset records a charset the configuration names.
func (l *loader) knowCharset(name string) {
	if l.cfg.Charsets == nil {
		l.cfg.Charsets = map[string]bool{}
	}
	l.cfg.Charsets[strings.ToLower(name)] = true
}

// checkCharsetPair refuses a conversion no charset_map makes, with
// nginx's message.
func (l *loader) checkCharsetPair(d *conf.Directive, c *CharsetConf) error {
	if c.Charset == nil || c.Source == "" || !c.Charset.IsConst() {
		return nil
	}
	dst := c.Charset.Raw()
	if m, _ := charset.Find(l.cfg.CharsetMaps, c.Source, dst); m == nil && !strings.EqualFold(dst, c.Source) {
		return conf.Errorf(d, "no \"charset_map\" between the charsets \"%s\" and \"%s\"", c.Source, dst)
	}
	return nil
}

func dCharsetTypes(l *loader, d *conf.Directive, s *scope) error {
	c := &s.lc.Charset
	c.Types, c.AnyType = []string{}, false
	for _, a := range d.Args {
		if a == "*" {
			c.AnyType = true
			continue
		}
		c.Types = append(c.Types, strings.ToLower(a))
	}
	return s.lc.mark(d, d.Name)
}
