package config

import (
	"strings"
	"testing"
	"time"
)

// TestCacheDirectives: proxy_cache_path's parameters, the zone a
// proxy_cache names further down the file, and inheritance with nginx's
// defaults.
func TestCacheDirectives(t *testing.T) {
	cfg, err := load(t, `http {
    proxy_cache c;
    proxy_cache_valid 10m;
    proxy_cache_valid 404 any 1m;
    proxy_cache_use_stale error updating http_503;
    proxy_cache_bypass $http_x_a $arg_b;
    proxy_cache_bypass $cookie_c;
    proxy_cache_path /tmp/c levels=1:2 keys_zone=c:10m inactive=1h max_size=1g min_free=1m use_temp_path=off
        manager_files=5 manager_sleep=1s manager_threshold=2s loader_files=7 loader_sleep=3s loader_threshold=4s;
    server {
        location /a { proxy_cache_min_uses 3; proxy_cache_methods POST; proxy_cache_lock on; proxy_cache_key $uri; }
        location /b { proxy_cache off; proxy_cache_revalidate on; proxy_cache_convert_head off; }
    }
}`)
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.HTTP.CachePaths[0]
	if p.Path != "/tmp/c" || len(p.Levels) != 2 || p.Zone != "c" || p.ZoneSize != 10<<20 || p.Inactive != time.Hour ||
		p.MaxSize != 1<<30 || p.MinFree != 1<<20 || p.UseTempPath || p.ManagerFiles != 5 || p.ManagerSleep != time.Second ||
		p.ManagerThreshold != 2*time.Second || p.LoaderFiles != 7 || p.LoaderSleep != 3*time.Second || p.LoaderThreshold != 4*time.Second {
		t.Errorf("proxy_cache_path: %+v", p)
	}
	srv := cfg.HTTP.Servers[0]
	a, b := srv.Locations.Prefixes[0].Conf.Cache, srv.Locations.Prefixes[1].Conf.Cache
	if a.Path != p || b.Path != nil {
		t.Errorf("zones: a %v, b %v", a.Path, b.Path)
	}
	if len(a.Valid) != 2 || len(a.Valid[0].Codes) != 3 || a.Valid[1].Codes != nil || a.Valid[1].Time != time.Minute {
		t.Errorf("proxy_cache_valid: %+v", a.Valid)
	}
	if a.UseStale != NextError|StaleUpdating|NextHTTP503 || len(a.Bypass) != 3 {
		t.Errorf("use_stale %b, bypass %d", a.UseStale, len(a.Bypass))
	}
	if a.MinUses != 3 || len(a.Methods) != 3 || !a.Lock || a.Key == nil || a.LockTimeout != 5*time.Second || !a.ConvertHead {
		t.Errorf("location /a: %+v", a)
	}
	if !b.Revalidate || b.ConvertHead || b.MinUses != 1 || b.Key != nil {
		t.Errorf("location /b: %+v", b)
	}
}

// TestCacheDirectiveErrors: what nginx refuses, refused.
func TestCacheDirectiveErrors(t *testing.T) {
	cases := map[string]string{
		`http { proxy_cache_path /tmp/c levels=1:2; }`:                                             `must have "keys_zone" parameter`,
		`http { proxy_cache_path /tmp/c levels=3 keys_zone=c:1m; }`:                                `invalid levels value`,
		`http { proxy_cache_path /tmp/c levels=1:2:2:2 keys_zone=c:1m; }`:                          `invalid levels value`,
		`http { proxy_cache_path /tmp/c keys_zone=c:1; }`:                                          `keys zone "c" is too small`,
		`http { proxy_cache_path /tmp/c keys_zone=c:1m inactive=soon; }`:                           `invalid inactive value`,
		`http { proxy_cache_path /tmp/c keys_zone=c:1m color=red; }`:                               `invalid parameter "color=red"`,
		`http { proxy_cache_path /tmp/c keys_zone=c:1m; proxy_cache_path /tmp/d keys_zone=c:1m; }`: `duplicate zone "c"`,
		`http { proxy_cache_path /tmp/c keys_zone=c:1m; proxy_cache_path /tmp/c keys_zone=d:1m; }`: `duplicate cache path`,
		`http { server { proxy_cache nowhere; } }`:                                                 `zone "nowhere" is unknown`,
		`http { server { proxy_cache_valid 99 1m; } }`:                                             `invalid status "99"`,
		`http { server { proxy_cache_valid 200 never; } }`:                                         `invalid time value`,
		`http { server { proxy_cache_use_stale sometimes; } }`:                                     `invalid value "sometimes"`,
		`http { server { proxy_cache_methods PUT; } }`:                                             `invalid value "PUT"`,
		`http { server { proxy_cache_min_uses 0; } }`:                                              `invalid value "0"`,
		`http { server { proxy_cache_lock maybe; } }`:                                              `it must be "on" or "off"`,
		`http { server { proxy_cache_key $uri; proxy_cache_key $host; } }`:                         `"proxy_cache_key" directive is duplicate`,
		`server { proxy_cache_path /tmp/c keys_zone=c:1m; }`:                                       `not allowed here`,
	}
	for src, want := range cases {
		_, err := load(t, src)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error with %q", src, err, want)
		}
	}
}
