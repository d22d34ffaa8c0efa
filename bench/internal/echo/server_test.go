package echo

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/wsgate/wsgate/bench/internal/wsproto"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func startServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != ErrServerClosed {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return ln.Addr().String()
}

// TestEchoGorillaClient checks the server against an independent client.
func TestEchoGorillaClient(t *testing.T) {
	addr := startServer(t)
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial("ws://"+addr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	defer c.Close()
	c.SetReadLimit(1 << 22)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	tests := []struct {
		name string
		op   int
		size int
	}{
		{"empty", websocket.TextMessage, 0},
		{"64 B", websocket.BinaryMessage, 64},
		{"125 B", websocket.BinaryMessage, 125},
		{"126 B", websocket.BinaryMessage, 126},
		{"buffer-sized", websocket.BinaryMessage, bufSize},
		{"64 KiB grows buffers", websocket.BinaryMessage, 64 << 10},
		{"1 MiB streams", websocket.BinaryMessage, 1 << 20},
		{"small after large", websocket.TextMessage, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := make([]byte, tt.size)
			for i := range want {
				want[i] = byte('a' + i%26)
			}
			if err := c.WriteMessage(tt.op, want); err != nil {
				t.Fatal(err)
			}
			op, got, err := c.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			if op != tt.op || !bytes.Equal(got, want) {
				t.Fatalf("echo op %d len %d, want op %d len %d", op, len(got), tt.op, len(want))
			}
		})
	}
	// A ping is answered with a pong carrying the same payload.
	pong := make(chan string, 1)
	c.SetPongHandler(func(s string) error { pong <- s; return nil })
	if err := c.WriteControl(websocket.PingMessage, []byte("hi"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte("after ping")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.ReadMessage(); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-pong:
		if s != "hi" {
			t.Fatalf("pong payload %q", s)
		}
	default:
		t.Fatal("no pong before the next echo")
	}
	// A close is answered with a close carrying the same code.
	if err := c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Fatalf("after close: %v, want close 1000", err)
	}
}

// TestPipelinedAndFragmented sends several frames in one write, a fragmented
// message among them, and expects every frame echoed in order.
func TestPipelinedAndFragmented(t *testing.T) {
	addr := startServer(t)
	conn, err := net.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	c, err := wsproto.Handshake(conn, addr, "/ws")
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	defer c.Close()
	key := [4]byte{7, 7, 7, 7}
	frames := []struct {
		fin  bool
		op   wsproto.Opcode
		data string
	}{
		{true, wsproto.OpText, "one"},
		{false, wsproto.OpText, "frag-"},
		{false, wsproto.OpContinuation, "ment"},
		{true, wsproto.OpContinuation, "ed"},
		{true, wsproto.OpBinary, strings.Repeat("z", 300)},
	}
	var wire []byte
	for _, f := range frames {
		wire = wsproto.AppendHeader(wire, wsproto.Header{Fin: f.fin, Op: f.op, Masked: true, Key: key, Length: int64(len(f.data))})
		n := len(wire)
		wire = append(wire, f.data...)
		wsproto.Mask(wire[n:], key, 0)
	}
	if _, err := conn.Write(wire); err != nil {
		t.Fatal(err)
	}
	for i, f := range frames {
		h, got, err := c.ReadMessage(nil)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if h.Fin != f.fin || h.Op != f.op || string(got) != f.data {
			t.Fatalf("frame %d: fin %v op %v %q, want fin %v op %v %q", i, h.Fin, h.Op, got, f.fin, f.op, f.data)
		}
	}
}

func TestPlainHTTP(t *testing.T) {
	addr := startServer(t)
	tests := []struct {
		name   string
		req    string
		status int
	}{
		{"health", "GET /health HTTP/1.1\r\nHost: x\r\n\r\n", 200},
		{"other path", "GET /other HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"upgrade without key", "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n", 400},
		{"garbage", "NONSENSE\r\n\r\n", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp4", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(conn, tt.req); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
		})
	}
}

func TestServeAfterClose(t *testing.T) {
	var s Server
	s.Close()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(ln); err != ErrServerClosed {
		t.Fatalf("Serve after Close = %v", err)
	}
	if _, err := ln.Accept(); err == nil {
		t.Fatal("listener still open after Serve refused it")
	}
}

func BenchmarkEcho64(b *testing.B) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var s Server
	go s.Serve(ln)
	defer s.Close()
	conn, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	c, err := wsproto.Handshake(conn, "x", "/ws")
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	msg := make([]byte, 64)
	c.Premask(msg)
	buf := make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		if err := c.WritePremasked(wsproto.OpBinary, msg); err != nil {
			b.Fatal(err)
		}
		if _, _, err := c.ReadMessage(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// TestFrames: the echo over a stream with no handshake of its own (an
// HTTP/2 or HTTP/3 tunnel in the benchmark; a loopback connection here)
// answers messages, a ping and the close frame, then returns.
func TestFrames(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cli, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer srv.Close()
		Frames(srv)
	}()
	c := wsproto.NewClient(cli)
	defer c.Close()
	for _, f := range []struct {
		op, want wsproto.Opcode
		payload  string
	}{
		{wsproto.OpBinary, wsproto.OpBinary, "hello"},
		{wsproto.OpPing, wsproto.OpPong, "p"},
		{wsproto.OpText, wsproto.OpText, strings.Repeat("x", 70000)}, // beyond both buffers
		{wsproto.OpClose, wsproto.OpClose, "\x03\xe8"},
	} {
		if err := c.WriteMessage(f.op, []byte(f.payload)); err != nil {
			t.Fatal(err)
		}
		var got []byte
		for len(got) < len(f.payload) || len(f.payload) == 0 {
			h, p, err := c.ReadMessage(nil)
			if err != nil {
				t.Fatalf("op %v: %v", f.op, err)
			}
			if h.Op != f.want && h.Op != wsproto.OpContinuation {
				t.Fatalf("op %v answered with %v", f.op, h.Op)
			}
			got = append(got, p...)
			if h.Fin {
				break
			}
		}
		if string(got) != f.payload {
			t.Fatalf("op %v: %d bytes back, want %d", f.op, len(got), len(f.payload))
		}
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Frames did not return after the close frame")
	}
}
