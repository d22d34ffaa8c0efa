package config

import "github.com/wsgate/wsgate/internal/conf"

// coreRestDirectives are the last of ngx_http_core_module's directives.
// merge_slashes is implemented; the subrequest settings are accepted
// without effect, as wsgate makes no subrequests (docs/directives.md).
var coreRestDirectives = map[string]dirSpec{
	"merge_slashes":                 {ctx: cHTTP | cServer, min: 1, max: 1, fn: dMergeSlashes},
	"log_subrequest":                {ctx: cHSL, min: 1, max: 1, fn: flagArg},
	"subrequest_output_buffer_size": {ctx: cHSL, min: 1, max: 1, fn: sizeArg},
}

var coreRestMergers = map[string]func(c, p *LocConf){
	"merge_slashes": func(c, p *LocConf) { c.Client.KeepSlashes = p.Client.KeepSlashes },
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
