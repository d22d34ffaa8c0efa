package e2e

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Differential tests of ngx_http_core_module's names, listeners and
// connection settings: the same configuration under nginx and wsgate.

// TestDiffServerNameSelection: exact names, leading and trailing
// wildcards (the longest wins), regexes with numbered and named captures
// that become variables, the default_server for unknown names, and a
// name claimed twice on one address (the first server keeps it).
func TestDiffServerNameSelection(t *testing.T) {
	p := startPair(t, diffConf{HTTP: `
server { listen 127.0.0.1:{{PORT}}; server_name first.test; return 200 "first\n"; }
server { listen 127.0.0.1:{{PORT}} default_server; server_name def.test; return 200 "default [$host] [$server_name]\n"; }
server { listen 127.0.0.1:{{PORT}}; server_name *.wild.test; return 200 "wild [$host]\n"; }
server { listen 127.0.0.1:{{PORT}}; server_name *.deep.wild.test; return 200 "deeper [$host]\n"; }
server { listen 127.0.0.1:{{PORT}}; server_name .dot.test; return 200 "dot [$host]\n"; }
server { listen 127.0.0.1:{{PORT}}; server_name www.suffix.*; return 200 "suffix [$host]\n"; }
server { listen 127.0.0.1:{{PORT}}; server_name "~^(?<user>[a-z]+)\.(?P<site>[a-z]+)\.re\.test$"; return 200 "named [$user] [$site] [$1] [$2]\n"; }
server { listen 127.0.0.1:{{PORT}}; server_name ~^num(\d+)\.test$; return 200 "num [$1]\n"; }
server { listen 127.0.0.1:{{PORT}}; server_name first.test second.test; return 200 "second\n"; }
`})
	for _, host := range []string{"first.test", "FIRST.test", "unknown.test", "a.wild.test", "x.deep.wild.test", "deep.wild.test",
		"dot.test", "a.b.dot.test", "www.suffix.org", "www.suffix.co.uk", "bob.home.re.test", "num42.test", "NUM7.TEST", "def.test",
		"second.test"} {
		p.compare(t, "GET / HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n")
	}
	// HTTP/1.0 without Host: the default server.
	p.compare(t, "GET / HTTP/1.0\r\n\r\n")
	got := sendRaw(t, p.wsgate, "GET / HTTP/1.1\r\nHost: bob.home.re.test\r\nConnection: close\r\n\r\n")
	if string(got.Body) != "named [bob] [home] [bob] [home]\n" {
		t.Errorf("named captures: %q", got.Body)
	}
}

// freeRange returns the first of n consecutive loopback ports that were
// all free a moment ago.
func freeRange(t testing.TB, n int) int {
	t.Helper()
	for range 50 {
		base := freePort(t)
		if base+n > 65535 {
			continue
		}
		var held []net.Listener
		ok := true
		for i := range n {
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(base+i)))
			if err != nil {
				ok = false
				break
			}
			held = append(held, ln)
		}
		for _, ln := range held {
			ln.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatalf("no %d consecutive free ports", n)
	return 0
}

// TestDiffListenPortRange: `listen 127.0.0.1:a-b` listens on every port of
// the range, and each port is its own address for server selection.
func TestDiffListenPortRange(t *testing.T) {
	conf := func(base int) string {
		return fmt.Sprintf(`
server { listen 127.0.0.1:%d-%d; server_name range.test; return 200 "range $server_port\n"; }
server { listen 127.0.0.1:%d default_server; return 200 "middle default\n"; }
`, base, base+2, base+1)
	}
	ngBase, wsBase := freeRange(t, 3), freeRange(t, 3)
	main := "pid {{DIR}}/logs/x.pid;\nerror_log {{DIR}}/logs/error.log info;\nevents { worker_connections 64; }\nhttp {\naccess_log off;\n"
	startNginx(t, strings.Replace(main, "x.pid", "nginx.pid", 1)+conf(ngBase)+"}\n")
	startGate(t, strings.Replace(main, "x.pid", "wsgate.pid", 1)+conf(wsBase)+"}\n")
	for i := range 3 {
		for _, host := range []string{"range.test", "other.test"} {
			req := "GET / HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n"
			ng := sendRaw(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(ngBase+i)), req)
			ws := sendRaw(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(wsBase+i)), req)
			nb := strings.ReplaceAll(string(ng.Body), strconv.Itoa(ngBase+i), "PORT")
			wb := strings.ReplaceAll(string(ws.Body), strconv.Itoa(wsBase+i), "PORT")
			if ng.Status != ws.Status || nb != wb {
				t.Errorf("port +%d host %s: nginx %d %q, wsgate %d %q", i, host, ng.Status, nb, ws.Status, wb)
			}
		}
	}
}

// TestDiffServerTokens: the Server header for on, off and build, with
// each product's own name and version taken out.
func TestDiffServerTokens(t *testing.T) {
	p := startPair(t, diffConf{HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    location /on { return 200 "on\n"; }
    location /off { server_tokens off; return 200 "off\n"; }
    location /build { server_tokens build; return 200 "build\n"; }
    location /missing { server_tokens off; }
}`})
	product := regexp.MustCompile(`^(nginx|wsgate)`)
	version := regexp.MustCompile(`/[0-9.]+`)
	for _, path := range []string{"/on", "/off", "/build", "/missing/x"} {
		req := "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
		p.compare(t, req)
		ng := sendRaw(t, p.nginx, req).Header.Get("Server")
		ws := sendRaw(t, p.wsgate, req).Header.Get("Server")
		shape := func(v string) string {
			v = product.ReplaceAllString(v, "PRODUCT")
			v = version.ReplaceAllString(v, "/VERSION")
			return regexp.MustCompile(` \(.*\)$`).ReplaceAllString(v, "")
		}
		if shape(ng) != shape(ws) {
			t.Errorf("%s: Server nginx %q, wsgate %q", path, ng, ws)
		}
	}
}

// headerEcho is a backend that answers with the request's X-* headers.
func headerEcho(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var names []string
		for k := range r.Header {
			if strings.HasPrefix(strings.ToLower(k), "x") {
				names = append(names, k)
			}
		}
		slices.Sort(names)
		for _, k := range names {
			fmt.Fprintf(w, "%s=%s\n", strings.ToLower(k), strings.Join(r.Header[k], ","))
		}
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// TestDiffUnderscoresInHeaders: with the defaults a header whose name has
// an underscore never reaches the backend or $http_*; with
// underscores_in_headers on it does; with ignore_invalid_headers off too.
func TestDiffUnderscoresInHeaders(t *testing.T) {
	backend := headerEcho(t)
	for _, setting := range []string{"", "underscores_in_headers on;", "ignore_invalid_headers off;"} {
		t.Run(strings.TrimSuffix(setting, ";"), func(t *testing.T) {
			p := startPair(t, diffConf{HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    ` + setting + `
    location /proxy { proxy_pass http://` + backend + `; }
    location /var { return 200 "[$http_x_under_score] [$http_x_plain]\n"; }
}`})
			for _, path := range []string{"/proxy", "/var"} {
				p.compare(t, "GET "+path+" HTTP/1.1\r\nHost: x\r\nX_Under_Score: u\r\nX-Plain: p\r\nConnection: close\r\n\r\n")
			}
			p.compare(t, "GET /proxy HTTP/1.1\r\nHost: x\r\nX_Under_Score: u\r\nX-Plain: p\r\nX-Under-Score: dash\r\nConnection: close\r\n\r\n")
		})
	}
}

// keepaliveRun sends requests one after another on one connection until
// the server closes it (or max requests), and returns each response's
// Connection header.
func keepaliveRun(t testing.TB, addr, method, path string, max int, ua string) []string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, slow(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	var got []string
	for range max {
		c.SetDeadline(time.Now().Add(slow(10 * time.Second)))
		body := ""
		if method == "POST" {
			body = "Content-Length: 0\r\n\r\n"
		} else {
			body = "\r\n"
		}
		if _, err := io.WriteString(c, method+" "+path+" HTTP/1.1\r\nHost: x\r\nUser-Agent: "+ua+"\r\n"+body); err != nil {
			break
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			break
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.Close {
			got = append(got, "close")
			break
		}
		got = append(got, resp.Header.Get("Connection"))
	}
	return got
}

// TestDiffKeepalive: keepalive_requests ends the connection after N
// requests, keepalive_disable msie6 after every response to MSIE 6, and
// keepalive_time after the connection's age; each answer says so in
// Connection as nginx does.
func TestDiffKeepalive(t *testing.T) {
	p := startPair(t, diffConf{HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    location /three { keepalive_requests 3; return 200 "ok\n"; }
    location /safari { keepalive_disable safari; return 200 "ok\n"; }
    location /none { keepalive_disable none; return 200 "ok\n"; }
    location /time { keepalive_time 1s; return 200 "ok\n"; }
    location / { return 200 "ok\n"; }
}`})
	const msie6 = "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)"
	const safari = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15"
	const msie6sv1 = "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)"
	for _, tt := range []struct{ method, path, ua string }{
		{"GET", "/three", "curl/8"}, {"GET", "/", msie6}, {"POST", "/", msie6}, {"POST", "/", msie6sv1}, {"POST", "/none", msie6},
		{"GET", "/safari", safari}, {"GET", "/", safari}, {"GET", "/safari", "curl/8"},
	} {
		ng := keepaliveRun(t, p.nginx, tt.method, tt.path, 5, tt.ua)
		ws := keepaliveRun(t, p.wsgate, tt.method, tt.path, 5, tt.ua)
		if !slices.Equal(ng, ws) {
			t.Errorf("%s %s with %q: Connection headers nginx %q, wsgate %q", tt.method, tt.path, tt.ua, ng, ws)
		}
	}
	// keepalive_time: requests on one connection until one says close;
	// it must come, and only after the connection is a second old.
	for name, addr := range map[string]string{"nginx": p.nginx, "wsgate": p.wsgate} {
		start := time.Now()
		deadline := start.Add(slow(30 * time.Second))
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		closed := false
		for n := 0; !closed && time.Now().Before(deadline); n++ {
			c.SetDeadline(time.Now().Add(slow(10 * time.Second)))
			io.WriteString(c, "GET /time HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				// nginx may also close an aged connection after a
				// response that still said keep-alive.
				closed = true
				break
			}
			io.Copy(io.Discard, resp.Body)
			closed = resp.Close
			if !closed {
				// Wait for the connection to age without a fixed sleep:
				// the next request is sent when the server can answer it.
				time.Sleep(50 * time.Millisecond)
			}
		}
		c.Close()
		if !closed {
			t.Errorf("%s: keepalive_time 1s never closed the connection", name)
		} else if age := time.Since(start); age < time.Second {
			t.Errorf("%s: keepalive_time 1s closed a connection %v old", name, age)
		}
	}
}

// rateRun fetches path and reports how many bytes had arrived one second
// after the request was sent, the whole body, and the time it took. It may
// run on its own goroutine: a failure to connect is an error, not fatal.
func rateRun(t testing.TB, addr, path string) (firstSecond int, body []byte, took time.Duration) {
	c, err := net.DialTimeout("tcp", addr, slow(5*time.Second))
	if err != nil {
		t.Errorf("%s: %v", addr, err)
		return 0, nil, 0
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(slow(60 * time.Second)))
	start := time.Now()
	io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	var all []byte
	buf := make([]byte, 4096)
	firstSecond = -1
	for {
		if firstSecond < 0 {
			c.SetReadDeadline(start.Add(time.Second))
		} else {
			c.SetReadDeadline(time.Now().Add(slow(60 * time.Second)))
		}
		n, err := c.Read(buf)
		all = append(all, buf[:n]...)
		if ne, ok := err.(net.Error); ok && ne.Timeout() && firstSecond < 0 {
			firstSecond = len(all)
			continue
		}
		if err != nil {
			break
		}
	}
	took = time.Since(start)
	if firstSecond < 0 {
		firstSecond = len(all)
	}
	_, b, _ := strings.Cut(string(all), "\r\n\r\n")
	return firstSecond, []byte(b), took
}

// TestDiffLimitRate: limit_rate and limit_rate_after pace a response under
// both servers: the first second brings at most limit_rate_after plus two
// seconds' worth (nginx counts whole seconds of the clock, wsgate from the
// response's start), and the whole body cannot arrive before its paced
// share allows. `set $limit_rate` paces as limit_rate does. The bounds
// hold however slow the machine is: slowness only delays bytes.
func TestDiffLimitRate(t *testing.T) {
	root := t.TempDir()
	body := strings.Repeat("0123456789abcdef", 64<<10/16) // 64 KiB
	os.Mkdir(filepath.Join(root, "set"), 0o755)
	for _, f := range []string{"big.txt", "set/big.txt"} {
		if err := os.WriteFile(filepath.Join(root, f), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(root, 0o755)
	p := startPair(t, diffConf{Root: root, HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    root {{ROOT}};
    location = /big.txt { limit_rate 16k; limit_rate_after 16k; }
    location = /set/big.txt { set $limit_rate 16k; limit_rate_after 16k; }
    location = /show { limit_rate 10k; return 200 "[$limit_rate]\n"; }
    location = /none { return 200 "[$limit_rate]\n"; }
}`})
	// $limit_rate is 0 until the response starts, as in nginx 1.17+.
	for _, path := range []string{"/show", "/none"} {
		p.compare(t, "GET "+path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	}
	// The four paced downloads run at once, so the test takes one's time.
	var wg sync.WaitGroup
	for _, path := range []string{"/big.txt", "/set/big.txt"} {
		for name, addr := range map[string]string{"nginx": p.nginx, "wsgate": p.wsgate} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				checkPaced(t, name, path, addr, body)
			}()
		}
	}
	wg.Wait()
}

// checkPaced checks one download of TestDiffLimitRate.
func checkPaced(t *testing.T, name, path, addr, body string) {
	const after, rate, slack = 16 << 10, 16 << 10, 1024 // slack: the response head
	first, got, took := rateRun(t, addr, path)
	if string(got) != body {
		t.Errorf("%s %s: body of %d bytes, want %d", name, path, len(got), len(body))
	}
	if first > after+2*rate+slack {
		t.Errorf("%s %s: %d bytes in the first second, limit_rate allows at most %d", name, path, first, after+2*rate+slack)
	}
	// 64k - 16k after = 48k at 16k/s: three seconds' worth, of which at
	// most the first two seconds' go early.
	if took < 2*time.Second {
		t.Errorf("%s %s: the body arrived in %v, limit_rate needs at least 2s", name, path, took)
	}
}

// TestDiffLingeringClose: a response that closes a connection whose
// request body was not read (a return in front of an upload) ends with a
// lingering close under both servers: the server shuts its side (the
// client reads the whole response, then a clean end of stream) and reads
// what the client still sends, instead of closing with unread data, which
// resets the connection.
func TestDiffLingeringClose(t *testing.T) {
	p := startPair(t, diffConf{HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    location / { return 413 "too much\n"; }
    location /always { lingering_close always; return 200 "fine\n"; }
}`})
	upload := strings.Repeat("x", 256<<10)
	for name, addr := range map[string]string{"nginx": p.nginx, "wsgate": p.wsgate} {
		for _, path := range []string{"/", "/always"} {
			c, err := net.DialTimeout("tcp", addr, slow(5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(slow(20 * time.Second)))
			io.WriteString(c, "POST "+path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: "+strconv.Itoa(len(upload))+"\r\n\r\n")
			io.WriteString(c, upload)
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Errorf("%s %s: no response: %v", name, path, err)
				c.Close()
				continue
			}
			b, err := io.ReadAll(resp.Body)
			if err != nil || !strings.Contains(string(b), "fine") && !strings.Contains(string(b), "too much") {
				t.Errorf("%s %s: body %q, %v", name, path, b, err)
			}
			if _, err := br.ReadByte(); err != io.EOF {
				t.Errorf("%s %s: after the response: %v, want a clean end of stream (a lingering close)", name, path, err)
			}
			c.Close()
		}
	}
}

// TestDiffChunkedTransferEncoding: a proxied response of unknown length
// goes to an HTTP/1.1 client chunked, or, with chunked_transfer_encoding
// off, delimited by the connection's close.
func TestDiffChunkedTransferEncoding(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "part one\n")
		w.(http.Flusher).Flush() // no Content-Length
		io.WriteString(w, "part two\n")
	}))
	t.Cleanup(backend.Close)
	p := startPair(t, diffConf{HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    location /on { proxy_pass http://` + backend.Listener.Addr().String() + `; }
    location /off { chunked_transfer_encoding off; proxy_pass http://` + backend.Listener.Addr().String() + `; }
}`})
	for _, path := range []string{"/on", "/off"} {
		req := "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n"
		shape := func(addr string) string {
			c, err := net.DialTimeout("tcp", addr, slow(5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(slow(10 * time.Second)))
			io.WriteString(c, req)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("%s %s: %v", addr, path, err)
			}
			b, _ := io.ReadAll(resp.Body)
			return fmt.Sprintf("%d te=%v close=%v length=%d body=%q", resp.StatusCode, resp.TransferEncoding, resp.Close, resp.ContentLength, b)
		}
		if ng, ws := shape(p.nginx), shape(p.wsgate); ng != ws {
			t.Errorf("%s: nginx %s, wsgate %s", path, ng, ws)
		}
	}
}

// TestDiffListenSSLForTheAddress: `ssl` on one server's listen makes the
// whole address TLS, as nginx: a server on it that did not ask for ssl
// needs no certificate, and is reached over TLS by its Host.
func TestDiffListenSSLForTheAddress(t *testing.T) {
	certs := t.TempDir()
	writeCert(t, certs, "a", "a.test")
	p := startPair(t, diffConf{Root: certs, HTTP: `
server {
    listen 127.0.0.1:{{PORT}} ssl;
    server_name a.test;
    ssl_certificate {{ROOT}}/a.pem;
    ssl_certificate_key {{ROOT}}/a.key;
    return 200 "a\n";
}
server { listen 127.0.0.1:{{PORT}}; server_name b.test; return 200 "b\n"; }`})
	get := func(addr, host string) string {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: slow(5 * time.Second)}, "tcp", addr, &tls.Config{ServerName: "a.test", InsecureSkipVerify: true})
		if err != nil {
			return "handshake: " + err.Error()
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(slow(10 * time.Second)))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return "response: " + err.Error()
		}
		b, _ := io.ReadAll(resp.Body)
		return fmt.Sprintf("%d %q", resp.StatusCode, b)
	}
	for _, host := range []string{"a.test", "b.test"} {
		ng, ws := get(p.nginx, host), get(p.wsgate, host)
		if ng != ws || !strings.HasPrefix(ws, "200") {
			t.Errorf("TLS with Host %s: nginx %s, wsgate %s", host, ng, ws)
		}
	}
}

// TestDiffListenDualStack: `listen [::]:port ipv6only=off` takes IPv4
// clients too, and serves them with the servers of that listen.
func TestDiffListenDualStack(t *testing.T) {
	if ln, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 on this machine: %v", err)
	} else {
		ln.Close()
	}
	// $server_addr is left out: nginx shows ::ffff:127.0.0.1 where wsgate
	// shows 127.0.0.1 (docs/directives.md, listen).
	p := startPair(t, diffConf{HTTP: `
server { listen [::]:{{PORT}} default_server ipv6only=off; server_name dual.test; return 200 "dual $host\n"; }`})
	for _, host := range []string{"dual.test", "other.test"} {
		p.compare(t, "GET / HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n")
	}
	got := sendRaw(t, p.wsgate, "GET / HTTP/1.1\r\nHost: dual.test\r\nConnection: close\r\n\r\n")
	if got.Status != 200 {
		t.Errorf("an IPv4 client of a dual-stack listen: %d %q", got.Status, got.Body)
	}
}
