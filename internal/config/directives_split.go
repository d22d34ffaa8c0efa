package config

import (
	"github.com/wsgate/wsgate/internal/conf"
	"github.com/wsgate/wsgate/internal/splitclients"
	"github.com/wsgate/wsgate/internal/vars"
)

// The directive of nginx's ngx_http_split_clients_module; the block
// declares its variable before the main pass, like `map`.
var splitDirectives = map[string]dirSpec{
	"split_clients": {ctx: cHTTP, min: 2, max: 2, block: true, fn: func(*loader, *conf.Directive, *scope) error { return nil }},
}

var splitBlockVars = map[string]func(*loader, *conf.Directive) error{"split_clients": declareSplit}

// declareSplit reads `split_clients string $variable { percent value; ... }`.
func declareSplit(l *loader, d *conf.Directive) error {
	if !d.IsBlock() || len(d.Args) != 2 {
		return nil // reported with its position by the main pass
	}
	name, ok := varName(d.Args[1])
	if !ok {
		return conf.Errorf(d, "invalid variable name \"%s\"", d.Args[1])
	}
	var lines []splitclients.Part
	for _, e := range d.Block {
		if e.IsBlock() || len(e.Args) != 1 {
			return conf.Errorf(e, "invalid number of the split_clients parameters")
		}
		lines = append(lines, splitclients.Part{Percent: e.Name, Value: e.Args[0]})
	}
	s, err := splitclients.New(lines)
	if err != nil {
		return conf.Errorf(d, "%v", err)
	}
	src, err := l.cfg.Vars.Compile(d.Args[0])
	if err != nil {
		return conf.Errorf(d, "%v", err)
	}
	get := func(c *vars.Ctx) string { return s.Pick(src.Eval(c)) }
	if _, err := l.cfg.Vars.DefineFunc(name, get); err != nil {
		return conf.Errorf(d, "%v", err)
	}
	return nil
}
