package config

import (
	"strings"
	"testing"
	"time"
)

func TestResolverDirectives(t *testing.T) {
	cfg, err := load(t, `events {}
http {
    resolver 127.0.0.1:5353 [::1] valid=30s ipv6=off status_zone=dns;
    resolver_timeout 5s;
    upstream dyn {
        zone dyn 64k;
        server app.internal:8080 resolve weight=2;
        server app.internal service=http resolve;
        server 127.0.0.1:9000;
    }
    upstream own {
        zone own 64k;
        resolver 127.0.0.2;
        resolver_timeout 2s;
        server app.internal resolve;
    }
    server {
        listen 127.0.0.1:8080;
        location /a { proxy_pass http://$arg_host:8080; }
        location /b { resolver 127.0.0.3; proxy_pass https://$host$request_uri; }
        location /c { proxy_pass $arg_scheme://dyn; }
    }
}`)
	if err != nil {
		t.Fatal(err)
	}
	h := cfg.HTTP
	rc := h.Loc.Resolver
	if rc == nil || strings.Join(rc.Servers, ",") != "127.0.0.1:5353,[::1]:53" || rc.Valid != 30*time.Second || !rc.NoIPv6 || rc.NoIPv4 || rc.Zone != "dns" {
		t.Fatalf("http resolver %+v", rc)
	}
	dyn, own := h.Upstreams[0], h.Upstreams[1]
	if dyn.Resolver != rc || dyn.ResolverTimeout != 5*time.Second || dyn.Zone != "dyn" {
		t.Fatalf("dyn inherits the http resolver: %+v %v", dyn.Resolver, dyn.ResolverTimeout)
	}
	s0, s1, s2 := dyn.Servers[0], dyn.Servers[1], dyn.Servers[2]
	if !s0.Resolve || s0.Addr != "" || s0.Weight != 2 || s1.Service != "http" || s1.SRVName() != "_http._tcp.app.internal" || s2.Resolve || s2.Addr != "127.0.0.1:9000" {
		t.Fatalf("servers %+v", dyn.Servers)
	}
	if own.Resolver.Servers[0] != "127.0.0.2:53" || own.ResolverTimeout != 2*time.Second {
		t.Fatalf("own resolver %+v %v", own.Resolver, own.ResolverTimeout)
	}
	locs := map[string]*LocConf{}
	h.Servers[0].Walk(func(l *Location) { locs[l.Path] = l.Conf })
	a, b, c := locs["/a"], locs["/b"], locs["/c"]
	if a.Proxy.Dynamic == nil || a.Proxy.Upstream != nil || a.Proxy.Scheme != "http" || a.Resolver != rc || a.ResolverTimeout != 5*time.Second {
		t.Fatalf("/a: %+v", a.Proxy)
	}
	if b.Resolver.Servers[0] != "127.0.0.3:53" || b.Proxy.Scheme != "https" || b.ProxySSL.Client == nil {
		t.Fatalf("/b: %+v %+v", b.Resolver, b.Proxy)
	}
	if c.Proxy.Scheme != "" || c.ProxySSL.Client == nil {
		t.Fatalf("/c: a variable scheme may be https: %+v", c.Proxy)
	}
	if (&UpstreamServer{Name: "db.internal", Service: "_pg._tcp"}).SRVName() != "_pg._tcp.db.internal" {
		t.Fatal("a service with a dot is joined as given")
	}
}

func TestResolverErrors(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"resolve needs a zone", `http { resolver 127.0.0.1; upstream u { server a.internal resolve; } }`,
			`resolving names at run time requires upstream "u" in `},
		{"resolve needs a resolver", `http { upstream u { zone u 64k; server a.internal resolve; } }`,
			`no resolver defined to resolve names at run time in upstream "u"`},
		{"service needs resolve", `http { resolver 127.0.0.1; upstream u { zone u 64k; server a.internal service=http; } }`,
			`"service" requires "resolve"`},
		{"service and a port", `http { resolver 127.0.0.1; upstream u { zone u 64k; server a.internal:80 service=http resolve; } }`,
			`"service" cannot be used with a port`},
		{"both families off", `http { resolver 127.0.0.1 ipv4=off ipv6=off; }`, `"ipv4" and "ipv6" cannot both be "off"`},
		{"bad valid", `http { resolver 127.0.0.1 valid=x; }`, `invalid parameter "valid=x"`},
		{"bad port", `http { resolver 127.0.0.1:0; }`, `invalid port in resolver "127.0.0.1:0"`},
		{"unknown host", `http { resolver nowhere.invalid; }`, `host not found in resolver "nowhere.invalid"`},
		{"only options", `http { resolver valid=10s; }`, `invalid number of arguments in "resolver" directive`},
		{"duplicate", `http { resolver 127.0.0.1; resolver 127.0.0.2; }`, `"resolver" directive is duplicate`},
		{"bad timeout", `http { resolver_timeout 0; }`, `"resolver_timeout" directive invalid value`},
		{"not in server if", `http { server { if ($host) { resolver 127.0.0.1; } } }`, `"resolver" directive is not allowed here`},
		{"bad prefix", `http { server { location / { proxy_pass ftp://$host; } } }`, `invalid URL prefix in "ftp://$host"`},
		{"redirect default", `http { server { location / { proxy_pass http://$host; proxy_redirect default; } } }`,
			`"proxy_redirect default" cannot be used with "proxy_pass" directive with variables`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, "events {}\n"+tc.src)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}
