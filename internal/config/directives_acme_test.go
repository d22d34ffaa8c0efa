package config

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestACMEDirectives: an issuer's settings, its defaults, and the
// identifiers taken from server_name.
func TestACMEDirectives(t *testing.T) {
	cfg, err := load(t, `http {
    acme_issuer le {
        uri https://ca.test/dir;
        contact a@example.test;
        contact https://example.test/contact;
        challenge tls-alpn;
        external_account_key kid1 data:c2VjcmV0;
        ssl_verify off;
        profile shortlived;
        preferred_chain "Root X";
        accept_terms_of_service;
    }
    acme_issuer other { uri http://127.0.0.1/dir; state_path off; account_key keys/acct.pem; }
    acme_shared_zone zone=ngx_acme_shared:1M;
    server {
        listen 443 ssl;
        server_name example.test www.example.test *.example.test ~^re\.example$;
        acme_certificate le;
        ssl_certificate $acme_certificate;
        ssl_certificate_key $acme_certificate_key;
    }
    server { server_name ignored.test; acme_certificate other a.test 192.0.2.1 key=rsa:3072; }
}`)
	if err != nil {
		t.Fatal(err)
	}
	iss := cfg.HTTP.ACMEIssuers["le"]
	if iss.URI != "https://ca.test/dir" || len(iss.Contact) != 2 || iss.Challenge != "tls-alpn-01" || iss.EABKeyID != "kid1" ||
		iss.EABKey != "data:c2VjcmV0" || iss.Verify || iss.Profile != "shortlived" || iss.PreferredChain != "Root X" || !iss.AcceptTOS {
		t.Errorf("issuer: %+v", iss)
	}
	if iss.StatePath != filepath.Join(cfg.Prefix, "acme_le") {
		t.Errorf("default state_path %q", iss.StatePath)
	}
	o := cfg.HTTP.ACMEIssuers["other"]
	if o.StatePath != "" || !o.Verify || o.AccountKey != filepath.Join(filepath.Dir(cfg.File), "keys/acct.pem") {
		t.Errorf("other: %+v", o)
	}
	a := cfg.HTTP.Servers[0].ACME
	if a.Issuer != iss || strings.Join(a.Names, " ") != "example.test www.example.test" || a.Key != "" {
		t.Errorf("first acme_certificate: %+v", a)
	}
	if got := cfg.HTTP.Servers[0].Loc.Conf.SSL.Certs; len(got) != 1 || got[0] != "$acme_certificate" {
		t.Errorf("ssl_certificate %q", got)
	}
	b := cfg.HTTP.Servers[1].ACME
	if b.Issuer != o || strings.Join(b.Names, " ") != "a.test 192.0.2.1" || b.Key != "rsa:3072" {
		t.Errorf("second acme_certificate: %+v", b)
	}
}

// TestACMEDirectiveErrors: what nginx refuses, and what wsgate cannot do.
func TestACMEDirectiveErrors(t *testing.T) {
	cases := map[string]string{
		`http { acme_issuer a { } }`: `"uri" is missing in acme_issuer "a"`,
		`http { acme_issuer a { uri https://x/; } acme_issuer a { uri https://x/; } }`:                                 `duplicate acme_issuer "a"`,
		`http { acme_issuer a { uri ftp://x/; } }`:                                                                     `invalid "uri"`,
		`http { acme_issuer a { uri https://x/; challenge dns-01; } }`:                                                 `invalid challenge type "dns-01"`,
		`http { acme_issuer a { uri https://x/; ssl_verify maybe; } }`:                                                 `it must be "on" or "off"`,
		`http { acme_issuer a { uri https://x/; uri https://y/; } }`:                                                   `"uri" directive is duplicate`,
		`http { acme_issuer a { uri https://x/; proxy_pass http://b; } }`:                                              `unknown directive "proxy_pass"`,
		`http { acme_issuer a { uri https://x/; external_account_key k; } }`:                                           `invalid number of arguments in "external_account_key"`,
		`http { uri https://x/; }`:                                                                                     `unknown directive "uri"`,
		`http { acme_shared_zone ngx_acme_shared:1M; }`:                                                                `it must be "zone=name:size"`,
		`http { acme_shared_zone zone=z:lots; }`:                                                                       `invalid zone size "lots"`,
		`http { server { server_name a.test; acme_certificate nope; } }`:                                               `issuer "nope" is missing`,
		`http { acme_issuer a { uri https://x/; } server { acme_certificate a; } }`:                                    `no valid identifiers`,
		`http { acme_issuer a { uri https://x/; } server { acme_certificate a *.x; } }`:                                `wildcards and regular expressions are not supported`,
		`http { acme_issuer a { uri https://x/; } server { server_name x; acme_certificate a; acme_certificate a; } }`: `"acme_certificate" directive is duplicate`,
		`http { server { ssl_certificate $acme_certificate.pem; } }`:                                                   `only $ssl_server_name can be used`,
		`http { acme_certificate a; }`:                                                                                 `"acme_certificate" directive is not allowed here`,
	}
	for src, want := range cases {
		_, err := load(t, src)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error with %q", src, err, want)
		}
	}
}
