package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// sessionConf is one instance with WebSocket sessions keyed by X-User and
// a writable api open to 127.0.0.1 only. Arguments: Redis port,
// listening port, backend address.
const sessionConf = `
error_log {{DIR}}/error.log info;
http {
    cluster_store redis://127.0.0.1:%d timeout=1s;
    server {
        listen 127.0.0.1:%d;
        location /ws {
            websocket_session_key $http_x_user;
            proxy_pass http://%s;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }
        location /api/ {
            allow 127.0.0.1;
            deny all;
            api write=on;
        }
        location /ro/ { api; }
    }
}`

func apiCall(t *testing.T, src, method, url string) (int, string) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}).DialContext}}
	req, _ := http.NewRequest(method, url, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestClusterSessionsCloseAndBan: a user's WebSockets on two instances
// are listed from a third, closed from it with the code and reason given
// (another user's stay open), and the ban keeps the user from coming
// back through any instance until it ends.
func TestClusterSessionsCloseAndBan(t *testing.T) {
	r := startRedis(t)
	be := startBackend(t, "b1")
	var addrs []string
	for range 3 {
		port := freePort(t)
		startGate(t, fmt.Sprintf(sessionConf, r.port, port, be.addr))
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", port))
	}
	var alice []*websocket.Conn
	for _, a := range addrs[:2] {
		st, c := dialUser(t, a, "alice")
		if st != 101 {
			t.Fatalf("alice through %s: %d", a, st)
		}
		defer c.Close()
		alice = append(alice, c)
	}
	st, bob := dialUser(t, addrs[2], "bob")
	if st != 101 {
		t.Fatalf("bob: %d", st)
	}
	defer bob.Close()

	list := "http://" + addrs[2] + "/api/9/http/websocket/sessions?key=alice"
	waitFor(t, 10*time.Second, "alice's two sessions in the list", func() bool {
		code, body := apiCall(t, "127.0.0.1", "GET", list)
		var got []map[string]any
		return code == 200 && json.Unmarshal([]byte(body), &got) == nil && len(got) == 2
	})
	if code, body := apiCall(t, "127.0.0.1", "DELETE", "http://"+addrs[2]+"/ro/9/http/websocket/sessions?key=alice"); code != 405 {
		t.Fatalf("DELETE on a read-only api: %d %s", code, body)
	}
	if code, _ := apiCall(t, "127.0.0.2", "DELETE", list+"&code=4003"); code != 403 {
		t.Fatalf("DELETE from a denied address: %d, want 403", code)
	}
	code, body := apiCall(t, "127.0.0.1", "DELETE", list+"&code=4003&reason=token+revoked&ban=3s")
	if code != 200 || !strings.Contains(body, `"sessions":2`) {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	for i, c := range alice {
		c.SetReadDeadline(time.Now().Add(slow(10 * time.Second)))
		_, _, err := c.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 4003 || ce.Text != "token revoked" {
			t.Fatalf("alice's session %d ended with %v, want close 4003 \"token revoked\"", i, err)
		}
	}
	// Bob's session is untouched.
	if err := bob.WriteMessage(websocket.TextMessage, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	bob.SetReadDeadline(time.Now().Add(slow(5 * time.Second)))
	if _, msg, err := bob.ReadMessage(); err != nil || string(msg) != "still here" {
		t.Fatalf("bob's echo: %q %v", msg, err)
	}
	// Banned everywhere, then back once the ban ends.
	for _, a := range addrs {
		if st, _ := dialUser(t, a, "alice"); st != 403 {
			t.Fatalf("alice through %s during the ban: %d, want 403", a, st)
		}
	}
	waitFor(t, 15*time.Second, "the ban to end", func() bool {
		st, c := dialUser(t, addrs[0], "alice")
		if c != nil {
			c.Close()
		}
		return st == 101
	})
}

// TestClusterAPIRoutingAndWriteProtection: the api root lists versions,
// /9/ serves Plus's paths, and -t refuses api write=on without an access
// restriction.
func TestClusterAPIRoutingAndWriteProtection(t *testing.T) {
	r := startRedis(t)
	be := startBackend(t, "b1")
	port := freePort(t)
	startGate(t, fmt.Sprintf(sessionConf, r.port, port, be.addr))
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	for _, tc := range []struct {
		path string
		code int
		want string
	}{
		{"/api/", 200, "[1,2,3,4,5,6,7,8,9]"},
		{"/api/?json", 200, `"tunnels"`},
		{"/api/9/", 200, `["nginx","connections","http","cluster"]`},
		{"/api/9/cluster", 200, `"shared":true`},
		{"/api/9/nginx", 200, `"pid":`},
		{"/api/9/connections", 200, `"accepted"`},
		{"/api/9/http/requests", 200, `"total"`},
		{"/api/9/http/upstreams", 200, `{`},
		{"/api/8/nginx", 404, "UnsupportedVersion"},
		{"/api/9/nope", 404, "PathNotFound"},
		{"/api/9/http/websocket/sessions", 400, "KeyRequired"},
	} {
		code, body := apiCall(t, "127.0.0.1", "GET", base+tc.path)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s: %d %s, want %d with %s", tc.path, code, body, tc.code, tc.want)
		}
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "open.conf")
	os.WriteFile(conf, []byte(`http { server { listen 127.0.0.1:1; location /api/ { api write=on; } } }`), 0o644)
	code, _, errOut := wsgateOut(t, "-t", "-c", conf)
	if code == 0 || !strings.Contains(errOut, "needs an access restriction") {
		t.Fatalf("-t with an open writable api: exit %d, %s", code, errOut)
	}
}
