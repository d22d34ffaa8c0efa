package config

import (
	"strconv"

	"github.com/wsgate/wsgate/internal/conf"
)

// coreRestDirectives are the last of ngx_http_core_module's directives.
// merge_slashes and max_headers (of newer nginx, which Debian's nginx
// 1.22 carries too) are implemented; the subrequest settings are accepted
// without effect, as wsgate makes no subrequests (docs/directives.md).
var coreRestDirectives = map[string]dirSpec{
	"merge_slashes":                 {ctx: cHTTP | cServer, min: 1, max: 1, fn: dMergeSlashes},
	"max_headers":                   {ctx: cHTTP | cServer, min: 1, max: 1, fn: dMaxHeaders},
	"log_subrequest":                {ctx: cHSL, min: 1, max: 1, fn: flagArg},
	"subrequest_output_buffer_size": {ctx: cHSL, min: 1, max: 1, fn: sizeArg},
}

var coreRestMergers = map[string]func(c, p *LocConf){
	"merge_slashes": func(c, p *LocConf) { c.Client.KeepSlashes = p.Client.KeepSlashes },
	"max_headers":   func(c, p *LocConf) { c.Client.MaxHeaders = p.Client.MaxHeaders },
}

// dMergeSlashes reads merge_slashes; the server applies the value of the
// address's default server, as nginx, since $uri is set before the
// request's server is known.
func dMergeSlashes(l *loader, d *conf.Directive, s *scope) error {
	v, err := parseFlag(d.Args[0])
	if err != nil {
		return conf.Errorf(d, "invalid value \"%s\" in \"%s\" directive, it must be \"on\" or \"off\"", d.Args[0], d.Name)
	}
	s.lc.Client.KeepSlashes = !v
	return s.lc.mark(d, "merge_slashes")
}

// dMaxHeaders reads max_headers, the most header lines a request may
// have; as merge_slashes it is the address's default server's that
// applies. ClientLimits.MaxHeaders follows http1.Limits: 0 for the
// default (1000), negative for none.
func dMaxHeaders(l *loader, d *conf.Directive, s *scope) error {
	n, err := strconv.Atoi(d.Args[0])
	if err != nil || n < 0 {
		return conf.Errorf(d, "\"%s\" directive invalid number", d.Name)
	}
	if n == 0 {
		n = -1
	}
	s.lc.Client.MaxHeaders = n
	return s.lc.mark(d, "max_headers")
}
