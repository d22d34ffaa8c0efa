package e2e

import (
	"os"
	"path/filepath"
	"strings"
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
		os.MkdirAll(filepath.Dir(p), 0o755)
		if strings.HasSuffix(name, "/") {
			continue // a folder
		}
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
    location /abs/ { rewrite ^ http://example.com/x; }
    location /sch/ { rewrite ^/sch/(.*) $scheme://$host/b/$1?; }
    location /loop/ { rewrite ^/loop/(.*)$ /loop/x$1 last; }
    location /named/ { rewrite "^/named/(?<word>[a-z]+)$" /b/$word last; }
    location /chain/ { rewrite ^/chain/(.*)$ /chain2/$1; rewrite ^/chain2/(.*)$ /b/$1; }
    location /nomatch/ { rewrite ^/zzz /b/ last; return 200 "no match $uri\n"; }
    location ~ "^/re/(?<id>[0-9]+)$" { return 200 "id=$id 1=$1\n"; }
}`})
	for _, req := range []string{
		rq("/srv/s1"), rq("/srv/s1?k=1"),
		rq("/a/foo/42"), rq("/a/foo/bar"),
		rq("/brk/x.txt"), rq("/brk/x.txt?a=1"),
		rq("/q/one"), rq("/q/one?orig=1"), rq("/q/two?orig=1"), rq("/q/three?orig=1"), rq("/q/four?y=7&w=1"),
		rq("/r/x"), rq("/r/x?z=2"), rq("/p/x"), rq("/p/x?z=2"),
		rq("/abs/"), rq("/abs/?a=b"), rq("/sch/y?z=3"),
		rq("/loop/a"),
		rq("/named/hello"), rq("/named/Hello1"),
		rq("/chain/c?d=1"), rq("/nomatch/x"), rq("/re/123"),
	} {
		p.compare(t, req)
	}
	p.bothLog(t, `rewrite or internal redirection cycle while processing "/loop/xxxxxxxxxxxa"`)
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
