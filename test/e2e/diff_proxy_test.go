package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Differential tests of the proxy module's header handling: proxy_redirect,
// proxy_hide_header and the rest, compared between nginx and wsgate on what
// the client sees and (in the body) what the backend saw.

// scriptBackend answers as its query says: status=N sets the status, and
// each h=Name:Value adds a response header. The body is the request head
// the backend received: method, target and the headers, sorted.
func scriptBackend(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		for _, h := range q["h"] {
			name, value, _ := strings.Cut(h, ":")
			w.Header().Add(name, value)
		}
		var lines []string
		for k, vs := range r.Header {
			for _, v := range vs {
				lines = append(lines, k+": "+v)
			}
		}
		slices.Sort(lines)
		status := 200
		fmt.Sscan(q.Get("status"), &status)
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(status)
		body, _ := io.ReadAll(r.Body)
		from, _, _ := net.SplitHostPort(r.RemoteAddr)
		fmt.Fprintf(w, "%s %s host=%s from=%s\n%s\nbody=%q\n", r.Method, r.RequestURI, r.Host, from, strings.Join(lines, "\n"), body)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// scripted is the query asking scriptBackend for these response headers
// ("Name:Value" each).
func scripted(headers ...string) string {
	v := url.Values{}
	for _, h := range headers {
		v.Add("h", h)
	}
	return v.Encode()
}

// compareHeaders is compare over the given headers besides diffHeaders;
// the body (the backend's view of the request) must match too. Each
// server's own address and the backend's are neutral.
func (p *diffPair) compareHeaders(t testing.TB, req string, names ...string) {
	t.Helper()
	ng := sendRaw(t, p.nginx, strings.ReplaceAll(req, "{{HOST}}", p.nginx))
	ws := sendRaw(t, p.wsgate, strings.ReplaceAll(req, "{{HOST}}", p.wsgate))
	var diffs []string
	if ng.Status != ws.Status {
		diffs = append(diffs, fmt.Sprintf("status: nginx %d, wsgate %d", ng.Status, ws.Status))
	}
	for _, h := range append(slices.Clone(diffHeaders), names...) {
		nv := p.neutral(strings.Join(ng.Header.Values(h), " | "), p.nginx)
		wv := p.neutral(strings.Join(ws.Header.Values(h), " | "), p.wsgate)
		if isErrorPage(ng) && h == "Content-Length" {
			continue
		}
		if nv != wv {
			diffs = append(diffs, fmt.Sprintf("%s: nginx %q, wsgate %q", h, nv, wv))
		}
	}
	nb, wb := p.neutral(string(ng.Body), p.nginx), p.neutral(string(ws.Body), p.wsgate)
	if !isErrorPage(ng) && nb != wb {
		diffs = append(diffs, fmt.Sprintf("body: nginx %q, wsgate %q", nb, wb))
	}
	if len(diffs) > 0 {
		t.Errorf("%q:\n  %s", firstLine(req), strings.Join(diffs, "\n  "))
	}
}

func proxyGet(target string, extra ...string) string {
	return "GET " + target + " HTTP/1.1\r\nHost: {{HOST}}\r\n" + strings.Join(append(extra, ""), "\r\n") + "Connection: close\r\n\r\n"
}

// TestDiffProxyRedirect: the implicit default with and without a URI
// part, explicit default, off, prefix strings with variables, regexes with
// captures (case-sensitive and not), the first matching rule winning, and
// Refresh headers.
func TestDiffProxyRedirect(t *testing.T) {
	b := scriptBackend(t)
	p := startPair(t, diffConf{HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    server_name localhost;
    location /plain/ { proxy_pass http://` + b + `; }
    location /uri/ { proxy_pass http://` + b + `/back/; }
    location /explicit/ { proxy_pass http://` + b + `/back/; proxy_redirect default; proxy_redirect http://other/ /other/; }
    location /off/ { proxy_pass http://` + b + `/back/; proxy_redirect off; }
    location /vars/ { proxy_pass http://` + b + `; proxy_redirect http://$host:$server_port/x/ /y/$server_name/; }
    location /re/ { proxy_pass http://` + b + `; proxy_redirect ~^http://[^/]+/(\w+)/(.*)$ https://$1.example/$2?r; }
    location /rei/ { proxy_pass http://` + b + `; proxy_redirect ~*^HTTP://A/(.*)$ /ci/$1; proxy_redirect http://a/ /second/; }
    location /full/ { proxy_pass http://` + b + `; proxy_redirect http://a/ http://b.example/; }
}
server {
    listen 127.0.0.1:{{PORT}};
    server_name inherit;
    proxy_redirect http://a/ /from-server/;
    location / { proxy_pass http://` + b + `; }
    location /child/ { proxy_pass http://` + b + `; proxy_redirect off; }
}`})
	hdrs := []string{"Refresh"}
	bk := "http://" + b
	for _, c := range []struct {
		path string
		hs   []string
	}{
		{"/plain/a", []string{"Location:" + bk + "/plain/x"}},
		{"/plain/b", []string{"Location:" + bk + "x"}},
		{"/plain/c", []string{"Location:/rel/x"}},
		{"/plain/d", []string{"Refresh:5; url=" + bk + "/r/x"}},
		{"/plain/e", []string{"Refresh:5;URL=" + bk + "/r/x"}},
		{"/plain/f", []string{"Refresh:5"}},
		{"/uri/a", []string{"Location:" + bk + "/back/x?q=1"}},
		{"/uri/b", []string{"Location:" + bk + "/other/x"}},
		{"/explicit/a", []string{"Location:" + bk + "/back/x"}},
		{"/explicit/b", []string{"Location:http://other/z"}},
		{"/off/a", []string{"Location:" + bk + "/back/x"}},
		{"/vars/a", []string{"Location:http://{{SELF}}/x/z"}},
		{"/re/a", []string{"Location:http://h/sub/rest/of?q"}},
		{"/re/b", []string{"Location:/sub/rest"}},
		{"/rei/a", []string{"Location:http://a/p"}},
		{"/rei/b", []string{"Location:http://A/p"}},
		{"/full/a", []string{"Location:http://a/p"}},
		{"/full/b", []string{"Location:http://a/p", "Refresh:0;url=http://a/q"}},
	} {
		for _, status := range []string{"302", "200"} {
			q := scripted(c.hs...) + "&status=" + status
			for _, target := range []string{c.path + "?" + q} {
				reqNg := strings.ReplaceAll(proxyGet(target), "{{SELF}}", "") // filled per server below
				_ = reqNg
				p.compareSelf(t, target, hdrs)
			}
		}
	}
	for _, path := range []string{"/s", "/child/s"} {
		p.compareHeaders(t, strings.Replace(proxyGet(path+"?"+scripted("Location:http://a/x")), "Host: {{HOST}}", "Host: inherit", 1), hdrs...)
	}
}

// compareSelf is compareHeaders on GET target, with {{SELF}} in the
// target replaced by each server's own address.
func (p *diffPair) compareSelf(t testing.TB, target string, names []string) {
	t.Helper()
	if !strings.Contains(target, url.QueryEscape("{{SELF}}")) {
		p.compareHeaders(t, proxyGet(target), names...)
		return
	}
	self := url.QueryEscape("{{SELF}}")
	ng := sendRaw(t, p.nginx, strings.ReplaceAll(proxyGet(strings.ReplaceAll(target, self, p.nginx)), "{{HOST}}", p.nginx))
	ws := sendRaw(t, p.wsgate, strings.ReplaceAll(proxyGet(strings.ReplaceAll(target, self, p.wsgate)), "{{HOST}}", p.wsgate))
	if nv, wv := p.neutral(ng.Header.Get("Location"), p.nginx), p.neutral(ws.Header.Get("Location"), p.wsgate); nv != wv {
		t.Errorf("%s: Location nginx %q, wsgate %q", target, nv, wv)
	}
}

// TestDiffProxyHidePassHeaders: nginx's default hidden list (Server,
// Date, X-Pad, X-Accel-*), proxy_hide_header adding to it,
// proxy_pass_header taking from it, both inherited only by levels that set
// none, and proxy_ignore_headers accepted without changing what passes.
func TestDiffProxyHidePassHeaders(t *testing.T) {
	b := scriptBackend(t)
	p := startPair(t, diffConf{HTTP: `
proxy_hide_header X-From-Http;
server {
    listen 127.0.0.1:{{PORT}};
    location /d/ { proxy_pass http://` + b + `; }
    location /h/ { proxy_pass http://` + b + `; proxy_hide_header X-Secret; proxy_hide_header x-other; proxy_pass_header Server; proxy_pass_header X-Accel-Charset; }
    location /i/ { proxy_pass http://` + b + `; proxy_ignore_headers X-Accel-Buffering X-Accel-Limit-Rate X-Accel-Expires Expires Cache-Control Set-Cookie Vary X-Accel-Charset; }
}`})
	all := []string{"X-Secret", "X-Other", "X-From-Http", "X-Pad", "X-Accel-Charset", "X-Accel-Buffering", "X-Accel-Expires",
		"X-Accel-Limit-Rate", "X-Kept", "Set-Cookie"}
	hs := scripted("X-Secret:s", "X-Other:o", "X-From-Http:f", "X-Pad:p", "X-Accel-Charset:utf-8", "X-Accel-Buffering:no",
		"X-Accel-Expires:10", "X-Accel-Limit-Rate:100000", "X-Kept:k", "Set-Cookie:a=b", "Server:backend/1", "Expires:Thu, 01 Jan 1970 00:00:01 GMT", "Cache-Control:no-cache", "Vary:Accept")
	for _, path := range []string{"/d/", "/i/"} {
		p.compareHeaders(t, proxyGet(path+"?"+hs), all...)
	}
	p.compareHeaders(t, proxyGet("/h/?"+hs), append(all, "Server")...)
}

// TestDiffProxyCookies: proxy_cookie_domain (strings without case or
// leading dot, regexes, variables), proxy_cookie_path (prefixes, ~ and ~*)
// and proxy_cookie_flags (adding, replacing and removing Secure, HttpOnly
// and SameSite) on Set-Cookie, and off at a lower level.
func TestDiffProxyCookies(t *testing.T) {
	b := scriptBackend(t)
	p := startPair(t, diffConf{HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    proxy_cookie_domain .Backend.Example $host;
    proxy_cookie_domain ~^(\w+)\.other\.example$ $1.front;
    proxy_cookie_path /app/ /;
    proxy_cookie_path ~*^/UP/(.*)$ /up-$1;
    proxy_cookie_flags one secure httponly samesite=strict;
    proxy_cookie_flags ~^t nosecure nohttponly nosamesite;
    proxy_cookie_flags three samesite=lax;
    location / { proxy_pass http://` + b + `; }
    location /off/ { proxy_pass http://` + b + `; proxy_cookie_domain off; proxy_cookie_path off; proxy_cookie_flags off; }
}`})
	cookies := []string{
		"Set-Cookie:a=1; Domain=backend.example; Path=/app/x",
		"Set-Cookie:b=2; domain=.BACKEND.example; path=/other",
		"Set-Cookie:c=3;Domain=www.other.example;Path=/up/z",
		"Set-Cookie:d=4; Path=/app/; Domain=else.example",
		"Set-Cookie:one=1; Secure",
		"Set-Cookie:one=2; SameSite=None; Path=/",
		"Set-Cookie:two=2; Secure; HttpOnly; SameSite=Lax; Max-Age=3",
		"Set-Cookie:three=3; samesite=strict",
		"Set-Cookie:One=5",
		"Set-Cookie:Two=1; Secure",
		"Set-Cookie:plain=1;  Path=/q ; Expires=Thu, 01 Jan 1970 00:00:01 GMT",
	}
	for _, path := range []string{"/", "/off/"} {
		for _, c := range cookies {
			p.compareHeaders(t, proxyGet(path+"?"+scripted(c)), "Set-Cookie")
		}
	}
}

// TestDiffProxyRequestShaping: proxy_method (with variables),
// proxy_pass_request_headers off, proxy_pass_request_body off,
// proxy_set_body and proxy_bind (an address, a variable, empty, off), as
// the backend sees the request.
func TestDiffProxyRequestShaping(t *testing.T) {
	b := scriptBackend(t)
	p := startPair(t, diffConf{HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    location /method/ { proxy_pass http://` + b + `; proxy_method POST; }
    location /mvar/ { proxy_pass http://` + b + `; proxy_method $arg_m; }
    location /nohdr/ { proxy_pass http://` + b + `; proxy_pass_request_headers off; proxy_set_header X-Set yes; }
    location /nobody/ { proxy_pass http://` + b + `; proxy_pass_request_body off; proxy_set_header Content-Length ""; }
    location /setbody/ { proxy_pass http://` + b + `; proxy_set_body "a=$arg_a&uri=$uri"; }
    location /bind/ { proxy_pass http://` + b + `; proxy_bind 127.0.0.2; proxy_socket_keepalive on; }
    location /bindvar/ { proxy_pass http://` + b + `; proxy_bind $arg_ip; }
    location /transparent/ { proxy_pass http://` + b + `; proxy_bind 127.0.0.4 transparent; }
    location /bindoff/ { proxy_pass http://` + b + `; proxy_bind off; }
    location /both/ { proxy_pass http://` + b + `; proxy_pass_request_body off; proxy_set_body "fixed"; proxy_method PUT; }
}`})
	post := func(path, body string) string {
		return "POST " + path + " HTTP/1.1\r\nHost: {{HOST}}\r\nX-Client: c\r\nContent-Type: text/plain\r\nContent-Length: " +
			fmt.Sprint(len(body)) + "\r\nConnection: close\r\n\r\n" + body
	}
	for _, path := range []string{"/method/", "/mvar/?m=PATCH", "/nohdr/", "/nobody/", "/setbody/?a=1", "/both/"} {
		p.compareHeaders(t, proxyGet(path, "X-Client: c"))
		p.compareHeaders(t, post(path, "hello"))
	}
	p.compareHeaders(t, proxyGet("/bind/"))
	p.compareHeaders(t, proxyGet("/bindvar/?ip=127.0.0.3"))
	p.compareHeaders(t, proxyGet("/bindvar/"))
	p.compareHeaders(t, proxyGet("/bindoff/"))
	if os.Geteuid() == 0 { // IP_TRANSPARENT needs CAP_NET_ADMIN
		p.compareHeaders(t, proxyGet("/transparent/"))
	}
	p.compareHeaders(t, "POST /nobody/ HTTP/1.1\r\nHost: {{HOST}}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
}

// logLines waits until the log file in a server's prefix holds n lines
// and returns them.
func logLines(t *testing.T, dir, name string, n int) []string {
	t.Helper()
	var lines []string
	waitFor(t, slow(5*time.Second), fmt.Sprintf("%d lines in %s", n, name), func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "logs", name))
		lines = strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		return len(b) > 0 && len(lines) >= n
	})
	return lines
}

// TestDiffUpstreamVariables: every $upstream_* variable and $proxy_host,
// $proxy_port and $proxy_add_x_forwarded_for in a log_format, for one
// try, a failed try then a good one, no live peer (the group's name), and
// a second pass through error_page (" : " between passes); timings are
// masked.
func TestDiffUpstreamVariables(t *testing.T) {
	b := scriptBackend(t)
	dead := closedPort(t)
	p := startPair(t, diffConf{HTTP: `
log_format up '$upstream_addr|$upstream_status|$upstream_connect_time|$upstream_header_time|$upstream_response_time|'
              '$upstream_response_length|$upstream_bytes_sent|$upstream_bytes_received|'
              '$upstream_http_x_kept|$upstream_cookie_a|$upstream_trailer_x|'
              '$proxy_host|$proxy_port|$proxy_add_x_forwarded_for|$status';
upstream retry { server ` + dead + `; server ` + b + `; }
upstream nolive { server ` + dead + ` down; }
server {
    listen 127.0.0.1:{{PORT}};
    access_log {{DIR}}/logs/up.log up;
    location /one/ { proxy_pass http://` + b + `; }
    location /retry/ { proxy_pass http://retry; }
    location /nolive/ { proxy_pass http://nolive; }
    location /again/ { proxy_pass http://` + b + `; proxy_intercept_errors on; error_page 404 = /one/fallback; }
}`})
	reqs := []string{
		proxyGet("/one/?" + scripted("X-Kept:k", "Set-Cookie:a=1; Path=/", "Server:be")),
		proxyGet("/one/x", "X-Forwarded-For: 10.0.0.1"),
		"POST /one/p HTTP/1.1\r\nHost: {{HOST}}\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
		proxyGet("/retry/?" + scripted("X-Kept:r")),
		proxyGet("/nolive/"),
		proxyGet("/again/?status=404"),
	}
	for i, r := range reqs {
		p.compareHeaders(t, r)
		// A line is written after the answer's last byte: wait for it, so
		// that the next request's line cannot come first.
		logLines(t, p.ng.dir, "up.log", i+1)
		logLines(t, p.gate.dir, "up.log", i+1)
	}
	timing := regexp.MustCompile(`\d+\.\d{3}`)
	ng := logLines(t, p.ng.dir, "up.log", len(reqs))
	ws := logLines(t, p.gate.dir, "up.log", len(reqs))
	for i := range reqs {
		n, w := timing.ReplaceAllString(ng[i], "T"), timing.ReplaceAllString(ws[i], "T")
		if n != w {
			t.Errorf("%s:\n  nginx  %s\n  wsgate %s", firstLine(reqs[i]), n, w)
		}
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestDiffProxyBehaviours: an Upgrade header on a 200 or 426 answer, an
// Expires header sent twice, a 101 to a request that did not ask to
// upgrade, and `Upgrade: websocket` without a key through a location that
// does not act on frames (websocket_frames off), as nginx handles each.
func TestDiffProxyBehaviours(t *testing.T) {
	b := scriptBackend(t)
	p := startPair(t, diffConf{HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    location / { proxy_pass http://` + b + `; }
    location /raw/ { proxy_pass http://` + b + `; proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection upgrade; }
}`})
	for _, q := range []string{
		scripted("Upgrade:h2c") + "&status=200",
		scripted("Upgrade:websocket") + "&status=426",
		scripted("Expires:Thu, 01 Jan 1970 00:00:01 GMT", "Expires:Fri, 01 Jan 2100 00:00:00 GMT"),
		"status=101",
	} {
		p.compareHeaders(t, proxyGet("/?"+q), "Upgrade", "Expires")
	}
	// nginx passes a keyless `Upgrade: websocket` on; wsgate does where it
	// does not act on frames (nginx does not know websocket_frames, so
	// this side is checked on wsgate alone).
	port := freePort(t)
	startGate(t, "pid {{DIR}}/logs/wsgate.pid;\nerror_log {{DIR}}/logs/error.log info;\nevents { worker_connections 64; }\nhttp {\n"+
		"access_log off;\nserver { listen 127.0.0.1:"+fmt.Sprint(port)+"; location / { proxy_pass http://"+b+"; proxy_http_version 1.1; "+
		"proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection upgrade; websocket_frames off; } }\n}\n")
	addr := net.JoinHostPort("127.0.0.1", fmt.Sprint(port))
	r := sendRaw(t, addr, strings.ReplaceAll(proxyGet("/raw", "Upgrade: websocket"), "{{HOST}}", addr))
	if r.Status != 200 || !strings.Contains(string(r.Body), "Upgrade: websocket") {
		t.Errorf("keyless Upgrade with websocket_frames off: %d %q, want 200 from the backend", r.Status, r.Body)
	}
}

// TestProxyDirectivesKeepWebSockets: a WebSocket through a location that
// uses the proxy module's header directives, proxy_bind and
// proxy_socket_keepalive still opens and echoes, and its upstream
// variables are logged.
func TestProxyDirectivesKeepWebSockets(t *testing.T) {
	be := startBackend(t, "ws")
	port := freePort(t)
	g := startGate(t, fmt.Sprintf(`pid {{DIR}}/logs/wsgate.pid;
error_log {{DIR}}/logs/error.log info;
events { worker_connections 64; }
http {
    log_format up '$upstream_addr $upstream_status $upstream_bytes_received $upstream_http_x_backend';
    access_log {{DIR}}/logs/up.log up;
    server {
        listen 127.0.0.1:%d;
        location /ws {
            proxy_pass http://%s;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection upgrade;
            proxy_redirect http://a/ /b/;
            proxy_hide_header X-Secret;
            proxy_pass_header Server;
            proxy_cookie_path / /ws/;
            proxy_cookie_flags ~ secure;
            proxy_ignore_headers X-Accel-Buffering;
            proxy_bind 127.0.0.2;
            proxy_socket_keepalive on;
            proxy_limit_rate 1m;
        }
    }
}
`, port, be.addr))
	c, resp := dial(t, fmt.Sprintf("ws://127.0.0.1:%d/ws", port), nil)
	defer c.Close()
	if resp.Header.Get("X-Backend") != "ws" {
		t.Errorf("101 headers %v", resp.Header)
	}
	for i := range 3 {
		msg := fmt.Sprintf("m%d", i)
		if err := c.WriteMessage(1, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(slow(5 * time.Second)))
		_, got, err := c.ReadMessage()
		if err != nil || string(got) != msg {
			t.Fatalf("echo %d: %q %v", i, got, err)
		}
	}
	c.Close()
	line := logLines(t, g.dir, "up.log", 1)[0]
	if !strings.HasPrefix(line, be.addr+" 101 ") || !strings.HasSuffix(line, " ws") {
		t.Errorf("log line %q, want %s 101 ... ws", line, be.addr)
	}
}

// TestClientAbortCancelsBackend: a client that leaves while the backend
// works on its request has the backend request cancelled (the backend
// sees its connection close), 499 logged, and its limit_conn slot freed
// at once, as nginx does; with proxy_ignore_client_abort on, wsgate still
// accepts the directive. The same backend behaviour is checked on nginx.
func TestClientAbortCancelsBackend(t *testing.T) {
	var cancelled, arrived atomic.Int64
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fast" {
			io.WriteString(w, "fast")
			return
		}
		arrived.Add(1)
		select {
		case <-r.Context().Done():
			cancelled.Add(1)
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	b := srv.Listener.Addr().String()
	p := startPair(t, diffConf{HTTP: `
limit_conn_zone $server_port zone=one:1m;
log_format st '$request_uri $status';
server {
    listen 127.0.0.1:{{PORT}};
    access_log {{DIR}}/logs/st.log st;
    limit_conn one 1;
    location / { proxy_pass http://` + b + `; }
}`})
	for i, addr := range []string{p.nginx, p.wsgate} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
		waitFor(t, slow(5*time.Second), "the backend to get the request", func() bool {
			return arrived.Load() == int64(i+1)
		})
		c.Close()
		waitFor(t, slow(5*time.Second), fmt.Sprintf("%s to cancel the backend request", addr), func() bool { return cancelled.Load() == int64(i+1) })
		// The slot is free at once: the next request is served, not 503.
		if r := sendRaw(t, addr, "GET /fast HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); r.Status != 200 {
			t.Errorf("%s: after the client left, %d; want 200", addr, r.Status)
		}
	}
	for _, dir := range []string{p.ng.dir, p.gate.dir} {
		if l := logLines(t, dir, "st.log", 2); l[0] != "/slow 499" {
			t.Errorf("%s: log %q, want /slow 499", dir, l)
		}
	}
}
