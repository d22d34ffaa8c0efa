package config

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestCoreLeftoverDirectives(t *testing.T) {
	cfg, err := load(t, `
worker_rlimit_core 500m;
events {
    debug_connection 192.0.2.1;
    debug_connection 10.1.0.7/16;
    debug_connection ::1;
    debug_connection unix:;
}
http {
    keepalive_min_timeout 10s;
    server {
        listen 127.0.0.1:1;
        location /a { keepalive_min_timeout 0; }
    }
}`)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.HasRlimitCore || cfg.RlimitCore != 500<<20 {
		t.Errorf("worker_rlimit_core %d %v", cfg.RlimitCore, cfg.HasRlimitCore)
	}
	dc := &cfg.DebugConnections
	for addr, want := range map[string]bool{"192.0.2.1": true, "192.0.2.2": false, "10.1.200.3": true, "::ffff:10.1.0.1": true, "::1": true, "::2": false} {
		if got := dc.Match(netip.MustParseAddr(addr)); got != want {
			t.Errorf("debug_connection matches %s: %v", addr, got)
		}
	}
	if !dc.Match(netip.Addr{}) {
		t.Error("debug_connection unix: does not match a unix client")
	}
	if len(cfg.Warnings) == 0 || !strings.Contains(cfg.Warnings[0], "low address bits of 10.1.0.7/16 are meaningless") {
		t.Errorf("warnings %q", cfg.Warnings)
	}
	srv := cfg.HTTP.Servers[0]
	if srv.Loc.Conf.KeepaliveMinTimeout != 10*time.Second || srv.Locations.Prefixes[0].Conf.KeepaliveMinTimeout != 0 {
		t.Errorf("keepalive_min_timeout %v %v", srv.Loc.Conf.KeepaliveMinTimeout, srv.Locations.Prefixes[0].Conf.KeepaliveMinTimeout)
	}
	for _, tc := range []struct{ conf, msg string }{
		{"worker_rlimit_core lots;", `"worker_rlimit_core" directive invalid value`},
		{"events { debug_connection 10.0.0.0/40; }", `invalid parameter "10.0.0.0/40"`},
		{"events { debug_connection no.such.host.invalid; }", `host not found in "no.such.host.invalid"`},
		{"ssl_engine pkcs11;", `"ssl_engine" is not supported: wsgate's TLS (Go's crypto/tls) has no OpenSSL engines`},
		{"http { keepalive_min_timeout soon; }", `"keepalive_min_timeout" directive invalid value`},
	} {
		_, err := load(t, tc.conf)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: error %v, want %q", tc.conf, err, tc.msg)
		}
	}
	if why := RefusedDirective("ssl_engine"); why == "" {
		t.Error("ssl_engine has no reason")
	}
}
