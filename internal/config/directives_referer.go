package config

import (
	"github.com/wsgate/wsgate/internal/conf"
	"github.com/wsgate/wsgate/internal/referer"
)

// The directives of nginx's ngx_http_referer_module; the rules live in
// LocConf.Referers and answer $invalid_referer.
var refererDirectives = map[string]dirSpec{
	"valid_referers":           {ctx: cServer | cLocation, min: 1, max: -1, fn: dValidReferers},
	"referer_hash_bucket_size": {ctx: cServer | cLocation, min: 1, max: 1, fn: dSizeAccepted},
	"referer_hash_max_size":    {ctx: cServer | cLocation, min: 1, max: 1, fn: dSizeAccepted},
}

var refererMergers = map[string]func(c, p *LocConf){
	"valid_referers": func(c, p *LocConf) { c.Referers = p.Referers },
	// Never written by a directive, so always run: a level with its own
	// valid_referers still takes the outer regexes when it has none.
	"valid_referers regexes": func(c, p *LocConf) {
		if c.set["valid_referers"] && c.Referers != nil && c.Referers != p.Referers {
			c.Referers.Inherit(p.Referers)
		}
	},
}

// dSizeAccepted checks a hash size nginx needs and wsgate does not.
func dSizeAccepted(l *loader, d *conf.Directive, s *scope) error {
	if _, err := ParseSize(d.Args[0]); err != nil {
		return conf.Errorf(d, "\"%s\" directive invalid value", d.Name)
	}
	return nil
}

// dValidReferers adds its arguments to the level's rules: lines of one
// level add up, a level with its own lines does not inherit the outer ones.
func dValidReferers(l *loader, d *conf.Directive, s *scope) error {
	lc := s.lc
	if !lc.set[d.Name] {
		lc.Referers = &referer.Rules{}
		rules := lc.Referers
		l.maps = append(l.maps, func() error {
			if err := rules.Check(); err != nil {
				return conf.Errorf(d, "%v", err)
			}
			return nil
		})
	}
	lc.set[d.Name] = true
	for _, a := range d.Args {
		if a == "server_names" {
			if err := l.serverNameReferers(d, s); err != nil {
				return err
			}
			continue
		}
		if err := lc.Referers.Add(a); err != nil {
			return conf.Errorf(d, "%v", err)
		}
	}
	return nil
}

// serverNameReferers adds the server's names so far, regexes included.
func (l *loader) serverNameReferers(d *conf.Directive, s *scope) error {
	if s.server == nil {
		return nil
	}
	for _, sn := range s.server.Names {
		var err error
		switch {
		case sn.Kind == NameRegex:
			s.lc.Referers.AddServerRegex(sn.Regex)
		case sn.Name != "":
			err = s.lc.Referers.AddHost(sn.Name, "")
		}
		if err != nil {
			return conf.Errorf(d, "%v", err)
		}
	}
	return nil
}
