package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/conf"
)

// -T shows cluster_store without its passwords, and everything else of it.
func TestRedactClusterStore(t *testing.T) {
	ds, err := conf.Parse("t.conf", []byte(`http { cluster_store redis://app:s3cret@10.0.0.5:6379/1 timeout=80ms password=hunter2; }`), conf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	conf.Dump(&b, redact(ds))
	out := b.String()
	if strings.Contains(out, "s3cret") || strings.Contains(out, "hunter2") {
		t.Fatalf("-T shows a password:\n%s", out)
	}
	for _, want := range []string{"redis://app:<redacted>@10.0.0.5:6379/1", "timeout=80ms", "password=<redacted>"} {
		if !strings.Contains(out, want) {
			t.Errorf("-T lacks %q:\n%s", want, out)
		}
	}
}
