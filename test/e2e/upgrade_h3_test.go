package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	be "encoding/binary"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/wsgate/wsgate/internal/wsframe"
)

// HTTP/3 across a binary upgrade: QUIC connections, and the WebSocket
// tunnels over them (RFC 9220), stay in the old process as HTTP/2 ones do;
// the new process serves HTTP/3 once the old one has exited, and
// advertises it with Alt-Svc only then.

// h3UpgradeServer is a server block with HTTP/3 on %[1]d (UDP) and TLS on
// %[2]d, certificates in %[3]s, the WebSocket echo at %[4]s.
const h3UpgradeServer = `server {
        listen 127.0.0.1:%[1]d quic;
        listen 127.0.0.1:%[2]d ssl;
        server_name ws.example.com;
        ssl_certificate %[3]s/ws.pem;
        ssl_certificate_key %[3]s/ws.key;
        add_header Alt-Svc 'h3=":%[1]d"; ma=86400' always;
        add_header X-Pid $pid always;
        location /ws/ {
            proxy_pass http://%[4]s;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            websocket_drain_period 200ms;
        }
        location /plain { return 200 "plain\n"; }
    }`

// h3Gate starts a gate with h3UpgradeServer and the given main-context
// line; it returns the gate and its port, UDP and TLS.
func h3Gate(t *testing.T, mainLine string) (*gate, int) {
	t.Helper()
	echoBE := startRawEcho(t)
	plain, port := freePort(t), freePort(t)
	dir := t.TempDir()
	writeCert(t, dir, "ws", "ws.example.com")
	srv := fmt.Sprintf(h3UpgradeServer, port, port, dir, echoBE.ln.Addr())
	return startGate(t, fmt.Sprintf(upgradeConf, plain, echoBE.ln.Addr(), mainLine, srv)), port
}

func h3TLS() *tls.Config {
	return &tls.Config{InsecureSkipVerify: true, ServerName: "ws.example.com", NextProtos: []string{http3.NextProtoH3}}
}

// h3WS is a WebSocket over HTTP/3 (RFC 9220 extended CONNECT).
type h3WS struct {
	qc  *quic.Conn
	str *http3.RequestStream
	br  *bufio.Reader
}

func dialH3WS(port int, path string) (*h3WS, error) {
	ctx, cancel := context.WithTimeout(context.Background(), slow(15*time.Second))
	defer cancel()
	qc, err := quic.DialAddr(ctx, fmt.Sprintf("127.0.0.1:%d", port), h3TLS(), &quic.Config{KeepAlivePeriod: time.Second})
	if err != nil {
		return nil, fmt.Errorf("QUIC dial: %w", err)
	}
	w := &h3WS{qc: qc}
	cc := (&http3.Transport{}).NewClientConn(qc)
	if w.str, err = cc.OpenRequestStream(ctx); err != nil {
		w.abort()
		return nil, err
	}
	req, _ := http.NewRequest("CONNECT", fmt.Sprintf("https://ws.example.com:%d%s", port, path), nil)
	req.Proto = "websocket"
	req.Header.Set("Sec-WebSocket-Version", "13")
	if err := w.str.SendRequestHeader(req); err != nil {
		w.abort()
		return nil, err
	}
	resp, err := w.str.ReadResponse()
	if err != nil || resp.StatusCode != 200 {
		w.abort()
		return nil, fmt.Errorf("extended CONNECT over HTTP/3: %v %v", resp, err)
	}
	w.br = bufio.NewReader(w.str)
	return w, nil
}

func (w *h3WS) abort() { w.qc.CloseWithError(0, "") }

// next reads the next frame within d.
func (w *h3WS) next(d time.Duration) (upFrame, error) {
	w.str.SetReadDeadline(time.Now().Add(slow(d)))
	return readUpFrame(w.br)
}

// echo sends msg and reads it back.
func (w *h3WS) echo(msg string) error {
	if _, err := w.str.Write(wsframe.AppendFrame(nil, wsframe.OpText, []byte(msg), true, [4]byte{1, 2, 3, 4})); err != nil {
		return err
	}
	f, err := w.next(10 * time.Second)
	if err != nil || f.op != wsframe.OpText || string(f.payload) != msg {
		return fmt.Errorf("echo over HTTP/3: %v %q %v", f.op, f.payload, err)
	}
	return nil
}

// closeWith sends close code and waits for the answer, then ends the
// stream and the QUIC connection.
func (w *h3WS) closeWith(code uint16) error {
	defer w.abort()
	if _, err := w.str.Write(wsframe.AppendClose(nil, code, "", true, [4]byte{5, 6, 7, 8})); err != nil {
		return err
	}
	f, err := w.next(10 * time.Second)
	if err != nil || f.op != wsframe.OpClose {
		return fmt.Errorf("close answer: %v %q %v", f.op, f.payload, err)
	}
	w.str.Close()
	return nil
}

// h3Get is one GET over a new HTTP/3 connection; it reports the answering
// process's pid.
func h3Get(port int, path string) (int, error) {
	tr := &http3.Transport{TLSClientConfig: h3TLS(), QUICConfig: &quic.Config{HandshakeIdleTimeout: slow(5 * time.Second)}}
	defer tr.Close()
	cl := &http.Client{Transport: tr, Timeout: slow(5 * time.Second)}
	r, err := cl.Get(fmt.Sprintf("https://127.0.0.1:%d%s", port, path))
	if err != nil {
		return 0, err
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.ProtoMajor != 3 || r.StatusCode != 200 || string(body) != "plain\n" {
		return 0, fmt.Errorf("HTTP/3 GET: %s %d %q", r.Proto, r.StatusCode, body)
	}
	return strconv.Atoi(r.Header.Get("X-Pid"))
}

// tcpAltSvc is the Alt-Svc of a GET over TLS (a new connection) and the answering pid.
func tcpAltSvc(t *testing.T, port int) (string, int) {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "ws.example.com"}, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: slow(10 * time.Second)}
	r, err := cl.Get(fmt.Sprintf("https://127.0.0.1:%d/plain", port))
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	pid, _ := strconv.Atoi(r.Header.Get("X-Pid"))
	return r.Header.Get("Alt-Svc"), pid
}

// udpSockets counts the UDP sockets bound to 127.0.0.1:port.
func udpSockets(t *testing.T, port int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n")[1:] {
		if f := strings.Fields(l); len(f) > 1 && f[1] == fmt.Sprintf("0100007F:%04X", port) {
			n++
		}
	}
	return n
}

// checkH3AfterUpgrade: once the old process has exited, a new HTTP/3
// request reaches the new process, which now advertises HTTP/3, on the
// one socket the processes shared: it bound none of its own.
func checkH3AfterUpgrade(t *testing.T, g *gate, port, newPID int) {
	t.Helper()
	var last error
	waitFor(t, 30*time.Second, "an HTTP/3 request answered by the new process", func() bool {
		pid, err := h3Get(port, "/plain")
		last = err
		return err == nil && pid == newPID
	})
	if last != nil {
		t.Fatal(last)
	}
	if alt, pid := tcpAltSvc(t, port); pid != newPID || alt != fmt.Sprintf(`h3=":%d"; ma=86400`, port) {
		t.Errorf("after the old process exited: Alt-Svc %q from pid %d (new %d)", alt, pid, newPID)
	}
	if n := udpSockets(t, port); n != 1 {
		t.Errorf("%d UDP sockets on port %d, want the one inherited", n, port)
	}
	if el := g.errorLog(); !strings.Contains(el, "HTTP/3: accepting QUIC connections on 1 sockets the old process has left") {
		t.Errorf("error log:\n%s", tail(el, 20))
	}
}

// TestUpgradeH3TunnelStays: a WebSocket over HTTP/3 goes on echoing in the
// old process after USR2 until its client closes it; the old process then
// exits, and the new one serves HTTP/3. Until then the new process leaves
// Alt-Svc h3 out of its answers over TCP.
func TestUpgradeH3TunnelStays(t *testing.T) {
	g, port := h3Gate(t, "websocket_upgrade_drain_period 5m;")
	if pid, err := h3Get(port, "/plain"); err != nil || pid != g.cmd.Process.Pid {
		t.Fatalf("HTTP/3 before the upgrade: pid %d, %v\n%s", pid, err, g.errorLog())
	}
	w, err := dialH3WS(port, "/ws/h3")
	if err != nil {
		t.Fatalf("%v\n%s", err, g.errorLog())
	}
	defer w.abort()
	if err := w.echo("before"); err != nil {
		t.Fatal(err)
	}
	newPID := upgrade(t, g)
	for i := range 5 {
		if err := w.echo(fmt.Sprintf("after %d, still in the old process", i)); err != nil {
			t.Fatalf("%v\n%s", err, tail(g.errorLog(), 20))
		}
	}
	waitFor(t, 20*time.Second, "an answer over TCP from the new process", func() bool {
		alt, pid := tcpAltSvc(t, port)
		if pid == newPID && alt != "" {
			t.Errorf("the new process advertises Alt-Svc %q while the old one holds HTTP/3", alt)
		}
		return pid == newPID
	})
	if !alive(g.cmd.Process.Pid) {
		t.Fatal("the old process exited with a WebSocket open over HTTP/3")
	}
	if n := udpSockets(t, port); n != 1 {
		t.Errorf("%d UDP sockets on port %d during the upgrade, want the one the processes share", n, port)
	}
	if err := w.echo("last"); err != nil {
		t.Fatal(err)
	}
	if err := w.closeWith(1000); err != nil {
		t.Fatal(err)
	}
	waitExit(t, g, 20*time.Second)
	checkH3AfterUpgrade(t, g, port, newPID)
	if el := g.errorLog(); !strings.Contains(el, fmt.Sprintf("0 WebSocket tunnels moved to pid %d, 1 ended here", newPID)) {
		t.Errorf("error log:\n%s", tail(el, 20))
	}
}

// TestUpgradeH3TunnelDrains: with a short websocket_upgrade_drain_period,
// the WebSocket over HTTP/3 echoes in the old process until the period
// ends, then gets close 1001; the old process exits and the new one
// serves HTTP/3.
func TestUpgradeH3TunnelDrains(t *testing.T) {
	g, port := h3Gate(t, "websocket_upgrade_drain_period 2s;")
	w, err := dialH3WS(port, "/ws/h3")
	if err != nil {
		t.Fatalf("%v\n%s", err, g.errorLog())
	}
	defer w.abort()
	start := time.Now()
	newPID := upgrade(t, g)
	if err := w.echo("after, still in the old process"); err != nil {
		t.Fatalf("%v\n%s", err, tail(g.errorLog(), 20))
	}
	f, err := w.next(30 * time.Second)
	if err != nil || f.op != wsframe.OpClose || len(f.payload) < 2 || be.BigEndian.Uint16(f.payload) != 1001 {
		t.Fatalf("after the drain period: %v %q %v, want close 1001\n%s", f.op, f.payload, err, tail(g.errorLog(), 20))
	}
	if el := time.Since(start); el < 2*time.Second {
		t.Errorf("close 1001 %v after the upgrade, before the 2s drain period", el)
	}
	w.str.Write(wsframe.AppendClose(nil, 1001, "", true, [4]byte{5, 6, 7, 8}))
	w.str.Close()
	waitExit(t, g, 20*time.Second)
	checkH3AfterUpgrade(t, g, port, newPID)
}
