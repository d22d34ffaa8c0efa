package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The last of ngx_http_core_module: merge_slashes and the core variables
// wsgate added ($pipe, $request_completion, $request_body,
// $proxy_protocol_server_*, $connection_time, $request_id, $nginx_version,
// $tcpinfo_*, $request_body_file, $sent_trailer_*).

// mergeSlashesConf answers $uri from locations that tell merged and kept
// slashes apart; the server for Host "other" sets merge_slashes the other
// way, which nginx ignores there: the address's default server decides.
func mergeSlashesConf(setting, other string) string {
	return fmt.Sprintf(`
server {
    listen 127.0.0.1:{{PORT}} default_server;
    merge_slashes %s;
    location / { return 200 "prefix uri=$uri\n"; }
    location = /a//b { return 200 "exact-kept uri=$uri\n"; }
    location = /a/b { return 200 "exact-merged uri=$uri\n"; }
    location ~ ^/x//y { return 200 "regex-kept uri=$uri\n"; }
}
server {
    listen 127.0.0.1:{{PORT}};
    server_name other;
    merge_slashes %s;
    location / { return 200 "other uri=$uri\n"; }
}`, setting, other)
}

// TestDiffMergeSlashes compares $uri and location matching with
// merge_slashes on and off against nginx.
func TestDiffMergeSlashes(t *testing.T) {
	paths := []string{"/a//b", "//a//b", "/a/b", "/a///", "/a/..//b", "/a//../b", "/x//y/z", "/x/y",
		"/a/%2F/b", "/a//./b", "//..", "///../x", "/a%2F%2Fb"}
	for _, c := range []struct{ name, setting, other string }{
		{"on", "on", "off"},
		{"off", "off", "on"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := startPair(t, diffConf{HTTP: mergeSlashesConf(c.setting, c.other)})
			for _, path := range paths {
				p.compare(t, "GET "+path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
				p.compare(t, "GET "+path+" HTTP/1.1\r\nHost: other\r\nConnection: close\r\n\r\n")
			}
		})
	}
}

// TestDiffMaxHeaders: max_headers header lines pass, one more is a 400,
// as Debian's nginx (which carries the directive of newer nginx); the
// address's default server's limit applies.
func TestDiffMaxHeaders(t *testing.T) {
	p := startPair(t, diffConf{HTTP: `
server {
    listen 127.0.0.1:{{PORT}} default_server;
    max_headers 3;
    location / { return 200 "ok\n"; }
}`})
	p.compare(t, "GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nConnection: close\r\n\r\n")
	p.compare(t, "GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nConnection: close\r\n\r\n")
	p.compare(t, "GET / HTTP/1.0\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n")
	for _, dir := range []string{p.ng.dir, p.gate.dir} {
		path := filepath.Join(dir, "logs", "error.log")
		waitFor(t, 10*time.Second, "the refusals in "+path, func() bool {
			return strings.Count(readFile(path), "client sent too many header lines") == 2
		})
	}
}

// pipelinedBodies writes reqs to addr in one write and returns the body
// of each response, in order.
func pipelinedBodies(t testing.TB, addr string, reqs ...string) []string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, slow(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(slow(10 * time.Second)))
	if _, err := io.WriteString(c, strings.Join(reqs, "")); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var out []string
	for range reqs {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: reading a pipelined answer: %v", addr, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s: reading a pipelined body: %v", addr, err)
		}
		out = append(out, string(b))
	}
	return out
}

// TestDiffPipe: a request sent with the one before it is pipelined ("p"),
// the first and a request sent alone are not ("."), in a handler and in
// the access log, as nginx.
func TestDiffPipe(t *testing.T) {
	p := startPair(t, diffConf{HTTP: `
log_format pipe "$request_uri $pipe";
server {
    listen 127.0.0.1:{{PORT}};
    access_log {{DIR}}/logs/pipe.log pipe;
    location / { return 200 "$request_uri pipe=$pipe\n"; }
}`})
	reqs := []string{
		"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /2 HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	}
	ng := pipelinedBodies(t, p.nginx, reqs...)
	ws := pipelinedBodies(t, p.wsgate, reqs...)
	want := []string{"/1 pipe=.\n", "/2 pipe=p\n", "/3 pipe=p\n"}
	for i := range reqs {
		if ng[i] != ws[i] || ws[i] != want[i] {
			t.Errorf("request %d: nginx %q, wsgate %q, want %q", i+1, ng[i], ws[i], want[i])
		}
	}
	p.compare(t, "GET /alone HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	wantLog := []string{"/1 .", "/2 p", "/3 p", "/alone ."}
	for _, dir := range []string{p.ng.dir, p.gate.dir} {
		path := filepath.Join(dir, "logs", "pipe.log")
		waitFor(t, 10*time.Second, path+" lines", func() bool { return len(readLog(path)) == len(wantLog) })
		if got := readLog(path); strings.Join(got, "|") != strings.Join(wantLog, "|") {
			t.Errorf("%s: %q, want %q", path, got, wantLog)
		}
	}
}

// TestDiffRequestCompletion: empty while the request is handled, "OK" in
// the access log once the response went out (even one the upstream cut
// short), as nginx; a request
// that read it in its handler keeps the empty value in its log line, as
// nginx, which evaluates it once per request.
func TestDiffRequestCompletion(t *testing.T) {
	b := startBackend(t, "b1")
	// short promises 100 bytes, sends 10 and closes: the answer is cut.
	short := rawBackend(t, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
	})
	p := startPair(t, diffConf{HTTP: `
log_format done "$request_uri [$request_completion]";
server {
    listen 127.0.0.1:{{PORT}};
    access_log {{DIR}}/logs/done.log done;
    location = /r { return 200 "[$request_completion]\n"; }
    location /p/ { proxy_pass http://` + b.addr + `; }
    location /short { proxy_pass http://` + short + `; }
}`})
	p.compare(t, "GET /r HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	for _, addr := range []string{p.nginx, p.wsgate} {
		if st, _, _ := rawRequest(t, addr, "GET /p/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); st != 200 {
			t.Fatalf("%s: proxied status %d", addr, st)
		}
		cutShort(t, addr)
	}
	// nginx writes the empty value it kept as nothing, wsgate's log as "-"
	// (docs/directives.md, log_format).
	for _, c := range []struct {
		dir  string
		want []string
	}{
		{p.ng.dir, []string{"/r []", "/p/x [OK]", "/short [OK]"}},
		{p.gate.dir, []string{"/r [-]", "/p/x [OK]", "/short [OK]"}},
	} {
		path := filepath.Join(c.dir, "logs", "done.log")
		waitFor(t, 10*time.Second, path+" lines", func() bool { return len(readLog(path)) == len(c.want) })
		if got := readLog(path); strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("%s: %q, want %q", path, got, c.want)
		}
	}
}

// cutShort asks addr for /short and reads until the server closes: the
// head and 10 of the 100 bytes it promised.
func cutShort(t testing.TB, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, slow(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(slow(10 * time.Second)))
	io.WriteString(c, "GET /short HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	got, err := io.ReadAll(c)
	if err != nil || !strings.HasSuffix(string(got), "\r\n\r\n0123456789") {
		t.Fatalf("%s: /short answered %q, %v; want the head and 10 bytes, then the close", addr, got, err)
	}
}

// TestDiffRequestBody: $request_body is the body read into memory for
// proxy_pass, in a header and in the log; a body far larger than
// client_body_buffer_size goes partly to a file, and the variable is
// empty, as nginx. $request_body_file is empty in wsgate (see
// docs/directives.md); nginx names a temporary file when it made one.
// The log writes an empty value as "-".
func TestDiffRequestBody(t *testing.T) {
	b := startBackend(t, "b1")
	p := startPair(t, diffConf{HTTP: `
log_format body "$request_uri [$request_body] [$request_body_file]";
server {
    listen 127.0.0.1:{{PORT}};
    client_body_buffer_size 1k;
    access_log {{DIR}}/logs/body.log body;
    location / {
        proxy_pass http://` + b.addr + `;
        add_header X-Body "[$request_body]";
    }
}`})
	small := "a=1&b=two"
	large := strings.Repeat("x", 8192)
	reqs := map[string]string{
		"/small": "POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: " + fmt.Sprint(len(small)) + "\r\nConnection: close\r\n\r\n" + small,
		"/large": "POST /large HTTP/1.1\r\nHost: x\r\nContent-Length: " + fmt.Sprint(len(large)) + "\r\nConnection: close\r\n\r\n" + large,
		"/chunk": "POST /chunk HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n4\r\nab=c\r\n0\r\n\r\n",
		"/none":  "GET /none HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	}
	want := map[string]string{"/small": "[" + small + "]", "/large": "[]", "/chunk": "[ab=c]", "/none": "[]"}
	for _, uri := range []string{"/small", "/large", "/chunk", "/none"} {
		p.compare(t, reqs[uri])
		ng, ws := sendRaw(t, p.nginx, reqs[uri]), sendRaw(t, p.wsgate, reqs[uri])
		if ng.Header.Get("X-Body") != ws.Header.Get("X-Body") || ws.Header.Get("X-Body") != want[uri] {
			t.Errorf("%s: X-Body nginx %q, wsgate %q, want %q", uri, clip([]byte(ng.Header.Get("X-Body"))), clip([]byte(ws.Header.Get("X-Body"))), want[uri])
		}
	}
	// nginx names the temporary file of the large body (and removes it at
	// the end of the request); wsgate unlinks it at once and names none.
	for _, c := range []struct{ dir, largeFile string }{
		{p.ng.dir, "[" + filepath.Join(p.ng.dir, "client_body") + "/"},
		{p.gate.dir, "[-]"},
	} {
		path := filepath.Join(c.dir, "logs", "body.log")
		waitFor(t, 10*time.Second, path+" lines", func() bool { return len(readLog(path)) == 8 })
		lines := readLog(path)
		for _, w := range []string{"/small [a=1&b=two] [-]", "/large [-] " + c.largeFile, "/chunk [ab=c] [-]", "/none [-] [-]"} {
			if len(linesWith(lines, w)) != 2 {
				t.Errorf("%s: want %q twice in the log; lines for it: %q", path, w, clipLines(linesWith(lines, strings.Fields(w)[0])))
			}
		}
	}
}

// TestDiffProxyProtocolServer: the PROXY header's destination is
// $proxy_protocol_server_addr and _port, v1 and v2, as nginx.
func TestDiffProxyProtocolServer(t *testing.T) {
	p := startPair(t, diffConf{HTTP: `
server {
    listen 127.0.0.1:{{PORT}} proxy_protocol;
    location / {
        return 200 "$proxy_protocol_addr:$proxy_protocol_port > $proxy_protocol_server_addr:$proxy_protocol_server_port\n";
    }
}`})
	get := "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	p.compare(t, "PROXY TCP4 192.0.2.1 198.51.100.2 51000 443\r\n"+get)
	p.compare(t, "PROXY TCP6 2001:db8::1 2001:db8::2 51000 8443\r\n"+get)
	p.compare(t, "PROXY UNKNOWN\r\n"+get)
	v2 := "\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c" + "\xc0\x00\x02\x01" + "\xc6\x33\x64\x02" + "\xc7\x38" + "\x01\xbb"
	p.compare(t, v2+get)
	ws := sendRaw(t, p.wsgate, "PROXY TCP4 192.0.2.1 198.51.100.2 51000 443\r\n"+get)
	if string(ws.Body) != "192.0.2.1:51000 > 198.51.100.2:443\n" {
		t.Errorf("wsgate: %q", ws.Body)
	}
}

// TestCoreVarsWsgate shows the variables whose values differ at each run:
// their form, that $request_id is fixed within a request (header, body
// and log agree) and new for the next, and what $nginx_version says.
func TestCoreVarsWsgate(t *testing.T) {
	addr := net.JoinHostPort("127.0.0.1", fmt.Sprint(freePort(t)))
	g := startGate(t, `
pid {{DIR}}/logs/wsgate.pid;
error_log {{DIR}}/logs/error.log info;
events { worker_connections 64; }
http {
    log_format core "$request_id $connection_time $tcpinfo_rtt";
    server {
        listen `+addr+`;
        access_log {{DIR}}/logs/core.log core;
        location / {
            add_header X-Request-ID $request_id;
            return 200 "id=$request_id ct=$connection_time v=$nginx_version rtt=$tcpinfo_rtt rttvar=$tcpinfo_rttvar cwnd=$tcpinfo_snd_cwnd rcv=$tcpinfo_rcv_space file=[$request_body_file] tr=[$sent_trailer_grpc_status]\n";
        }
    }
}`)
	re := regexp.MustCompile(`^id=([0-9a-f]{32}) ct=([0-9]+\.[0-9]{3}) v=([0-9]+\.[0-9]+\.[0-9]+) rtt=([0-9]+) rttvar=([0-9]+) cwnd=([1-9][0-9]*) rcv=([1-9][0-9]*) file=\[\] tr=\[\]\n$`)
	ids := map[string]bool{}
	for i := range 2 {
		st, head, body := rawRequest(t, addr, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		m := re.FindStringSubmatch(body)
		if st != 200 || m == nil {
			t.Fatalf("request %d: %d %q", i, st, body)
		}
		if !strings.Contains(head, "X-Request-Id: "+m[1]) {
			t.Errorf("the header's $request_id differs from the body's %s:\n%s", m[1], head)
		}
		ids[m[1]] = true
	}
	if len(ids) != 2 {
		t.Errorf("$request_id repeated across requests: %v", ids)
	}
	path := filepath.Join(g.dir, "logs", "core.log")
	waitFor(t, 10*time.Second, "two log lines", func() bool { return len(readLog(path)) == 2 })
	for _, line := range readLog(path) {
		f := strings.Fields(line)
		if len(f) != 3 || !ids[f[0]] || !regexp.MustCompile(`^[0-9]+\.[0-9]{3}$`).MatchString(f[1]) || !regexp.MustCompile(`^[0-9]+$`).MatchString(f[2]) {
			t.Errorf("log line %q: want a $request_id of the answers, $connection_time, $tcpinfo_rtt", line)
		}
	}
}

// clipLines shortens each of lines for a failure message.
func clipLines(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = clip([]byte(l))
	}
	return out
}

// TestProxyProtocolTLVs: the TLVs of a v2 PROXY header by name, by type
// and inside the SSL TLV (nginx 1.23.2+; the nginx of the differential
// tests is older, so wsgate is checked alone).
func TestProxyProtocolTLVs(t *testing.T) {
	addr := net.JoinHostPort("127.0.0.1", fmt.Sprint(freePort(t)))
	startGate(t, `
pid {{DIR}}/logs/wsgate.pid;
error_log {{DIR}}/logs/error.log info;
events { worker_connections 64; }
http {
    server {
        listen `+addr+` proxy_protocol;
        location / {
            return 200 "$proxy_protocol_addr alpn=$proxy_protocol_tlv_alpn authority=$proxy_protocol_tlv_0x02 cn=$proxy_protocol_tlv_ssl_cn verify=$proxy_protocol_tlv_ssl_verify id=[$proxy_protocol_tlv_unique_id]\n";
        }
    }
}`)
	tlv := func(typ byte, v string) string { return string([]byte{typ, byte(len(v) >> 8), byte(len(v))}) + v }
	tlvs := tlv(0x01, "h2") + tlv(0x02, "ws.example.com") + tlv(0x20, "\x07\x00\x00\x00\x00"+tlv(0x22, "client.example"))
	n := 12 + len(tlvs)
	hdr := "\r\n\r\n\x00\r\nQUIT\n\x21\x11" + string([]byte{byte(n >> 8), byte(n)}) +
		"\xc0\x00\x02\x01" + "\xc6\x33\x64\x02" + "\xc7\x38" + "\x01\xbb" + tlvs
	st, _, body := rawRequest(t, addr, hdr+"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	want := "192.0.2.1 alpn=h2 authority=ws.example.com cn=client.example verify=0 id=[]\n"
	if st != 200 || body != want {
		t.Errorf("got %d %q, want %q", st, body, want)
	}
}

// TestCoreVarsWebSocketSession: a WebSocket session's log line, written
// when its tunnel closes, has the handshake's $request_id (the one sent
// upstream), "OK" for $request_completion and "." for $pipe.
func TestCoreVarsWebSocketSession(t *testing.T) {
	b := startBackend(t, "b1")
	addr := net.JoinHostPort("127.0.0.1", fmt.Sprint(freePort(t)))
	g := startGate(t, `
pid {{DIR}}/logs/wsgate.pid;
error_log {{DIR}}/logs/error.log info;
events { worker_connections 64; }
http {
    log_format core "$request_id [$request_completion] $pipe $websocket_messages_in";
    server {
        listen `+addr+`;
        access_log {{DIR}}/logs/core.log core;
        location / {
            proxy_pass http://`+b.addr+`;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_set_header X-Request-ID $request_id;
        }
    }
}`)
	c, _ := dial(t, "ws://"+addr+"/ws", nil)
	echo(t, c, "hello")
	id := b.lastWS().Get("X-Request-ID")
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(id) {
		t.Fatalf("the backend got X-Request-ID %q", id)
	}
	closeWS(t, c)
	path := filepath.Join(g.dir, "logs", "core.log")
	waitFor(t, 10*time.Second, "the session's log line", func() bool { return len(readLog(path)) == 1 })
	if got, want := readLog(path)[0], id+" [OK] . 1"; got != want {
		t.Errorf("log line %q, want %q", got, want)
	}
}

// TestDiffRequestLength: $request_length counts the head and the body
// read for proxy_pass (buffered or streamed), not a body the handler
// never read, as nginx.
func TestDiffRequestLength(t *testing.T) {
	b := startBackend(t, "b1")
	p := startPair(t, diffConf{HTTP: `
log_format rl "$request_uri $request_length";
server {
    listen 127.0.0.1:{{PORT}};
    access_log {{DIR}}/logs/rl.log rl;
    location /p { proxy_pass http://` + b.addr + `; }
    location /off { proxy_pass http://` + b.addr + `; proxy_request_buffering off; proxy_http_version 1.1; }
    location /r { return 200 "ok\n"; }
}`})
	var want []string
	for _, path := range []string{"/p", "/off", "/r"} {
		for _, n := range []int{0, 5, 5000} {
			head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", path, n)
			p.compare(t, head+strings.Repeat("x", n))
			length := len(head) + n
			if path == "/r" {
				length = len(head)
			}
			want = append(want, fmt.Sprintf("%s %d", path, length))
		}
	}
	for _, dir := range []string{p.ng.dir, p.gate.dir} {
		path := filepath.Join(dir, "logs", "rl.log")
		waitFor(t, 10*time.Second, path+" lines", func() bool { return len(readLog(path)) == len(want) })
		if got := readLog(path); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%s: %q, want %q", path, got, want)
		}
	}
}
