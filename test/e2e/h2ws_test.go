package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/wsframe"
)

// WebSockets over HTTP/2 and HTTP/3 whose tunnel relays on the stream
// itself: large fragmented messages both ways, a backend that drops its
// connection, and wsgate's own close.

// streamWSConf serves HTTP/2 (TCP) and HTTP/3 (UDP) on port %[1]d, with
// certificates in %[2]s: /ws/ goes to an echo backend (%[3]s), /drop/ to
// one that drops its connection when told (%[4]s).
const streamWSConf = `
error_log {{DIR}}/error.log info;
http {
    log_format ws '$request $status $server_protocol $websocket_closed_by';
    access_log {{DIR}}/access.log ws;
    server {
        listen 127.0.0.1:%[1]d ssl http2;
        listen 127.0.0.1:%[1]d quic;
        server_name ws.example.com;
        ssl_certificate %[2]s/ws.pem;
        ssl_certificate_key %[2]s/ws.key;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection "upgrade";
        location /ws/ { proxy_pass http://%[3]s; }
        location /drop/ { proxy_pass http://%[4]s; }
    }
}`

func startStreamWS(t *testing.T) (*gate, int) {
	t.Helper()
	echo := startRawEcho(t)
	drop := startDropBackend(t)
	dir := t.TempDir()
	writeCert(t, dir, "ws", "ws.example.com")
	port := freePort(t)
	return startGate(t, fmt.Sprintf(streamWSConf, port, dir, echo.ln.Addr(), drop.Addr())), port
}

// startDropBackend answers WebSocket handshakes and closes the connection,
// without a close frame, when a text frame "drop" arrives.
func startDropBackend(t *testing.T) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				if !answerUpgrade(c, br) {
					return
				}
				for {
					f, err := readUpFrame(br)
					if err != nil || string(f.payload) == "drop" {
						return
					}
				}
			}()
		}
	}()
	return ln
}

// streamWS is a WebSocket over an HTTP/2 or HTTP/3 stream, client side.
type streamWS struct {
	w       io.Writer
	br      *bufio.Reader
	close   func()              // ends the client's side and its connection
	timeout func(time.Duration) // bounds the next reads
}

func dialH2Stream(t *testing.T, port int, path string) *streamWS {
	t.Helper()
	tr := h2Transport()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	req, _ := http.NewRequestWithContext(ctx, "CONNECT", fmt.Sprintf("https://127.0.0.1:%d%s", port, path), pr)
	req.Header.Set(":protocol", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	timer := time.AfterFunc(slow(15*time.Second), cancel)
	resp, err := tr.RoundTrip(req)
	if err != nil || resp.StatusCode != 200 {
		cancel()
		t.Fatalf("extended CONNECT over HTTP/2: %v %v", resp, err)
	}
	ws := &streamWS{w: pw, br: bufio.NewReaderSize(resp.Body, 64<<10)}
	ws.close = func() { pw.Close(); cancel(); tr.CloseIdleConnections() }
	ws.timeout = func(d time.Duration) { timer.Reset(slow(d)) }
	t.Cleanup(ws.close)
	return ws
}

func dialH3Stream(t *testing.T, port int, path string) *streamWS {
	t.Helper()
	w, err := dialH3WS(port, path)
	if err != nil {
		t.Fatal(err)
	}
	ws := &streamWS{w: w.str, br: bufio.NewReaderSize(w.str, 64<<10)}
	ws.close = func() { w.str.Close(); w.abort() }
	ws.timeout = func(d time.Duration) { w.str.SetReadDeadline(time.Now().Add(slow(d))) }
	t.Cleanup(ws.close)
	return ws
}

// sendSplit writes msg as one binary message in frames of chunk bytes,
// masked.
func (s *streamWS) sendSplit(msg []byte, chunk int) error {
	var buf []byte
	for off := 0; off < len(msg); off += chunk {
		end := min(off+chunk, len(msg))
		op := wsframe.OpContinuation
		if off == 0 {
			op = wsframe.OpBinary
		}
		key := [4]byte{byte(off), 2, 3, 4}
		buf = wsframe.AppendHeader(buf[:0], wsframe.Header{Fin: end == len(msg), Opcode: op, Masked: true, Key: key, Length: int64(end - off)})
		start := len(buf)
		buf = append(buf, msg[off:end]...)
		wsframe.MaskBytes(buf[start:], key, 0)
		if _, err := s.w.Write(buf); err != nil {
			return err
		}
	}
	return nil
}

// readMessage reads frames until one ends a message; it returns the
// message's bytes and how many frames carried it.
func (s *streamWS) readMessage() ([]byte, int, error) {
	var msg []byte
	for frames := 1; ; frames++ {
		f, err := readUpFrame(s.br)
		if err != nil {
			return msg, frames, err
		}
		msg = append(msg, f.payload...)
		if len(msg) >= 1<<20 || f.op == wsframe.OpText || f.op == wsframe.OpClose {
			return msg, frames, nil
		}
	}
}

func testLargeMessages(t *testing.T, dial func(*testing.T, int, string) *streamWS) {
	_, port := startStreamWS(t)
	ws := dial(t, port, "/ws/")
	ws.timeout(30 * time.Second)
	for round := range 2 {
		msg := make([]byte, 1<<20)
		rand.Read(msg)
		errc := make(chan error, 1)
		go func() { errc <- ws.sendSplit(msg, 64<<10+round*1000) }()
		got, frames, err := ws.readMessage()
		if err != nil {
			t.Fatalf("round %d: reading the echo: %v (%d bytes)", round, err, len(got))
		}
		if werr := <-errc; werr != nil {
			t.Fatalf("round %d: sending: %v", round, werr)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("round %d: the echo of 1 MiB differs (%d bytes back)", round, len(got))
		}
		if frames < 2 {
			t.Errorf("round %d: the echo came in %d frame(s), want the fragments", round, frames)
		}
	}
}

// TestH2WebSocketLargeMessages: 1 MiB messages in 64 KiB frames go through
// an HTTP/2 WebSocket and back byte for byte, twice.
func TestH2WebSocketLargeMessages(t *testing.T) { testLargeMessages(t, dialH2Stream) }

// TestH3WebSocketLargeMessages: the same over HTTP/3.
func TestH3WebSocketLargeMessages(t *testing.T) { testLargeMessages(t, dialH3Stream) }

func testBackendDrop(t *testing.T, dial func(*testing.T, int, string) *streamWS, proto string) {
	g, port := startStreamWS(t)
	ws := dial(t, port, "/drop/")
	ws.timeout(20 * time.Second)
	if _, err := ws.w.Write(wsframe.AppendFrame(nil, wsframe.OpText, []byte("drop"), true, [4]byte{9, 9, 9, 9})); err != nil {
		t.Fatal(err)
	}
	// The stream ends as the backend's connection did: no close frame of
	// wsgate's comes first.
	f, err := readUpFrame(ws.br)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("after the backend dropped its connection the client read %v %q, %v; want the end of the stream\n%s", f.op, f.payload, err, g.errorLog())
	}
	ws.close()
	waitFor(t, 10*time.Second, "the session's log line", func() bool {
		return strings.Contains(g.accessLog(), "GET /drop/ "+proto+" 101 "+proto+" backend")
	})
}

// TestH2WebSocketBackendDrops: a backend that drops its connection without
// a close frame ends the client's HTTP/2 stream (END_STREAM, no close frame).
func TestH2WebSocketBackendDrops(t *testing.T) { testBackendDrop(t, dialH2Stream, "HTTP/2.0") }

// TestH3WebSocketBackendDrops: the same over HTTP/3 (FIN).
func TestH3WebSocketBackendDrops(t *testing.T) { testBackendDrop(t, dialH3Stream, "HTTP/3.0") }

// TestH2WebSocketQuitSendsClose: a graceful stop (QUIT) closes an HTTP/2
// WebSocket with close 1001 to the client, which answers; wsgate exits.
func TestH2WebSocketQuitSendsClose(t *testing.T) {
	g, port := startStreamWS(t)
	ws := dial2(t, port)
	g.signal(syscall.SIGQUIT)
	ws.timeout(20 * time.Second)
	f, err := readUpFrame(ws.br)
	if err != nil || f.op != wsframe.OpClose || len(f.payload) < 2 || int(f.payload[0])<<8|int(f.payload[1]) != 1001 {
		t.Fatalf("after QUIT the client read %v %q, %v; want close 1001\n%s", f.op, f.payload, err, g.errorLog())
	}
	if _, err := ws.w.Write(wsframe.AppendClose(nil, 1001, "", true, [4]byte{1, 2, 3, 4})); err != nil {
		t.Fatal(err)
	}
	if err := g.wait(slow(15 * time.Second)); err != nil {
		t.Fatalf("wsgate did not exit after the close: %v\n%s", err, g.errorLog())
	}
}

// dial2 opens an HTTP/2 WebSocket on /ws/ and checks an echo.
func dial2(t *testing.T, port int) *streamWS {
	ws := dialH2Stream(t, port, "/ws/")
	if _, err := ws.w.Write(wsframe.AppendFrame(nil, wsframe.OpText, []byte("ping"), true, [4]byte{1, 2, 3, 4})); err != nil {
		t.Fatal(err)
	}
	f, err := readUpFrame(ws.br)
	if err != nil || string(f.payload) != "ping" {
		t.Fatalf("echo over HTTP/2: %q %v", f.payload, err)
	}
	return ws
}
