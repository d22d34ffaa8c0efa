package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/conf"
)

// -T hides an external account key written inline in an acme_issuer
// block, and keeps its key identifier and a key file's path.
func TestRedactACMEExternalAccountKey(t *testing.T) {
	ds, err := conf.Parse("t.conf", []byte(`http { acme_issuer a { uri https://ca.test/dir; external_account_key kid-1 data:zWNDZM6eQGHW; account_key /etc/wsgate/acct.pem; } }`), conf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	conf.Dump(&b, redact(ds))
	out := b.String()
	if strings.Contains(out, "zWNDZM6eQGHW") {
		t.Fatalf("-T shows the MAC key:\n%s", out)
	}
	for _, want := range []string{"external_account_key kid-1 data:<redacted>", "/etc/wsgate/acct.pem"} {
		if !strings.Contains(out, want) {
			t.Errorf("-T lacks %q:\n%s", want, out)
		}
	}
}
