package config

import (
	"strings"
	"testing"
	"time"
)

func TestReauthDirective(t *testing.T) {
	cfg, err := load(t, `http {
    websocket_reauth_interval 5m;
    auth_request /auth;
    server {
        listen 127.0.0.1:1;
        location /a { proxy_pass http://127.0.0.1:2; }
        location /b {
            websocket_reauth_interval 30s on_error=close;
            proxy_pass http://127.0.0.1:2;
        }
        location = /auth { auth_request off; proxy_pass http://127.0.0.1:3; }
        location /c { auth_request off; websocket_reauth_interval off; proxy_pass http://127.0.0.1:2; }
    }
}`)
	if err != nil {
		t.Fatal(err)
	}
	srv := cfg.HTTP.Servers[0]
	var a, b, c Reauth
	srv.Walk(func(l *Location) {
		switch l.Path {
		case "/a":
			a = l.Conf.WS.Reauth
		case "/b":
			b = l.Conf.WS.Reauth
		case "/c":
			c = l.Conf.WS.Reauth
		}
	})
	if a.Interval != 5*time.Minute || a.CloseOnError {
		t.Errorf("inherited %+v", a)
	}
	if b.Interval != 30*time.Second || !b.CloseOnError {
		t.Errorf("own %+v", b)
	}
	if c.Interval != 0 {
		t.Errorf("off %+v", c)
	}
	for _, tc := range []struct{ conf, msg string }{
		{"http { websocket_reauth_interval 0; }", "invalid value"},
		{"http { websocket_reauth_interval off on_error=close; }", "invalid value"},
		{"http { websocket_reauth_interval 1m on_error=maybe; }", "invalid parameter \"on_error=maybe\""},
		{"http { websocket_reauth_interval 1m; websocket_reauth_interval 2m; }", "is duplicate"},
		{"http { server { listen 127.0.0.1:1; location /ws { websocket_reauth_interval 1m; proxy_pass http://127.0.0.1:2; } } }",
			`"websocket_reauth_interval" needs "auth_request" in location "/ws" in `},
		{"http { auth_request /auth; server { listen 127.0.0.1:1; location /ws { auth_request off; websocket_reauth_interval 1m; proxy_pass http://127.0.0.1:2; } } }",
			`needs "auth_request" in location "/ws"`},
	} {
		_, err := load(t, tc.conf)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: error %v, want %q", tc.conf, err, tc.msg)
		}
	}
}
