package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wsgate-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "wsgate")
	args := []string{"build", "-o", binary}
	if os.Getenv("WSGATE_E2E_RACE") != "" {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "../../cmd/wsgate")...)
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building wsgate:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// builtTool is a program that tests run, built on first use, once per
// test binary, with the machine's Go and without -race.
type builtTool struct {
	name string // of the binary
	pkg  string // what go build builds
	once sync.Once
	path string
	err  error
}

// get returns the program's path, building it first; a program that
// cannot be built fails the test.
func (b *builtTool) get(t testing.TB) string {
	t.Helper()
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "wsgate-"+b.name)
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, b.name)
		out, err := exec.Command("go", "build", "-o", b.path, b.pkg).CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("building %s: %v\n%s", b.name, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// freePort returns a loopback port, free for TCP and UDP a moment ago,
// that this process has not handed out before. It is taken below the
// kernel's ephemeral range, so that the connections tests open (whose
// source ports come from that range) cannot take it before the server
// that was given it binds it.
func freePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 1000 {
		p := 20000 + rand.IntN(12000)
		if portsGiven[p] || !bindable(p) {
			continue
		}
		portsGiven[p] = true
		return p
	}
	t.Fatal("no free port below the ephemeral range")
	return 0
}

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// bindable reports whether port is free on 127.0.0.1 for TCP and UDP.
func bindable(port int) bool {
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	ln.Close()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	pc.Close()
	return true
}

// syncBuffer collects a process's output safely while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// gate is a running wsgate process.
type gate struct {
	t      testing.TB
	cmd    *exec.Cmd
	dir    string
	conf   string
	stderr *syncBuffer
	done   chan struct{}
	exit   error
}

// writeConf writes text as the config file in dir, substituting {{DIR}}.
func writeConf(t testing.TB, dir, text string) string {
	t.Helper()
	p := filepath.Join(dir, "wsgate.conf")
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(text, "{{DIR}}", dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// startGate runs wsgate with conf (which may use {{DIR}} for its own
// temporary folder) and waits until its pid file says it is bound.
func startGate(t testing.TB, conf string) *gate {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "logs"), 0o755)
	g := &gate{t: t, dir: dir, stderr: &syncBuffer{}, done: make(chan struct{})}
	g.conf = writeConf(t, dir, conf)
	g.cmd = exec.Command(binary, "-p", dir, "-c", g.conf)
	g.cmd.Stderr = g.stderr
	g.cmd.Stdout = g.stderr
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		g.exit = g.cmd.Wait()
		close(g.done)
	}()
	t.Cleanup(g.stop)
	pidFile := filepath.Join(dir, "logs", "wsgate.pid")
	if m := regexp.MustCompile(`(?m)^\s*pid\s+([^;]+);`).FindStringSubmatch(strings.ReplaceAll(conf, "{{DIR}}", dir)); m != nil {
		pidFile = m[1]
	}
	ready := slow(15 * time.Second)
	deadline := time.Now().Add(ready)
	for {
		if b, err := os.ReadFile(pidFile); err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(g.cmd.Process.Pid) {
			return g
		}
		select {
		case <-g.done:
			t.Fatalf("wsgate exited before it was ready: %v\n%s", g.exit, g.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("wsgate not ready after %v:\n%s", ready, g.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (g *gate) signal(sig syscall.Signal) {
	g.t.Helper()
	if err := g.cmd.Process.Signal(sig); err != nil {
		g.t.Fatalf("signal %v: %v", sig, err)
	}
}

// stop ends the process (TERM) and waits; it is registered as a cleanup.
func (g *gate) stop() {
	select {
	case <-g.done:
		return
	default:
	}
	g.cmd.Process.Signal(syscall.SIGTERM)
	d := slow(10 * time.Second)
	select {
	case <-g.done:
	case <-time.After(d):
		g.cmd.Process.Kill()
		<-g.done
		g.t.Errorf("wsgate did not stop on TERM within %v:\n%s", d, g.stderr)
	}
}

// wait waits for the process to exit by itself, for d stretched by slow.
func (g *gate) wait(d time.Duration) error {
	g.t.Helper()
	d = slow(d)
	select {
	case <-g.done:
		return g.exit
	case <-time.After(d):
		g.t.Fatalf("wsgate still running after %v", d)
		return nil
	}
}

// errorLog returns the error log the test configs write to {{DIR}}/error.log.
func (g *gate) errorLog() string {
	b, _ := os.ReadFile(filepath.Join(g.dir, "error.log"))
	return string(b)
}

// reload writes conf, sends HUP and waits for the error log to say how
// the reload ended; it reports whether the new configuration took.
func (g *gate) reload(t testing.TB, conf string) bool {
	t.Helper()
	okBefore := strings.Count(g.errorLog(), "reconfiguring done")
	failBefore := strings.Count(g.errorLog(), "reload failed")
	writeConf(t, g.dir, conf)
	g.signal(syscall.SIGHUP)
	waitFor(t, 10*time.Second, "the reload to finish", func() bool {
		l := g.errorLog()
		return strings.Count(l, "reconfiguring done") > okBefore || strings.Count(l, "reload failed") > failBefore
	})
	return strings.Count(g.errorLog(), "reconfiguring done") > okBefore
}

// waitFor polls cond until it holds or d (stretched by slow) passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	d = slow(d)
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// slow stretches a deadline written for an idle two-core machine by
// timeFactor, so that a loaded machine fails no test by waiting too
// little. A deadline that bounds a wait on a condition only makes a
// failure slower when stretched; where a test bounds wsgate's own timing
// (a timeout the test configures), it stretches the configured value and
// the bound alike, so the bound keeps its meaning.
func slow(d time.Duration) time.Duration {
	return time.Duration(float64(d) * timeFactor())
}

// timeFactor is WSGATE_TEST_TIME_FACTOR when set (a number, at least 1),
// else the one-minute load average per CPU read now, between 1 and 10.
func timeFactor() float64 {
	if v := os.Getenv("WSGATE_TEST_TIME_FACTOR"); v != "" {
		if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 1 {
			return f
		}
	}
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 1
	}
	load, err := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	if err != nil {
		return 1
	}
	return min(max(1, load/float64(runtime.NumCPU())), 10)
}

// backend is a real HTTP and WebSocket server (gorilla/websocket, an
// implementation independent of wsgate's) that records what it received.
type backend struct {
	srv      *httptest.Server
	addr     string
	name     string
	mu       sync.Mutex
	wsHeader http.Header
	plain    []http.Header
	upgrades atomic.Int64
	open     atomic.Int64
	received atomic.Int64 // WebSocket messages received
	echoed   atomic.Int64 // WebSocket messages echoed
	closes   []int        // close codes received from wsgate, under mu
}

func startBackend(t testing.TB, name string) *backend {
	t.Helper()
	b := &backend{name: name}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }, ReadBufferSize: 64 << 10, WriteBufferSize: 64 << 10}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if websocket.IsWebSocketUpgrade(r) {
			b.mu.Lock()
			b.wsHeader = r.Header.Clone()
			b.wsHeader.Set("Host", r.Host)
			b.mu.Unlock()
			c, err := up.Upgrade(w, r, http.Header{"X-Backend": {name}})
			if err != nil {
				return
			}
			b.open.Add(1) // before upgrades: upgrades > 0 && open == 0 means the session ended
			defer b.open.Add(-1)
			b.upgrades.Add(1)
			defer c.Close()
			for {
				mt, msg, err := c.ReadMessage()
				if err != nil {
					b.noteClose(err)
					return
				}
				b.received.Add(1)
				if err := c.WriteMessage(mt, msg); err != nil {
					return
				}
				b.echoed.Add(1)
			}
		}
		if r.URL.Path == "/hold" {
			// Answers once a WebSocket message has been echoed (or after
			// 5 s): a page fetching it keeps headless Chromium's virtual
			// clock from running out before the echo can arrive.
			for end := time.Now().Add(5 * time.Second); b.echoed.Load() == 0 && time.Now().Before(end); {
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(200 * time.Millisecond)
		}
		h := r.Header.Clone()
		h.Set("Host", r.Host)
		h.Set("X-Proto", r.Proto)
		if len(r.Header["Connection"]) == 0 && r.Close {
			h.Set("Connection", "close")
		}
		b.mu.Lock()
		b.plain = append(b.plain, h)
		b.mu.Unlock()
		body := new(bytes.Buffer)
		body.ReadFrom(r.Body)
		w.Header().Set("X-Backend", name)
		fmt.Fprintf(w, "%s %s %s body=%d", name, r.Method, r.URL.RequestURI(), body.Len())
	}))
	t.Cleanup(b.srv.Close)
	b.addr = b.srv.Listener.Addr().String()
	return b
}

// noteClose records the code of a close frame that ended a tunnel.
func (b *backend) noteClose(err error) {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		b.mu.Lock()
		b.closes = append(b.closes, ce.Code)
		b.mu.Unlock()
	}
}

// closeCodes returns the close codes the backend has received so far.
func (b *backend) closeCodes() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]int(nil), b.closes...)
}

func (b *backend) lastWS() http.Header {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.wsHeader
}

func (b *backend) lastPlain() http.Header {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.plain) == 0 {
		return nil
	}
	return b.plain[len(b.plain)-1]
}

// dial opens a WebSocket through wsgate with gorilla's client.
func dial(t testing.TB, url string, hdr http.Header) (*websocket.Conn, *http.Response) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: slow(5 * time.Second), ReadBufferSize: 64 << 10, WriteBufferSize: 64 << 10}
	c, resp, err := d.Dial(url, hdr)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", url, err, status)
	}
	t.Cleanup(func() { c.Close() })
	return c, resp
}

// echo sends msg and checks it comes back.
func echo(t testing.TB, c *websocket.Conn, msg string) {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(slow(5 * time.Second)))
	if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(slow(5 * time.Second)))
	_, got, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if string(got) != msg {
		t.Fatalf("echo %q, want %q", got, msg)
	}
}

// rawGet sends a raw request and returns the status line and the rest.
func rawRequest(t testing.TB, addr, req string) (status int, head string, body string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, slow(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(slow(10 * time.Second)))
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	var hb bytes.Buffer
	resp.Header.Write(&hb)
	return resp.StatusCode, hb.String(), buf.String()
}

// websocketAccept is RFC 6455's Sec-WebSocket-Accept, written here rather
// than borrowed from wsgate so that tests do not check wsgate against
// itself.
func websocketAccept(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}
