package config

import (
	"slices"
	"strconv"
	"strings"

	"github.com/wsgate/wsgate/internal/conf"
	"github.com/wsgate/wsgate/internal/userid"
)

// The directives of nginx's ngx_http_userid_module; the settings live in
// LocConf.UserID, each inherited on its own.
var useridDirectives = map[string]dirSpec{
	"userid":         {ctx: cHSL, min: 1, max: 1, fn: dUserid},
	"userid_domain":  {ctx: cHSL, min: 1, max: 1, fn: useridString(func(c *userid.Conf, v string) { c.Domain = noneEmpty(v) })},
	"userid_expires": {ctx: cHSL, min: 1, max: 1, fn: dUseridExpires},
	"userid_flags":   {ctx: cHSL, min: 1, max: -1, fn: dUseridFlags},
	"userid_mark":    {ctx: cHSL, min: 1, max: 1, fn: dUseridMark},
	"userid_name":    {ctx: cHSL, min: 1, max: 1, fn: useridString(func(c *userid.Conf, v string) { c.Name = v })},
	"userid_p3p":     {ctx: cHSL, min: 1, max: 1, fn: useridString(func(c *userid.Conf, v string) { c.P3P = noneEmpty(v) })},
	"userid_path":    {ctx: cHSL, min: 1, max: 1, fn: useridString(func(c *userid.Conf, v string) { c.Path = v })},
	"userid_service": {ctx: cHSL, min: 1, max: 1, fn: dUseridService},
}

var useridMergers = map[string]func(c, p *LocConf){
	"userid":         func(c, p *LocConf) { c.UserID.Mode = p.UserID.Mode },
	"userid_domain":  func(c, p *LocConf) { c.UserID.Domain = p.UserID.Domain },
	"userid_expires": func(c, p *LocConf) { c.UserID.Expires = p.UserID.Expires },
	"userid_flags":   func(c, p *LocConf) { c.UserID.Flags = p.UserID.Flags },
	"userid_mark":    func(c, p *LocConf) { c.UserID.Mark = p.UserID.Mark },
	"userid_name":    func(c, p *LocConf) { c.UserID.Name = p.UserID.Name },
	"userid_p3p":     func(c, p *LocConf) { c.UserID.P3P = p.UserID.P3P },
	"userid_path":    func(c, p *LocConf) { c.UserID.Path = p.UserID.Path },
	"userid_service": func(c, p *LocConf) { c.UserID.Service, c.UserID.HasService = p.UserID.Service, p.UserID.HasService },
}

func noneEmpty(v string) string {
	if v == "none" {
		return ""
	}
	return v
}

// once marks d's setting written at this level, refusing a second one.
func once(d *conf.Directive, s *scope) error {
	if s.lc.set[d.Name] {
		return conf.Errorf(d, "\"%s\" directive is duplicate", d.Name)
	}
	s.lc.set[d.Name] = true
	return nil
}

func useridString(set func(*userid.Conf, string)) func(*loader, *conf.Directive, *scope) error {
	return func(l *loader, d *conf.Directive, s *scope) error {
		if err := once(d, s); err != nil {
			return err
		}
		set(&s.lc.UserID, d.Args[0])
		return nil
	}
}

func dUserid(l *loader, d *conf.Directive, s *scope) error {
	modes := map[string]userid.Mode{"off": userid.Off, "log": userid.Log, "v1": userid.V1, "on": userid.On}
	m, ok := modes[d.Args[0]]
	if !ok {
		return conf.Errorf(d, "invalid value \"%s\" in \"%s\" directive, it must be \"off\", \"log\", \"v1\" or \"on\"", d.Args[0], d.Name)
	}
	if err := once(d, s); err != nil {
		return err
	}
	s.lc.UserID.Mode = m
	return nil
}

func dUseridExpires(l *loader, d *conf.Directive, s *scope) error {
	if err := once(d, s); err != nil {
		return err
	}
	switch d.Args[0] {
	case "max":
		s.lc.UserID.Expires = userid.MaxExpires
	case "off":
		s.lc.UserID.Expires = 0
	default:
		t, err := ParseDuration(d.Args[0])
		if err != nil {
			return conf.Errorf(d, "\"%s\" directive invalid value", d.Name)
		}
		s.lc.UserID.Expires = int64(t.Seconds())
	}
	return nil
}

func dUseridFlags(l *loader, d *conf.Directive, s *scope) error {
	if err := once(d, s); err != nil {
		return err
	}
	if len(d.Args) == 1 && d.Args[0] == "off" {
		s.lc.UserID.Flags = nil
		return nil
	}
	// nginx writes them in this order, whatever the line's.
	order := []string{"secure", "httponly", "samesite=strict", "samesite=lax", "samesite=none"}
	given := map[string]bool{}
	for _, a := range d.Args {
		a = strings.ToLower(a)
		if !slices.Contains(order, a) {
			return conf.Errorf(d, "invalid value \"%s\" in \"%s\" directive", a, d.Name)
		}
		given[a] = true
	}
	s.lc.UserID.Flags = nil
	for _, f := range order {
		if given[f] {
			s.lc.UserID.Flags = append(s.lc.UserID.Flags, f)
		}
	}
	return nil
}

func dUseridMark(l *loader, d *conf.Directive, s *scope) error {
	if err := once(d, s); err != nil {
		return err
	}
	v := d.Args[0]
	if v == "off" {
		s.lc.UserID.Mark = 0
		return nil
	}
	if len(v) != 1 || !(v[0] >= '0' && v[0] <= '9' || v[0] >= 'A' && v[0] <= 'Z' || v[0] >= 'a' && v[0] <= 'z' || v[0] == '=') {
		return conf.Errorf(d, "\"%s\" directive value must be \"off\" or a single letter, digit or \"=\"", d.Name)
	}
	s.lc.UserID.Mark = v[0]
	return nil
}

func dUseridService(l *loader, d *conf.Directive, s *scope) error {
	if err := once(d, s); err != nil {
		return err
	}
	n, err := strconv.ParseUint(d.Args[0], 10, 32)
	if err != nil {
		return conf.Errorf(d, "\"%s\" directive invalid number", d.Name)
	}
	s.lc.UserID.Service, s.lc.UserID.HasService = uint32(n), true
	return nil
}
