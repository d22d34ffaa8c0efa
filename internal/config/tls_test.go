package config

import (
	"strings"
	"testing"
)

// TestTLSDirectives: the client-certificate and other ssl_* directives
// are read, inherited from http, and checked.
func TestTLSDirectives(t *testing.T) {
	cfg, err := load(t, `http {
    ssl_verify_client optional;
    ssl_client_certificate ca.pem;
    ssl_verify_depth 2;
    ssl_crl crl.pem;
    ssl_conf_command Options ServerPreference;
    ssl_conf_command MinProtocol TLSv1.2;
    server {
        listen 1;
        ssl on;
        ssl_certificate $ssl_server_name.pem;
        ssl_certificate_key ${ssl_server_name}.key;
        ssl_certificate_cache max=100 inactive=1m;
        ssl_dhparam dh.pem;
        ssl_early_data on;
        ssl_buffer_size 4k;
        ssl_ocsp leaf;
        ssl_ocsp_cache shared:ocsp:1m;
        ssl_password_file pw.txt;
        ssl_session_ticket_key t1.key;
        ssl_session_ticket_key t2.key;
        ssl_session_cache builtin:1000 shared:SSL:10m;
    }
    server { listen 2; ssl_reject_handshake on; listen 3 ssl; }
}`)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.HTTP.Servers[0]
	c := s.Loc.Conf.SSL
	if !s.Listens[0].SSL {
		t.Error("ssl on: the listen is not ssl")
	}
	if c.VerifyClient != "optional" || !strings.HasSuffix(c.ClientCertificate, "/ca.pem") || c.VerifyDepth != 2 || !strings.HasSuffix(c.CRL, "/crl.pem") {
		t.Errorf("client certificate settings not inherited: %+v", c)
	}
	if len(c.ConfCommands) != 2 || c.ConfCommands[1] != [2]string{"MinProtocol", "TLSv1.2"} {
		t.Errorf("ssl_conf_command: %v", c.ConfCommands)
	}
	if c.OCSP != "leaf" || c.OCSPCache != "shared:ocsp:1m" || c.BufferSize != 4096 || !c.EarlyData || len(c.TicketKeys) != 2 || c.CertCache != "max=100 inactive=1m" {
		t.Errorf("settings: %+v", c)
	}
	if !cfg.HTTP.Servers[1].Loc.Conf.SSL.RejectHandshake {
		t.Error("ssl_reject_handshake not read")
	}
	warned := strings.Join(cfg.Warnings, "\n")
	for _, w := range []string{`"ssl" directive is deprecated`, `"ssl_dhparam" has no effect`, `"ssl_early_data" has no effect over TCP`} {
		if !strings.Contains(warned, w) {
			t.Errorf("no warning %q in %q", w, warned)
		}
	}
}

func TestTLSDirectiveErrors(t *testing.T) {
	for _, tt := range []struct{ src, want string }{
		{"http { ssl_verify_client maybe; }", `invalid value "maybe" in "ssl_verify_client" directive`},
		{"http { ssl_verify_depth -1; }", `invalid value "-1" in "ssl_verify_depth"`},
		{"http { ssl_ocsp sometimes; }", `invalid value "sometimes" in "ssl_ocsp"`},
		{"http { ssl_buffer_size none; }", `"ssl_buffer_size" directive invalid value`},
		{"http { ssl_certificate $host.pem; }", `only $ssl_server_name can be used`},
		{"http { ssl_verify_client on; ssl_verify_client off; }", `"ssl_verify_client" directive is duplicate`},
		{"http { ssl maybe; }", `it must be "on" or "off"`},
		{"http { ssl_certificate_key engine:pkcs11:id; }", `"engine:" keys in "ssl_certificate_key" are not supported`},
		{"http { ssl_certificate data:$cert_pem; }", `variables in "data:" are not supported`},
		{"http { server { location / { ssl_verify_client on; } } }", `"ssl_verify_client" directive is not allowed here`},
	} {
		_, err := load(t, tt.src)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.src, err, tt.want)
		}
	}
}
