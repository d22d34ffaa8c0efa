package config

import (
	"strings"

	"github.com/wsgate/wsgate/internal/conf"
	"github.com/wsgate/wsgate/internal/vars"
)

// SubConf is a location's ngx_http_sub_module settings.
type SubConf struct {
	Find, Repl   []*vars.Template // sub_filter pairs, in order
	NotOnce      bool             // sub_filter_once off (on by default)
	Types        []string         // sub_filter_types besides text/html, lowercased
	AnyType      bool             // sub_filter_types *
	LastModified bool             // sub_filter_last_modified on
}

// The directives of nginx's ngx_http_sub_module.
var subDirectives = map[string]dirSpec{
	"sub_filter":               {ctx: cHSL, min: 2, max: 2, fn: dSubFilter},
	"sub_filter_once":          {ctx: cHSL, min: 1, max: 1, fn: dSubFilterOnce},
	"sub_filter_types":         {ctx: cHSL, min: 1, max: -1, fn: dSubFilterTypes},
	"sub_filter_last_modified": {ctx: cHSL, min: 1, max: 1, fn: flag("sub_filter_last_modified", func(c *LocConf) *bool { return &c.Sub.LastModified })},
}

var subMergers = map[string]func(c, p *LocConf){
	"sub_filter":               func(c, p *LocConf) { c.Sub.Find, c.Sub.Repl = p.Sub.Find, p.Sub.Repl },
	"sub_filter_once":          func(c, p *LocConf) { c.Sub.NotOnce = p.Sub.NotOnce },
	"sub_filter_types":         func(c, p *LocConf) { c.Sub.Types, c.Sub.AnyType = p.Sub.Types, p.Sub.AnyType },
	"sub_filter_last_modified": func(c, p *LocConf) { c.Sub.LastModified = p.Sub.LastModified },
}

// dSubFilter adds a pair; the pairs of one level replace the outer ones.
func dSubFilter(l *loader, d *conf.Directive, s *scope) error {
	if d.Args[0] == "" {
		return conf.Errorf(d, "empty search pattern")
	}
	find, err := l.cfg.Vars.Compile(d.Args[0])
	if err != nil {
		return conf.Errorf(d, "%v", err)
	}
	repl, err := l.cfg.Vars.Compile(d.Args[1])
	if err != nil {
		return conf.Errorf(d, "%v", err)
	}
	if !s.lc.set[d.Name] {
		s.lc.Sub.Find, s.lc.Sub.Repl = nil, nil
	}
	s.lc.set[d.Name] = true
	s.lc.Sub.Find = append(s.lc.Sub.Find, find)
	s.lc.Sub.Repl = append(s.lc.Sub.Repl, repl)
	return nil
}

func dSubFilterOnce(l *loader, d *conf.Directive, s *scope) error {
	v, err := parseFlag(d.Args[0])
	if err != nil {
		return conf.Errorf(d, "invalid value \"%s\" in \"%s\" directive, it must be \"on\" or \"off\"", d.Args[0], d.Name)
	}
	s.lc.Sub.NotOnce = !v
	return s.lc.mark(d, d.Name)
}

func dSubFilterTypes(l *loader, d *conf.Directive, s *scope) error {
	c := &s.lc.Sub
	c.Types, c.AnyType = nil, false
	for _, a := range d.Args {
		if a == "*" {
			c.AnyType = true
			continue
		}
		c.Types = append(c.Types, strings.ToLower(a))
	}
	return s.lc.mark(d, d.Name)
}
