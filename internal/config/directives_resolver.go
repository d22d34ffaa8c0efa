package config

import (
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/conf"
	"github.com/wsgate/wsgate/internal/resolver"
	"github.com/wsgate/wsgate/internal/vars"
)

// Readers of `resolver` and `resolver_timeout` (http, server, location and
// upstream), and the checks of upstream servers that resolve at run time.

// ResolverConf is one `resolver` directive.
type ResolverConf struct {
	Servers []string      // "ip:port", in the order given
	Valid   time.Duration // valid=; 0 honours the TTLs
	NoIPv4  bool          // ipv4=off
	NoIPv6  bool          // ipv6=off
	Zone    string        // status_zone
	File    string
	Line    int
}

var resolverDirectives = map[string]dirSpec{
	"resolver":         {ctx: cHSL | cUpstream, min: 1, max: -1, fn: dResolver},
	"resolver_timeout": {ctx: cHSL | cUpstream, min: 1, max: 1, fn: dResolverTimeout},
}

func init() {
	maps.Copy(mergers, map[string]func(c, p *LocConf){
		"resolver":         func(c, p *LocConf) { c.Resolver = p.Resolver },
		"resolver_timeout": func(c, p *LocConf) { c.ResolverTimeout = p.ResolverTimeout },
	})
}

func dResolver(l *loader, d *conf.Directive, s *scope) error {
	rc := &ResolverConf{File: d.File, Line: d.Line}
	for _, a := range d.Args {
		k, v, hasValue := strings.Cut(a, "=")
		var err error
		switch {
		case hasValue && k == "valid":
			rc.Valid, err = ParseDuration(v)
		case hasValue && (k == "ipv4" || k == "ipv6"):
			var on bool
			if on, err = parseFlag(v); err == nil {
				if k == "ipv4" {
					rc.NoIPv4 = !on
				} else {
					rc.NoIPv6 = !on
				}
			}
		case hasValue && k == "status_zone":
			rc.Zone = v
		default:
			addrs, aerr := resolver.ServerAddr(a, l.resolve)
			if aerr != nil {
				return conf.Errorf(d, "%v", aerr)
			}
			rc.Servers = append(rc.Servers, addrs...)
			continue
		}
		if err != nil || (k == "status_zone" && v == "") {
			return conf.Errorf(d, "invalid parameter \"%s\"", a)
		}
	}
	if rc.NoIPv4 && rc.NoIPv6 {
		return conf.Errorf(d, "\"ipv4\" and \"ipv6\" cannot both be \"off\"")
	}
	if len(rc.Servers) == 0 {
		return conf.Errorf(d, "invalid number of arguments in \"resolver\" directive")
	}
	if s.kind == cUpstream {
		if s.ups.Resolver != nil {
			return conf.Errorf(d, "\"resolver\" directive is duplicate")
		}
		s.ups.Resolver = rc
		return nil
	}
	s.lc.Resolver = rc
	return s.lc.mark(d, "resolver")
}

func dResolverTimeout(l *loader, d *conf.Directive, s *scope) error {
	v, err := ParseDuration(d.Args[0])
	if err != nil || v <= 0 {
		return conf.Errorf(d, "\"resolver_timeout\" directive invalid value")
	}
	if s.kind == cUpstream {
		s.ups.ResolverTimeout = v
		return nil
	}
	s.lc.ResolverTimeout = v
	return s.lc.mark(d, "resolver_timeout")
}

// upstreamServerResolve reads the `resolve` and `service=` parameters of an
// upstream server: its name is resolved at run time, not when loading.
func upstreamServerResolve(d *conf.Directive, us *UpstreamServer) error {
	if !us.Resolve {
		if us.Service != "" {
			return conf.Errorf(d, "\"service\" requires \"resolve\"")
		}
		return nil
	}
	if strings.HasPrefix(us.Name, "unix:") {
		return conf.Errorf(d, "\"resolve\" cannot be used with a unix domain socket")
	}
	if us.Service == "" {
		return nil
	}
	if strings.Contains(strings.TrimPrefix(us.Name, "["), ":") {
		return conf.Errorf(d, "\"service\" cannot be used with a port in \"%s\"", us.Name)
	}
	return nil
}

// SRVName is the name an upstream server with service= asks SRV records
// for, as nginx Plus forms it: "service=http" gives "_http._tcp.NAME", a
// service that has a dot ("_http._tcp") is joined to NAME as given.
func (us *UpstreamServer) SRVName() string {
	if strings.Contains(us.Service, ".") {
		return us.Service + "." + us.Name
	}
	return "_" + us.Service + "._tcp." + us.Name
}

// checkRunTimeResolve applies nginx's rules to an upstream with servers
// resolved at run time: it must be in a zone, and a resolver must be
// defined in the upstream or at the http level.
func (l *loader) checkRunTimeResolve() error {
	h := l.cfg.HTTP
	for _, u := range h.Upstreams {
		dynamic := false
		for _, s := range u.Servers {
			dynamic = dynamic || s.Resolve
		}
		if !dynamic {
			continue
		}
		where := fmt.Sprintf("upstream \"%s\" in %s:%d", u.Name, u.File, u.Line)
		if u.Zone == "" {
			return &conf.Error{File: u.File, Line: u.Line, Msg: "resolving names at run time requires " + where + " to be in shared memory"}
		}
		if u.Resolver == nil {
			u.Resolver = h.Loc.Resolver
			if u.ResolverTimeout == 0 {
				u.ResolverTimeout = h.Loc.ResolverTimeout
			}
		}
		if u.Resolver == nil {
			return &conf.Error{File: u.File, Line: u.Line, Msg: "no resolver defined to resolve names at run time in " + where}
		}
	}
	return nil
}

// dynamicProxy compiles a proxy_pass with variables: each request
// evaluates the URL, and a host that names no upstream block is resolved
// through the location's resolver.
func (l *loader) dynamicProxy(p pendingProxy, tpl *vars.Template) error {
	d, raw := p.d, p.d.Args[0]
	pp := &ProxyPass{Dynamic: tpl}
	switch {
	case strings.HasPrefix(raw, "http://"):
		pp.Scheme = "http"
	case strings.HasPrefix(raw, "https://"):
		pp.Scheme = "https"
	case strings.HasPrefix(raw, "$"): // the scheme is a variable too
	default:
		return conf.Errorf(d, "invalid URL prefix in \"%s\"", raw)
	}
	for _, r := range p.lc.ProxyRest.Redirects {
		if r.Default {
			return conf.Errorf(d, "\"proxy_redirect default\" cannot be used with \"proxy_pass\" directive with variables")
		}
	}
	p.lc.Proxy = pp
	return nil
}
