package e2e

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Differential tests of ngx_http_rewrite_module and of nginx's internal
// redirects (error_page, try_files, index, named locations, internal,
// limit_except): nginx and wsgate run the same http block and must answer
// the same requests alike.

// rq is a GET request for the differential tests; extra are header lines.
func rq(target string, extra ...string) string {
	return "GET " + target + " HTTP/1.1\r\nHost: {{HOST}}\r\n" + strings.Join(append(extra, ""), "\r\n") + "Connection: close\r\n\r\n"
}

// request is rq with another method.
func request(method, target string, extra ...string) string {
	return method + strings.TrimPrefix(rq(target, extra...), "GET")
}

// siteRoot writes files (path: content) under a new folder that both
// servers can read, and returns the folder.
func siteRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil { // a folder
				t.Fatal(err)
			}
			continue
		}
		os.MkdirAll(filepath.Dir(p), 0o755)
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestDiffRewriteFlagsCapturesArgs(t *testing.T) {
	be := startBackend(t, "be")
	p := startPair(t, diffConf{HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    rewrite ^/srv/(.*)$ /b/$1 last;
    location /a/ { rewrite ^/a/(\w+)/(\d+)$ /b/$2/$1 last; return 200 "not rewritten\n"; }
    location /b/ { return 200 "b uri=$uri args=$args is_args=$is_args 1=$1\n"; }
    location /brk/ { rewrite ^/brk/(.*)$ /files/$1 break; return 200 "not reached\n"; proxy_pass http://` + be.addr + `; }
    location /files/ { return 200 "files location\n"; }
    location /q/ {
        rewrite ^/q/one$ /b/one?x=1 last;
        rewrite ^/q/two$ /b/two? last;
        rewrite ^/q/three$ /b/three last;
        rewrite ^/q/four$ /b/four?x=$arg_y&z=1? last;
    }
    location /r/ { rewrite ^/r/(.*)$ /b/$1 redirect; }
    location /p/ { rewrite ^/p/(.*)$ /b/$1?k=v permanent; }
    location /ea/ { rewrite ^/ea/(.*)$ /b/$1?arg=$1 last; }
    location /abs/ { rewrite ^ http://example.com/x; }
    location /sch/ { rewrite ^/sch/(.*) $scheme://$host/b/$1?; }
    location /loop/ { rewrite ^/loop/(.*)$ /loop/x$1 last; }
    location /emptyrw/ { rewrite ^/emptyrw/(.*)$ $1 last; }
    location /named/ { rewrite "^/named/(?<word>[a-z]+)$" /b/$word last; }
    location /chain/ { rewrite ^/chain/(.*)$ /chain2/$1; rewrite ^/chain2/(.*)$ /b/$1; }
    location /nomatch/ { rewrite ^/zzz /b/ last; return 200 "no match $uri\n"; }
    location ~ "^/re/(?<id>[0-9]+)$" { return 200 "id=$id 1=$1\n"; }
    location ~ ^/keep/(.*)$ { rewrite ^ /b/$1 last; }
    location ~ ^/zero/(.*)$ { if ($uri ~ zero) { return 200 "kept $1\n"; } }
}`})
	for _, req := range []string{
		rq("/srv/s1"), rq("/srv/s1?k=1"),
		rq("/a/foo/42"), rq("/a/foo/bar"),
		rq("/brk/x.txt"), rq("/brk/x.txt?a=1"),
		rq("/q/one"), rq("/q/one?orig=1"), rq("/q/two?orig=1"), rq("/q/three?orig=1"), rq("/q/four?y=7&w=1"),
		rq("/r/x"), rq("/r/x?z=2"), rq("/p/x"), rq("/p/x?z=2"), rq("/r/a%20b"), rq("/r/a+b%26c"), rq("/r/%C3%A9t%C3%A9"),
		rq("/ea/a%20b"), rq("/ea/a+b"), rq("/ea/plain"),
		rq("/abs/"), rq("/abs/?a=b"), rq("/sch/y?z=3"),
		rq("/loop/a"), rq("/emptyrw/"),
		rq("/named/hello"), rq("/named/Hello1"),
		rq("/chain/c?d=1"), rq("/nomatch/x"), rq("/re/123"), rq("/keep/it?q=1"), rq("/zero/x"),
	} {
		p.compare(t, req)
	}
	p.bothLog(t, `rewrite or internal redirection cycle while processing "/loop/xxxxxxxxxxxa"`)
	p.bothLog(t, `the rewritten URI has a zero length, client: 127.0.0.1`)
}

func TestDiffIfOperators(t *testing.T) {
	root := siteRoot(t, map[string]string{"t/file.txt": "f\n", "t/dir/": "", "x/run.sh": "#!/bin/sh\n", "x/plain.txt": "p\n"})
	p := startPair(t, diffConf{Root: root, HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    root {{ROOT}};
    location /t/ {
        if (-f {{ROOT}}$uri) { return 200 "file\n"; }
        if (-d {{ROOT}}$uri) { return 200 "dir\n"; }
        if (!-e {{ROOT}}$uri) { return 200 "none\n"; }
        return 200 "other\n";
    }
    location /t2/ {
        if (!-f {{ROOT}}/t/file.txt) { return 200 "bad\n"; }
        if (!-d {{ROOT}}/t/dir) { return 200 "bad\n"; }
        if (-e {{ROOT}}/t/nothing) { return 200 "bad\n"; }
        if (-d {{ROOT}}/t/file.txt) { return 200 "bad\n"; }
        return 200 "negations\n";
    }
    location /x/ {
        if (-x {{ROOT}}$uri) { return 200 "exec\n"; }
        if (!-x {{ROOT}}$uri) { return 200 "noexec\n"; }
    }
    location /ops {
        set $v "";
        if ($arg_a = "yes") { return 200 "eq\n"; }
        if ($arg_a != "") { set $v "ne-$arg_a"; }
        if ($http_x_t ~ ^ab(c+)$) { return 200 "re $1\n"; }
        if ($http_x_t ~* ^XY(?<rest>.*)) { return 200 "rei $rest\n"; }
        if ($http_x_t !~ ^z) { set $v "${v}notz"; }
        if ($http_x_t !~* ^Q) { set $v "${v}-notq"; }
        if ($arg_zero) { return 200 "truthy $arg_zero\n"; }
        if ($v) { return 200 "var $v\n"; }
        return 200 "empty\n";
    }
    location /brk {
        set $a 1;
        if ($arg_b) { set $a 2; break; }
        set $a 3;
        return 200 "a=$a\n";
    }
}`})
	for _, req := range []string{
		rq("/t/file.txt"), rq("/t/dir"), rq("/t/dir/"), rq("/t/missing"),
		rq("/t2/"), rq("/x/run.sh"), rq("/x/plain.txt"),
		rq("/ops?a=yes"), rq("/ops?a=no"), rq("/ops", "X-T: abccc"), rq("/ops", "X-T: xyZ"),
		rq("/ops", "X-T: zed"), rq("/ops", "X-T: q"), rq("/ops?zero=0", "X-T: z"), rq("/ops?zero=1", "X-T: z"),
		rq("/ops", "X-T: Q"), rq("/brk"),
	} {
		p.compare(t, req)
	}
}

// bothLog waits until both servers' error logs hold line.
func (p *diffPair) bothLog(t *testing.T, line string) {
	t.Helper()
	waitFor(t, slow(5*time.Second), "nginx to log "+line, func() bool { return strings.Contains(p.ng.errorLog(), line) })
	waitFor(t, slow(5*time.Second), "wsgate to log "+line, func() bool {
		b, _ := os.ReadFile(filepath.Join(p.gate.dir, "logs", "error.log"))
		return strings.Contains(string(b), line)
	})
}

func TestDiffErrorPage(t *testing.T) {
	be := startBackend(t, "be")
	p := startPair(t, diffConf{HTTP: `
error_page 404 /err/404;
server {
    listen 127.0.0.1:{{PORT}};
    location /err/ { internal; return 200 "custom page $uri $request_method\n"; }
    location /plain/ { return 404; }
    location /code/ { error_page 404 =200 /err/404; return 404; }
    location /eq/ { error_page 404 = @fallback; return 404; }
    location /eqcode/ { error_page 404 =410 @fallback; return 404; }
    location @fallback { return 200 "fallback $uri $request_method\n"; }
    location /url/ { error_page 404 http://example.com/missing; return 404; }
    location /url301/ { error_page 404 =301 https://example.com/moved; return 404; }
    location /deny/ { deny all; error_page 403 /err/403; }
    location /ret/ { error_page 418 /err/418; return 418; }
    location /retbody/ { error_page 418 /err/418; return 418 "body\n"; }
    location /chain/ { error_page 404 /nothing-here; return 404; }
    location /nothing-here { return 404; }
    location /rec/ { recursive_error_pages on; error_page 404 /rec2/missing; return 404; }
    location /rec2/ { error_page 404 /err/rec2; return 404; }
    location /norec/ { error_page 404 /norec2/x; return 404; }
    location /norec2/ { error_page 404 /err/norec2; return 404; }
    location /args/ { error_page 404 /echo?from=ep; return 404; }
    location = /echo { return 200 "echo $uri $args\n"; }
    location /dead/ { error_page 502 504 /err/50x; proxy_pass http://127.0.0.1:1; }
    location /icept/ { proxy_intercept_errors on; error_page 404 /err/icept; proxy_pass http://` + be.addr + `; }
    location /noicept/ { error_page 404 /err/404; proxy_pass http://` + be.addr + `; }
    location /method/ { error_page 405 = /echo; }
    location /big/ { client_max_body_size 10; error_page 413 /err/413; proxy_pass http://` + be.addr + `; }
    location /postdeny/ { deny all; error_page 403 = @tobackend; }
    location /postep/ { error_page 404 /be/; return 404; }
    location /denyproxy/ { deny all; error_page 403 @tobackend; }
    location /be/ { proxy_pass http://` + be.addr + `; }
    location @tobackend { proxy_pass http://` + be.addr + `; }
    location /nopage/ { return 418; }
    location /inif/ { if ($arg_x) { error_page 404 /err/inif; } return 404; }
    location /loop/ { error_page 404 /loop/; return 404; }
    location /toredir/ { error_page 404 /redir/; return 404; }
    location /redir/ { return 301 /elsewhere; }
    location /totext/ { error_page 404 /text/; return 404; }
    location /text/ { return 200 "text answer\n"; }
}`})
	for _, req := range []string{
		rq("/plain/missing"), rq("/err/404"), rq("/code/missing"), rq("/eq/missing"), rq("/eqcode/missing"),
		rq("/url/missing"), rq("/url301/missing"), rq("/deny/x"), rq("/ret/"), rq("/retbody/"),
		rq("/chain/missing"), rq("/rec/missing"), rq("/norec/x"), rq("/args/missing?orig=1"), rq("/dead/x"),
		rq("/icept/x"), rq("/noicept/x"), request("DELETE", "/method/x"), request("HEAD", "/code/missing"),
		request("POST", "/big/", "Content-Length: 100"), rq("/nopage/"), rq("/inif/?x=1"), rq("/inif/"),
		"POST /postdeny/x HTTP/1.1\r\nHost: {{HOST}}\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
		"POST /postep/x HTTP/1.1\r\nHost: {{HOST}}\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
		rq("/denyproxy/x?q=1"), rq("/loop/"), rq("/toredir/"), rq("/totext/"), request("POST", "/eq/missing", "Content-Length: 0"), request("PUT", "/code/x", "Content-Length: 0"),
	} {
		p.compare(t, req)
	}
}

func TestDiffTryFilesNamedInternal(t *testing.T) {
	be := startBackend(t, "app")
	root := siteRoot(t, map[string]string{"static/app.js": "js\n", "docs/guide/": "", "only/sub/": "", "f.txt": "f\n"})
	p := startPair(t, diffConf{Root: root, HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    root {{ROOT}};
    location / { try_files $uri $uri/ @app; }
    location @app { proxy_pass http://` + be.addr + `; }
    location /static/ { try_files $uri @app; proxy_pass http://` + be.addr + `; }
    location /strict/ { try_files $uri =404; }
    location /teapot/ { try_files /nope =418; }
    location /q/ { try_files /nope /echo?via=tf&$args; }
    location /q2/ { try_files /nope /echo; }
    location = /echo { return 200 "echo $uri $args\n"; }
    location /dirs/ { try_files /docs/guide/ =403; proxy_pass http://` + be.addr + `; }
    location /only/ { try_files $uri/ =404; proxy_pass http://` + be.addr + `; }
    location /hidden/ { internal; return 200 "hidden\n"; }
    location /tohidden/ { rewrite ^ /hidden/ last; }
    location /named/ { error_page 404 = @app; return 404; }
    location /tfloop/ { try_files /nope /tfloop/again; }
    location /nonamed/ { try_files /nope @missing; }
    location /evil/ { if ($arg_x) { set $t 1; } try_files /nope =418; }
}`})
	for _, req := range []string{
		rq("/static/app.js?v=1"), rq("/static/missing.js?x=1"), rq("/f.txt/"), rq("/only/sub?x=1"), rq("/only/sub/?x=1"),
		rq("/strict/missing"), rq("/teapot/x"), rq("/q/x?a=b"), rq("/q2/x?a=b"),
		rq("/dirs/x"), rq("/only/"), rq("/only/file"),
		rq("/hidden/"), rq("/tohidden/x"), rq("/named/x?k=v"), rq("/tfloop/x"), rq("/nonamed/x"), rq("/evil/a"), rq("/evil/a?x=1"),
		request("POST", "/static/missing.js", "Content-Length: 0"),
	} {
		p.compare(t, req)
	}
	p.bothLog(t, `rewrite or internal redirection cycle while internally redirecting to "/tfloop/again"`)
	p.bothLog(t, `could not find named location "@missing"`)
}

// TestDiffRedirectsWithStatic covers what needs the static module too: the
// index file reached by an internal redirect, try_files serving a file,
// error_page answering with a file.
func TestDiffRedirectsWithStatic(t *testing.T) {
	root := siteRoot(t, map[string]string{"index.html": "home\n", "docs/index.html": "docs\n", "spa/index.html": "spa shell\n",
		"err/404.html": "custom 404\n", "php/index.php": "<?php ?>\n", "php/": "", "empty/": ""})
	p := startPair(t, diffConf{Root: root, HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    root {{ROOT}};
    error_page 404 /err/404.html;
    location / { try_files $uri $uri/ =404; }
    location /spa/ { try_files $uri $uri/ /spa/index.html; }
    location /php/ { index index.php; }
    location ~ \.php$ { return 200 "php handler for $uri $request_method\n"; }
    location /empty/ { }
    set $idx index.html;
    location /docs/ { index nothing.html $idx; }
}`})
	for _, req := range []string{
		rq("/"), rq("/docs/"), rq("/docs?a=1"), rq("/spa/deep/link?p=1"), rq("/spa/"), rq("/missing"), rq("/php/?q=1"),
		request("POST", "/php/?q=1", "Content-Length: 0"), request("DELETE", "/php/"), request("POST", "/empty/", "Content-Length: 0"),
	} {
		p.compare(t, req)
	}
}
func TestDiffLimitExcept(t *testing.T) {
	be, be2 := startBackend(t, "be"), startBackend(t, "writer")
	p := startPair(t, diffConf{HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    location /ro/ {
        limit_except GET { deny all; }
        proxy_pass http://` + be.addr + `;
    }
    location /lan/ {
        limit_except GET POST { allow 127.0.0.1; deny all; }
        proxy_pass http://` + be.addr + `;
    }
    location /other/ {
        limit_except PUT { allow 10.0.0.0/8; deny all; }
        return 200 "other $request_method\n";
    }
    location /split/ {
        limit_except GET { proxy_pass http://` + be2.addr + `; }
        proxy_pass http://` + be.addr + `;
    }
}
server {
    listen 127.0.0.1:{{PORT}};
    server_name tf.test;
    try_files /nope /fallback?from=server;
    location = /fallback { return 200 "fallback $uri $args\n"; }
    location /x/ { return 200 "x\n"; }
}`})
	for _, req := range []string{
		rq("/ro/x"), request("HEAD", "/ro/x"), request("POST", "/ro/x", "Content-Length: 0"), request("DELETE", "/ro/x"),
		request("PUT", "/lan/x", "Content-Length: 0"), request("POST", "/lan/x", "Content-Length: 0"),
		rq("/other/"), request("PUT", "/other/", "Content-Length: 0"),
		rq("/split/a"), request("POST", "/split/a", "Content-Length: 0"), request("HEAD", "/split/a"),
		"GET /other?a=1 HTTP/1.1\r\nHost: tf.test\r\nConnection: close\r\n\r\n",
		"GET /x/y HTTP/1.1\r\nHost: tf.test\r\nConnection: close\r\n\r\n",
	} {
		p.compare(t, req)
	}
}

// TestDiffWebSocketThroughRedirects opens WebSockets through URIs that a
// rewrite, a try_files fallback and a named location send to a proxied
// location, on both servers, and checks that refused handshakes answer
// through error_page alike.
func TestDiffWebSocketThroughRedirects(t *testing.T) {
	be := startBackend(t, "ws")
	proxied := `proxy_pass http://` + be.addr + `;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection "upgrade";`
	p := startPair(t, diffConf{Root: t.TempDir(), HTTP: `
limit_req_zone $binary_remote_addr zone=once:1m rate=1r/m;
server {
    listen 127.0.0.1:{{PORT}};
    root {{ROOT}};
    rewrite ^/old-socket$ /socket last;
    location /limited/ { limit_req zone=once; limit_req_status 429; error_page 429 /err/limited; ` + proxied + ` }
    location = /socket { ` + proxied + ` }
    location /app/ { try_files $uri @backend; }
    location @backend { ` + proxied + ` }
    location /v1/ { rewrite ^/v1/(.*)$ /socket break; ` + proxied + ` }
    location /closed/ { deny all; error_page 403 /err/closed; ` + proxied + ` }
    location /down/ { error_page 502 = @maintenance; proxy_pass http://127.0.0.1:1; proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "upgrade"; }
    location @maintenance { return 503 "maintenance\n"; }
    location /failover/ { error_page 502 = @backend; proxy_pass http://127.0.0.1:1; proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "upgrade"; }
    location /err/ { internal; return 200 "refused page\n"; }
}`})
	for _, addr := range []string{p.nginx, p.wsgate} {
		for _, path := range []string{"/old-socket", "/app/live?room=1", "/v1/feed", "/failover/x"} {
			c, _ := dial(t, "ws://"+addr+path, nil)
			echo(t, c, "through "+path)
			c.Close()
		}
	}
	upgrade := []string{"Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="}
	p.compare(t, rq("/closed/x", upgrade...))
	p.compare(t, rq("/down/x", upgrade...))
	p.compare(t, rq("/limited/first"))
	p.compare(t, rq("/limited/x", upgrade...))
	if strings.Contains(p.gate.stderr.String(), "DATA RACE") { // with WSGATE_E2E_RACE=1
		t.Fatalf("wsgate raced:\n%s", p.gate.stderr)
	}
}

// TestDiffAppConfigs runs configurations shaped like the ones WebSocket
// applications publish for nginx (Home Assistant, Jupyter, code-server,
// Nextcloud with its push service, Gitea in a sub-path, Grafana in a
// sub-path, Mattermost),
// written for these tests, with one backend standing in for the app.
func TestDiffAppConfigs(t *testing.T) {
	be := startBackend(t, "app")
	ws := `proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;`
	head := `map $http_upgrade $connection_upgrade { default upgrade; '' close; }
upstream app { server ` + be.addr + `; }
`
	apps := []struct {
		name   string
		server string
		reqs   []string
		socket string
	}{
		{"homeassistant", `
    location / { proxy_pass http://app; ` + ws + ` }
    location /api/websocket { proxy_pass http://app/api/websocket; ` + ws + ` }
    location = /robots.txt { return 200 "User-agent: *\nDisallow: /\n"; }
    location /local/ { if ($remote_addr !~ "^(10\.|192\.168\.)") { return 301 https://example.com/; } proxy_pass http://app; }`,
			[]string{rq("/"), rq("/robots.txt"), rq("/local/x"), rq("/api/states?x=1")}, "/api/websocket"},
		{"jupyter", `
    location / { proxy_pass http://app; proxy_set_header Host $host; }
    location ~* /(api/kernels/[^/]+/(channels|iopub|shell|stdin)|terminals/websocket)/? { proxy_pass http://app; ` + ws + ` proxy_read_timeout 86400; }
    location ~ /.well-known { allow all; return 404; }`,
			[]string{rq("/tree"), rq("/api/kernels/abc/channels?session_id=1"), rq("/.well-known/x")}, "/api/kernels/abc/channels?session_id=1"},
		{"code-server", `
    location = /code { return 301 /code/; }
    location /code/ { proxy_pass http://app/; ` + ws + ` proxy_set_header Accept-Encoding gzip; }
    location / { return 302 /code/; }`,
			[]string{rq("/code"), rq("/code/?folder=/x"), rq("/"), rq("/other?a=1")}, "/code/stable-123"},
		{"nextcloud", `
    root {{ROOT}};
    index index.php index.html /index.php$request_uri;
    error_page 403 /core/templates/403.php;
    error_page 404 /core/templates/404.php;
    location = / { if ($http_user_agent ~ ^DavClnt) { return 302 /remote.php/webdav/$is_args$args; } try_files $uri $uri/ /index.php$request_uri; }
    location = /robots.txt { allow all; return 200 "robots\n"; }
    location ^~ /.well-known {
        location = /.well-known/carddav { return 301 /remote.php/dav/; }
        location = /.well-known/caldav  { return 301 /remote.php/dav/; }
        location /.well-known/acme-challenge { try_files $uri $uri/ =404; }
        return 301 /index.php$request_uri;
    }
    location ~ ^/(?:build|tests|config|lib|3rdparty|templates|data)(?:$|/) { return 404; }
    location ~ ^/(?:\.|autotest|occ|issue|indie|db_|console) { return 404; }
    location ~ \.php(?:$|/) { return 200 "php: uri=$uri args=$args\n"; }
    location ~ \.(?:css|js|svg|gif|png|jpg|ico)$ { try_files $uri /index.php$request_uri; }
    location /remote { return 301 /remote.php$request_uri; }
    location ^~ /push/ { proxy_pass http://app/; ` + ws + ` }
    location / { try_files $uri $uri/ /index.php$request_uri; }`,
			[]string{rq("/"), rq("/", "User-Agent: DavClnt"), rq("/?x=1", "User-Agent: DavClnt"), rq("/robots.txt"),
				rq("/.well-known/carddav"), rq("/.well-known/webfinger?resource=x"), rq("/.well-known/acme-challenge/tok"),
				rq("/data/secret"), rq("/.htaccess"), rq("/apps/files/?dir=/"), rq("/css/missing.css?v=1"),
				rq("/remote/dav"), rq("/core/templates/404.php"), rq("/index.php/login")}, "/push/ws"},
		{"gitea", `
    location /git/ {
        client_max_body_size 512M;
        rewrite ^/git/(.*)$ /$1 break;
        proxy_pass http://app;
        ` + ws + `
    }
    location = /git { return 301 /git/; }
    location / { return 404; }`,
			[]string{rq("/git"), rq("/git/user/repo?tab=1"), rq("/nowhere")}, "/git/-/ws"},
		{"grafana", `
    location /grafana/ { rewrite ^/grafana/(.*) /$1 break; proxy_set_header Host $host; proxy_pass http://app; }
    location /grafana/api/live/ { rewrite ^/grafana/(.*) /$1 break; proxy_pass http://app; ` + ws + ` }
    location = / { return 302 /grafana/; }`,
			[]string{rq("/"), rq("/grafana/"), rq("/grafana/d/abc?orgId=1&from=now-6h"), rq("/grafana/public/build/app.js")}, "/grafana/api/live/ws"},
		{"mattermost", `
    location ~ /api/v[0-9]+/(users/)?websocket$ { proxy_pass http://app; ` + ws + ` client_max_body_size 50M; proxy_read_timeout 600s; }
    location / { proxy_pass http://app; proxy_set_header Host $host; proxy_intercept_errors on; error_page 404 = @spa; }
    location @spa { return 200 "spa shell\n"; }`,
			[]string{rq("/login"), rq("/api/v4/users/me")}, "/api/v4/websocket"},
	}
	for _, app := range apps {
		t.Run(app.name, func(t *testing.T) {
			p := startPair(t, diffConf{Root: siteRoot(t, map[string]string{"css/": ""}), HTTP: head + `
server {
    listen 127.0.0.1:{{PORT}};
    server_name _;` + app.server + `
}`})
			for _, req := range app.reqs {
				p.compare(t, req)
			}
			for _, addr := range []string{p.nginx, p.wsgate} {
				c, _ := dial(t, "ws://"+addr+app.socket, nil)
				echo(t, c, app.name)
				c.Close()
			}
		})
	}
}

// TestDiffRewriteLogAndWarnings checks the error-log lines of rewrite_log
// and uninitialized_variable_warn against nginx's, and that `return 444`
// closes the connection without an answer on both.
func TestDiffRewriteLogAndWarnings(t *testing.T) {
	p := startPair(t, diffConf{HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    location /old/ { rewrite_log on; if ($uri ~* ^/OLD/(x)) { set $a 1; } if ($uri !~ zzz) { set $b 1; } rewrite ^/old/(.*)$ /new/$1?k=v; rewrite ^/nomatch /x; }
    location /new/ { return 200 "new $uri $args\n"; }
    location /warn { return 200 "[$never_set]\n"; }
    location /quiet { uninitialized_variable_warn off; return 200 "[$quiet_var]\n"; }
    location /close { return 444; }
    location /if444 { if ($arg_drop) { return 444; } return 200 "kept\n"; }
    location /decl { set $never_set 1; set $quiet_var 1; }
    location ~ ^/nc/(?<num>[0-9]+)$ { return 200 "$num\n"; }
    location /readnum { return 200 "[$num]\n"; }
}`})
	for _, req := range []string{rq("/old/x?a=1"), rq("/warn"), rq("/quiet"), rq("/if444"), rq("/readnum"), rq("/nc/42")} {
		p.compare(t, req)
	}
	p.bothLog(t, `[notice]`)
	p.bothLog(t, `"^/old/(.*)$" matches "/old/x", client: 127.0.0.1, server: , request: "GET /old/x?a=1 HTTP/1.1"`)
	p.bothLog(t, `rewritten data: "/new/x", args: "k=v&a=1", client: 127.0.0.1`)
	p.bothLog(t, `"^/nomatch" does not match "/new/x", client: 127.0.0.1`)
	p.bothLog(t, `using uninitialized "never_set" variable`)
	p.bothLog(t, `"^/OLD/(x)" matches "/old/x", client: 127.0.0.1`)
	p.bothLog(t, `"zzz" does not match "/old/x", client: 127.0.0.1`)
	for _, addr := range []string{p.nginx, p.wsgate} {
		for _, target := range []string{"/close", "/if444?drop=1"} {
			c, err := net.DialTimeout("tcp", addr, slow(5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(slow(10 * time.Second)))
			io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: x\r\n\r\n")
			b, err := io.ReadAll(c)
			c.Close()
			if len(b) != 0 || err != nil {
				t.Errorf("%s%s: return 444 answered %q (%v), want a closed connection", addr, target, b, err)
			}
		}
	}
	b, _ := os.ReadFile(filepath.Join(p.gate.dir, "logs", "error.log"))
	if strings.Contains(string(b), "quiet_var") || strings.Contains(string(b), `"num"`) {
		t.Errorf("uninitialized_variable_warn off, or a named capture, still warns:\n%s", b)
	}
}

// TestDiffServerLevelRewrite covers the server rewrite phase: rewrite and
// if at server level, break there, and a server-level redirect.
func TestDiffServerLevelRewrite(t *testing.T) {
	p := startPair(t, diffConf{HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    if ($http_x_legacy) { rewrite ^/(.*)$ /legacy/$1 last; }
    if ($arg_stop) { set $who server; break; }
    rewrite ^/moved/(.*)$ /new/$1 permanent;
    rewrite ^/short/(.*)$ /new/$1;
    location /legacy/ { return 200 "legacy $uri\n"; }
    location /new/ { return 200 "new $uri $args who=$who\n"; }
    location / { set $who location; return 200 "root $uri who=$who\n"; }
}`})
	for _, req := range []string{
		rq("/a", "X-Legacy: 1"), rq("/moved/x?y=1"), rq("/short/x?y=1"), rq("/short/x?stop=1"), rq("/other?stop=1"), rq("/other"),
	} {
		p.compare(t, req)
	}
}

// TestErrorPageForRefusedOrigin: wsgate's own handshake refusals (here
// websocket_allowed_origins, which nginx lacks) answer through error_page
// like any other error, and cost no backend connection.
func TestErrorPageForRefusedOrigin(t *testing.T) {
	be := startBackend(t, "ws")
	port := freePort(t)
	startGate(t, `pid {{DIR}}/logs/wsgate.pid;
error_log {{DIR}}/logs/error.log info;
events { worker_connections 64; }
http {
    access_log off;
    server {
        listen 127.0.0.1:`+strconv.Itoa(port)+`;
        location /socket {
            websocket_allowed_origins https://app.example.com;
            error_page 403 = @refused;
            proxy_pass http://`+be.addr+`;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }
        location @refused { return 403 "origin refused: $http_origin\n"; }
    }
}`)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	status, _, body := rawRequest(t, addr, "GET /socket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: https://evil.example.com\r\n\r\n")
	if status != 403 || body != "origin refused: https://evil.example.com\n" {
		t.Fatalf("refused handshake: %d %q, want 403 and the error page", status, body)
	}
	if n := be.upgrades.Load(); n != 0 {
		t.Fatalf("the backend saw %d handshakes", n)
	}
	c, _ := dial(t, "ws://"+addr+"/socket", http.Header{"Origin": {"https://app.example.com"}})
	echo(t, c, "allowed")
}

// TestDiffReturnForms covers return's forms and error pages answered from
// the server rewrite phase.
func TestDiffReturnForms(t *testing.T) {
	p := startPair(t, diffConf{HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    error_page 404 /err/$uri?via=ep;
    error_page 410 =301 /moved;
    if ($arg_gone) { return 410; }
    location = /empty200 { return 200; }
    location = /nocontent { return 204; }
    location = /fail { return 500; }
    location = /relative { return 302 /target?x=1; }
    location = /url { return https://example.com$request_uri; }
    location = /scheme { return 301 $scheme://$host/s$is_args$args; }
    location = /text { return 403 "forbidden text\n"; }
    location = /var { return 200 "$request_method $uri $args\n"; }
    location = /notfound { return 404; }
    location /err/ { return 200 "error page for $uri $args\n"; }
    location = /moved { return 200 "moved page\n"; }
}`})
	for _, req := range []string{
		rq("/empty200"), rq("/nocontent"), rq("/fail"), rq("/relative"), rq("/url?a=1"), rq("/scheme?a=1"), rq("/scheme"),
		rq("/text"), rq("/var?x=y"), rq("/notfound"), rq("/anything?gone=1"), request("HEAD", "/var"),
	} {
		p.compare(t, req)
	}
}

// TestInterceptedErrorsFreeBackends: a backend answer replaced by an error
// page (proxy_intercept_errors) is not relayed, its connection is closed
// rather than kept, and nothing is left open once the clients are done.
func TestInterceptedErrorsFreeBackends(t *testing.T) {
	var hits atomic.Int64
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(404)
		io.WriteString(w, strings.Repeat("backend's own 404 page ", 500))
	}))
	defer be.Close()
	port := freePort(t)
	g := startGate(t, `pid {{DIR}}/logs/wsgate.pid;
error_log {{DIR}}/logs/error.log info;
events { worker_connections 64; }
http {
    access_log off;
    upstream app { server `+be.Listener.Addr().String()+`; keepalive 4; }
    server {
        listen 127.0.0.1:`+strconv.Itoa(port)+`;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_intercept_errors on;
            error_page 404 /notfound;
        }
        location = /notfound { return 404 "wsgate's page\n"; }
    }
}`)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(g.dir, "logs", "error.log"))
			t.Logf("wsgate:\n%s\n%s", g.stderr, b)
		}
	})
	base := g.fdCount(t)
	for i := 0; i < 20; i++ {
		status, _, body := rawRequest(t, addr, "GET /missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if status != 404 || body != "wsgate's page\n" {
			t.Fatalf("intercepted answer: %d %q", status, body)
		}
	}
	if n := hits.Load(); n != 20 {
		t.Fatalf("the backend saw %d requests, want 20", n)
	}
	g.waitFDs(t, base)
}

// TestDiffProxiedAfterRedirect checks the URI a backend receives after
// rewrite (with and without break), try_files and error_page, and that an
// if block that matched still proxies as its location.
func TestDiffProxiedAfterRedirect(t *testing.T) {
	be := startBackend(t, "be")
	p := startPair(t, diffConf{HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    location /brk2/ { rewrite ^/brk2/(.*)$ /new/$1 break; proxy_pass http://` + be.addr + `/prefix/; }
    location /brk3/ { rewrite ^/brk3/(.*)$ /brk3/x$1 break; proxy_pass http://` + be.addr + `/prefix/; }
    location /tf/ { try_files /nope @x; }
    location @x { proxy_pass http://` + be.addr + `; }
    location /ep/ { error_page 404 /tf/y?k=1; return 404; }
    location /enc/ { rewrite ^/enc/(.*)$ /b/$1 break; proxy_pass http://` + be.addr + `; }
    location /ifp/ { if ($arg_x) { add_header X-If 1; } proxy_pass http://` + be.addr + `; }
    location /nest/ { location /nest/in/ { } proxy_pass http://` + be.addr + `; }
}`})
	for _, r := range []string{rq("/brk2/a?q=1"), rq("/brk3/a?q=1"), rq("/tf/a%20b?z=1"), rq("/ep/x?o=1"), rq("/enc/a%20b?q=1"), rq("/enc/a+b%3Fc"),
		rq("/ifp/a?x=1"), rq("/ifp/a"), rq("/nest/in/x")} {
		p.compare(t, r)
	}
}

// TestDiffLimitsAcrossRedirects: limit_req decides once per request; a
// location reached by an internal redirect applies its limit only when
// none decided before, as nginx.
func TestDiffLimitsAcrossRedirects(t *testing.T) {
	p := startPair(t, diffConf{HTTP: `
limit_req_zone $binary_remote_addr zone=a:1m rate=1r/m;
limit_req_zone $binary_remote_addr zone=b:1m rate=1r/m;
server {
    listen 127.0.0.1:{{PORT}};
    limit_req_status 429;
    location /free/ { rewrite ^ /limited/ last; }
    location /limited/ { limit_req zone=a; return 200 "limited $limit_req_status\n"; }
    location /first/ { limit_req zone=b; try_files /nope /second/; }
    location /second/ { limit_req zone=a; return 200 "second $limit_req_status\n"; }
}`})
	for _, req := range []string{rq("/free/"), rq("/free/"), rq("/first/"), rq("/first/")} {
		p.compare(t, req)
	}
}
