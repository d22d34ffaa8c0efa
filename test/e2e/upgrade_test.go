package e2e

import (
	"bufio"
	"crypto/rand"
	"crypto/tls"
	be "encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/wsframe"
)

// Binary upgrades (USR2): plain tunnels move to the new process without a
// closed connection or a lost message; TLS tunnels stay and drain; a new
// binary or configuration that fails changes nothing.

const upgradeConf = `
error_log {{DIR}}/error.log info;
pid {{DIR}}/wsgate.pid;
%[3]s
events { worker_connections 30000; }
http {
    log_format sess '$pid $request_uri $status $websocket_messages_in $websocket_messages_out $websocket_close_code $http_host';
    access_log {{DIR}}/access.log sess;
    server {
        listen 127.0.0.1:%[1]d;
        location /ws/ {
            proxy_pass http://%[2]s;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_read_timeout 1h;
        }
        location /plain { return 200 "plain\n"; }
    }
    %[4]s
}
`

// rawEcho is a WebSocket echo backend on raw sockets, light enough for
// thousands of connections: it answers the handshake and sends each data
// frame back unmasked, and a close frame back before it closes.
type rawEcho struct {
	ln   net.Listener
	open atomic.Int64
	wg   sync.WaitGroup
}

func startRawEcho(t testing.TB) *rawEcho {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &rawEcho{ln: ln}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.open.Add(1)
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				defer e.open.Add(-1)
				defer c.Close()
				e.serve(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return e
}

func (e *rawEcho) serve(c net.Conn) {
	br := bufio.NewReader(c)
	if !answerUpgrade(c, br) {
		return
	}
	for {
		f, err := readUpFrame(br)
		if err != nil {
			return
		}
		c.Write(wsframe.AppendFrame(nil, f.op, f.payload, false, [4]byte{}))
		if f.op == wsframe.OpClose {
			return
		}
	}
}

// answerUpgrade reads a WebSocket handshake's head from br and answers
// it 101 on c; false if the head did not arrive whole.
func answerUpgrade(c net.Conn, br *bufio.Reader) bool {
	key := ""
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return false
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Sec-WebSocket-Key") {
			key = strings.TrimSpace(v)
		}
		if line == "\r\n" {
			break
		}
	}
	fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", websocketAccept(key))
	return true
}

type upFrame struct {
	op      wsframe.Opcode
	payload []byte
}

func readUpFrame(br *bufio.Reader) (upFrame, error) {
	var hb [wsframe.MaxHeaderLen]byte
	n := 0
	for {
		h, hn, err := wsframe.ParseHeader(hb[:n])
		if err != nil {
			return upFrame{}, err
		}
		if hn > 0 {
			p := make([]byte, h.Length)
			if _, err := io.ReadFull(br, p); err != nil {
				return upFrame{}, err
			}
			if h.Masked {
				wsframe.MaskBytes(p, h.Key, 0)
			}
			return upFrame{h.Opcode, p}, nil
		}
		b, err := br.ReadByte()
		if err != nil {
			return upFrame{}, err
		}
		hb[n] = b
		n++
	}
}

// wsClient is one raw WebSocket client: it sends numbered messages and
// checks that each comes back, in order.
type wsClient struct {
	c    net.Conn
	br   *bufio.Reader
	seq  uint32
	path string
}

func dialUp(addr, path string, tlsConf *tls.Config) (*wsClient, error) {
	var c net.Conn
	var err error
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		c, err = net.Dial("unix", path)
	} else if tlsConf != nil {
		c, err = tls.Dial("tcp", addr, tlsConf)
	} else {
		c, err = net.Dial("tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	var k [16]byte
	rand.Read(k[:])
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n\r\n", path, base64Std(k[:]))
	c.SetReadDeadline(time.Now().Add(slow(30 * time.Second)))
	br := bufio.NewReader(c)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, " 101 ") {
		c.Close()
		return nil, fmt.Errorf("handshake: %q %v", status, err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			c.Close()
			return nil, err
		}
		if line == "\r\n" {
			break
		}
	}
	c.SetReadDeadline(time.Time{})
	return &wsClient{c: c, br: br, path: path}, nil
}

// roundTrip sends the next numbered message (padded to size) and waits
// for its echo.
func (w *wsClient) roundTrip(size int) error {
	w.seq++
	p := make([]byte, max(size, 8))
	be.BigEndian.PutUint32(p, w.seq)
	copy(p[4:], w.path)
	var key [4]byte
	rand.Read(key[:])
	if _, err := w.c.Write(wsframe.AppendFrame(nil, wsframe.OpBinary, p, true, key)); err != nil {
		return fmt.Errorf("%s: sending message %d: %w", w.path, w.seq, err)
	}
	w.c.SetReadDeadline(time.Now().Add(slow(30 * time.Second)))
	f, err := readUpFrame(w.br)
	if err != nil {
		return fmt.Errorf("%s: waiting for message %d: %w", w.path, w.seq, err)
	}
	if f.op != wsframe.OpBinary || len(f.payload) != len(p) || be.BigEndian.Uint32(f.payload) != w.seq {
		return fmt.Errorf("%s: message %d came back as %v of %d bytes numbered %d", w.path, w.seq, f.op, len(f.payload), be.BigEndian.Uint32(f.payload))
	}
	return nil
}

// close runs the closing handshake, from the client.
func (w *wsClient) close() error {
	var key [4]byte
	w.c.Write(wsframe.AppendClose(nil, 1000, "", true, key))
	w.c.SetReadDeadline(time.Now().Add(slow(30 * time.Second)))
	f, err := readUpFrame(w.br)
	w.c.Close()
	if err != nil {
		return fmt.Errorf("%s: waiting for the close answer: %w", w.path, err)
	}
	if f.op != wsframe.OpClose {
		return fmt.Errorf("%s: got %v instead of the close answer", w.path, f.op)
	}
	return nil
}

// readCloseCode waits for a close frame and returns its code.
func (w *wsClient) readCloseCode(d time.Duration) (int, error) {
	w.c.SetReadDeadline(time.Now().Add(d))
	for {
		f, err := readUpFrame(w.br)
		if err != nil {
			return 0, err
		}
		if f.op == wsframe.OpClose {
			if len(f.payload) < 2 {
				return 1005, nil
			}
			return int(be.BigEndian.Uint16(f.payload)), nil
		}
	}
}

func base64Std(b []byte) string {
	const enc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	var sb strings.Builder
	for i := 0; i < len(b); i += 3 {
		var v uint32
		n := min(3, len(b)-i)
		for j := range 3 {
			v <<= 8
			if j < n {
				v |= uint32(b[i+j])
			}
		}
		for j := range 4 {
			if j <= n {
				sb.WriteByte(enc[(v>>(18-6*j))&63])
			} else {
				sb.WriteByte('=')
			}
		}
	}
	return sb.String()
}

// pidOf reads the gate's pid file: {{DIR}}/wsgate.pid, or the default.
func pidOf(g *gate) int {
	b, err := os.ReadFile(filepath.Join(g.dir, "wsgate.pid"))
	if err != nil {
		b, _ = os.ReadFile(filepath.Join(g.dir, "logs", "wsgate.pid"))
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// alive reports whether pid runs (a zombie counts as gone).
func alive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z")
}

// upgrade sends USR2 to the gate's process and returns the new process's
// pid once it has written the pid file; the new process is stopped (TERM,
// by its pid) when the test ends.
func upgrade(t testing.TB, g *gate) int {
	t.Helper()
	return upgradeBy(t, g, func() { g.signal(syscall.SIGUSR2) })
}

// upgradeBy is upgrade with send starting it.
func upgradeBy(t testing.TB, g *gate, send func()) int {
	t.Helper()
	old := g.cmd.Process.Pid
	send()
	var pid int
	waitFor(t, 60*time.Second, "the new process's pid file", func() bool {
		pid = pidOf(g)
		return pid != old && pid != 0
	})
	t.Cleanup(func() {
		syscall.Kill(pid, syscall.SIGTERM)
		deadline := time.Now().Add(slow(20 * time.Second))
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if alive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Errorf("the new process %d did not stop on TERM", pid)
		}
		// Both processes write here; with WSGATE_E2E_RACE=1 the race
		// detector does too.
		if out := g.stderr.String(); strings.Contains(out, "DATA RACE") {
			t.Errorf("race detected:\n%s", out)
		}
	})
	return pid
}

// upgradeTunnels is how many tunnels TestUpgradeMovesTunnels opens:
// $WSGATE_UPGRADE_TUNNELS, or a few for the race-checked suite.
func upgradeTunnels() int {
	if n, err := strconv.Atoi(os.Getenv("WSGATE_UPGRADE_TUNNELS")); err == nil && n > 0 {
		return n
	}
	return 20
}

// TestUpgradeMovesTunnels: plain tunnels echo numbered messages while USR2
// starts the new binary. None is closed, no message is lost or reordered,
// the old process exits within seconds, and each session is logged once,
// by the new process, when it really ends, with every message counted.
func TestUpgradeMovesTunnels(t *testing.T) {
	n := upgradeTunnels()
	echoBE := startRawEcho(t)
	port := freePort(t)
	g := startGate(t, fmt.Sprintf(upgradeConf, port, echoBE.ln.Addr(), "", ""))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	clients := make([]*wsClient, n)
	var dialWG sync.WaitGroup
	dialErr := make(chan error, n)
	sem := make(chan struct{}, 64)
	for i := range clients {
		dialWG.Add(1)
		sem <- struct{}{}
		go func() {
			defer dialWG.Done()
			defer func() { <-sem }()
			c, err := dialUp(addr, fmt.Sprintf("/ws/%d", i), nil)
			if err == nil {
				err = c.roundTrip(16)
			}
			if err != nil {
				dialErr <- err
				return
			}
			clients[i] = c
		}()
	}
	dialWG.Wait()
	close(dialErr)
	for err := range dialErr {
		t.Fatal(err)
	}
	// A tenth of the clients are busy (a message every few milliseconds),
	// the others idle but for one message a second.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, n)
	var sent atomic.Int64
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pause := time.Second
			if i%10 == 0 {
				pause = 5 * time.Millisecond
			}
			for {
				select {
				case <-stop:
					return
				case <-time.After(pause):
				}
				if err := c.roundTrip(16 + i%3000); err != nil {
					errs <- err
					return
				}
				sent.Add(1)
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	oldPID := g.cmd.Process.Pid
	start := time.Now()
	newPID := upgrade(t, g)
	waitExit(t, g, 30*time.Second)
	t.Logf("%d tunnels: the old process %d exited %v after USR2; %d messages echoed so far", n, oldPID, time.Since(start).Round(time.Millisecond), sent.Load())
	before := sent.Load()
	waitFor(t, 30*time.Second, "messages through the new process", func() bool { return sent.Load() > before+int64(n/10) })
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.Fatalf("error log:\n%s", tail(g.errorLog(), 40))
	}
	// Every tunnel still works, end to end, and closes cleanly.
	for _, c := range clients {
		if err := c.roundTrip(32); err != nil {
			t.Fatal(err)
		}
		if err := c.close(); err != nil {
			t.Fatal(err)
		}
	}
	// One line per session, by the new process, with all its messages.
	var lines []string
	waitFor(t, 30*time.Second, "a log line for every session", func() bool {
		lines = strings.Split(strings.TrimSpace(readFile(filepath.Join(g.dir, "access.log"))), "\n")
		return len(lines) >= n
	})
	seen := map[string]bool{}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) != 7 {
			t.Fatalf("log line %q", l)
		}
		if f[0] != strconv.Itoa(newPID) || f[2] != "101" || f[5] != "1000" || f[3] != f[4] {
			t.Errorf("log line %q: want pid %d, status 101, as many messages each way, close 1000", l, newPID)
		}
		// A header, which the old process kept only as the value its
		// line needed, reaches the new one's line.
		if f[6] != "x" {
			t.Errorf("log line %q: $http_host %q after the move, want x", l, f[6])
		}
		if seen[f[1]] {
			t.Errorf("session %s logged twice", f[1])
		}
		seen[f[1]] = true
	}
	if len(seen) != n {
		t.Errorf("%d sessions logged, want %d", len(seen), n)
	}
	for i, c := range clients {
		if f := strings.Fields(findLine(lines, c.path)); len(f) == 7 && f[3] != strconv.Itoa(int(c.seq)) {
			t.Errorf("client %d sent %d messages, the log says %s", i, c.seq, f[3])
		}
	}
	el := g.errorLog()
	if !strings.Contains(el, fmt.Sprintf("%d WebSocket tunnels moved to pid %d, 0 ended here", n, newPID)) {
		t.Errorf("error log does not report the move:\n%s", tail(el, 20))
	}
}

func findLine(lines []string, path string) string {
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 1 && f[1] == path {
			return l
		}
	}
	return ""
}

func tail(s string, n int) string {
	l := strings.Split(s, "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

// waitExit waits for the old process to exit by itself, and says why not.
// Its exit is seen by its pid: exec's Wait also waits for the new process,
// which holds the same standard error.
func waitExit(t testing.TB, g *gate, d time.Duration) {
	t.Helper()
	pid := g.cmd.Process.Pid
	deadline := time.Now().Add(slow(d))
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("the old process still runs after %v; error log:\n%s", slow(d), tail(g.errorLog(), 30))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestUpgradeTLSTunnelsDrain: wss tunnels cannot move (their TLS state
// lives in the old process): they go on echoing there after the upgrade,
// get close 1001 once websocket_upgrade_drain_period has passed, are
// logged there, and the old process exits then. Plain tunnels move.
func TestUpgradeTLSTunnelsDrain(t *testing.T) {
	echoBE := startRawEcho(t)
	port, tlsPort := freePort(t), freePort(t)
	dir := t.TempDir()
	writeCert(t, dir, "ws", "ws.example.com")
	tlsServer := fmt.Sprintf(`server {
        listen 127.0.0.1:%d ssl;
        ssl_certificate %s/ws.pem;
        ssl_certificate_key %s/ws.key;
        location /ws/ {
            proxy_pass http://%s;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            websocket_drain_period 500ms;
        }
    }`, tlsPort, dir, dir, echoBE.ln.Addr())
	g := startGate(t, fmt.Sprintf(upgradeConf, port, echoBE.ln.Addr(), "websocket_upgrade_drain_period 2s;", tlsServer))
	tc := &tls.Config{InsecureSkipVerify: true, ServerName: "ws.example.com"}
	const nTLS, nPlain = 100, 10
	var wss, plain []*wsClient
	for i := range nTLS {
		c, err := dialUp(fmt.Sprintf("127.0.0.1:%d", tlsPort), fmt.Sprintf("/ws/tls%d", i), tc)
		if err != nil {
			t.Fatal(err)
		}
		wss = append(wss, c)
	}
	for i := range nPlain {
		c, err := dialUp(fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("/ws/plain%d", i), nil)
		if err != nil {
			t.Fatal(err)
		}
		plain = append(plain, c)
	}
	oldPID := g.cmd.Process.Pid
	start := time.Now()
	newPID := upgrade(t, g)
	// The old process still relays the wss tunnels.
	for _, c := range wss[:10] {
		if err := c.roundTrip(64); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range wss {
		code, err := c.readCloseCode(slow(20 * time.Second))
		if err != nil || code != 1001 {
			t.Fatalf("%s: close %d, %v; want 1001", c.path, code, err)
		}
		c.c.Close()
	}
	if el := time.Since(start); el < 2*time.Second {
		t.Errorf("wss tunnels closed %v after the upgrade, before the 2s drain period", el)
	}
	waitExit(t, g, 20*time.Second)
	for _, c := range plain {
		if err := c.roundTrip(64); err != nil {
			t.Fatal(err)
		}
		if err := c.close(); err != nil {
			t.Fatal(err)
		}
	}
	// A new wss client reaches the new process.
	c, err := dialUp(fmt.Sprintf("127.0.0.1:%d", tlsPort), "/ws/late", tc)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.roundTrip(8); err != nil {
		t.Fatal(err)
	}
	c.close()
	var lines []string
	waitFor(t, 20*time.Second, "every session's log line", func() bool {
		lines = strings.Split(strings.TrimSpace(readFile(filepath.Join(g.dir, "access.log"))), "\n")
		return len(lines) >= nTLS+nPlain+1
	})
	old, moved := 0, 0
	for _, l := range lines {
		f := strings.Fields(l)
		switch {
		case strings.HasPrefix(f[1], "/ws/tls") && f[0] == strconv.Itoa(oldPID) && f[5] == "1001":
			old++
		case strings.HasPrefix(f[1], "/ws/plain") && f[0] == strconv.Itoa(newPID) && f[5] == "1000":
			moved++
		}
	}
	if old != nTLS || moved != nPlain {
		t.Errorf("%d wss sessions logged by the old process with 1001 (want %d), %d plain ones by the new (want %d):\n%s", old, nTLS, moved, nPlain, strings.Join(lines, "\n"))
	}
	if el := g.errorLog(); !strings.Contains(el, fmt.Sprintf("%d WebSocket tunnels moved to pid %d, %d ended here", nPlain, newPID, nTLS)) {
		t.Errorf("error log:\n%s", tail(el, 20))
	}
}

// TestUpgradeBrokenConfig: a new process whose configuration fails
// changes nothing: the old one says why and keeps its tunnels and its
// listeners.
func TestUpgradeBrokenConfig(t *testing.T) {
	echoBE := startRawEcho(t)
	port := freePort(t)
	g := startGate(t, fmt.Sprintf(upgradeConf, port, echoBE.ln.Addr(), "", ""))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	c, err := dialUp(addr, "/ws/a", nil)
	if err != nil {
		t.Fatal(err)
	}
	writeConf(t, g.dir, fmt.Sprintf(upgradeConf, port, echoBE.ln.Addr(), "bogus_directive on;", ""))
	g.signal(syscall.SIGUSR2)
	waitFor(t, 30*time.Second, "the failed upgrade in the error log", func() bool {
		return strings.Contains(g.errorLog(), "binary upgrade failed, this process keeps serving")
	})
	if el := g.errorLog(); !strings.Contains(el, `unknown directive "bogus_directive"`) {
		t.Errorf("the error log does not say why:\n%s", tail(el, 10))
	}
	checkStillServing(t, g, addr, c)
}

// TestUpgradeBrokenBinary: an executable that cannot run changes nothing.
func TestUpgradeBrokenBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "wsgate")
	b, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	echoBE := startRawEcho(t)
	port := freePort(t)
	g := startGateBinary(t, bin, fmt.Sprintf(upgradeConf, port, echoBE.ln.Addr(), "", ""))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	c, err := dialUp(addr, "/ws/a", nil)
	if err != nil {
		t.Fatal(err)
	}
	// A new binary that is not one: rename(2) over the running one, as
	// a package upgrade does.
	if err := os.WriteFile(bin+".new", []byte("\x7fELF broken"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(bin+".new", bin); err != nil {
		t.Fatal(err)
	}
	g.signal(syscall.SIGUSR2)
	waitFor(t, 30*time.Second, "the failed upgrade in the error log", func() bool {
		return strings.Contains(g.errorLog(), "binary upgrade failed, this process keeps serving")
	})
	if el := g.errorLog(); !strings.Contains(el, "exec format error") {
		t.Errorf("the error log does not say why:\n%s", tail(el, 10))
	}
	checkStillServing(t, g, addr, c)
}

// checkStillServing checks, after a failed upgrade, that the old process
// owns the pid file, relays its tunnel c and accepts new clients.
func checkStillServing(t *testing.T, g *gate, addr string, c *wsClient) {
	t.Helper()
	if pid := pidOf(g); pid != g.cmd.Process.Pid {
		t.Errorf("the pid file names %d, want the old process %d", pid, g.cmd.Process.Pid)
	}
	if err := c.roundTrip(100); err != nil {
		t.Fatal(err)
	}
	c2, err := dialUp(addr, "/ws/b", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.roundTrip(10); err != nil {
		t.Fatal(err)
	}
	c2.close()
	c.close()
	if status, _, body := rawRequest(t, addr, "GET /plain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); status != 200 || body != "plain\n" {
		t.Errorf("plain request: %d %q", status, body)
	}
}

// startGateBinary is startGate for another copy of the binary.
func startGateBinary(t *testing.T, bin, conf string) *gate {
	saved := binary
	binary = bin
	defer func() { binary = saved }()
	return startGate(t, conf)
}

// TestUpgradeUnixSocketAndSystemd: a unix listener passes to the new
// process too (its file stays when the old one exits), a tunnel that came
// in through it moves, and under systemd the new process announces itself
// with MAINPID= and READY=1.
func TestUpgradeUnixSocketAndSystemd(t *testing.T) {
	sock, notify := notifySocket(t)
	echoBE := startRawEcho(t)
	port := freePort(t)
	dir := t.TempDir()
	unixServer := fmt.Sprintf(`server {
        listen unix:%s/ws.sock;
        location /ws/ {
            proxy_pass http://%s;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }
    }`, dir, echoBE.ln.Addr())
	conf := writeConf(t, dir, fmt.Sprintf(upgradeConf, port, echoBE.ln.Addr(), "", unixServer))
	g := startCmd(t, filepath.Join(dir, "wsgate.pid"), []string{"NOTIFY_SOCKET=" + notify}, "-p", dir, "-c", conf)
	g.dir = dir
	nextNotify(t, sock, "READY=1")
	sockAddr := "unix:" + filepath.Join(dir, "ws.sock")
	c, err := dialUp(sockAddr, "/ws/unix", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.roundTrip(20); err != nil {
		t.Fatal(err)
	}
	// `wsgate -s upgrade`, through the pid file.
	newPID := upgradeBy(t, g, func() {
		if out, err := exec.Command(binary, "-p", dir, "-c", conf, "-s", "upgrade").CombinedOutput(); err != nil {
			t.Fatalf("wsgate -s upgrade: %v\n%s", err, out)
		}
	})
	got := nextNotify(t, sock, "MAINPID="+strconv.Itoa(newPID), "READY=1")
	t.Logf("the new process says %q", got)
	waitExit(t, g, 20*time.Second)
	if err := c.roundTrip(3000); err != nil {
		t.Fatal(err)
	}
	c2, err := dialUp(sockAddr, "/ws/unix2", nil)
	if err != nil {
		t.Fatalf("the unix socket after the old process left: %v", err)
	}
	if err := c2.roundTrip(8); err != nil {
		t.Fatal(err)
	}
	c2.close()
	c.close()
	if el := g.errorLog(); !strings.Contains(el, fmt.Sprintf("1 WebSocket tunnels moved to pid %d, 0 ended here", newPID)) {
		t.Errorf("error log:\n%s", tail(el, 20))
	}
}

// TestUpgradeH2TunnelStays: a WebSocket over HTTP/2 (RFC 8441) cannot
// move: it goes on in the old process and gets close 1001 once the
// drain period has passed. The new process, which re-executes itself for
// HTTP/2 WebSockets (GODEBUG), keeps its handover socket across that exec
// and serves extended CONNECT itself.
func TestUpgradeH2TunnelStays(t *testing.T) {
	echoBE := startRawEcho(t)
	port, h2Port := freePort(t), freePort(t)
	dir := t.TempDir()
	writeCert(t, dir, "ws", "ws.example.com")
	h2Server := fmt.Sprintf(`server {
        listen 127.0.0.1:%d ssl http2;
        server_name ws.example.com;
        ssl_certificate %s/ws.pem;
        ssl_certificate_key %s/ws.key;
        location /ws/ {
            proxy_pass http://%s;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            websocket_drain_period 200ms;
        }
    }`, h2Port, dir, dir, echoBE.ln.Addr())
	g := startGate(t, fmt.Sprintf(upgradeConf, port, echoBE.ln.Addr(), "websocket_upgrade_drain_period 1s;", h2Server))
	h2ws := func(path string) (*bufio.Reader, *io.PipeWriter, func()) {
		tr := h2Transport()
		pr, pw := io.Pipe()
		req, _ := http.NewRequest("CONNECT", fmt.Sprintf("https://127.0.0.1:%d%s", h2Port, path), pr)
		req.Header.Set(":protocol", "websocket")
		req.Header.Set("Sec-WebSocket-Version", "13")
		resp, err := tr.RoundTrip(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("extended CONNECT: %v %v", resp, err)
		}
		return bufio.NewReader(resp.Body), pw, func() { pw.Close(); tr.CloseIdleConnections() }
	}
	h2echo := func(br *bufio.Reader, pw *io.PipeWriter, msg string) {
		t.Helper()
		go pw.Write(wsframe.AppendFrame(nil, wsframe.OpText, []byte(msg), true, [4]byte{1, 2, 3, 4}))
		f, err := readUpFrame(br)
		if err != nil || string(f.payload) != msg {
			t.Fatalf("echo over HTTP/2: %q %v", f.payload, err)
		}
	}
	br, pw, done := h2ws("/ws/h2")
	defer done()
	h2echo(br, pw, "before")
	plain, err := dialUp(fmt.Sprintf("127.0.0.1:%d", port), "/ws/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	newPID := upgrade(t, g)
	h2echo(br, pw, "after, still in the old process")
	f, err := readUpFrame(br)
	if err != nil || f.op != wsframe.OpClose || len(f.payload) < 2 || be.BigEndian.Uint16(f.payload) != 1001 {
		t.Fatalf("after the drain period: %v %q %v, want close 1001", f.op, f.payload, err)
	}
	pw.Write(wsframe.AppendClose(nil, 1001, "", true, [4]byte{5, 6, 7, 8}))
	done()
	waitExit(t, g, 20*time.Second)
	if err := plain.roundTrip(10); err != nil {
		t.Fatal(err)
	}
	plain.close()
	br2, pw2, done2 := h2ws("/ws/late")
	defer done2()
	h2echo(br2, pw2, "the new process speaks RFC 8441")
	if el := g.errorLog(); !strings.Contains(el, fmt.Sprintf("1 WebSocket tunnels moved to pid %d, 1 ended here", newPID)) {
		t.Errorf("error log:\n%s", tail(el, 20))
	}
}

// TestUpgradeKeepsClusterSession: a tunnel registered in the cluster's
// sessions (websocket_session_key) is registered again by the new process,
// which then closes it on the cluster's command.
func TestUpgradeKeepsClusterSession(t *testing.T) {
	r := startRedis(t)
	be := startBackend(t, "b1")
	port := freePort(t)
	g := startGate(t, fmt.Sprintf(sessionConf, r.port, port, be.addr))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	st, alice := dialUser(t, addr, "alice")
	if st != 101 {
		t.Fatalf("alice: %d", st)
	}
	defer alice.Close()
	upgrade(t, g)
	waitExit(t, g, 20*time.Second)
	list := "http://" + addr + "/api/9/http/websocket/sessions?key=alice"
	// The list as the new process registered it (each call is a new
	// connection: poll gently).
	var body string
	waitFor(t, 10*time.Second, "alice's session in the list", func() bool {
		time.Sleep(50 * time.Millisecond)
		var got []map[string]any
		code, b := apiCall(t, "127.0.0.1", "GET", list)
		body = b
		return code == 200 && json.Unmarshal([]byte(b), &got) == nil && len(got) == 1
	})
	t.Logf("after the upgrade: %s", body)
	if code, body := apiCall(t, "127.0.0.1", "DELETE", list+"&code=4003&reason=moved"); code != 200 || !strings.Contains(body, `"sessions":1`) {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	alice.SetReadDeadline(time.Now().Add(slow(10 * time.Second)))
	_, _, err := alice.ReadMessage()
	if !strings.Contains(fmt.Sprint(err), "4003") {
		t.Fatalf("alice's session ended with %v, want close 4003", err)
	}
}

// TestUpgradeDaemon: under `daemon on` the new process is not made a
// daemon again (it would lose its handover socket): it takes over the pid
// file and serves, and the old daemon exits.
func TestUpgradeDaemon(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "logs"), 0o755)
	echoBE := startRawEcho(t)
	port := freePort(t)
	conf := writeConf(t, dir, fmt.Sprintf(upgradeConf, port, echoBE.ln.Addr(), "daemon on;", ""))
	if out, err := exec.Command(binary, "-p", dir, "-c", conf).CombinedOutput(); err != nil {
		t.Fatalf("daemon start: %v\n%s", err, out)
	}
	g := &gate{t: t, dir: dir}
	oldPID := pidOf(g)
	t.Cleanup(func() { syscall.Kill(oldPID, syscall.SIGKILL) })
	c, err := dialUp(fmt.Sprintf("127.0.0.1:%d", port), "/ws/d", nil)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(binary, "-p", dir, "-c", conf, "-s", "upgrade").CombinedOutput(); err != nil {
		t.Fatalf("-s upgrade: %v\n%s", err, out)
	}
	var newPID int
	waitFor(t, 30*time.Second, "the new process's pid file", func() bool {
		newPID = pidOf(g)
		return newPID != oldPID && newPID != 0
	})
	t.Cleanup(func() { syscall.Kill(newPID, syscall.SIGKILL) })
	waitFor(t, 20*time.Second, "the old daemon to exit", func() bool { return !alive(oldPID) })
	if err := c.roundTrip(100); err != nil {
		t.Fatalf("%v\n%s", err, tail(g.errorLog(), 20))
	}
	c.close()
	if out, err := exec.Command(binary, "-p", dir, "-c", conf, "-s", "quit").CombinedOutput(); err != nil {
		t.Fatalf("-s quit: %v\n%s", err, out)
	}
	waitFor(t, 10*time.Second, "the new daemon to exit", func() bool { return !alive(newPID) })
}
