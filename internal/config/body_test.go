package config

import (
	"strings"
	"testing"
)

func TestClientBodyDirectives(t *testing.T) {
	cfg, err := load(t, `http {
    client_body_buffer_size 1k;
    server {
        listen 127.0.0.1:1;
        location /a { proxy_pass http://127.0.0.1:2; }
        location /b {
            client_body_buffer_size 64k;
            client_body_temp_path /var/tmp/body 1 2;
            proxy_request_buffering off;
            proxy_pass http://127.0.0.1:2;
        }
    }
    server { listen 127.0.0.1:3; }
}`)
	if err != nil {
		t.Fatal(err)
	}
	a, b := cfg.HTTP.Servers[0].Locations.Prefixes[0].Conf, cfg.HTTP.Servers[0].Locations.Prefixes[1].Conf
	if a.ClientBodyBuffer != 1<<10 || a.ClientBodyTemp != "client_body_temp" || !a.RequestBuffering {
		t.Errorf("inherited: buffer %d, temp %q, buffering %v", a.ClientBodyBuffer, a.ClientBodyTemp, a.RequestBuffering)
	}
	if b.ClientBodyBuffer != 64<<10 || b.ClientBodyTemp != "/var/tmp/body" || b.RequestBuffering {
		t.Errorf("set: buffer %d, temp %q, buffering %v", b.ClientBodyBuffer, b.ClientBodyTemp, b.RequestBuffering)
	}
	if d := defaultLocConf(); d.ClientBodyBuffer != 16<<10 || d.ClientBodyTemp != "client_body_temp" {
		t.Errorf("defaults: buffer %d, temp %q", d.ClientBodyBuffer, d.ClientBodyTemp)
	}
	for _, tt := range []struct{ src, want string }{
		{"http { client_body_buffer_size big; }", `"client_body_buffer_size" directive invalid value`},
		{"http { client_body_buffer_size 0; }", `"client_body_buffer_size" directive invalid value`},
		{"http { client_body_temp_path /tmp/b 3; }", `invalid value "3" in "client_body_temp_path" directive`},
		{"http { client_body_temp_path /tmp/b 1 2 1 2; }", `invalid number of arguments in "client_body_temp_path"`},
		{"client_body_buffer_size 1k;", `"client_body_buffer_size" directive is not allowed here`},
	} {
		if _, err := load(t, tt.src); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want %q", tt.src, err, tt.want)
		}
	}
}
