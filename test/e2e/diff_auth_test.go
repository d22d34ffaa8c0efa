package e2e

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// hashVectors reads the password hashes made once by mkpasswd, openssl
// passwd and htpasswd on Debian 12 (internal/crypt/testdata).
func hashVectors(t *testing.T) [][2]string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "internal", "crypt", "testdata", "vectors.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][2]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if pw, hash, ok := strings.Cut(sc.Text(), "\t"); ok && !strings.HasPrefix(pw, "#") {
			out = append(out, [2]string{pw, hash})
		}
	}
	return out
}

func basicGet(path, user, pw string) string {
	cred := base64.StdEncoding.EncodeToString([]byte(user + ":" + pw))
	return "GET " + path + " HTTP/1.1\r\nHost: h\r\nAuthorization: Basic " + cred + "\r\nConnection: close\r\n\r\n"
}

func plainGet(path, extra string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: h\r\n" + extra + "Connection: close\r\n\r\n"
}

// gateErrorLog is the error log of a pair's wsgate.
func (p *diffPair) gateErrorLog() string {
	b, _ := os.ReadFile(filepath.Join(p.gate.dir, "logs", "error.log"))
	return string(b)
}

// TestDiffAuthBasic compares auth_basic with nginx: every hash format
// accepted with its password and refused with others, a missing user, no
// or malformed credentials, comments, a missing file, a realm and a file
// named with variables, auth_basic off, limit_except and satisfy any/all
// with allow/deny.
func TestDiffAuthBasic(t *testing.T) {
	root := t.TempDir()
	vectors := hashVectors(t)
	var users strings.Builder
	users.WriteString("# users of the test\n#u0:{PLAIN}commented\n")
	for i, v := range vectors {
		fmt.Fprintf(&users, "u%d:%s:comment %d\n", i, v[1], i)
	}
	users.WriteString("crlf:{PLAIN}crlf\r\nlast:{PLAIN}last")
	os.WriteFile(filepath.Join(root, "users"), []byte(users.String()), 0o644)
	os.WriteFile(filepath.Join(root, "h.users"), []byte("vh:{PLAIN}vh\n"), 0o644)
	os.WriteFile(filepath.Join(root, "index.html"), []byte("secret page\n"), 0o644)
	os.WriteFile(filepath.Join(root, "401.html"), []byte("please log in\n"), 0o644)
	os.WriteFile(filepath.Join(root, "403.html"), []byte("not for you\n"), 0o644)
	p := startPair(t, diffConf{Root: root, HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    root {{ROOT}};
    auth_basic "Top realm";
    auth_basic_user_file {{ROOT}}/users;
    location = /index.html { }
    location /open/ { auth_basic off; try_files /index.html =404; }
    location /var/ { auth_basic "realm $arg_r"; auth_basic_user_file {{ROOT}}/$host.users; try_files /index.html =404; }
    location /dirfile/ { auth_basic_user_file {{ROOT}}; try_files /index.html =404; }
    location /nofile/ { auth_basic_user_file {{ROOT}}/absent; try_files /index.html =404; }
    location /lim/ { auth_basic off; limit_except GET { auth_basic "writers"; } try_files /index.html =404; }
    location /all/ { satisfy all; deny 127.0.0.1; try_files /index.html =404; }
    location /allok/ { satisfy all; allow 127.0.0.1; deny all; try_files /index.html =404; }
    location /any/ { satisfy any; allow 127.0.0.1; deny all; try_files /index.html =404; }
    location /anydeny/ { satisfy any; deny 127.0.0.1; try_files /index.html =404; }
    location /who/ { auth_basic off; return 200 "user=$remote_user"; }
    location /custom/ { error_page 401 /401.html; error_page 403 /403.html; try_files /index.html =404; }
    location /customnf/ { error_page 403 /403.html; auth_basic_user_file {{ROOT}}/absent; try_files /index.html =404; }
    location = /401.html { auth_basic off; }
    location = /403.html { auth_basic off; }
}`})
	for i, v := range vectors {
		user := fmt.Sprintf("u%d", i)
		p.compare(t, basicGet("/index.html", user, v[0]))
		p.compare(t, basicGet("/index.html", user, v[0]+"!"))
		if !strings.HasPrefix(v[1], "$7$") && !strings.HasPrefix(v[1], "$y$") {
			p.compare(t, basicGet("/index.html", user, "")) // the costly ones once wrong is enough
		}
	}
	for _, req := range []string{
		basicGet("/index.html", "nobody", "x"),
		basicGet("/index.html", "#u0", "commented"),
		basicGet("/index.html", "crlf", "crlf"),
		basicGet("/index.html", "last", "last"),
		basicGet("/index.html", "last", "las"),
		basicGet("/index.html", "u0", "s3cret pass:extra"),
		plainGet("/index.html", ""),
		plainGet("/index.html", "Authorization: Basic\r\n"),
		plainGet("/index.html", "Authorization: Basic !!!\r\n"),
		plainGet("/index.html", "Authorization: Bearer abc\r\n"),
		plainGet("/index.html", "Authorization: basic   "+base64.StdEncoding.EncodeToString([]byte("last:last"))+"\r\n"),
		plainGet("/index.html", "Authorization: Basic "+base64.RawStdEncoding.EncodeToString([]byte("last:last"))+"\r\n"),
		plainGet("/index.html", "Authorization: Basic "+base64.StdEncoding.EncodeToString([]byte(":last"))+"\r\n"),
		plainGet("/index.html", "Authorization: Basic "+base64.StdEncoding.EncodeToString([]byte("last"))+"\r\n"),
		plainGet("/open/", ""),
		plainGet("/var/?r=x", ""),
		basicGet("/var/?r=y", "vh", "vh"),
		basicGet("/var/", "vh", "no"),
		basicGet("/nofile/", "vh", "vh"),
		plainGet("/nofile/", ""),
		basicGet("/dirfile/", "vh", "vh"),
		plainGet("/lim/", ""),
		"POST /lim/ HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		plainGet("/all/", ""),
		basicGet("/all/", "last", "last"),
		plainGet("/allok/", ""),
		basicGet("/allok/", "last", "last"),
		plainGet("/any/", ""),
		plainGet("/anydeny/", ""),
		basicGet("/anydeny/", "last", "last"),
		basicGet("/anydeny/", "last", "bad"),
		basicGet("/who/", "some one", "pw"),
		plainGet("/custom/", ""),
		basicGet("/custom/", "last", "bad"),
		basicGet("/custom/", "last", "last"),
		plainGet("/customnf/", "Authorization: Basic "+base64.StdEncoding.EncodeToString([]byte("last:last"))+"\r\n"),
		plainGet("/who/", "Authorization: Basic "+base64.StdEncoding.EncodeToString([]byte("nocolon"))+"\r\n"),
	} {
		p.compare(t, req)
	}
	// Not the same mistake on both sides: the answers are the right ones.
	if r := sendRaw(t, p.wsgate, basicGet("/index.html", "u0", vectors[0][0])); r.Status != 200 || string(r.Body) != "secret page\n" {
		t.Errorf("a right password: %d %q", r.Status, r.Body)
	}
	if r := sendRaw(t, p.wsgate, plainGet("/index.html", "")); r.Status != 401 || r.Header.Get("WWW-Authenticate") != `Basic realm="Top realm"` {
		t.Errorf("no credentials: %d %q", r.Status, r.Header.Get("WWW-Authenticate"))
	}
	// The same lines in both error logs.
	for _, line := range []string{
		`user "nobody" was not found in "` + root + `/users"`,
		`user "u0": password mismatch`,
		`open() "` + root + `/absent" failed (2: No such file or directory)`,
		`no user/password was provided for basic authentication`,
	} {
		if !strings.Contains(p.ng.errorLog(), line) {
			t.Errorf("nginx's log lacks %q", line)
		}
		if !strings.Contains(p.gateErrorLog(), line) {
			t.Errorf("wsgate's log lacks %q", line)
		}
	}
}

// authBackend answers auth subrequests by the client's X-Auth header and
// counts them: ok (200, X-User), deny (401 with a challenge), forbid
// (403), odd (418).
func authBackend(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("X-Seen-Uri", r.URL.RequestURI()+" "+r.Header.Get("X-Original-URI"))
		switch r.Header.Get("X-Auth") {
		case "ok":
			w.Header().Set("X-User", "alice")
			w.WriteHeader(200)
		case "deny":
			w.Header().Set("WWW-Authenticate", `Bearer realm="app"`)
			w.Header().Set("X-User", "refused")
			w.WriteHeader(401)
		case "forbid":
			w.WriteHeader(403)
		case "odd":
			w.WriteHeader(418)
		default:
			w.WriteHeader(401)
		}
		fmt.Fprint(w, "auth body")
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), &n
}

// appBackend answers with what the proxy passed on from auth_request_set.
func appBackend(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-App", "from app")
		fmt.Fprintf(w, "app %s user=%q uri=%q", r.Method, r.Header.Get("X-User"), r.Header.Get("X-Auth-Uri"))
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// TestDiffAuthRequest compares auth_request with nginx: 2xx allows, 401
// passes with the auth answer's challenge, 403 passes, other statuses and
// a dead auth backend are 500, `return` auth locations, auth_request_set
// from $upstream_http_* passed to the backend, satisfy any with allow,
// and auth_request off.
func TestDiffAuthRequest(t *testing.T) {
	authAddr, _ := authBackend(t)
	app, dead := appBackend(t), deadAddr(t)
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "users"), []byte("a:{PLAIN}a\n"), 0o644)
	// Peers that a single failure each would take out: an answer, whatever
	// its status, is no failure.
	p := startPair(t, diffConf{Root: root, HTTP: `
upstream authup { server ` + authAddr + ` max_fails=1 fail_timeout=60s; server ` + authAddr + ` max_fails=1 fail_timeout=60s; }
server {
    listen 127.0.0.1:{{PORT}};
    location = /auth { internal; proxy_pass http://authup/check; proxy_set_header X-Original-URI $request_uri; proxy_set_header Content-Length ""; }
    location = /auth-dead { internal; proxy_pass http://` + dead + `; }
    location = /auth-yes { return 204; }
    location = /auth-no { return 403; }
    location /app/ {
        auth_request /auth;
        auth_request_set $user $upstream_http_x_user;
        auth_request_set $seen $upstream_http_x_seen_uri;
        proxy_set_header X-User $user;
        proxy_set_header X-Auth-Uri $seen;
        add_header X-Got "app=[$upstream_http_x_app] user=[$user] status=[$upstream_status]";
        proxy_pass http://` + app + `;
    }
    location /dead/ { auth_request /auth-dead; proxy_pass http://` + app + `; }
    location /yes/ { auth_request /auth-yes; proxy_pass http://` + app + `; }
    location /no/ { auth_request /auth-no; proxy_pass http://` + app + `; }
    location /any/ { satisfy any; allow 127.0.0.1; deny all; auth_request /auth-no; proxy_pass http://` + app + `; }
    location /all/ { satisfy all; allow 127.0.0.1; deny all; auth_request /auth-no; proxy_pass http://` + app + `; }
    location /off/ { auth_request /auth-no; location /off/in/ { auth_request off; proxy_pass http://` + app + `; } }
    location /lim/ { satisfy any; auth_request /auth-yes; limit_except GET { deny all; } proxy_pass http://` + app + `; }
    location /limno/ { satisfy any; auth_request /auth-no; limit_except GET { deny all; } proxy_pass http://` + app + `; }
    location /both/ { auth_basic "b"; auth_basic_user_file {{ROOT}}/users; auth_request /auth-no; proxy_pass http://` + app + `; }
    location /bothany/ { satisfy any; auth_basic "b"; auth_basic_user_file {{ROOT}}/users; auth_request /auth-no; proxy_pass http://` + app + `; }
    location /bothyes/ { satisfy any; auth_basic "b"; auth_basic_user_file {{ROOT}}/users; auth_request /auth-yes; proxy_pass http://` + app + `; }
}`})
	for _, req := range []string{
		plainGet("/app/x?q=1", "X-Auth: ok\r\n"),
		plainGet("/app/x", "X-Auth: deny\r\n"),
		plainGet("/app/x", "X-Auth: forbid\r\n"),
		plainGet("/app/x", "X-Auth: odd\r\n"),
		plainGet("/app/x", ""),
		"HEAD /app/x HTTP/1.1\r\nHost: h\r\nX-Auth: ok\r\nConnection: close\r\n\r\n",
		plainGet("/dead/x", ""),
		plainGet("/yes/x", ""),
		plainGet("/no/x", ""),
		plainGet("/any/x", ""),
		plainGet("/all/x", ""),
		plainGet("/off/in/x", ""),
		plainGet("/off/x", ""),
		"POST /lim/x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		plainGet("/lim/x", ""),
		"POST /limno/x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		plainGet("/both/x", ""),
		basicGet("/both/x", "a", "a"),
		basicGet("/both/x", "a", "b"),
		plainGet("/bothany/x", ""),
		basicGet("/bothany/x", "a", "a"),
		plainGet("/bothyes/x", ""),
	} {
		p.compare(t, req)
	}
	r := sendRaw(t, p.wsgate, plainGet("/app/x?q=1", "X-Auth: ok\r\n"))
	if want := `app GET user="alice" uri="/check /app/x?q=1"`; r.Status != 200 || string(r.Body) != want {
		t.Errorf("allowed: %d %q, want 200 %q", r.Status, r.Body, want)
	}
	// $upstream_http_* is the main request's upstream again after the
	// subrequest; auth_request_set keeps what it read from the auth answer.
	for _, auth := range []string{"ok", "deny"} {
		ng := sendRaw(t, p.nginx, plainGet("/app/x", "X-Auth: "+auth+"\r\n"))
		ws := sendRaw(t, p.wsgate, plainGet("/app/x", "X-Auth: "+auth+"\r\n"))
		if ng.Header.Get("X-Got") != ws.Header.Get("X-Got") {
			t.Errorf("X-Got with %s: nginx %q, wsgate %q", auth, ng.Header.Get("X-Got"), ws.Header.Get("X-Got"))
		}
	}
	if got := r.Header.Get("X-Got"); got != "app=[from app] user=[alice] status=[200]" {
		t.Errorf("X-Got %q", got)
	}
	for _, line := range []string{"auth request unexpected status: 418", "connect() failed (111: Connection refused)"} {
		if !strings.Contains(p.ng.errorLog(), line) || !strings.Contains(p.gateErrorLog(), line) {
			t.Errorf("an error log lacks %q", line)
		}
	}
}

// TestAuthRequestWebSocket drives auth_request with WebSocket handshakes:
// an allowed one reaches the backend and echoes, with the auth answer's
// user passed on; refused ones (401 with its challenge, 403) and one whose
// auth backend is down (500) never reach it.
func TestAuthRequestWebSocket(t *testing.T) {
	authAddr, asked := authBackend(t)
	b := startBackend(t, "ws")
	dead := deadAddr(t)
	port := freePort(t)
	g := startGate(t, fmt.Sprintf(`pid {{DIR}}/logs/wsgate.pid;
error_log {{DIR}}/logs/error.log info;
events { worker_connections 256; }
http {
    log_format ws "$request_uri $status upstream=[$upstream_http_x_backend] user=[$user]";
    access_log {{DIR}}/logs/ws.log ws;
    server {
        listen 127.0.0.1:%d;
        location = /auth { internal; proxy_pass http://%s; }
        location = /auth-dead { internal; proxy_pass http://%s; }
        location /ws {
            auth_request /auth;
            auth_request_set $user $upstream_http_x_user;
            proxy_set_header X-User $user;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_pass http://%s;
        }
        location /dead {
            auth_request /auth-dead;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_pass http://%s;
        }
    }
}`, port, authAddr, dead, b.addr, b.addr))
	url := fmt.Sprintf("ws://127.0.0.1:%d", port)
	c, _ := dial(t, url+"/ws", http.Header{"X-Auth": {"ok"}})
	echo(t, c, "hello")
	if got := b.lastWS().Get("X-User"); got != "alice" {
		t.Errorf("backend saw X-User %q, want alice", got)
	}
	if asked.Load() != 1 {
		t.Errorf("auth asked %d times, want 1", asked.Load())
	}
	before := b.upgrades.Load()
	for _, tc := range []struct {
		path, auth string
		status     int
		challenge  string
	}{
		{"/ws", "deny", 401, `Bearer realm="app"`},
		{"/ws", "forbid", 403, ""},
		{"/ws", "odd", 500, ""},
		{"/dead", "ok", 500, ""},
	} {
		req := "GET " + tc.path + " HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nX-Auth: " + tc.auth + "\r\n\r\n"
		r := sendRaw(t, fmt.Sprintf("127.0.0.1:%d", port), req)
		if r.Status != tc.status || r.Header.Get("WWW-Authenticate") != tc.challenge {
			t.Errorf("%s %s: %d %q, want %d %q", tc.path, tc.auth, r.Status, r.Header.Get("WWW-Authenticate"), tc.status, tc.challenge)
		}
	}
	if n := b.upgrades.Load(); n != before {
		t.Errorf("refused handshakes reached the backend: %d upgrades, want %d", n, before)
	}
	if asked.Load() != 4 {
		t.Errorf("auth asked %d times, want 4", asked.Load())
	}
	c.Close()
	waitFor(t, slow(10*time.Second), "the tunnel to end", func() bool { return b.open.Load() == 0 })
	// The session's log line has the backend's 101 headers and the auth
	// answer's user.
	logPath := filepath.Join(g.dir, "logs", "ws.log")
	want := "/ws 101 upstream=[ws] user=[alice]"
	waitFor(t, slow(10*time.Second), "the session's log line", func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), want)
	})
}

// TestDiffAuthDelay checks auth_delay on both servers: a 401 of
// auth_basic or auth_request waits at least the delay; the answers match.
func TestDiffAuthDelay(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "users"), []byte("a:{PLAIN}a\n"), 0o644)
	os.WriteFile(filepath.Join(root, "index.html"), []byte("in\n"), 0o644)
	p := startPair(t, diffConf{Root: root, HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    auth_delay 400ms;
    root {{ROOT}};
    location /basic/ { auth_basic "r"; auth_basic_user_file {{ROOT}}/users; try_files /index.html =404; }
    location = /no { return 401; }
    location /req/ { auth_request /no; try_files /index.html =404; }
}`})
	for _, req := range []string{basicGet("/basic/", "a", "wrong"), plainGet("/req/", "")} {
		for _, addr := range []string{p.nginx, p.wsgate} {
			start := time.Now()
			r := sendRaw(t, addr, req)
			if took := time.Since(start); r.Status != 401 || took < 400*time.Millisecond {
				t.Errorf("%s %q: %d after %v, want 401 after 400ms or more", addr, firstLine(req), r.Status, took)
			}
		}
		p.compare(t, req)
	}
	p.compare(t, basicGet("/basic/", "a", "a"))
}
