package config

import (
	"strings"
	"testing"
	"time"
)

func TestSessionAndValidateDirectives(t *testing.T) {
	cfg, err := load(t, `http {
    websocket_max_session_time 1h jitter=10m code=4000;
    websocket_validate strict;
    server {
        listen 127.0.0.1:1;
        location /a { proxy_pass http://127.0.0.1:2; }
        location /b {
            websocket_max_session_time 30s;
            websocket_validate off;
            proxy_pass http://127.0.0.1:2;
        }
    }
}`)
	if err != nil {
		t.Fatal(err)
	}
	srv := cfg.HTTP.Servers[0]
	a, b := srv.Locations.Prefixes[0].Conf.WS, srv.Locations.Prefixes[1].Conf.WS
	if a.MaxSession != time.Hour || a.SessionJitter != 10*time.Minute || a.SessionCode != 4000 || !a.Strict {
		t.Errorf("inherited %+v", a)
	}
	if b.MaxSession != 30*time.Second || b.SessionJitter != 0 || b.SessionCode != 0 || b.Strict {
		t.Errorf("own %+v", b)
	}
	for _, tc := range []struct{ line, msg string }{
		{"websocket_max_session_time 0;", "invalid value"},
		{"websocket_max_session_time 1m jitter=2m;", "invalid jitter"},
		{"websocket_max_session_time 1m code=1005;", "invalid close code"},
		{"websocket_max_session_time 1m colour=red;", "invalid parameter"},
		{"websocket_validate yes;", `it must be "off" or "strict"`},
	} {
		_, err := load(t, "http { "+tc.line+" }")
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: error %v, want %q", tc.line, err, tc.msg)
		}
	}
}
