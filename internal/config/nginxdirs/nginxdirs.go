// Package nginxdirs holds facts about nginx's modules: for each module the
// directives with their syntax, default and contexts, and the embedded
// variables, as nginx's documentation gives them. The data lives in
// nginx_modules.tsv; scripts/dirindex compares it with wsgate's directive
// table to write the by-module index of docs/directives.md.
package nginxdirs

import (
	_ "embed"
	"fmt"
	"strings"
)

//go:embed nginx_modules.tsv
var data string

// Module is one nginx module.
type Module struct {
	Name string
	// Note is set for a module listed without a per-directive breakdown.
	Note       string
	Directives []Directive
	Variables  []string // names without "$"; a family ends in "*" ($arg_*)
}

// Directive is one directive as nginx documents it.
type Directive struct {
	Name, Syntax, Default, Context string
}

// Modules parses the embedded data, in file order. Lines are
// tab-separated: "M name [note]" starts a module, "D name syntax default
// context" and "V name" belong to the module above; "#" starts a comment.
func Modules() ([]Module, error) {
	var mods []Module
	for i, line := range strings.Split(data, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if f[0] != "M" && len(mods) == 0 {
			return nil, fmt.Errorf("nginx_modules.tsv:%d: %q before any module", i+1, f[0])
		}
		switch {
		case f[0] == "M" && len(f) <= 3 && len(f) >= 2:
			m := Module{Name: f[1]}
			if len(f) == 3 {
				m.Note = f[2]
			}
			mods = append(mods, m)
		case f[0] == "D" && len(f) == 5:
			m := &mods[len(mods)-1]
			m.Directives = append(m.Directives, Directive{Name: f[1], Syntax: f[2], Default: f[3], Context: f[4]})
		case f[0] == "V" && len(f) == 2:
			m := &mods[len(mods)-1]
			m.Variables = append(m.Variables, f[1])
		default:
			return nil, fmt.Errorf("nginx_modules.tsv:%d: malformed line %q", i+1, line)
		}
	}
	return mods, nil
}
