package config

import "github.com/wsgate/wsgate/internal/conf"

// The directives of nginx's ngx_http_mirror_module.
var mirrorDirectives = map[string]dirSpec{
	"mirror":              {ctx: cHSL, min: 1, max: 1, fn: dMirror},
	"mirror_request_body": {ctx: cHSL, min: 1, max: 1, fn: dMirrorRequestBody},
}

var mirrorMergers = map[string]func(c, p *LocConf){
	"mirror":              func(c, p *LocConf) { c.Mirrors = p.Mirrors },
	"mirror_request_body": func(c, p *LocConf) { c.MirrorNoBody = p.MirrorNoBody },
}

// dMirror adds a URI the request is mirrored to; `mirror off`, alone at
// its level, stops inheriting the outer ones.
func dMirror(l *loader, d *conf.Directive, s *scope) error {
	if !s.lc.set[d.Name] {
		s.lc.Mirrors, s.lc.mirrorOff = nil, false
	} else if d.Args[0] == "off" || s.lc.mirrorOff {
		return conf.Errorf(d, "\"mirror\" directive is duplicate")
	}
	s.lc.set[d.Name] = true
	if d.Args[0] == "off" {
		s.lc.mirrorOff = true
		return nil
	}
	s.lc.Mirrors = append(s.lc.Mirrors, d.Args[0])
	return nil
}

// dMirrorRequestBody reads `mirror_request_body on | off` (on by default).
func dMirrorRequestBody(l *loader, d *conf.Directive, s *scope) error {
	v, err := parseFlag(d.Args[0])
	if err != nil {
		return conf.Errorf(d, "invalid value \"%s\" in \"%s\" directive, it must be \"on\" or \"off\"", d.Args[0], d.Name)
	}
	s.lc.MirrorNoBody = !v
	return s.lc.mark(d, d.Name)
}
