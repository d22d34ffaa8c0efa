package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// keepAliveConn is a client connection that sends requests one at a time.
type keepAliveConn struct {
	c  net.Conn
	br *bufio.Reader
}

func dialKeepAlive(t *testing.T, port int) *keepAliveConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), slow(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &keepAliveConn{c: c, br: bufio.NewReader(c)}
}

// get sends a keep-alive GET and returns the status, or an error when the
// connection was closed instead.
func (k *keepAliveConn) get() (int, error) {
	k.c.SetDeadline(time.Now().Add(slow(5 * time.Second)))
	if _, err := io.WriteString(k.c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(k.br, nil)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// closedWithin reports whether the server closes the idle connection
// within d.
func (k *keepAliveConn) closedWithin(d time.Duration) bool {
	k.c.SetReadDeadline(time.Now().Add(d))
	_, err := k.br.ReadByte()
	return err == io.EOF
}

// TestKeepaliveMinTimeoutGracefulStop: on QUIT, an idle keep-alive
// connection of a server without keepalive_min_timeout is closed at once;
// one with it stays open for that long after it went idle, serves a
// request meanwhile, and is closed once idle for the minimum again, after
// which the process exits.
func TestKeepaliveMinTimeoutGracefulStop(t *testing.T) {
	keep, plain := freePort(t), freePort(t)
	minimum := slow(1500 * time.Millisecond)
	g := startGate(t, fmt.Sprintf(`
error_log {{DIR}}/error.log info;
http {
    access_log off;
    keepalive_timeout 60s;
    server { listen 127.0.0.1:%d; keepalive_min_timeout %dms; return 200 "kept\n"; }
    server { listen 127.0.0.1:%d; return 200 "plain\n"; }
}`, keep, minimum.Milliseconds(), plain))
	a, b := dialKeepAlive(t, keep), dialKeepAlive(t, plain)
	for _, k := range []*keepAliveConn{a, b} {
		if st, err := k.get(); st != 200 {
			t.Fatalf("first request: %d %v", st, err)
		}
	}
	idle := time.Now()
	g.signal(syscall.SIGQUIT)
	if !b.closedWithin(slow(2 * time.Second)) {
		t.Fatal("the idle connection without keepalive_min_timeout was not closed on QUIT")
	}
	if time.Since(idle) >= minimum {
		t.Skip("the machine is too slow to tell the two connections apart")
	}
	if st, err := a.get(); st != 200 {
		t.Fatalf("a request within keepalive_min_timeout after QUIT: %d %v", st, err)
	}
	idle = time.Now()
	if !a.closedWithin(minimum + slow(3*time.Second)) {
		t.Fatal("the kept connection was not closed after keepalive_min_timeout")
	}
	if took := time.Since(idle); took < minimum-100*time.Millisecond {
		t.Errorf("the kept connection was closed %v after going idle, before keepalive_min_timeout %v", took, minimum)
	}
	if err := g.wait(10 * time.Second); err != nil {
		t.Errorf("exit after QUIT: %v", err)
	}
}

// TestDebugConnection: a client that debug_connection lists gets the
// request's lines of every level in an error log set to "error"; another
// client's info lines stay out.
func TestDebugConnection(t *testing.T) {
	for _, tc := range []struct {
		listed string
		want   bool
	}{{"127.0.0.0/8", true}, {"10.1.2.3", false}} {
		t.Run(tc.listed, func(t *testing.T) {
			port := freePort(t)
			g := startGate(t, fmt.Sprintf(`
error_log {{DIR}}/error.log error;
events { debug_connection %s; debug_connection unix:; }
http {
    access_log off;
    server {
        listen 127.0.0.1:%d;
        location / { auth_basic "area"; auth_basic_user_file {{DIR}}/htpasswd; root {{DIR}}; }
    }
}`, tc.listed, port))
			os.WriteFile(filepath.Join(g.dir, "htpasswd"), []byte("u:{PLAIN}p\n"), 0o644)
			st, _, _ := rawRequest(t, fmt.Sprintf("127.0.0.1:%d", port), "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			if st != 401 {
				t.Fatalf("status %d, want 401", st)
			}
			const line = "[info]"
			if tc.want {
				waitFor(t, 5*time.Second, "the info line", func() bool {
					return strings.Contains(g.errorLog(), "no user/password was provided for basic authentication")
				})
				if !strings.Contains(g.errorLog(), line) {
					t.Errorf("error log:\n%s", g.errorLog())
				}
			} else if strings.Contains(g.errorLog(), line) {
				t.Errorf("an unlisted client's info line was written:\n%s", g.errorLog())
			}
		})
	}
}

// TestCoreLeftoversRefusedAtTest: -t names ssl_engine's reason, and a
// location that re-authorises WebSockets without auth_request.
func TestCoreLeftoversRefusedAtTest(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ conf, want string }{
		{"ssl_engine pkcs11;\nhttp { }\n", `"ssl_engine" is not supported: wsgate's TLS (Go's crypto/tls) has no OpenSSL engines`},
		{"http { server { listen 127.0.0.1:1; location /ws { websocket_reauth_interval 1m; proxy_pass http://127.0.0.1:2; } } }\n",
			`"websocket_reauth_interval" needs "auth_request" in location "/ws"`},
	} {
		path := filepath.Join(dir, "t.conf")
		os.WriteFile(path, []byte("error_log stderr;\npid "+dir+"/t.pid;\n"+tc.conf), 0o644)
		code, _, errOut := wsgateOut(t, "-t", "-c", path)
		if code == 0 || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, path+":") {
			t.Errorf("-t exit %d, stderr %q, want %q with the file and line", code, errOut, tc.want)
		}
	}
}

// TestServerNameNamedCaptures: the named captures of a server_name regex
// are variables for return and for the headers proxy_pass sends, beside
// a location regex's own, and $1 is the location's once it matched.
func TestServerNameNamedCaptures(t *testing.T) {
	be := startBackend(t, "app")
	port := freePort(t)
	startGate(t, fmt.Sprintf(`
error_log {{DIR}}/error.log info;
http {
    access_log off;
    server {
        listen 127.0.0.1:%d;
        server_name ~^(?<sub>.+)\.example\.com$;
        location / { return 200 "sub=$sub first=$1\n"; }
        location ~ ^/item/(?P<item>\d+)$ { return 200 "sub=$sub item=$item first=$1\n"; }
        location /p/ { proxy_pass http://%s; proxy_set_header X-Sub $sub; }
    }
}`, port, be.addr))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for _, tc := range []struct{ path, want string }{
		{"/", "sub=chat.eu first=chat.eu\n"},
		{"/item/42", "sub=chat.eu item=42 first=42\n"},
	} {
		st, _, body := rawRequest(t, addr, "GET "+tc.path+" HTTP/1.1\r\nHost: Chat.EU.example.com\r\nConnection: close\r\n\r\n")
		if st != 200 || body != tc.want {
			t.Errorf("%s: %d %q, want %q", tc.path, st, body, tc.want)
		}
	}
	st, _, _ := rawRequest(t, addr, "GET /p/x HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n\r\n")
	if h := be.lastPlain(); st != 200 || h == nil || h.Get("X-Sub") != "api" {
		t.Errorf("proxied: %d, X-Sub %q, want api", st, h.Get("X-Sub"))
	}
}
