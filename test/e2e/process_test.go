package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestWorkerConnections: with worker_connections 5, two WebSockets hold
// four connections (a proxied WebSocket counts two); the next tunnel's
// backend leg does not fit, and a sixth connection is closed at once with
// nginx's log line.
func TestWorkerConnections(t *testing.T) {
	be := startBackend(t, "b1")
	port := freePort(t)
	g := startGate(t, strings.Replace(fmt.Sprintf(proxyConf, port, be.addr, "v1"), "worker_connections 1024", "worker_connections 5", 1))
	url := fmt.Sprintf("ws://127.0.0.1:%d/ws", port)
	a, _ := dial(t, url, nil)
	b, _ := dial(t, url, nil)
	echo(t, a, "a")
	echo(t, b, "b")
	// Client 5 of 5 fits, its backend leg would be the sixth: 503.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("error log:\n%s", g.errorLog())
		}
	})
	if st, c, _ := dialFrom(t, "", url, nil); st != 503 {
		t.Errorf("third WebSocket: %d, want 503", st)
		if c != nil {
			c.Close()
		}
	}
	waitFor(t, 5*time.Second, "nginx's line", func() bool { return strings.Contains(g.errorLog(), "5 worker_connections are not enough") })
	a.Close()
	// Until a's tunnel has closed, a new connection may be refused at
	// accept (closed at once, as nginx does): retry.
	waitFor(t, 5*time.Second, "a slot to free", func() bool {
		d := websocket.Dialer{HandshakeTimeout: slow(2 * time.Second)}
		c, _, err := d.Dial(url, nil)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	echo(t, b, "still b")
}

// TestUserDropsPrivileges: started as root with `user nobody`, wsgate binds
// and writes its pid file first, then runs as nobody, and takes no
// connection before it does: a file only root may read is refused from
// the very first request, which the test sends as soon as the port
// accepts, without waiting for the pid file.
func TestUserDropsPrivileges(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (CI runs as root): it checks the switch from root to `user`")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "logs"), 0o755)
	os.MkdirAll(filepath.Join(dir, "www"), 0o755)
	if err := os.WriteFile(filepath.Join(dir, "www", "secret"), []byte("root's"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755) // nobody may reach www, not read secret
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	conf := writeConf(t, dir, fmt.Sprintf("user nobody;\nhttp { access_log off; server { listen %s; root {{DIR}}/www; location = /ok { return 200 ok; } } }", addr))
	cmd := exec.Command(binary, "-p", dir, "-c", conf)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	// Dial without pause, the request already written: the first
	// connection lands as soon as the socket is bound.
	var c net.Conn
	req := []byte("GET /secret HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	for deadline := time.Now().Add(slow(15 * time.Second)); c == nil; {
		if c, err = net.Dial("tcp", addr); err == nil {
			break
		}
		select {
		case <-exited:
			t.Fatalf("wsgate exited before it accepted:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("port %d never accepted: %v\n%s", port, err, out.String())
		}
	}
	defer c.Close()
	c.Write(req)
	c.SetDeadline(time.Now().Add(slow(10 * time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("first request: %v\n%s", err, out.String())
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("first request for a file only root may read: %d, want 403 (served before the user switch?)", resp.StatusCode)
	}
	if uid := effectiveUID(t, cmd.Process.Pid); uid != nobody.Uid {
		t.Errorf("effective uid %s once serving, want nobody's %s", uid, nobody.Uid)
	}
	if st, _, _ := rawRequest(t, addr, "GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); st != 200 {
		t.Errorf("serving as nobody: %d", st)
	}
}

// effectiveUID reads pid's effective user id from /proc.
func effectiveUID(t *testing.T, pid int) string {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		if f := strings.Fields(l); len(f) > 2 && f[0] == "Uid:" {
			return f[2]
		}
	}
	t.Fatalf("no Uid line in /proc/%d/status", pid)
	return ""
}

// TestDaemon: `daemon on` returns to the shell at once, the pid file names
// the detached server, and -s quit stops it. A bind error still reaches the
// terminal and the exit status.
func TestDaemon(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "logs"), 0o755)
	port := freePort(t)
	conf := writeConf(t, dir, fmt.Sprintf("daemon on;\nerror_log {{DIR}}/error.log info;\nhttp { access_log off; server { listen 127.0.0.1:%d; location / { return 200 ok; } } }", port))
	out, err := exec.Command(binary, "-p", dir, "-c", conf).CombinedOutput()
	if err != nil {
		t.Fatalf("daemon start: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "logs", "wsgate.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		t.Fatalf("pid file %q: %v", b, err)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	if st, _, _ := rawRequest(t, fmt.Sprintf("127.0.0.1:%d", port), "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); st != 200 {
		t.Errorf("daemon serving: %d", st)
	}
	// A second instance on the same port fails loudly.
	dir2 := t.TempDir()
	os.MkdirAll(filepath.Join(dir2, "logs"), 0o755)
	conf2 := writeConf(t, dir2, fmt.Sprintf("daemon on;\nhttp { access_log off; server { listen 127.0.0.1:%d; } }", port))
	out, err = exec.Command(binary, "-p", dir2, "-c", conf2).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "bind() to 127.0.0.1:"+strconv.Itoa(port)+" failed") {
		t.Errorf("second daemon on a taken port: %v\n%s", err, out)
	}
	if out, err := exec.Command(binary, "-p", dir, "-c", conf, "-s", "quit").CombinedOutput(); err != nil {
		t.Fatalf("-s quit: %v\n%s", err, out)
	}
	waitFor(t, 10*time.Second, "the daemon to exit", func() bool { return syscall.Kill(pid, 0) != nil })
}
