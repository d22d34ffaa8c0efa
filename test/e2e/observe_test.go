package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// readLog returns a log file's complete lines (a line still being written
// is left out).
func readLog(path string) []string {
	b, _ := os.ReadFile(path)
	s := string(b)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	} else {
		return nil
	}
	return strings.Split(s, "\n")
}

// linesWith returns the lines of lines that contain sub.
func linesWith(lines []string, sub string) []string {
	var out []string
	for _, l := range lines {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return out
}

// closeWS ends a gorilla session with a close handshake and waits for the
// peer's close, so the tunnel closes on a known event.
func closeWS(t testing.TB, c *websocket.Conn) {
	t.Helper()
	c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(slow(5*time.Second)))
	c.SetReadDeadline(time.Now().Add(slow(5 * time.Second)))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			if _, ok := err.(*websocket.CloseError); !ok {
				t.Fatalf("waiting for the close frame: %v", err)
			}
			break
		}
	}
	c.Close()
}

// wsProxy is what tests add to seed 11's `location /ws`, which has no
// content handler of its own, so that it carries a session.
const wsProxy = `proxy_pass http://%s;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";`

// TestObserveSeed11 runs seed config 11 with two additions, both made by
// string replacement on the substituted config: `location /ws` gets
// proxy_pass (seed 11 leaves it without a content handler) and the server
// gets `location /health { return 200 "ok"; }`. A session is logged once
// in the websocket format, /health is kept out of access.log by
// if=$loggable, and the per-location debug log holds only /ws's lines.
func TestObserveSeed11(t *testing.T) {
	be := startBackend(t, "b1")
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	conf := seed(t, "11-logging.conf", []string{be.addr}, addr, "127.0.0.1:1")
	debugLine := "error_log {{DIR}}/ws_debug.log debug;"
	if !strings.Contains(conf, debugLine) {
		t.Fatalf("seed 11 changed: no %q in\n%s", debugLine, conf)
	}
	conf = strings.Replace(conf, debugLine, debugLine+"\n            "+fmt.Sprintf(wsProxy, be.addr)+"\n        }\n        location /health {\n            return 200 \"ok\";", 1)
	g := startGate(t, conf)

	c, resp := dial(t, "ws://"+addr+"/ws", nil)
	if resp.StatusCode != 101 {
		t.Fatalf("handshake status %d", resp.StatusCode)
	}
	echo(t, c, "hello")
	closeWS(t, c)

	if st, _, body := rawRequest(t, addr, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); st != 200 || body != "ok" {
		t.Fatalf("/health: %d %q", st, body)
	}
	// No location matches /other: it is answered (404 from the default
	// root) and logged all the same.
	rawRequest(t, addr, "GET /other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")

	wsLog := filepath.Join(g.dir, "websocket_access.log")
	accessLog := filepath.Join(g.dir, "access.log")
	// websocket_access.log has no condition: once it holds all three
	// requests, each has been through its log phase.
	waitFor(t, 10*time.Second, "three lines in websocket_access.log", func() bool {
		l := readLog(wsLog)
		return len(linesWith(l, "GET /ws ")) > 0 && len(linesWith(l, "GET /health ")) > 0 && len(linesWith(l, "GET /other ")) > 0
	})
	waitFor(t, 10*time.Second, "/other in access.log", func() bool {
		return len(linesWith(readLog(accessLog), "GET /other ")) > 0
	})

	wsLines := linesWith(readLog(wsLog), "GET /ws ")
	if len(wsLines) != 1 {
		t.Fatalf("session logged %d times in websocket_access.log, want once:\n%s", len(wsLines), strings.Join(wsLines, "\n"))
	}
	re := regexp.MustCompile(`^127\.0\.0\.1 - - \[([^\]]+)\] "GET /ws HTTP/1\.1" 101 (\d+) upgrade=websocket upstream_addr=` +
		regexp.QuoteMeta(be.addr) + ` upstream_response_time=(\d+\.\d{3})$`)
	m := re.FindStringSubmatch(wsLines[0])
	if m == nil {
		t.Fatalf("session line does not match the websocket format:\n%s", wsLines[0])
	}
	when, err := time.Parse("02/Jan/2006:15:04:05 -0700", m[1])
	if err != nil {
		t.Errorf("$time_local %q: %v", m[1], err)
	} else if d := time.Since(when); d < -2*time.Second || d > time.Minute {
		t.Errorf("$time_local %q is %v away from now", m[1], d)
	}
	// The echo of "hello" and the backend's close frame: 7 + 4 bytes.
	if m[2] != "11" {
		t.Errorf("body_bytes_sent %s, want 11 (echo frame 7 + close frame 4)", m[2])
	}

	access := readLog(accessLog)
	if h := linesWith(access, "/health"); len(h) != 0 {
		t.Errorf("/health is logged in access.log despite if=$loggable:\n%s", strings.Join(h, "\n"))
	}
	combined := regexp.MustCompile(`^127\.0\.0\.1 - - \[[^\]]+\] "GET /other HTTP/1\.1" \d{3} \d+ "-" "-"$`)
	if o := linesWith(access, "GET /other "); len(o) != 1 || !combined.MatchString(o[0]) {
		t.Errorf("/other in access.log, want one combined line:\n%s", strings.Join(o, "\n"))
	}
	if w := linesWith(access, "GET /ws "); len(w) != 1 {
		t.Errorf("/ws in access.log %d times, want once", len(w))
	}

	debug := readLog(filepath.Join(g.dir, "ws_debug.log"))
	all := strings.Join(debug, "\n")
	if !regexp.MustCompile(`using configuration "/ws".*request: "GET /ws HTTP/1\.1"`).MatchString(all) || !strings.Contains(all, "tunnel closed by") {
		t.Errorf("ws_debug.log lacks the session's debug lines:\n%s", all)
	}
	for _, l := range debug {
		if strings.Contains(l, "/health") || strings.Contains(l, "/other") {
			t.Errorf("ws_debug.log holds a line of another location: %s", l)
		}
	}
}

// obsConf serves a WebSocket location, stub_status and the
// $connections_* variables, and logs every request in a format that shows
// a session's figures.
const obsConf = `
error_log {{DIR}}/error.log info;
events { worker_connections 1024; }
http {
    log_format t '$request_uri $status $request_time $bytes_sent $body_bytes_sent $upstream_addr $upstream_response_time $http_upgrade';
    log_format j escape=json '{"ua":"$http_user_agent","x":"$http_x_test","uri":"$request_uri","status":$status}';
    access_log {{DIR}}/t.log t;
    server {
        listen %s;
        location /ws {
            proxy_pass http://%s;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }
        location = /status { stub_status; }
        location = /conn { return 200 "$connections_active $connections_reading $connections_writing $connections_waiting"; }
        location = /json {
            access_log {{DIR}}/json.log j;
            return 200 "ok";
        }
    }
}
`

// rawWS is a WebSocket client on a bare TCP connection that counts every
// byte the server sends after the 101 head.
type rawWS struct {
	t    testing.TB
	c    net.Conn
	head string
	got  int // bytes after the head
	buf  []byte
}

func dialRawWS(t testing.TB, addr, path string) *rawWS {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, slow(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(slow(20 * time.Second)))
	req := "GET " + path + " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	w := &rawWS{t: t, c: c}
	var acc []byte
	b := make([]byte, 4096)
	for {
		n, err := c.Read(b)
		acc = append(acc, b[:n]...)
		if i := bytes.Index(acc, []byte("\r\n\r\n")); i >= 0 {
			w.head = string(acc[:i+4])
			w.buf = acc[i+4:]
			w.got = len(w.buf)
			break
		}
		if err != nil {
			t.Fatalf("reading the handshake: %v (%q)", err, acc)
		}
	}
	if !strings.HasPrefix(w.head, "HTTP/1.1 101 ") {
		t.Fatalf("handshake answer:\n%s", w.head)
	}
	return w
}

// send writes one masked client frame.
func (w *rawWS) send(opcode byte, payload []byte) {
	w.t.Helper()
	if len(payload) > 0xffff {
		w.t.Fatal("payload too long for this client")
	}
	f := []byte{0x80 | opcode}
	switch {
	case len(payload) < 126:
		f = append(f, 0x80|byte(len(payload)))
	default:
		f = append(f, 0x80|126, byte(len(payload)>>8), byte(len(payload)))
	}
	mask := []byte{0x12, 0x34, 0x56, 0x78}
	f = append(f, mask...)
	for i, b := range payload {
		f = append(f, b^mask[i%4])
	}
	if _, err := w.c.Write(f); err != nil {
		w.t.Fatalf("write frame: %v", err)
	}
}

// readUntil reads until at least n bytes followed the head.
func (w *rawWS) readUntil(n int) {
	w.t.Helper()
	b := make([]byte, 4096)
	for w.got < n {
		k, err := w.c.Read(b)
		w.got += k
		if err != nil {
			w.t.Fatalf("read after %d bytes (want %d): %v", w.got, n, err)
		}
	}
}

// readToEOF reads until the server closes the connection.
func (w *rawWS) readToEOF() {
	w.t.Helper()
	n, err := io.Copy(io.Discard, w.c)
	w.got += int(n)
	if err != nil {
		w.t.Fatalf("reading to EOF: %v", err)
	}
}

// serverFrameLen is the size on the wire of an unmasked server frame.
func serverFrameLen(payload int) int {
	switch {
	case payload < 126:
		return 2 + payload
	case payload <= 0xffff:
		return 4 + payload
	}
	return 10 + payload
}

// TestObserveSessionLoggedAtClose: a session of about 1.5 s is logged when
// it ends, with $request_time and $upstream_response_time its length (at
// least from the 101 to the client's close, at most from before the dial
// to the end of the connection, as the client measures them) and
// $body_bytes_sent the bytes the client received after the 101, counted
// on the wire.
func TestObserveSessionLoggedAtClose(t *testing.T) {
	be := startBackend(t, "b1")
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	g := startGate(t, fmt.Sprintf(obsConf, addr, be.addr))
	logPath := filepath.Join(g.dir, "t.log")

	start := time.Now()
	w := dialRawWS(t, addr, "/ws")
	opened := time.Now()
	want := 0
	for i, size := range []int{5, 125, 126, 300} {
		w.send(0x1, bytes.Repeat([]byte{'a' + byte(i)}, size))
		want += serverFrameLen(size)
		w.readUntil(want)
		time.Sleep(375 * time.Millisecond) // the session is meant to last ~1.5 s
	}
	if lines := linesWith(readLog(logPath), "/ws "); len(lines) != 0 {
		t.Fatalf("session logged before it closed:\n%s", strings.Join(lines, "\n"))
	}
	inner := time.Since(opened)
	w.send(0x8, []byte{0x03, 0xe8}) // close 1000
	w.readToEOF()
	length := time.Since(start)
	if w.got != want+4 {
		t.Errorf("client got %d bytes after the 101, want %d (echoes) + 4 (close)", w.got, want)
	}

	var line string
	waitFor(t, 10*time.Second, "the session's line", func() bool {
		l := linesWith(readLog(logPath), "/ws ")
		if len(l) > 0 {
			line = l[0]
		}
		return len(l) > 0
	})
	f := strings.Fields(line)
	if len(f) != 8 {
		t.Fatalf("line %q: want 8 fields", line)
	}
	if f[0] != "/ws" || f[1] != "101" || f[5] != be.addr || f[7] != "websocket" {
		t.Errorf("line %q: want /ws 101 ... %s ... websocket", line, be.addr)
	}
	rt, err := strconv.ParseFloat(f[2], 64)
	if err != nil {
		t.Fatalf("$request_time %q: %v", f[2], err)
	}
	// The variables have millisecond precision.
	within := func(v float64) bool { return v >= inner.Seconds()-0.001 && v <= length.Seconds()+0.001 }
	if !within(rt) {
		t.Errorf("$request_time %.3f, want between %.3f and %.3f s", rt, inner.Seconds(), length.Seconds())
	}
	urt, err := strconv.ParseFloat(f[6], 64)
	if err != nil {
		t.Fatalf("$upstream_response_time %q: %v", f[6], err)
	}
	if !within(urt) {
		t.Errorf("$upstream_response_time %.3f, want between %.3f and %.3f s (it runs to the end of the tunnel)", urt, inner.Seconds(), length.Seconds())
	}
	if f[4] != strconv.Itoa(w.got) {
		t.Errorf("$body_bytes_sent %s, client received %d bytes after the 101", f[4], w.got)
	}
	if f[3] != strconv.Itoa(len(w.head)+w.got) {
		t.Errorf("$bytes_sent %s, client received %d (head %d + %d)", f[3], len(w.head)+w.got, len(w.head), w.got)
	}
	if n := len(linesWith(readLog(logPath), "/ws ")); n != 1 {
		t.Errorf("session logged %d times", n)
	}
}

// TestObserveRotationUnderLoad renames access.log and sends USR1 while
// eight clients make 1,500 requests: the old and the new file together
// hold each request exactly once, and the new file has some.
func TestObserveRotationUnderLoad(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	g := startGate(t, fmt.Sprintf(`
error_log {{DIR}}/error.log info;
events { worker_connections 1024; }
http {
    access_log {{DIR}}/access.log combined buffer=8k flush=200ms;
    server {
        listen %s;
        location / { return 200 "ok"; }
    }
}
`, addr))
	logPath := filepath.Join(g.dir, "access.log")
	const total, workers, rotateAt, holdAt = 1500, 8, 500, 1200

	var next atomic.Int64
	reopened := make(chan struct{}) // closed once the new access.log exists
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := &http.Client{Timeout: slow(10 * time.Second), Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer cl.CloseIdleConnections()
			for {
				n := next.Add(1) - 1
				if n >= total {
					return
				}
				if n == holdAt {
					// Keep part of the load for after the reopen, so the
					// new file cannot stay empty by chance.
					select {
					case <-reopened:
					case <-time.After(slow(15 * time.Second)):
						errs <- fmt.Errorf("access.log not reopened in time")
						return
					}
				}
				resp, err := cl.Get(fmt.Sprintf("http://%s/r?n=%d", addr, n))
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs <- fmt.Errorf("request %d: status %d", n, resp.StatusCode)
					return
				}
			}
		}()
	}

	waitFor(t, 15*time.Second, "500 requests", func() bool { return next.Load() >= rotateAt })
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	g.signal(syscall.SIGUSR1)
	waitFor(t, 10*time.Second, "a new access.log", func() bool {
		_, err := os.Stat(logPath)
		return err == nil
	})
	close(reopened)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	count := func() int { return len(readLog(logPath)) + len(readLog(logPath+".1")) }
	waitFor(t, 10*time.Second, "1,500 lines across both files", func() bool { return count() >= total })

	re := regexp.MustCompile(`^127\.0\.0\.1 - - \[[^\]]+\] "GET /r\?n=(\d+) HTTP/1\.1" 200 2 "-" "Go-http-client/1\.1"$`)
	seen := make([]int, total)
	newLines := 0
	for _, name := range []string{logPath + ".1", logPath} {
		for _, l := range readLog(name) {
			m := re.FindStringSubmatch(l)
			if m == nil {
				t.Errorf("%s: unexpected line %q", filepath.Base(name), l)
				continue
			}
			n, _ := strconv.Atoi(m[1])
			if n >= total {
				t.Errorf("line for request %d", n)
				continue
			}
			seen[n]++
			if name == logPath {
				newLines++
			}
		}
	}
	for n, k := range seen {
		if k != 1 {
			t.Errorf("request %d logged %d times", n, k)
		}
	}
	if newLines == 0 {
		t.Error("the new access.log is empty")
	}
	t.Logf("old file %d lines, new file %d", total-newLines, newLines)
}

// status is one stub_status answer.
type status struct{ active, accepts, handled, requests, reading, writing, waiting int64 }

var stubRE = regexp.MustCompile(`^Active connections: (\d+) \nserver accepts handled requests\n (\d+) (\d+) (\d+) \nReading: (\d+) Writing: (\d+) Waiting: (\d+) \n$`)

// stub fetches /status on a connection of its own.
func stub(t testing.TB, addr string) status {
	t.Helper()
	st, _, body := rawRequest(t, addr, "GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if st != 200 {
		t.Fatalf("/status: %d %q", st, body)
	}
	m := stubRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("stub_status text is not nginx's format:\n%q", body)
	}
	var v [7]int64
	for i := range v {
		v[i], _ = strconv.ParseInt(m[i+1], 10, 64)
	}
	return status{v[0], v[1], v[2], v[3], v[4], v[5], v[6]}
}

// TestObserveStubStatus opens 100 WebSockets: stub_status counts each as
// an active, writing connection (plus the status request itself, as
// nginx), and every count returns to where it was once they close.
func TestObserveStubStatus(t *testing.T) {
	be := startBackend(t, "b1")
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	startGate(t, fmt.Sprintf(obsConf, addr, be.addr))

	before := stub(t, addr)
	if before.active != 1 || before.reading != 0 || before.writing != 1 || before.waiting != 0 {
		t.Errorf("idle server: %+v, want active 1 (the status request), writing 1", before)
	}
	const n = 100
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		conns[i], _ = dial(t, "ws://"+addr+"/ws", nil)
	}
	echo(t, conns[n-1], "all open")
	var during status
	waitFor(t, 10*time.Second, "100 tunnels in stub_status", func() bool {
		during = stub(t, addr)
		return during.active == before.active+n
	})
	if during.writing != before.writing+n || during.reading != before.reading || during.waiting != before.waiting {
		t.Errorf("with %d tunnels: %+v, before %+v: want writing +%d, reading and waiting unchanged", n, during, before, n)
	}
	if during.accepts != during.handled || during.requests < during.accepts || during.accepts < before.accepts+n {
		t.Errorf("accepts/handled/requests %d %d %d (before %d %d %d)", during.accepts, during.handled, during.requests, before.accepts, before.handled, before.requests)
	}
	for _, c := range conns {
		closeWS(t, c)
	}
	var after status
	waitFor(t, 10*time.Second, "counts back to the idle values", func() bool {
		after = stub(t, addr)
		return after.active == before.active && after.reading == before.reading && after.writing == before.writing && after.waiting == before.waiting
	})
	waitFor(t, 10*time.Second, "backend sessions to close", func() bool { return be.open.Load() == 0 })
}

// TestObserveConnectionsVariables: $connections_* agree with stub_status
// while five tunnels are open.
func TestObserveConnectionsVariables(t *testing.T) {
	be := startBackend(t, "b1")
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	startGate(t, fmt.Sprintf(obsConf, addr, be.addr))
	for range 5 {
		c, _ := dial(t, "ws://"+addr+"/ws", nil)
		echo(t, c, "x")
	}
	var vars string
	var s status
	waitFor(t, 10*time.Second, "$connections_* to equal stub_status", func() bool {
		st, _, body := rawRequest(t, addr, "GET /conn HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if st != 200 {
			t.Fatalf("/conn: %d %q", st, body)
		}
		vars = body
		s = stub(t, addr)
		return vars == fmt.Sprintf("%d %d %d %d", s.active, s.reading, s.writing, s.waiting)
	})
	if s.active != 6 {
		t.Errorf("active %d with 5 tunnels and the request itself, want 6 ($connections: %s)", s.active, vars)
	}
}

// TestObserveJSONEscape: headers with quotes, a backslash, a tab and UTF-8
// give one valid JSON object per line under escape=json, which decodes back
// to the header's value. Control characters other than tab are refused
// with 400 before they can reach a log or a backend: nginx passes them (it
// refuses only NUL, CR and LF); wsgate is stricter on purpose, as RFC 9110
// allows (docs/security.md).
func TestObserveJSONEscape(t *testing.T) {
	be := startBackend(t, "b1")
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	g := startGate(t, fmt.Sprintf(obsConf, addr, be.addr))
	path := filepath.Join(g.dir, "json.log")
	logged := 0
	for _, tc := range []struct {
		name  string
		value string
	}{
		{"quotes", `say "hi"`},
		{"backslash", `back\slash and "quote"`},
		{"tab", "tab\there"},
		{"utf8", "utf8 é ✓"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := "GET /json?q=%22x%22 HTTP/1.1\r\nHost: x\r\nUser-Agent: " + tc.value + "\r\nX-Test: " + tc.value + "\r\nConnection: close\r\n\r\n"
			if st, _, _ := rawRequest(t, addr, req); st != 200 {
				t.Fatalf("header %q: status %d, want 200", tc.value, st)
			}
			logged++
			waitFor(t, 10*time.Second, "the JSON line", func() bool { return len(readLog(path)) >= logged })
			lines := readLog(path)
			if len(lines) != logged {
				t.Fatalf("%d lines, want %d", len(lines), logged)
			}
			l := lines[logged-1]
			var obj struct {
				UA     string `json:"ua"`
				X      string `json:"x"`
				URI    string `json:"uri"`
				Status int    `json:"status"`
			}
			if err := json.Unmarshal([]byte(l), &obj); err != nil {
				t.Fatalf("line is not JSON: %v\n%q", err, l)
			}
			if obj.UA != tc.value || obj.X != tc.value || obj.URI != `/json?q=%22x%22` || obj.Status != 200 {
				t.Errorf("line decodes to %+v, want ua and x %q", obj, tc.value)
			}
		})
	}
}

// TestObserveControlCharsRefused: a header value with raw control
// characters gets 400, the error log says why, and no log ever holds the
// header's value; the process stays up.
func TestObserveControlCharsRefused(t *testing.T) {
	be := startBackend(t, "b1")
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	g := startGate(t, fmt.Sprintf(obsConf, addr, be.addr))
	req := "GET /json HTTP/1.1\r\nHost: x\r\nX-Test: a\x01b\x1fc\x7fd\r\nUser-Agent: a\x01b\r\nConnection: close\r\n\r\n"
	if st, _, _ := rawRequest(t, addr, req); st != 400 {
		t.Fatalf("control characters in a header value: %d, want 400", st)
	}
	if st, _, _ := rawRequest(t, addr, "GET /json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); st != 200 {
		t.Fatalf("after a refused request: %d", st)
	}
	waitFor(t, 10*time.Second, "the refusal in the error log and the next request in json.log", func() bool {
		return strings.Contains(g.errorLog(), "client sent invalid header line") && len(readLog(filepath.Join(g.dir, "json.log"))) == 1
	})
	files, err := os.ReadDir(g.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !strings.HasSuffix(f.Name(), ".log") {
			continue
		}
		b := readFile(filepath.Join(g.dir, f.Name()))
		for _, bad := range []string{"a\x01b", `a\x01b`, `a\u0001b`, "\x1f", "\x7f"} {
			if strings.Contains(b, bad) {
				t.Errorf("%s holds the refused header (%q):\n%s", f.Name(), bad, b)
			}
		}
	}
	if be.lastPlain() != nil {
		t.Errorf("the backend saw a request")
	}
}
