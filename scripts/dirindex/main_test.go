package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/wsgate/wsgate/internal/config"
)

// TestDirectivesIndexCurrent fails when the by-module index of
// docs/directives.md differs from what the generator writes now.
func TestDirectivesIndexCurrent(t *testing.T) {
	path := filepath.Join("..", "..", docPath)
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := update(doc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(doc, want) {
		t.Fatalf("%s: the by-module index is out of date; run `go run ./scripts/dirindex` from the repository root and commit the result", docPath)
	}
}

// TestStatusClassifies checks the four verdicts against directives whose
// standing is fixed by wsgate's design.
func TestStatusClassifies(t *testing.T) {
	known := config.Directives()
	noEff := documentedNoEffect([]byte("x\n## Accepted for compatibility, no effect\n\n| `pcre_jit on\\|off;` | | main | why |\n\n## Next\n| `proxy_pass` | |\n"))
	for name, want := range map[string]string{
		"proxy_pass":          stImpl,
		"pcre_jit":            stNoEffect,
		"types_hash_max_size": stNoEffect,
		"fastcgi_pass":        "refused (ngx_http_fastcgi_module)",
		"no_such_directive":   stNotYet,
	} {
		if got := status(name, known, noEff); got != want {
			t.Errorf("status(%q) = %q, want %q", name, got, want)
		}
	}
	if noEff["proxy_pass"] {
		t.Error("a directive outside the no-effect section was read as no-effect")
	}
	if varStatus("http_*") != stImpl || varStatus("no_such_variable") != stNotYet {
		t.Error("variable status wrong for $http_name or an unknown name")
	}
	if varStatus("limit_rate") != stImpl {
		t.Error("$limit_rate, declared at load, is not seen as provided")
	}
}
