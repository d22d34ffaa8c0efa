package config

import (
	"net/netip"
	"strings"

	"github.com/wsgate/wsgate/internal/conf"
	"github.com/wsgate/wsgate/internal/geo"
	"github.com/wsgate/wsgate/internal/vars"
)

// The directive of nginx's ngx_http_geo_module. The block declares its
// variable before the main pass, like `map`; the main pass only checks
// where it stands.
var geoDirectives = map[string]dirSpec{
	"geo": {ctx: cHTTP, min: 1, max: 2, block: true, fn: func(*loader, *conf.Directive, *scope) error { return nil }},
}

var geoBlockVars = map[string]func(*loader, *conf.Directive) error{"geo": declareGeo}

// declareGeo reads `geo [$address] $variable { ... }` and defines the
// variable. Without $address the client address is looked up, taken from
// X-Forwarded-For when the peer is one of the block's proxies.
func declareGeo(l *loader, d *conf.Directive) error {
	if !d.IsBlock() || len(d.Args) < 1 || len(d.Args) > 2 {
		return nil // reported with its position by the main pass
	}
	name, ok := varName(d.Args[len(d.Args)-1])
	if !ok {
		return conf.Errorf(d, "invalid variable name \"%s\"", d.Args[len(d.Args)-1])
	}
	g, err := geoBlock(d)
	if err != nil {
		return err
	}
	var src *vars.Template
	if len(d.Args) == 2 {
		if _, ok := varName(d.Args[0]); !ok {
			return conf.Errorf(d, "invalid variable name \"%s\"", d.Args[0])
		}
		if src, err = l.cfg.Vars.Compile(d.Args[0]); err != nil {
			return conf.Errorf(d, "%v", err)
		}
	}
	get := func(c *vars.Ctx) string {
		if src != nil {
			a, _ := netip.ParseAddr(src.Eval(c))
			return g.Lookup(a)
		}
		var xff []string
		if c.Header != nil {
			if h := c.Header.Join("X-Forwarded-For", ","); h != "" {
				xff = strings.Split(h, ",")
			}
		}
		return g.Lookup(g.Client(c.Remote.Addr(), xff))
	}
	if _, err := l.cfg.Vars.DefineFunc(name, get); err != nil {
		return conf.Errorf(d, "%v", err)
	}
	return nil
}

// geoBlock compiles the block's lines: default, delete, proxy,
// proxy_recursive, ranges and "network value" pairs (include files are
// already read in by the parser).
func geoBlock(d *conf.Directive) (*geo.Geo, error) {
	ranges := false
	for _, e := range d.Block {
		if e.Name == "ranges" && len(e.Args) == 0 {
			ranges = true
		}
	}
	g := geo.New(ranges)
	for _, e := range d.Block {
		if e.IsBlock() {
			return nil, conf.Errorf(e, "unexpected \"{\"")
		}
		var err error
		switch {
		case e.Name == "ranges" && len(e.Args) == 0:
		case e.Name == "proxy_recursive" && len(e.Args) == 0:
			g.SetRecursive()
		case len(e.Args) != 1:
			return nil, conf.Errorf(e, "invalid number of the geo parameters")
		case e.Name == "default":
			g.SetDefault(e.Args[0])
		case e.Name == "proxy":
			err = g.AddProxy(e.Args[0])
		case e.Name == "delete":
			err = g.Delete(e.Args[0])
		default:
			err = g.Add(e.Name, e.Args[0])
		}
		if err != nil {
			return nil, conf.Errorf(e, "%v", err)
		}
	}
	return g, nil
}
