package config

import (
	"testing"
)

// TestProxyPassSchemesAndSockets: https:// and unix: targets parse as
// nginx's, with $proxy_host "localhost" for a socket and port 443 for
// https:// without one; proxy_ssl_* inherit from http to location and
// nginx's defaults hold where nothing is set.
func TestProxyPassSchemesAndSockets(t *testing.T) {
	src := `http {
    proxy_ssl_server_name on;
    upstream app { server unix:/run/app.sock weight=2; server 127.0.0.1:9000; }
    server {
        listen 8080;
        location /tls/ { proxy_pass https://127.0.0.1; proxy_ssl_name backend.example.com; }
        location /plain/ { proxy_pass http://127.0.0.1:9000/; }
        location /sock/ { proxy_pass http://unix:/run/app.sock:/api/; }
        location /socknouri { proxy_pass http://unix:/run/app.sock; }
        location /ups { proxy_pass https://app; proxy_ssl_session_reuse off; proxy_ssl_protocols TLSv1 TLSv1.1 TLSv1.2; }
    }
}`
	cfg, err := LoadBytes("/etc/wsgate/test.conf", []byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	locs := map[string]*LocConf{}
	cfg.HTTP.Servers[0].Walk(func(l *Location) { locs[l.Path] = l.Conf })
	tlsLoc := locs["/tls/"]
	if p := tlsLoc.Proxy; p.Scheme != "https" || p.HostPort != "127.0.0.1" || p.Upstream.Servers[0].Addr != "127.0.0.1:443" {
		t.Errorf("https target %+v, servers %+v", p, p.Upstream.Servers)
	}
	if o := tlsLoc.ProxySSL.Options; !o.SNI || o.Verify || o.VerifyDepth != 1 || !o.SessionReuse || tlsLoc.ProxySSL.Client == nil {
		t.Errorf("https location options %+v, client %v", o, tlsLoc.ProxySSL.Client)
	}
	if n := tlsLoc.ProxySSL.Name; n == nil || n.Raw() != "backend.example.com" {
		t.Errorf("proxy_ssl_name %v", n)
	}
	if locs["/plain/"].ProxySSL.Client != nil {
		t.Error("an http:// location got a TLS client")
	}
	sock := locs["/sock/"].Proxy
	if sock.HostPort != "localhost" || sock.URI != "/api/" || !sock.HasURI || sock.Upstream.Servers[0].Addr != "unix:/run/app.sock" {
		t.Errorf("unix target %+v, servers %+v", sock, sock.Upstream.Servers)
	}
	if p := locs["/socknouri"].Proxy; p.HasURI || p.Upstream != sock.Upstream {
		t.Errorf("unix target without URI %+v", p)
	}
	ups := locs["/ups"]
	if s := ups.Proxy.Upstream.Servers; len(s) != 2 || s[0].Addr != "unix:/run/app.sock" || s[0].Weight != 2 {
		t.Errorf("upstream servers %+v", s)
	}
	if o := ups.ProxySSL.Options; o.SessionReuse || len(o.Protocols) != 3 || ups.ProxySSL.Client == tlsLoc.ProxySSL.Client {
		t.Errorf("upstream location options %+v", o)
	}
}

// TestListenUnixParse: `listen unix:` keeps its path, gets a key that no
// TCP address has and that is the same for the same path, and takes
// default_server, backlog and the buffer sizes.
func TestListenUnixParse(t *testing.T) {
	src := `http {
    server { listen unix:/run/a.sock default_server backlog=64 rcvbuf=64k; listen 8080; }
    server { listen unix:/run/b.sock; server_name b; }
}`
	cfg, err := LoadBytes("/etc/wsgate/test.conf", []byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.HTTP.Servers[0].Listens[0]
	if a.Unix != "/run/a.sock" || a.Addr != "unix:/run/a.sock" || !a.DefaultServer || a.Backlog != 64 || a.RcvBuf != 64<<10 {
		t.Errorf("listen unix: %+v", a)
	}
	b := cfg.HTTP.Servers[1].Listens[0]
	if a.AddrPort == b.AddrPort || a.AddrPort != UnixAddrPort("/run/a.sock") || a.AddrPort.Port() != 0 || cfg.HTTP.Servers[0].Listens[1].AddrPort.Port() != 8080 {
		t.Errorf("keys %v %v", a.AddrPort, b.AddrPort)
	}
}
