package config

import (
	"maps"
	"strings"

	"github.com/wsgate/wsgate/internal/conf"
	"github.com/wsgate/wsgate/internal/expires"
	"github.com/wsgate/wsgate/internal/vars"
)

// Expires is a location's `expires` (ngx_http_headers_module): a parsed
// constant, or a value with variables parsed per request.
type Expires struct {
	Spec     expires.Spec
	Modified bool           // the `modified` parameter
	Value    *vars.Template // the value when it has variables; nil otherwise
}

// The ngx_http_headers_module directives besides add_header.
var headersDirectives = map[string]dirSpec{
	"expires":     {ctx: cHSLIf, min: 1, max: 2, fn: dExpires},
	"add_trailer": {ctx: cHSLIf, min: 2, max: 3, fn: dAddTrailer},
}

func init() {
	maps.Copy(mergers, map[string]func(c, p *LocConf){
		"expires":     func(c, p *LocConf) { c.Expires = p.Expires },
		"add_trailer": func(c, p *LocConf) { c.Trailers = p.Trailers },
	})
}

func dExpires(l *loader, d *conf.Directive, s *scope) error {
	if s.lc.set["expires"] {
		return conf.Errorf(d, "\"expires\" directive is duplicate")
	}
	v, e := d.Args[0], Expires{}
	if len(d.Args) == 2 {
		if d.Args[0] != "modified" {
			return conf.Errorf(d, "invalid value")
		}
		v, e.Modified = d.Args[1], true
	}
	if strings.Contains(v, "$") {
		t, err := l.cfg.Vars.Compile(v)
		if err != nil {
			return conf.Errorf(d, "%v", err)
		}
		if !t.IsConst() {
			e.Value = t
			s.lc.Expires = e
			return s.lc.mark(d, "expires")
		}
	}
	spec, err := expires.Parse(v, e.Modified)
	if err != nil {
		return conf.Errorf(d, "%v", err)
	}
	e.Spec = spec
	s.lc.Expires = e
	return s.lc.mark(d, "expires")
}

// dAddTrailer reads add_trailer, a list inherited as add_header is.
func dAddTrailer(l *loader, d *conf.Directive, s *scope) error {
	h, err := l.alwaysHeader(d)
	if err != nil {
		return err
	}
	if !s.lc.set["add_trailer"] {
		s.lc.Trailers = nil
	}
	s.lc.Trailers = append(s.lc.Trailers, h)
	s.lc.set["add_trailer"] = true
	return nil
}
