package config

import (
	"maps"
	"strings"

	"github.com/wsgate/wsgate/internal/conf"
	"github.com/wsgate/wsgate/internal/vars"
)

// AuthConf is a location's ngx_http_auth_basic_module and
// ngx_http_auth_request_module settings.
type AuthConf struct {
	// Realm is auth_basic's value; nil when unset. A value that is "off"
	// once evaluated turns the check off.
	Realm *vars.Template
	// UserFile is auth_basic_user_file; a relative path is resolved from
	// Prefix. nil when unset.
	UserFile *vars.Template
	Prefix   string
	// Request is auth_request's URI; "" when unset or off.
	Request string
	// Set are the auth_request_set assignments, evaluated after the
	// subrequest, in order.
	Set []AuthSet
}

// AuthSet is one auth_request_set: variable Var gets Value.
type AuthSet struct {
	Var   int
	Value *vars.Template
}

// Basic reports whether auth_basic is configured here (it may still be
// "off" once evaluated).
func (a *AuthConf) Basic() bool { return a.Realm != nil && a.UserFile != nil }

// Restricts reports whether auth_basic or auth_request applies here.
func (a *AuthConf) Restricts() bool {
	return a.Basic() && !(a.Realm.IsConst() && a.Realm.Raw() == "off") || a.Request != ""
}

// The ngx_http_auth_basic_module and ngx_http_auth_request_module
// directives.
var authDirectives = map[string]dirSpec{
	"auth_basic":           {ctx: cHSL | cLmt, min: 1, max: 1, fn: dAuthBasic},
	"auth_basic_user_file": {ctx: cHSL | cLmt, min: 1, max: 1, fn: dAuthUserFile},
	"auth_request":         {ctx: cHSL, min: 1, max: 1, fn: dAuthRequest},
	"auth_request_set":     {ctx: cHSL, min: 2, max: 2, fn: dAuthRequestSet},
}

func init() {
	maps.Copy(mergers, map[string]func(c, p *LocConf){
		"auth_basic":           func(c, p *LocConf) { c.Auth.Realm = p.Auth.Realm },
		"auth_basic_user_file": func(c, p *LocConf) { c.Auth.UserFile, c.Auth.Prefix = p.Auth.UserFile, p.Auth.Prefix },
		"auth_request":         func(c, p *LocConf) { c.Auth.Request = p.Auth.Request },
		"auth_request_set":     func(c, p *LocConf) { c.Auth.Set = p.Auth.Set },
	})
}

func dAuthBasic(l *loader, d *conf.Directive, s *scope) error {
	t, err := l.cfg.Vars.Compile(d.Args[0])
	if err != nil {
		return conf.Errorf(d, "%v", err)
	}
	s.lc.Auth.Realm = t
	return s.lc.mark(d, "auth_basic")
}

func dAuthUserFile(l *loader, d *conf.Directive, s *scope) error {
	if s.lc.set["auth_basic_user_file"] {
		return conf.Errorf(d, "\"auth_basic_user_file\" directive is duplicate")
	}
	t, err := l.cfg.Vars.Compile(d.Args[0])
	if err != nil {
		return conf.Errorf(d, "%v", err)
	}
	if t.IsConst() {
		if t, err = l.cfg.Vars.Compile(l.cfg.Abs(t.Raw())); err != nil {
			return conf.Errorf(d, "%v", err)
		}
	}
	s.lc.Auth.UserFile, s.lc.Auth.Prefix = t, l.cfg.Prefix
	return s.lc.mark(d, "auth_basic_user_file")
}

func dAuthRequest(l *loader, d *conf.Directive, s *scope) error {
	uri := d.Args[0]
	if uri == "off" {
		uri = ""
	}
	s.lc.Auth.Request = uri
	return s.lc.mark(d, "auth_request")
}

func dAuthRequestSet(l *loader, d *conf.Directive, s *scope) error {
	name, ok := varName(d.Args[0])
	if !ok {
		return conf.Errorf(d, "invalid variable name \"%s\"", d.Args[0])
	}
	idx, ok := l.cfg.Vars.Lookup(name)
	if !ok {
		return conf.Errorf(d, "unknown \"%s\" variable", name)
	}
	t, err := l.cfg.Vars.Compile(d.Args[1])
	if err != nil {
		return conf.Errorf(d, "%v", err)
	}
	if !s.lc.set["auth_request_set"] {
		s.lc.Auth.Set = nil // inherited ones are replaced, not added to
	}
	s.lc.Auth.Set = append(s.lc.Auth.Set, AuthSet{Var: idx, Value: t})
	s.lc.set["auth_request_set"] = true
	return nil
}

// authTargets are the paths the server's auth_request directives ask:
// their locations answer subrequests, never WebSocket handshakes.
func authTargets(srv *Server) map[string]bool {
	targets := map[string]bool{}
	srv.Walk(func(loc *Location) {
		if uri := loc.Conf.Auth.Request; uri != "" {
			path, _, _ := strings.Cut(uri, "?")
			targets[path] = true
		}
	})
	return targets
}
