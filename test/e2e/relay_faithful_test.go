package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	be "encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A tunnel must look like a direct connection to both peers. These tests
// use a strict WebSocket server and a client written here, on raw sockets
// with their own framing, that check exactly what arrives and in what
// order; each runs with websocket_frames on and off, which must give the
// same results.

// wsFrame is a decoded frame; payload is unmasked.
type wsFrame struct {
	fin    bool
	rsv    byte
	op     byte
	masked bool
	data   []byte
}

// encodeFrame builds any frame, valid or not.
func encodeFrame(fin bool, rsv, op byte, payload []byte, mask bool) []byte {
	b0 := rsv<<4 | op&0xF
	if fin {
		b0 |= 0x80
	}
	var m byte
	if mask {
		m = 0x80
	}
	out := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		out = append(out, m|byte(n))
	case n < 1<<16:
		out = append(out, m|126)
		out = be.BigEndian.AppendUint16(out, uint16(n))
	default:
		out = append(out, m|127)
		out = be.BigEndian.AppendUint64(out, uint64(n))
	}
	p := bytes.Clone(payload)
	if mask {
		key := [4]byte{0x5a, 0x11, 0xc3, 0x7e}
		out = append(out, key[:]...)
		for i := range p {
			p[i] ^= key[i%4]
		}
	}
	return append(out, p...)
}

func closeBody(code uint16, reason string) []byte {
	return append(be.BigEndian.AppendUint16(nil, code), reason...)
}

// readWSFrame reads one frame, any opcode.
func readWSFrame(r *bufio.Reader) (wsFrame, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return wsFrame{}, err
	}
	f := wsFrame{fin: h[0]&0x80 != 0, rsv: h[0] >> 4 & 7, op: h[0] & 0xF, masked: h[1]&0x80 != 0}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return f, err
		}
		n = uint64(be.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return f, err
		}
		n = be.BigEndian.Uint64(b[:])
	}
	var key [4]byte
	if f.masked {
		if _, err := io.ReadFull(r, key[:]); err != nil {
			return f, err
		}
	}
	f.data = make([]byte, n)
	if _, err := io.ReadFull(r, f.data); err != nil {
		return f, err
	}
	if f.masked {
		for i := range f.data {
			f.data[i] ^= key[i%4]
		}
	}
	return f, nil
}

// strictServer is a WebSocket server that judges every frame as RFC 6455
// asks: it echoes data messages; fails the connection (ends it with no
// close frame) on a close frame with a code that may not be sent, or on the
// message "crash"; answers a reserved opcode or an unmasked frame with close
// 1002; answers a close with a close.
type strictServer struct {
	ln   net.Listener
	addr string
	wg   sync.WaitGroup
}

func startStrictServer(t *testing.T) *strictServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &strictServer{ln: ln, addr: ln.Addr().String()}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				s.serve(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *strictServer) serve(c net.Conn) {
	c.SetDeadline(time.Now().Add(slow(30 * time.Second)))
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
		websocketAccept(req.Header.Get("Sec-WebSocket-Key")))
	for {
		f, err := readWSFrame(br)
		if err != nil {
			return
		}
		switch {
		case !f.masked || (f.op >= 3 && f.op <= 7) || f.op >= 0xB:
			c.Write(encodeFrame(true, 0, 8, closeBody(1002, ""), false))
			return
		case f.op == 8:
			if len(f.data) >= 2 && !validCode(be.BigEndian.Uint16(f.data)) {
				return // fails the connection
			}
			c.Write(encodeFrame(true, 0, 8, f.data, false))
			return
		case f.op == 1 && string(f.data) == "crash":
			return
		case f.op == 1 || f.op == 2:
			c.Write(encodeFrame(true, 0, f.op, f.data, false))
		}
	}
}

func validCode(c uint16) bool {
	return c >= 1000 && c <= 1003 || c >= 1007 && c <= 1014 || c >= 3000 && c <= 4999
}

// exactWS is a raw client connection after its handshake.
type exactWS struct {
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr, path string) *exactWS {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, slow(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var k [16]byte
	rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", path, addr, key)
	c.SetDeadline(time.Now().Add(slow(20 * time.Second)))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != websocketAccept(key) {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	return &exactWS{c: c, br: br}
}

// expect reads exactly want, then checks what follows with rest.
func (w *exactWS) expect(t *testing.T, what string, want []byte) {
	t.Helper()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(w.br, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%s: got %x (%v), want %x", what, got, err, want)
	}
}

// expectEnd checks that nothing but the end of the stream follows, then
// closes the connection, as a client does once its stream has ended.
func (w *exactWS) expectEnd(t *testing.T) {
	t.Helper()
	b, err := io.ReadAll(w.br)
	w.c.Close()
	if len(b) != 0 || (err != nil && !isConnReset(err)) {
		t.Fatalf("want the end of the stream, got %x (%v)", b, err)
	}
}

func isConnReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

const relayConf = `
error_log {{DIR}}/error.log info;
http {
    log_format ws '$websocket_closed_by $websocket_close_reason $websocket_close_code';
    access_log {{DIR}}/ws.log ws;
    server {
        listen 127.0.0.1:%d;
        location /ws {
            proxy_pass http://%s;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            %s
        }
    }
}`

// relayModes runs f against a gate with websocket_frames on and off.
func relayModes(t *testing.T, extra string, f func(t *testing.T, w func() *exactWS, log func(n int) []string)) {
	for _, frames := range []string{"on", "off"} {
		t.Run("frames_"+frames, func(t *testing.T) {
			srv := startStrictServer(t)
			port := freePort(t)
			g := startGate(t, fmt.Sprintf(relayConf, port, srv.addr, "websocket_frames "+frames+"; "+extra))
			addr := fmt.Sprintf("127.0.0.1:%d", port)
			f(t, func() *exactWS { return dialRaw(t, addr, "/ws") }, func(n int) []string {
				var lines []string
				waitFor(t, 10*time.Second, "sessions logged", func() bool {
					lines = strings.Split(strings.TrimSpace(readFile(g.dir+"/ws.log")), "\n")
					return len(lines) >= n && lines[0] != ""
				})
				return lines
			})
		})
	}
}

// TestRelayBackendFailureMirrored: a backend that ends its connection
// without a close frame (it crashed, or it failed the connection over a
// close code that may not be sent) ends the client's the same way: the
// client gets what the backend sent, then the end, and no close frame.
func TestRelayBackendFailureMirrored(t *testing.T) {
	relayModes(t, "", func(t *testing.T, dial func() *exactWS, log func(int) []string) {
		w := dial()
		w.c.Write(encodeFrame(true, 0, 1, []byte("hello"), true))
		w.c.Write(encodeFrame(true, 0, 1, []byte("crash"), true))
		w.expect(t, "the echo", encodeFrame(true, 0, 1, []byte("hello"), false))
		w.expectEnd(t)

		w = dial()
		w.c.Write(encodeFrame(true, 0, 8, closeBody(1005, ""), true))
		w.expectEnd(t)
		// The crash is the backend's doing; the refused close is the
		// client's when wsgate follows frames, else the backend's end.
		lines := strings.Join(log(2), "\n")
		if strings.Count(lines, " peer") != 2 || !strings.Contains(lines, "backend peer") {
			t.Errorf("sessions logged as\n%s\nwant both closed by a peer, one by the backend", lines)
		}
	})
}

// TestRelayEndpointFramesReachBackend: frames that are the endpoints' to
// judge reach the backend, after the frames before them and before the
// backend's answers: the client gets the echo of its first message, then
// the strict backend's own close 1002, then the end.
func TestRelayEndpointFramesReachBackend(t *testing.T) {
	relayModes(t, "", func(t *testing.T, dial func() *exactWS, log func(int) []string) {
		for _, bad := range [][]byte{
			encodeFrame(true, 0, 3, []byte("reserved"), true),
			encodeFrame(true, 0, 1, []byte("unmasked"), false),
		} {
			w := dial()
			w.c.Write(append(encodeFrame(true, 0, 1, []byte("first"), true), bad...))
			w.expect(t, "the echo", encodeFrame(true, 0, 1, []byte("first"), false))
			w.expect(t, "the backend's close", encodeFrame(true, 0, 8, closeBody(1002, ""), false))
			w.expectEnd(t)
		}
		for _, l := range log(2) {
			if !strings.HasPrefix(l, "backend peer") {
				t.Errorf("session logged as %q, want \"backend peer\"", l)
			}
		}
	})
}

// TestRelayStrictValidation: with websocket_validate strict, wsgate judges
// the frame itself: the client gets the echo of its first message, then
// wsgate's close 1002; the backend never sees the frame.
func TestRelayStrictValidation(t *testing.T) {
	srv := startStrictServer(t)
	port := freePort(t)
	g := startGate(t, fmt.Sprintf(relayConf, port, srv.addr, "websocket_validate strict;"))
	w := dialRaw(t, fmt.Sprintf("127.0.0.1:%d", port), "/ws")
	w.c.Write(append(encodeFrame(true, 0, 1, []byte("first"), true), encodeFrame(true, 0, 1, []byte("a\xffb"), true)...))
	w.expect(t, "the echo", encodeFrame(true, 0, 1, []byte("first"), false))
	w.expect(t, "wsgate's close", encodeFrame(true, 0, 8, closeBody(1007, ""), false))
	w.c.Write(encodeFrame(true, 0, 8, closeBody(1007, ""), true))
	w.expectEnd(t)
	waitFor(t, 10*time.Second, "the session logged", func() bool {
		return strings.Contains(readFile(g.dir+"/ws.log"), "client protocol 1001")
	})
}

// TestRelayLimitCloseSurvives: a client still sending a 16 MiB message over
// a 1 MiB limit reads its close 1009 whole every time: wsgate keeps reading
// (and dropping) what it sends rather than resetting the connection.
func TestRelayLimitCloseSurvives(t *testing.T) {
	srv := startStrictServer(t)
	port := freePort(t)
	g := startGate(t, fmt.Sprintf(relayConf, port, srv.addr, "websocket_max_message_size 1m;"))
	big := encodeFrame(true, 0, 2, make([]byte, 16<<20), true)
	for i := range 4 {
		w := dialRaw(t, fmt.Sprintf("127.0.0.1:%d", port), "/ws")
		wrote := make(chan error, 1)
		go func() {
			_, err := w.c.Write(big)
			wrote <- err
		}()
		f, err := readWSFrame(w.br)
		if err != nil || f.op != 8 || len(f.data) < 2 || be.BigEndian.Uint16(f.data) != 1009 {
			t.Fatalf("attempt %d: got %+v %v, want close 1009", i, f.op, err)
		}
		if err := <-wrote; err != nil {
			t.Fatalf("attempt %d: the client's write failed: %v", i, err)
		}
		w.c.Write(encodeFrame(true, 0, 8, closeBody(1009, ""), true))
		w.expectEnd(t)
	}
	waitFor(t, 10*time.Second, "the sessions logged", func() bool {
		return strings.Count(readFile(g.dir+"/ws.log"), "proxy limit 1009") == 4
	})
}

// TestRelaySessionLifetime: websocket_max_session_time closes each session
// with its code, between the lifetime less the jitter and the lifetime
// (plus the once-a-second check), and logs "lifetime".
func TestRelaySessionLifetime(t *testing.T) {
	srv := startStrictServer(t)
	port := freePort(t)
	life, jitter := slow(1500*time.Millisecond), slow(time.Second)
	g := startGate(t, fmt.Sprintf(relayConf, port, srv.addr, fmt.Sprintf("websocket_max_session_time %dms jitter=%dms code=4000;", life.Milliseconds(), jitter.Milliseconds())))
	var wg sync.WaitGroup
	for range 3 {
		w := dialRaw(t, fmt.Sprintf("127.0.0.1:%d", port), "/ws")
		start := time.Now()
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := readWSFrame(w.br)
			took := time.Since(start)
			if err != nil || f.op != 8 || be.BigEndian.Uint16(f.data) != 4000 {
				t.Errorf("got %v %v, want close 4000", f.op, err)
				return
			}
			if took < life-jitter || took > life+slow(3*time.Second) {
				t.Errorf("closed after %v, want between %v and %v", took, life-jitter, life)
			}
			w.c.Write(encodeFrame(true, 0, 8, closeBody(4000, ""), true))
		}()
	}
	wg.Wait()
	waitFor(t, 10*time.Second, "the sessions logged", func() bool {
		return strings.Count(readFile(g.dir+"/ws.log"), "proxy lifetime 4000") == 3
	})
}

// TestRelayCloseReasons: the access log says why wsgate closed each
// session: a reload that retires its location drains it ("drain"), a
// graceful stop closes the rest ("shutdown"), both with close 1001.
func TestRelayCloseReasons(t *testing.T) {
	srv := startStrictServer(t)
	port := freePort(t)
	conf := fmt.Sprintf(relayConf, port, srv.addr, "websocket_drain_period 0;")
	g := startGate(t, conf)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	closed := func(w *exactWS) {
		t.Helper()
		f, err := readWSFrame(w.br)
		if err != nil || f.op != 8 || be.BigEndian.Uint16(f.data) != 1001 {
			t.Fatalf("got %v %v, want close 1001", f.op, err)
		}
		w.c.Write(encodeFrame(true, 0, 8, closeBody(1001, ""), true))
		w.expectEnd(t)
	}
	w := dialRaw(t, addr, "/ws")
	if !g.reload(t, strings.Replace(conf, "location /ws", "location /ws2", 1)) {
		t.Fatalf("reload failed:\n%s", g.errorLog())
	}
	closed(w)
	w = dialRaw(t, addr, "/ws2")
	g.signal(syscall.SIGQUIT)
	closed(w)
	if err := g.wait(10 * time.Second); err != nil {
		t.Fatalf("exit: %v", err)
	}
	if l := readFile(g.dir + "/ws.log"); l != "proxy drain 1001\nproxy shutdown 1001\n" {
		t.Errorf("access log %q, want a drained session, then one closed by the stop", l)
	}
}
