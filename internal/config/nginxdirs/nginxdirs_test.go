package nginxdirs

import (
	"strings"
	"testing"
)

// TestModulesWellFormed checks the embedded data: it parses, names are
// unique within a module, and each directive's syntax starts with its name
// and has contexts.
func TestModulesWellFormed(t *testing.T) {
	mods, err := Modules()
	if err != nil {
		t.Fatal(err)
	}
	if len(mods) < 40 {
		t.Fatalf("only %d modules parsed", len(mods))
	}
	seenMod := map[string]bool{}
	for _, m := range mods {
		if seenMod[m.Name] {
			t.Errorf("module %s listed twice", m.Name)
		}
		seenMod[m.Name] = true
		if m.Note != "" && len(m.Directives) > 0 {
			t.Errorf("%s has both a note and directives", m.Name)
		}
		seen := map[string]bool{}
		for _, d := range m.Directives {
			if seen[d.Name] {
				t.Errorf("%s: %s listed twice", m.Name, d.Name)
			}
			seen[d.Name] = true
			if !strings.HasPrefix(d.Syntax, d.Name+" ") && !strings.HasPrefix(d.Syntax, d.Name+";") {
				t.Errorf("%s: syntax %q does not start with %s", m.Name, d.Syntax, d.Name)
			}
			if d.Context == "" || d.Default == "" {
				t.Errorf("%s: %s lacks a context or default", m.Name, d.Name)
			}
		}
	}
	for _, want := range []string{"ngx_http_core_module", "ngx_http_proxy_module", "ngx_http_upstream_module", "ngx_core_module"} {
		if !seenMod[want] {
			t.Errorf("module %s missing", want)
		}
	}
}

func TestMalformedLineRejected(t *testing.T) {
	saved := data
	defer func() { data = saved }()
	data = "M\tngx_x\nD\tonly_two\n"
	if _, err := Modules(); err == nil || !strings.Contains(err.Error(), "nginx_modules.tsv:2") {
		t.Fatalf("err = %v, want a malformed-line error naming line 2", err)
	}
}
