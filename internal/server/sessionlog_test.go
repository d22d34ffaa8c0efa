package server

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/errlog"
)

// loggedExtraCeiling bounds what an access log adds to an idle tunnel's
// heap: the values of the line's variables as at the 101, not the
// request (whose 1 KiB cookie alone would be over it), its exchange or
// its variables' cache.
const loggedExtraCeiling = 640

// sessionLogServer proxies /snap, /kept and /combined to backend with
// access logs, /off without: /snap's line reads only variables settled at
// the 101 or at the end, /kept's a map of $request_time, which makes its
// tunnels keep the whole request, /combined's is nginx's default.
func sessionLogServer(t *testing.T, backend, dir string) *Server {
	t.Helper()
	return applyTestConfig(t, filepath.Join(dir, "t.conf"), sessionLogConf(t, backend, dir))
}

// sessionLogConf is sessionLogServer's configuration, on a free port.
func sessionLogConf(t *testing.T, backend, dir string) string {
	return fmt.Sprintf(`
error_log stderr crit;
events { worker_connections 4096; }
http {
    access_log off;
    log_format snap '$http_host|$cookie_session|$upstream_addr|$status|$sent_http_upgrade|$request_completion|$websocket_close_code|$pid|$bytes_sent';
    log_format kept '$http_host|$cookie_session|$slow';
    map $request_time $slow { 0.000 fast; default slow; }
    proxy_http_version 1.1;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection "upgrade";
    server {
        listen 127.0.0.1:%d;
        location /snap { access_log %[3]s/snap.log snap; proxy_pass http://%[2]s; }
        location /kept { access_log %[3]s/kept.log kept; proxy_pass http://%[2]s; }
        location /combined { access_log %[3]s/combined.log; proxy_pass http://%[2]s; }
        location /off { access_log off; proxy_pass http://%[2]s; }
    }
}`, freeTCPPort(t), backend, dir)
}

// TestSessionLogMemory: nginx's default access log costs an idle tunnel no
// more than loggedExtraCeiling of heap over an unlogged one, with a 1 KiB
// cookie in its handshake. The figures are logged.
func TestSessionLogMemory(t *testing.T) {
	be := holdBackend(t)
	s := sessionLogServer(t, be.Addr().String(), t.TempDir())
	defer s.Close()
	off, logged := int64(1<<62), int64(1<<62)
	// The least of three rounds: the first grows maps and pools.
	for range 3 {
		off = min(off, idleTunnelHeap(t, s, "/off", 200))
		logged = min(logged, idleTunnelHeap(t, s, "/combined", 200))
	}
	t.Logf("idle tunnel, both sides of the loopback: %d B without an access log, %d B with one", off, logged)
	if logged-off > loggedExtraCeiling {
		t.Errorf("an access log costs an idle tunnel %d B, over %d B: the request is kept for the line", logged-off, loggedExtraCeiling)
	}
}

// TestSessionLogLine: the session's line shows the handshake's values and
// the end's: from a snapshot taken at the 101 (/snap) and from the kept
// request when a variable can only be computed at the end (/kept).
func TestSessionLogLine(t *testing.T) {
	be := holdBackend(t)
	dir := t.TempDir()
	s := sessionLogServer(t, be.Addr().String(), dir)
	defer s.Close()
	for _, path := range []string{"/snap", "/kept"} {
		c := upgrade(t, s, path, "abc")
		time.Sleep(1100 * time.Millisecond) // so that $request_time is not 0.000
		c.Close()
	}
	want := map[string]string{
		"snap.log": "x|abc|" + be.Addr().String() + "|101|websocket|OK|-|" + strconv.Itoa(os.Getpid()) + "|",
		"kept.log": "x|abc|slow",
	}
	for name, prefix := range want {
		var line string
		for end := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			b, _ := os.ReadFile(filepath.Join(dir, name))
			if line = strings.TrimSpace(string(b)); line != "" || time.Now().After(end) {
				break
			}
		}
		if !strings.HasPrefix(line, prefix) {
			t.Errorf("%s: %q, want it to start %q", name, line, prefix)
		}
	}
}

// TestSessionLogChurn: logged sessions that end as they start, some with
// a message first, while the configuration reloads, each write one line
// with its handshake's values; nothing races (run with -race).
func TestSessionLogChurn(t *testing.T) {
	be := holdBackend(t)
	dir := t.TempDir()
	text := []byte(sessionLogConf(t, be.Addr().String(), dir))
	s := applyTestConfig(t, filepath.Join(dir, "t.conf"), string(text))
	defer s.Close()
	reloads := make(chan struct{})
	go func() {
		defer close(reloads)
		for range 5 {
			cfg, err := config.LoadBytes(filepath.Join(dir, "t.conf"), text, config.Options{})
			if err == nil {
				err = s.Apply(cfg, errlog.Stderr())
			}
			if err != nil {
				t.Errorf("reload: %v", err)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	const n = 300
	for i := range n {
		c := upgrade(t, s, "/snap", "c"+strconv.Itoa(i))
		if i%2 == 0 {
			c.Write([]byte{0x81, 0x82, 0, 0, 0, 0, 'h', 'i'}) // a masked text frame
		}
		c.Close()
	}
	<-reloads
	s.waitNoTunnels(t)
	seen := map[string]bool{}
	for end := time.Now().Add(10 * time.Second); len(seen) < n && time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		b, _ := os.ReadFile(filepath.Join(dir, "snap.log"))
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if f := strings.Split(l, "|"); len(f) == 9 && f[0] == "x" && f[3] == "101" && f[4] == "websocket" {
				seen[f[1]] = true
			}
		}
	}
	if len(seen) != n {
		t.Errorf("%d sessions logged with their handshake's values, want %d", len(seen), n)
	}
}
