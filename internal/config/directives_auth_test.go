package config

import (
	"strings"
	"testing"
)

// auth_basic, auth_basic_user_file, auth_request and auth_request_set:
// contexts, inheritance, relative paths and errors.
func TestAuthDirectives(t *testing.T) {
	cfg, err := load(t, `http { auth_basic "top"; auth_basic_user_file users;
		server { listen 127.0.0.1:8080;
			location / { }
			location /off { auth_basic off; }
			location /lim { limit_except GET { auth_basic "write"; } }
			location /v { auth_basic_user_file /etc/$host.users; }
			location /r { auth_request /auth; auth_request_set $user $http_x; auth_request_set $two 2; }
			location /r2 { auth_request /auth; }
		} }`)
	if err != nil {
		t.Fatal(err)
	}
	srv := cfg.HTTP.Servers[0]
	loc := func(path string) *Location {
		for _, l := range srv.Locations.Prefixes {
			if l.Path == path {
				return l
			}
		}
		t.Fatalf("no location %s", path)
		return nil
	}
	get := func(path string) *LocConf {
		if l := loc(path); l != nil {
			return l.Conf
		}
		t.Fatalf("no location %s", path)
		return nil
	}
	root := get("/").Auth
	if !root.Basic() || root.Realm.Raw() != "top" || !strings.HasSuffix(root.UserFile.Raw(), "/users") || !strings.HasPrefix(root.UserFile.Raw(), "/") {
		t.Errorf("inherited: %q %q", root.Realm.Raw(), root.UserFile.Raw())
	}
	if off := get("/off").Auth; off.Restricts() {
		t.Errorf("auth_basic off restricts")
	}
	if le := loc("/lim").LimitExcept; le == nil || le.Loc.Conf.Auth.Realm.Raw() != "write" {
		t.Errorf("limit_except's auth_basic not read")
	}
	if v := get("/v").Auth; v.UserFile.IsConst() || v.UserFile.Raw() != "/etc/$host.users" {
		t.Errorf("variable file %q", v.UserFile.Raw())
	}
	if r := get("/r").Auth; r.Request != "/auth" || len(r.Set) != 2 || !r.Restricts() {
		t.Errorf("auth_request %+v", r)
	}
	if r := get("/r2").Auth; len(r.Set) != 0 {
		t.Errorf("auth_request_set leaked into a sibling")
	}
	for _, tc := range []struct{ conf, want string }{
		{`location / { auth_basic_user_file a; auth_basic_user_file b; }`, "is duplicate"},
		{`location / { auth_basic a b; }`, "invalid number of arguments"},
		{`location / { auth_request_set user x; }`, "invalid variable name"},
		{`location / { limit_except GET { auth_request /a; } }`, "not allowed here"},
	} {
		_, err := load(t, "http { server { listen 127.0.0.1:8080; "+tc.conf+" } }")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.conf, err, tc.want)
		}
	}
}

// An auth_request location is not warned about for WebSocket handshakes:
// it answers subrequests only.
func TestAuthTargetNotWarned(t *testing.T) {
	cfg, err := load(t, `http { server { listen 127.0.0.1:8080;
		location = /auth { internal; proxy_pass http://127.0.0.1:9000; }
		location /ws { auth_request /auth?x=1; proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection upgrade; proxy_pass http://127.0.0.1:9001; }
		location /plain { proxy_pass http://127.0.0.1:9002; }
	} }`)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], `"/plain"`) {
		t.Errorf("warnings %q", cfg.Warnings)
	}
}
