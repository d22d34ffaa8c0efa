package e2e

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Differential tests of nginx's regular expressions (PCRE) in location,
// map, if, rewrite and server_name: patterns RE2 runs after translation,
// and patterns with look-around, back-references and atomic groups that
// the backtracking engine runs, must match as nginx's PCRE does.

// TestDiffRegexLocationsNextcloudShape: the location shapes of Nextcloud's
// published configuration: (?:$|/) alternatives, a negative look-ahead
// rewrite, ~* suffixes and named captures in all three syntaxes. (PCRE's
// $ before a final newline cannot be reached through $uri: wsgate
// refuses %0A in a path with 400; the regex package's tests cover it.)
func TestDiffRegexLocationsNextcloudShape(t *testing.T) {
	p := startPair(t, diffConf{HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    location = /robots.txt { return 200 "robots\n"; }
    location ~ ^/(?:build|tests|config|lib|3rdparty|templates|data)(?:$|/) { return 404; }
    location ~ ^/(?:\.|autotest|occ|issue|indie|db_|console) { return 403; }
    location ~ \.php(?:$|/) {
        rewrite ^/(?!index|remote|public|cron|core\/ajax\/update|status|ocs\/v[12]|updater\/.+|oc[ms]-provider\/.+|.+\/richdocumentscode\/proxy) /index.php$request_uri;
        return 200 "php uri=$uri\n";
    }
    location ~ ^/(?<app>[a-z]+)/(?'ver'v\d+)/(?P<rest>.*)$ { return 200 "app=$app ver=$ver rest=$rest 1=$1 3=$3\n"; }
    location ~ ^/atomic/(?>a+)b$ { return 200 "atomic\n"; }
    location ~ ^/poss/a++b$ { return 200 "possessive\n"; }
    location ~ ^/sp\s(x)$ { return 200 "space $1\n"; }
    location ~ ^/(?<=/)lb/(\w+)(?<!\.bak)$ { return 200 "lookbehind $1\n"; }
    location ~* \.(?:css|js|svg|gif)$ { return 200 "static $uri\n"; }
    location / { return 200 "root $uri\n"; }
}`})
	for _, target := range []string{
		"/robots.txt", "/build", "/build/x", "/builder", "/data/", "/datax", "/.htaccess", "/occ",
		"/index.php", "/index.php/apps/files", "/foo.php", "/status.php", "/ocs/v2.php/x", "/ocs/v3.php/x",
		"/updater/x.php", "/x/y/richdocumentscode/proxy.php", "/core/ajax/update.php", "/remote.php/dav",
		"/ab/v2/rest/of", "/ab/vx/rest", "/app/x.CSS", "/a.js",
		"/atomic/aaab", "/atomic/aaa", "/poss/aab", "/sp%0Bx", "/sp%20x", "/sp%0Cx", "/lb/name", "/lb/name.bak",
	} {
		p.compare(t, rq(target))
	}
}

// TestDiffRegexMap: map keys with regexes: captures, named captures,
// look-ahead, ~* and the default.
func TestDiffRegexMap(t *testing.T) {
	p := startPair(t, diffConf{HTTP: `
map $uri $m {
    default "none";
    ~^/user/(?<uid>\d+)(?=/profile) "profile-$uid";
    ~*^/ITEM/(\w+)$ "item-$1";
    ~^/(?!skip)(?P<first>[^/]+)/ "first-$first";
    ~^/(\w+)-\1$ "twice-$1";
}
server {
    listen 127.0.0.1:{{PORT}};
    location / { return 200 "m=$m\n"; }
}`})
	for _, target := range []string{"/user/42/profile", "/user/42/other", "/item/abc", "/ITEM/x-y", "/skip/a", "/one/two",
		"/ab-ab", "/ab-ac", "/"} {
		p.compare(t, rq(target))
	}
}

// TestDiffRegexIfRewrite: if with ~* and look-ahead, back-references,
// and rewrites with look-ahead.
func TestDiffRegexIfRewrite(t *testing.T) {
	p := startPair(t, diffConf{HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    location /if/ {
        if ($http_user_agent ~* "^(?!.*bot).*MOZILLA") { return 200 "browser\n"; }
        if ($arg_x ~ "^(\w)\1$") { return 200 "double $1\n"; }
        if ($arg_y !~* "^[a-z]+$") { return 200 "not letters\n"; }
        return 200 "other\n";
    }
    location /rw/ {
        rewrite ^/rw/(?!keep)(\w+)/(\w+)$ /done/$2/$1 last;
        rewrite ^/rw/((?:ab)+)$ /done/ab/$1 last;
        rewrite ^/rw/(.)\1(.*)$ /done/double/$2 redirect;
        return 200 "kept $uri\n";
    }
    location /done/ { return 200 "done $uri\n"; }
}`})
	for _, req := range []string{
		rq("/if/", "User-Agent: Mozilla/5.0"), rq("/if/", "User-Agent: mozilla googlebot"), rq("/if/?x=aa"),
		rq("/if/?x=ab&y=abc"), rq("/if/?x=ab&y=ab1"),
		rq("/rw/one/two"), rq("/rw/keep/two"), rq("/rw/abab"), rq("/rw/xxrest"), rq("/rw/xyrest"),
	} {
		p.compare(t, req)
	}
}

// TestDiffRegexServerName: a server_name regex with look-ahead and named
// captures in two syntaxes.
func TestDiffRegexServerName(t *testing.T) {
	p := startPair(t, diffConf{HTTP: `
server {
    listen 127.0.0.1:{{PORT}} default_server;
    return 200 "default\n";
}
server {
    listen 127.0.0.1:{{PORT}};
    server_name "~^(?<sub>(?!www)[a-z]+)\.example\.(?'tld'com|org)$";
    location / { return 200 "sub=$sub tld=$tld 1=$1 2=$2\n"; }
}`})
	for _, host := range []string{"api.example.com", "WWW.example.com", "Shop.Example.ORG", "api.example.net"} {
		p.compare(t, "GET / HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n")
	}
}

// TestDiffRegexMatchLimit: a catastrophic pattern on a subject it cannot
// match exhausts PCRE's match limit in nginx and the time limit in wsgate:
// a location, if or rewrite answers 500, a map yields its default, and
// both log the pcre2_match() alert; other subjects match.
func TestDiffRegexMatchLimit(t *testing.T) {
	p := startPair(t, diffConf{HTTP: `
map $uri $lim {
    default "default";
    ~^/m/(?=a)(a+)+$ "matched";
}
server {
    listen 127.0.0.1:{{PORT}};
    location ~ ^/(?=a)(a+)+$ { return 200 "as\n"; }
    location /m/ { return 200 "map=$lim\n"; }
    location /if/ {
        if ($uri ~ ^/if/(?=a)(a+)+$) { return 200 "if\n"; }
        return 200 "no\n";
    }
    location /rw/ {
        rewrite ^/rw/(?=a)(a+)+$ /x;
        return 200 "no\n";
    }
    location / { return 200 "root\n"; }
}`})
	long := strings.Repeat("a", 32) + "!"
	for _, target := range []string{"/aaaa", "/b", "/" + long, "/m/aaaa", "/m/" + long, "/if/aa", "/if/" + long, "/rw/" + long} {
		p.compare(t, rq(target))
	}
	gateLog := func() string {
		b, _ := os.ReadFile(filepath.Join(p.gate.dir, "logs", "error.log"))
		return string(b)
	}
	for name, log := range map[string]func() string{"nginx": p.ng.errorLog, "wsgate": gateLog} {
		waitFor(t, 10*time.Second, name+"'s pcre2_match() alert", func() bool {
			l := log()
			return strings.Contains(l, `[alert]`) && strings.Contains(l, `pcre2_match() failed: -47 on "/aaaaaaaa`)
		})
	}
}

// TestRegexRefusedAtTest: patterns no Go engine runs are refused by -t
// with the file, the line and the construct.
func TestRegexRefusedAtTest(t *testing.T) {
	for construct, line := range map[string]string{
		"(?R)": `location ~ ^/(a|(?R))$ { return 200; }`,
		`\K`:   `rewrite ^/foo\Kbar /x;`,
		"(?C":  `if ($uri ~ "^/a(?C1)") { return 200; }`,
	} {
		dir := t.TempDir()
		path := filepath.Join(dir, "wsgate.conf")
		conf := "events {}\nhttp {\n    server {\n        listen 127.0.0.1:1;\n        " + line + "\n    }\n}\n"
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		code, _, errOut := wsgateOut(t, "-t", "-c", path)
		if code == 0 || !strings.Contains(errOut, construct) || !strings.Contains(errOut, path+":5") {
			t.Errorf("%s: exit %d, want a refusal naming %s at %s:5:\n%s", construct, code, construct, path, errOut)
		}
	}
}

// TestDiffRegexServerNameMatchLimit: a server_name regex whose match is
// cut short closes the connection without an answer, as nginx does, with
// the alert in the error log and 500 in the access log.
func TestDiffRegexServerNameMatchLimit(t *testing.T) {
	p := startPair(t, diffConf{HTTP: `
server {
    listen 127.0.0.1:{{PORT}} default_server;
    return 200 "default\n";
}
server {
    listen 127.0.0.1:{{PORT}};
    server_name "~^(?=a)(a+)+$";
    return 200 "named\n";
}`})
	p.compare(t, "GET / HTTP/1.1\r\nHost: aaaa\r\nConnection: close\r\n\r\n")
	host := strings.Repeat("a", 32) + "!"
	for name, addr := range map[string]string{"nginx": p.nginx, "wsgate": p.wsgate} {
		c, err := net.DialTimeout("tcp", addr, slow(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(slow(10 * time.Second)))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n")
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || len(got) != 0 {
			t.Errorf("%s: answered %q (%v), want the connection closed without an answer", name, got, err)
		}
	}
	gateDir := filepath.Join(p.gate.dir, "logs")
	for name, dir := range map[string]string{"nginx": filepath.Join(p.ng.dir, "logs"), "wsgate": gateDir} {
		waitFor(t, 10*time.Second, name+"'s alert and access line", func() bool {
			e, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			a, _ := os.ReadFile(filepath.Join(dir, "access.log"))
			return strings.Contains(string(e), `pcre2_match() failed: -47 on "`+host+`" using "^(?=a)(a+)+$"`) &&
				strings.Contains(string(a), `"GET / HTTP/1.1" 500 0 `)
		})
	}
}

// TestDiffRegexGzipDisable: gzip_disable with a look-ahead pattern.
func TestDiffRegexGzipDisable(t *testing.T) {
	p := startPair(t, diffConf{HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    gzip on;
    gzip_min_length 1;
    gzip_types text/plain;
    gzip_disable "^(?!.*Chrome).*MSIE \d";
    location / { return 200 "some text to compress, some text to compress\n"; }
}`})
	for _, ua := range []string{"Mozilla/4.0 (compatible; MSIE 8.0)", "Mozilla/4.0 (MSIE 8.0) Chrome/1", "curl/8"} {
		p.compare(t, rq("/", "User-Agent: "+ua, "Accept-Encoding: gzip"))
	}
}
