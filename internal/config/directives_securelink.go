package config

import (
	"github.com/wsgate/wsgate/internal/conf"
	"github.com/wsgate/wsgate/internal/vars"
)

// SecureLinkConf is a location's ngx_http_secure_link_module settings.
type SecureLinkConf struct {
	Link   *vars.Template // secure_link: "hash[,expires]"
	MD5    *vars.Template // secure_link_md5: the hashed text
	Secret string         // secure_link_secret: the older form, when set
}

// The directives of nginx's ngx_http_secure_link_module; they answer
// $secure_link and $secure_link_expires.
var secureLinkDirectives = map[string]dirSpec{
	"secure_link":        {ctx: cHSL, min: 1, max: 1, fn: dSecureLinkTemplate(func(c *SecureLinkConf) **vars.Template { return &c.Link })},
	"secure_link_md5":    {ctx: cHSL, min: 1, max: 1, fn: dSecureLinkTemplate(func(c *SecureLinkConf) **vars.Template { return &c.MD5 })},
	"secure_link_secret": {ctx: cLocation, min: 1, max: 1, fn: dSecureLinkSecret},
}

var secureLinkMergers = map[string]func(c, p *LocConf){
	"secure_link":        func(c, p *LocConf) { c.SecureLink.Link = p.SecureLink.Link },
	"secure_link_md5":    func(c, p *LocConf) { c.SecureLink.MD5 = p.SecureLink.MD5 },
	"secure_link_secret": func(c, p *LocConf) { c.SecureLink.Secret = p.SecureLink.Secret },
}

func dSecureLinkTemplate(field func(*SecureLinkConf) **vars.Template) func(*loader, *conf.Directive, *scope) error {
	return func(l *loader, d *conf.Directive, s *scope) error {
		if s.lc.set[d.Name] {
			return conf.Errorf(d, "\"%s\" directive is duplicate", d.Name)
		}
		t, err := l.cfg.Vars.Compile(d.Args[0])
		if err != nil {
			return conf.Errorf(d, "%v", err)
		}
		*field(&s.lc.SecureLink) = t
		s.lc.set[d.Name] = true
		return nil
	}
}

func dSecureLinkSecret(l *loader, d *conf.Directive, s *scope) error {
	if s.lc.set[d.Name] {
		return conf.Errorf(d, "\"%s\" directive is duplicate", d.Name)
	}
	s.lc.SecureLink.Secret = d.Args[0]
	s.lc.set[d.Name] = true
	return nil
}
