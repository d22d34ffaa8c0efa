package e2e

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/sys/unix"
)

// startCmd runs the wsgate binary with args and extra environment, and
// waits until pidFile names it, as startGate does for -c runs.
func startCmd(t *testing.T, pidFile string, env []string, args ...string) *gate {
	t.Helper()
	g := &gate{t: t, dir: t.TempDir(), stderr: &syncBuffer{}, done: make(chan struct{})}
	g.cmd = exec.Command(binary, args...)
	g.cmd.Env = append(os.Environ(), env...)
	g.cmd.Stderr, g.cmd.Stdout = g.stderr, g.stderr
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		g.exit = g.cmd.Wait()
		close(g.done)
	}()
	t.Cleanup(g.stop)
	waitFor(t, 15*time.Second, "wsgate to write its pid file", func() bool {
		select {
		case <-g.done:
			t.Fatalf("wsgate exited: %v\n%s", g.exit, g.stderr)
		default:
		}
		b, err := os.ReadFile(pidFile)
		return err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(g.cmd.Process.Pid)
	})
	return g
}

// wsgateOut runs the binary to completion and returns its exit code,
// standard output and standard error.
func wsgateOut(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

// TestCLIHelpAndVersion: --help and -h exit 0 with the options and
// examples on standard output; -v/--version and -V/--build-info print the
// version; an unknown option exits 1 pointing to --help.
func TestCLIHelpAndVersion(t *testing.T) {
	for _, arg := range []string{"--help", "-h"} {
		code, out, _ := wsgateOut(t, arg)
		if code != 0 {
			t.Errorf("%s: exit %d", arg, code)
		}
		for _, want := range []string{"Usage: wsgate", "-c, --conf FILE", "-t, --test", "-s, --signal SIGNAL", "Examples:", "wsgate proxy --from :8080 --to 127.0.0.1:9000"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s output lacks %q:\n%s", arg, want, out)
			}
		}
	}
	code, out, _ := wsgateOut(t, "proxy", "--help")
	if code != 0 || !strings.Contains(out, "--to HOST:PORT") || !strings.Contains(out, "--print-config") {
		t.Errorf("proxy --help: exit %d\n%s", code, out)
	}
	for _, arg := range []string{"-v", "--version"} {
		if code, out, _ := wsgateOut(t, arg); code != 0 || !strings.HasPrefix(out, "wsgate version: wsgate/") {
			t.Errorf("%s: exit %d, %q", arg, code, out)
		}
	}
	for _, arg := range []string{"-V", "--build-info"} {
		code, out, _ := wsgateOut(t, arg)
		if code != 0 || !strings.Contains(out, "commit: ") || !strings.Contains(out, "built with go") {
			t.Errorf("%s: exit %d, %q", arg, code, out)
		}
	}
	code, _, errOut := wsgateOut(t, "--no-such-option")
	if code != 1 || !strings.Contains(errOut, "Try 'wsgate --help'") {
		t.Errorf("unknown option: exit %d, %q", code, errOut)
	}
}

// TestCLIVersionStamp: a binary built as scripts/package.sh builds it
// prints its commit and commit time with -V: from the toolchain's VCS
// stamp in a clone, from the -X values in a git worktree (which the
// toolchain does not stamp).
func TestCLIVersionStamp(t *testing.T) {
	rev, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not in a git checkout: %v", err) // a source tarball has no commit to print
	}
	at, err := exec.Command("git", "show", "-s", "--format=%cI", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "wsgate")
	ldflags := fmt.Sprintf("-X main.buildCommit=%s -X main.buildTime=%s", strings.TrimSpace(string(rev)), strings.TrimSpace(string(at)))
	build := exec.Command("go", "build", "-buildvcs=true", "-ldflags", ldflags, "-o", bin, "../../cmd/wsgate")
	build.Env = append(os.Environ(), "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "-V").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "commit: "+strings.TrimSpace(string(rev))) || !strings.Contains(string(out), "commit time: 20") {
		t.Errorf("-V of a stamped build:\n%s", out)
	}
}

// TestCLILongOptions: the long and grouped forms test the same file as
// nginx's -t -c.
func TestCLILongOptions(t *testing.T) {
	dir := t.TempDir()
	conf := writeConf(t, dir, "error_log stderr;\nevents {}\nhttp { access_log off; server { listen 127.0.0.1:1; location / { return 200; } } }\n")
	for _, args := range [][]string{
		{"-t", "-c", conf},
		{"--test", "--conf", conf},
		{"--test", "--conf=" + conf, "--prefix", dir},
		{"-tc" + conf},
	} {
		code, _, errOut := wsgateOut(t, args...)
		if code != 0 || !strings.Contains(errOut, conf+" test is successful") {
			t.Errorf("%q: exit %d\n%s", args, code, errOut)
		}
	}
	for _, args := range [][]string{{"-tq", "-c", conf}, {"--test", "--quiet", "--conf", conf}} {
		if code, out, errOut := wsgateOut(t, args...); code != 0 || out+errOut != "" {
			t.Errorf("%q: exit %d, output %q", args, code, out+errOut)
		}
	}
}

// TestCLIDumpRedactsSecrets: -T prints the configuration with literal
// credentials replaced by <redacted>; variables and paths stay.
func TestCLIDumpRedactsSecrets(t *testing.T) {
	dir := t.TempDir()
	conf := writeConf(t, dir, `error_log stderr;
events {}
http {
    access_log off;
    server {
        listen 127.0.0.1:1;
        location / {
            proxy_pass http://127.0.0.1:2;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_set_header Authorization "Basic dG9wc2VjcmV0OnB3";
            proxy_set_header X-Client-Auth $http_authorization;
            add_header Set-Cookie "token=hunter2";
        }
    }
}
`)
	code, out, errOut := wsgateOut(t, "-T", "-c", conf)
	if code != 0 {
		t.Fatalf("-T: exit %d\n%s", code, errOut)
	}
	for _, secret := range []string{"dG9wc2VjcmV0OnB3", "hunter2"} {
		if strings.Contains(out, secret) {
			t.Errorf("-T printed the secret %q:\n%s", secret, out)
		}
	}
	for _, want := range []string{`proxy_set_header Authorization "<redacted>";`, `add_header Set-Cookie "<redacted>";`, "X-Client-Auth $http_authorization;", "proxy_pass http://127.0.0.1:2;"} {
		if !strings.Contains(out, want) {
			t.Errorf("-T lacks %q:\n%s", want, out)
		}
	}
}

// TestStartupAndSignalLines: the error log has one line per bound socket,
// TCP and QUIC, and the HUP line names the signal but no sender (a signal
// carries none that wsgate reads).
func TestStartupAndSignalLines(t *testing.T) {
	plain, secure := freePort(t), freePort(t)
	certDir := t.TempDir()
	writeCert(t, certDir, "ws", "ws.example.com")
	g := startGate(t, fmt.Sprintf(`error_log {{DIR}}/error.log notice;
http {
    access_log off;
    server { listen 127.0.0.1:%[1]d; location / { return 200 ok; } }
    server {
        listen 127.0.0.1:%[2]d ssl;
        listen 127.0.0.1:%[2]d quic;
        ssl_certificate %[3]s/ws.pem;
        ssl_certificate_key %[3]s/ws.key;
        location / { return 200 ok; }
    }
}`, plain, secure, certDir))
	wants := []string{
		fmt.Sprintf("started, pid %d\n", g.cmd.Process.Pid),
		fmt.Sprintf("listening on 127.0.0.1:%d (tcp)\n", plain),
		fmt.Sprintf("listening on 127.0.0.1:%d (tcp, ssl)\n", secure),
		fmt.Sprintf("listening on 127.0.0.1:%d (udp, quic, http3)\n", secure),
	}
	// The pid file, which startGate waits for, is written before the
	// privileges drop and the lines that follow it.
	var log string
	waitFor(t, 10*time.Second, "the startup lines", func() bool {
		log = g.errorLog()
		return strings.Contains(log, wants[len(wants)-1])
	})
	for _, want := range wants {
		if !strings.Contains(log, want) {
			t.Errorf("error log lacks %q:\n%s", want, log)
		}
	}
	if !g.reload(t, strings.ReplaceAll(readFile(g.conf), "return 200 ok", "return 200 new")) {
		t.Fatalf("reload failed:\n%s", g.errorLog())
	}
	log = g.errorLog()
	if !strings.Contains(log, "signal 1 (SIGHUP) received, reconfiguring") || strings.Contains(log, "received from") {
		t.Errorf("signal line:\n%s", log)
	}
}

// TestProxyCommand: `wsgate proxy` with two --to backends carries
// WebSockets to both (round robin) with the forwarding headers set, and
// writes its access log.
func TestProxyCommand(t *testing.T) {
	b1, b2 := startBackend(t, "b1"), startBackend(t, "b2")
	port := freePort(t)
	dir := t.TempDir()
	pid := filepath.Join(dir, "proxy.pid")
	g := startCmd(t, pid, nil, "proxy", "--from", fmt.Sprintf("127.0.0.1:%d", port),
		"--to", b1.addr, "--to", "ws://"+b2.addr, "--access-log", filepath.Join(dir, "access.log"), "--pid", pid)
	url := fmt.Sprintf("ws://127.0.0.1:%d/chat", port)
	for i := 0; i < 4; i++ {
		c, _ := dial(t, url, nil)
		echo(t, c, fmt.Sprintf("hello %d", i))
		c.Close()
	}
	if b1.upgrades.Load() == 0 || b2.upgrades.Load() == 0 {
		t.Errorf("upgrades: b1 %d, b2 %d; want both used", b1.upgrades.Load(), b2.upgrades.Load())
	}
	h := b1.lastWS()
	if h.Get("X-Forwarded-For") != "127.0.0.1" || h.Get("X-Forwarded-Proto") != "http" || h.Get("Host") != "127.0.0.1" {
		t.Errorf("backend saw X-Forwarded-For %q, X-Forwarded-Proto %q, Host %q", h.Get("X-Forwarded-For"), h.Get("X-Forwarded-Proto"), h.Get("Host"))
	}
	waitFor(t, 10*time.Second, "four access log lines", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "access.log"))
		return strings.Count(string(b), "GET /chat") >= 4
	})
	if !strings.Contains(g.stderr.String(), fmt.Sprintf("listening on 127.0.0.1:%d (tcp)", port)) {
		t.Errorf("stderr:\n%s", g.stderr)
	}
	g.signal(syscall.SIGQUIT)
	if err := g.wait(10 * time.Second); err != nil {
		t.Errorf("exit after QUIT: %v\n%s", err, g.stderr)
	}
	if _, err := os.Stat(pid); !os.IsNotExist(err) {
		t.Errorf("pid file left behind: %v", err)
	}
}

// TestProxyCommandTLS: --tls-cert and --tls-key terminate TLS; the
// backend sees X-Forwarded-Proto https.
func TestProxyCommandTLS(t *testing.T) {
	be := startBackend(t, "b1")
	port := freePort(t)
	dir := t.TempDir()
	writeCert(t, dir, "ws", "ws.example.com")
	pid := filepath.Join(dir, "proxy.pid")
	startCmd(t, pid, nil, "proxy", "--from", fmt.Sprintf("127.0.0.1:%d", port), "--to", be.addr,
		"--tls-cert", filepath.Join(dir, "ws.pem"), "--tls-key", filepath.Join(dir, "ws.key"), "--pid", pid)
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "ws.example.com"}}
	c, _, err := d.Dial(fmt.Sprintf("wss://127.0.0.1:%d/", port), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echo(t, c, "over tls")
	if p := be.lastWS().Get("X-Forwarded-Proto"); p != "https" {
		t.Errorf("X-Forwarded-Proto %q, want https", p)
	}
}

// TestProxyPrintConfig: --print-config prints a file that `wsgate -t`
// accepts without warnings and that holds the WebSocket settings; bad
// options are refused with a clear message.
func TestProxyPrintConfig(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := wsgateOut(t, "proxy", "--from", ":8080", "--to", "127.0.0.1:9000", "--to", "127.0.0.1:9001", "--pid", filepath.Join(dir, "p.pid"), "--print-config")
	if code != 0 {
		t.Fatalf("--print-config: exit %d\n%s", code, errOut)
	}
	for _, want := range []string{"listen *:8080;", "server 127.0.0.1:9000;", "server 127.0.0.1:9001;", "proxy_set_header Upgrade $http_upgrade;",
		"proxy_set_header Connection $connection_upgrade;", "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;", "proxy_read_timeout 1h;", "websocket_ping_interval 30s;"} {
		if !strings.Contains(out, want) {
			t.Errorf("printed config lacks %q:\n%s", want, out)
		}
	}
	path := filepath.Join(dir, "wsgate.conf")
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = wsgateOut(t, "-t", "-c", path)
	if code != 0 || strings.Contains(errOut, "[warn]") || !strings.Contains(errOut, "test is successful") {
		t.Errorf("-t on the printed config: exit %d\n%s", code, errOut)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"proxy"}, "--to HOST:PORT is required"},
		{[]string{"proxy", "--to", "wss://127.0.0.1:1"}, "not supported yet"},
		{[]string{"proxy", "--to", "127.0.0.1:1", "--tls-key", "k.pem"}, "--tls-cert and --tls-key go together"},
		{[]string{"proxy", "--to", "127.0.0.1:1", "--read-timeout", "soon"}, "invalid value"},
	} {
		code, _, errOut := wsgateOut(t, tt.args...)
		if code != 1 || !strings.Contains(errOut, tt.want) {
			t.Errorf("%q: exit %d, %q; want %q", tt.args, code, errOut, tt.want)
		}
	}
}

// notifySocket listens on a unixgram socket as systemd does for
// Type=notify and returns it with its path.
func notifySocket(t *testing.T) (*net.UnixConn, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Net: "unixgram", Name: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, path
}

// nextNotify reads datagrams until one has all of want's keys (a prefix
// such as "READY=1" or "STATUS=reloaded"), skipping WATCHDOG=1 keep-alives
// unless asked for; it returns that datagram's lines.
func nextNotify(t *testing.T, c *net.UnixConn, want ...string) []string {
	t.Helper()
	buf := make([]byte, 4096)
	deadline := time.Now().Add(15 * time.Second)
	for {
		c.SetReadDeadline(deadline)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("waiting for %q: %v", want, err)
		}
		lines := strings.Split(strings.TrimRight(string(buf[:n]), "\n"), "\n")
		ok := true
		for _, w := range want {
			found := false
			for _, l := range lines {
				found = found || strings.HasPrefix(l, w)
			}
			ok = ok && found
		}
		if ok {
			return lines
		}
	}
}

func monotonicUsec(t *testing.T) int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return ts.Sec*1_000_000 + ts.Nsec/1_000
}

// TestSystemdNotify: under $NOTIFY_SOCKET wsgate sends READY=1 once its
// listeners are bound, WATCHDOG=1 at half of $WATCHDOG_USEC, RELOADING=1
// with a CLOCK_MONOTONIC timestamp then READY=1 and the result on every
// reload (good or refused), and STOPPING=1 on stop.
func TestSystemdNotify(t *testing.T) {
	sock, path := notifySocket(t)
	be := startBackend(t, "b1")
	port := freePort(t)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "logs"), 0o755)
	conf := writeConf(t, dir, fmt.Sprintf(proxyConf, port, be.addr, "v1"))
	g := startCmd(t, filepath.Join(dir, "logs", "wsgate.pid"),
		[]string{"NOTIFY_SOCKET=" + path, "WATCHDOG_USEC=400000"}, "-p", dir, "-c", conf)
	g.dir = dir
	ready := nextNotify(t, sock, "READY=1", "STATUS=")
	// READY=1 comes after the bind: the port answers now.
	c, _ := dial(t, fmt.Sprintf("ws://127.0.0.1:%d/ws", port), nil)
	echo(t, c, "ready means ready")
	t.Logf("ready: %q", ready)
	nextNotify(t, sock, "WATCHDOG=1")
	nextNotify(t, sock, "WATCHDOG=1")

	before := monotonicUsec(t)
	writeConf(t, dir, fmt.Sprintf(proxyConf, port, be.addr, "v2"))
	g.signal(syscall.SIGHUP)
	lines := nextNotify(t, sock, "RELOADING=1", "MONOTONIC_USEC=")
	after := monotonicUsec(t)
	for _, l := range lines {
		if v, ok := strings.CutPrefix(l, "MONOTONIC_USEC="); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < before || n > after {
				t.Errorf("MONOTONIC_USEC=%s not within [%d, %d]", v, before, after)
			}
		}
	}
	nextNotify(t, sock, "READY=1", "STATUS=reloaded")

	writeConf(t, dir, "http { server { listen 127.0.0.1:1; nonsense; } }")
	g.signal(syscall.SIGHUP)
	nextNotify(t, sock, "RELOADING=1")
	failed := nextNotify(t, sock, "READY=1", "STATUS=reload failed")
	if !strings.Contains(strings.Join(failed, "\n"), "nonsense") {
		t.Errorf("a refused reload's status does not say why: %q", failed)
	}
	echo(t, c, "the tunnel survived both reloads")

	g.signal(syscall.SIGTERM)
	nextNotify(t, sock, "STOPPING=1")
	if err := g.wait(10 * time.Second); err != nil {
		t.Errorf("exit: %v", err)
	}
}

// TestCLITestLeavesNoLogFiles: -t opens the logs to check them but removes
// the empty ones it created, so a test run as root leaves no root-owned
// file in a service user's log folder; existing files stay.
func TestCLITestLeavesNoLogFiles(t *testing.T) {
	dir := t.TempDir()
	conf := writeConf(t, dir, "error_log {{DIR}}/error.log;\nevents {}\nhttp { access_log {{DIR}}/access.log; server { listen 127.0.0.1:1; location / { access_log {{DIR}}/loc.log; return 200; } } }\n")
	if code, _, errOut := wsgateOut(t, "-t", "-c", conf); code != 0 {
		t.Fatalf("-t: exit %d\n%s", code, errOut)
	}
	for _, f := range []string{"error.log", "access.log", "loc.log"} {
		if _, err := os.Stat(filepath.Join(dir, f)); !os.IsNotExist(err) {
			t.Errorf("-t left %s behind (%v)", f, err)
		}
	}
	existing := filepath.Join(dir, "access.log")
	if err := os.WriteFile(existing, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := wsgateOut(t, "-t", "-c", conf); code != 0 {
		t.Fatalf("-t: exit %d\n%s", code, errOut)
	}
	if _, err := os.Stat(existing); err != nil {
		t.Errorf("-t removed an existing log file: %v", err)
	}
}

// TestSocketActivation: sockets passed as systemd does ($LISTEN_FDS from
// descriptor 3, $LISTEN_PID naming the process) serve their listen
// addresses without a bind of wsgate's own (the test keeps its copy of the
// socket open while wsgate starts, so a bind of the same address would
// fail); other listen addresses are bound as usual, and a passed socket
// no listen directive names is closed with a warning.
func TestSocketActivation(t *testing.T) {
	be := startBackend(t, "b1")
	activated, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer activated.Close()
	unused, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer unused.Close()
	files := make([]*os.File, 0, 2)
	for _, ln := range []net.Listener{activated, unused} {
		f, err := ln.(*net.TCPListener).File()
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		files = append(files, f)
	}
	port, bound := activated.Addr().(*net.TCPAddr).Port, freePort(t)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "logs"), 0o755)
	conf := writeConf(t, dir, fmt.Sprintf(`error_log {{DIR}}/error.log notice;
http {
    access_log off;
    server {
        listen 127.0.0.1:%d;
        listen 127.0.0.1:%d;
        location / {
            proxy_pass http://%s;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }
    }
}`, port, bound, be.addr))
	g := &gate{t: t, dir: dir, conf: conf, stderr: &syncBuffer{}, done: make(chan struct{})}
	// The shell sets LISTEN_PID to its own PID, which exec keeps.
	g.cmd = exec.Command("sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=2 LISTEN_FDNAMES=a:b; export LISTEN_PID LISTEN_FDS LISTEN_FDNAMES; exec "$0" "$@"`, binary, "-p", dir, "-c", conf)
	g.cmd.ExtraFiles = files
	g.cmd.Stderr, g.cmd.Stdout = g.stderr, g.stderr
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		g.exit = g.cmd.Wait()
		close(g.done)
	}()
	t.Cleanup(g.stop)
	waitFor(t, 15*time.Second, "wsgate to start", func() bool {
		select {
		case <-g.done:
			t.Fatalf("wsgate exited: %v\n%s\n%s", g.exit, g.stderr, g.errorLog())
		default:
		}
		return strings.Contains(g.errorLog(), "started, pid")
	})
	// Only wsgate holds the activated socket from now on.
	activated.Close()
	files[0].Close()
	for _, p := range []int{port, bound} {
		c, _ := dial(t, fmt.Sprintf("ws://127.0.0.1:%d/", p), nil)
		echo(t, c, fmt.Sprintf("through %d", p))
	}
	if want := fmt.Sprintf("socket activation: no listen directive for %s, closed", unused.Addr()); !strings.Contains(g.errorLog(), want) {
		t.Errorf("error log lacks %q:\n%s", want, g.errorLog())
	}
}
