package proxy

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/vars"
	"github.com/wsgate/wsgate/internal/wsframe"
)

func location(t *testing.T, src string) (*config.Config, *config.Location) {
	t.Helper()
	cfg, err := config.LoadBytes("/tmp/t.conf", []byte(src), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	root := cfg.HTTP.Servers[0].Locations
	return cfg, root.Children[0]
}

func TestURI(t *testing.T) {
	tests := []struct {
		loc, pass, uri, path, args, want string
	}{
		{"/ws", "http://127.0.0.1:1", "/ws/chat?a=1", "/ws/chat", "a=1", "/ws/chat?a=1"},
		{"/ws/", "http://127.0.0.1:1/", "/ws/chat?a=1", "/ws/chat", "a=1", "/chat?a=1"},
		{"/ws/", "http://127.0.0.1:1/app/", "/ws/a%20b", "/ws/a b", "", "/app/a%20b"},
		{"= /ws", "http://127.0.0.1:1/other", "/ws", "/ws", "", "/other"},
		{"/", "http://127.0.0.1:1/x", "/y/z", "/y/z", "", "/xy/z"},
	}
	for _, tt := range tests {
		cfg, loc := location(t, "http { server { location "+tt.loc+" { proxy_pass "+tt.pass+"; } } }")
		vc := &vars.Ctx{}
		vc.Reset(cfg.Vars)
		vc.RequestURI, vc.Path, vc.Args = tt.uri, tt.path, tt.args
		if got := URI(loc.Conf.Proxy, loc, vc); got != tt.want {
			t.Errorf("location %s proxy_pass %s, %s: %q, want %q", tt.loc, tt.pass, tt.uri, got, tt.want)
		}
	}
}

func TestAppendRequest(t *testing.T) {
	cfg, loc := location(t, `http { server { location /ws {
        proxy_pass http://127.0.0.1:1;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection "upgrade";
        proxy_set_header X-Empty $http_nothing;
        proxy_set_header X-Evil $http_x_evil;
        proxy_set_header Content-Length 99;
    } } }`)
	req := &http1.Request{Method: "GET", RequestURI: "/ws", Proto: "HTTP/1.1", Major: 1, Minor: 1, Header: http1.Header{
		{Name: "Host", Value: "client.example"},
		{Name: "Upgrade", Value: "websocket"},
		{Name: "Connection", Value: "Upgrade, keep-alive"},
		{Name: "Keep-Alive", Value: "timeout=5"},
		{Name: "Sec-WebSocket-Key", Value: "dGhlIHNhbXBsZSBub25jZQ=="},
		{Name: "TE", Value: "trailers"},
		{Name: "X-Evil", Value: "a\r\nInjected: yes"},
		{Name: "X-Custom", Value: "kept"},
	}}
	vc := &vars.Ctx{}
	vc.Reset(cfg.Vars)
	vc.Header = req.Header
	vc.Remote = netip.MustParseAddrPort("127.0.0.1:5")
	got := string(AppendRequest(nil, "GET", "/ws", req, loc.Conf, vc, "127.0.0.1:1", Body{Length: -1}))
	want := "GET /ws HTTP/1.1\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: upgrade\r\n" +
		"X-Evil: aInjected: yes\r\n" +
		"Host: 127.0.0.1:1\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
		"X-Custom: kept\r\n\r\n"
	if got != want {
		t.Errorf("request head:\n%s\nwant:\n%s", got, want)
	}

	// Defaults: HTTP/1.0, Connection: close, Upgrade dropped, body length.
	cfg, loc = location(t, `http { server { location / { proxy_pass http://up; } } upstream up { server 127.0.0.1:1; } }`)
	vc.Reset(cfg.Vars)
	req.Method = "POST"
	got = string(AppendRequest(nil, "POST", "/", req, loc.Conf, vc, "up", Body{Length: 5}))
	if !strings.HasPrefix(got, "POST / HTTP/1.0\r\nHost: up\r\nConnection: close\r\nContent-Length: 5\r\n") || strings.Contains(got, "Upgrade") || strings.Contains(got, "Keep-Alive") || strings.Contains(got, "TE:") {
		t.Errorf("default head:\n%s", got)
	}
}

func TestResponseHeader(t *testing.T) {
	h := http1.Header{{Name: "Server", Value: "x"}, {Name: "Date", Value: "d"}, {Name: "Content-Length", Value: "1"}, {Name: "Connection", Value: "keep-alive"},
		{Name: "Upgrade", Value: "websocket"}, {Name: "Sec-WebSocket-Accept", Value: "a"}, {Name: "Set-Cookie", Value: "c=1"}, {Name: "X-Accel-Redirect", Value: "/x"}}
	sw := ResponseHeader(h, true)
	if len(sw) != 4 || sw.Get("Upgrade") != "websocket" || sw.Get("Connection") != "upgrade" || sw.Get("Sec-WebSocket-Accept") != "a" || sw.Get("Set-Cookie") != "c=1" {
		t.Errorf("101 header %v", sw)
	}
	plain := ResponseHeader(h, false)
	if len(plain) != 3 || plain.Get("Upgrade") != "websocket" { // nginx passes Upgrade on any answer
		t.Errorf("plain header %v", plain)
	}
}

func TestCheckSwitch(t *testing.T) {
	req := &http1.Request{Header: http1.Header{{Name: "Upgrade", Value: "websocket"}, {Name: "Sec-WebSocket-Key", Value: "dGhlIHNhbXBsZSBub25jZQ=="}}}
	good := &http1.Response{Status: 101, Header: http1.Header{{Name: "Sec-WebSocket-Accept", Value: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="}}}
	bad := &http1.Response{Status: 101, Header: http1.Header{{Name: "Sec-WebSocket-Accept", Value: "nope"}}}
	if err := CheckSwitch(req, good); err != nil {
		t.Error(err)
	}
	if err := CheckSwitch(req, bad); err != ErrBadAccept {
		t.Errorf("bad accept: %v", err)
	}
	other := &http1.Request{Header: http1.Header{{Name: "Upgrade", Value: "h2c"}}}
	if err := CheckSwitch(other, bad); err != nil {
		t.Errorf("non-WebSocket upgrade: %v", err)
	}
}

// TestAcceptAnswers: the allocation-free check agrees with
// wsframe.AcceptKey, for keys of any length.
func TestAcceptAnswers(t *testing.T) {
	for _, key := range []string{"dGhlIHNhbXBsZSBub25jZQ==", "", "x", strings.Repeat("k", 64), strings.Repeat("k", 65), strings.Repeat("k", 300)} {
		want := wsframe.AcceptKey(key)
		if !acceptAnswers(want, key) {
			t.Errorf("key %q: %q not accepted", key, want)
		}
		if acceptAnswers(want[:len(want)-1]+"x", key) || acceptAnswers("", key) {
			t.Errorf("key %q: a wrong accept passed", key)
		}
	}
}
