package e2e

import (
	"bufio"
	"bytes"
	be "encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/klauspost/compress/flate"
)

// Compression offload (websocket_compression): wsgate speaks
// permessage-deflate with one leg and plain WebSocket with the other.

func compressConf(port int, backend, extra string) string {
	return gateConf(port, "", fmt.Sprintf(`location / {
proxy_pass http://%s;
proxy_http_version 1.1;
proxy_set_header Upgrade $http_upgrade;
proxy_set_header Connection "upgrade";
%s
}`, backend, extra))
}

// deflateJSON returns n bytes of JSON-like text, compressible as real
// traffic is.
func deflateJSON(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	var b bytes.Buffer
	for b.Len() < n {
		fmt.Fprintf(&b, `{"id":%d,"user":"user%d","price":%d.%02d,"tags":["a","b%d"]},`, r.IntN(1e6), r.IntN(1000), r.IntN(1000), r.IntN(100), r.IntN(10))
	}
	return b.Bytes()[:n]
}

func noise(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// offloadSizes are message sizes around every boundary of the framing
// (7-, 16- and 64-bit lengths) and of wsgate's buffers, up to 16 MiB.
var offloadSizes = []int{0, 1, 125, 126, 127, 1000, 16<<10 - 1, 16 << 10, 16<<10 + 1, 32<<10 + 1, 65535, 65536, 65537, 100_000, 1 << 20, 4<<20 + 3, 16 << 20}

// TestCompressionOffloadClient: a permessage-deflate client (gorilla) and a
// backend without it exchange messages of every size up to 16 MiB, JSON
// and incompressible, byte for byte, with pings between them; the backend
// never sees the client's offer.
func TestCompressionOffloadClient(t *testing.T) {
	b := startBackend(t, "plain")
	port := freePort(t)
	startGate(t, compressConf(port, b.addr, "websocket_compression on;\nwebsocket_max_message_size 17m;"))
	d := websocket.Dialer{EnableCompression: true, HandshakeTimeout: slow(5 * time.Second)}
	c, resp, err := d.Dial(fmt.Sprintf("ws://127.0.0.1:%d/", port), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); !strings.Contains(ext, "permessage-deflate") {
		t.Fatalf("101 extensions %q", ext)
	}
	if ext := b.lastWS().Get("Sec-WebSocket-Extensions"); ext != "" {
		t.Fatalf("the backend got the client's offer %q", ext)
	}
	c.SetReadLimit(-1)
	pongs := make(chan string, 64)
	c.SetPongHandler(func(s string) error { pongs <- s; return nil })
	for i, n := range offloadSizes {
		for j, msg := range [][]byte{deflateJSON(n, uint64(i)), noise(n, uint64(i))} {
			// The ping goes first: the backend answers it before it
			// echoes, and the pong must come through in that order.
			ping := fmt.Sprintf("ping %d/%d", i, j)
			c.WriteControl(websocket.PingMessage, []byte(ping), time.Now().Add(slow(5*time.Second)))
			if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(slow(60 * time.Second)))
			_, got, err := c.ReadMessage()
			if err != nil {
				t.Fatalf("size %d: %v", n, err)
			}
			if !bytes.Equal(got, msg) {
				t.Fatalf("size %d (%d): %d bytes back, differing", n, j, len(got))
			}
			select {
			case p := <-pongs:
				if p != ping {
					t.Fatalf("pong %q for ping %q", p, ping)
				}
			default:
				t.Fatalf("size %d: no pong before the echo", n)
			}
		}
	}
}

// deflateRaw compresses msg as RFC 7692 asks: a sync flush, its tail off.
func deflateRaw(msg []byte) []byte {
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, 6)
	w.Write(msg)
	w.Flush()
	return bytes.TrimSuffix(b.Bytes(), []byte{0, 0, 0xff, 0xff})
}

// inflateRaw reverses deflateRaw.
func inflateRaw(t testing.TB, z []byte) []byte {
	r := flate.NewReader(io.MultiReader(bytes.NewReader(z), bytes.NewReader([]byte{0, 0, 0xff, 0xff})))
	msg, err := io.ReadAll(r)
	if err != nil && err != io.ErrUnexpectedEOF {
		t.Fatalf("inflating: %v", err)
	}
	return msg
}

// deflateClient is a hand-written permessage-deflate client: it sends
// compressed messages in fragments with pings between them, and bombs.
type deflateClient struct {
	c  net.Conn
	br *bufio.Reader
}

func dialDeflate(t *testing.T, addr string) (*deflateClient, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("handshake: %v %v", err, resp)
	}
	return &deflateClient{c: c, br: br}, resp.Header.Get("Sec-WebSocket-Extensions")
}

// sendFragmented sends msg compressed in parts fragments, a ping between
// each two, and returns the pings' payloads.
func (h *deflateClient) sendFragmented(t *testing.T, msg []byte, parts int) []string {
	z := deflateRaw(msg)
	step := max(1, (len(z)+parts-1)/parts)
	var out []byte
	var pings []string
	for i := 0; i == 0 || i < len(z); i += step {
		end := min(i+step, len(z))
		op, rsv := byte(0), byte(0)
		if i == 0 {
			op, rsv = 2, 4
		}
		out = append(out, encodeFrame(end == len(z), rsv, op, z[i:end], true)...)
		if end < len(z) {
			p := fmt.Sprintf("p%d", i)
			pings = append(pings, p)
			out = append(out, encodeFrame(true, 0, 9, []byte(p), true)...)
		}
	}
	go h.c.Write(out) // the echo may come back while this is written
	return pings
}

// next reads the next frame.
func (h *deflateClient) next(t *testing.T) wsFrame {
	t.Helper()
	h.c.SetReadDeadline(time.Now().Add(slow(60 * time.Second)))
	var hd [14]byte
	if _, err := io.ReadFull(h.br, hd[:2]); err != nil {
		t.Fatalf("reading: %v", err)
	}
	f := wsFrame{fin: hd[0]&0x80 != 0, rsv: hd[0] >> 4 & 7, op: hd[0] & 0xF, masked: hd[1]&0x80 != 0}
	n := int64(hd[1] & 0x7F)
	switch n {
	case 126:
		io.ReadFull(h.br, hd[:2])
		n = int64(be.BigEndian.Uint16(hd[:2]))
	case 127:
		io.ReadFull(h.br, hd[:8])
		n = int64(be.BigEndian.Uint64(hd[:8]))
	}
	if f.masked {
		t.Fatal("a masked frame to the client")
	}
	f.data = make([]byte, n)
	if _, err := io.ReadFull(h.br, f.data); err != nil {
		t.Fatalf("reading: %v", err)
	}
	return f
}

// readMessage reads a data message, inflated, and the pongs before it.
func (h *deflateClient) readMessage(t *testing.T) (msg []byte, pongs []string) {
	t.Helper()
	var z []byte
	compressed := false
	for {
		f := h.next(t)
		switch f.op {
		case 0xA:
			pongs = append(pongs, string(f.data))
			continue
		case 0x8:
			t.Fatalf("closed: %x", f.data)
		case 0:
		default:
			compressed = f.rsv == 4
		}
		z = append(z, f.data...)
		if f.fin {
			break
		}
	}
	if !compressed {
		return z, pongs
	}
	return inflateRaw(t, z), pongs
}

// TestCompressionOffloadFragments: compressed messages cut into fragments
// with pings between them reach a plain backend whole; the pings pass and
// are answered, and the echoes come back compressed; with strict
// validation too.
func TestCompressionOffloadFragments(t *testing.T) {
	// Strict validation checks the plain frames the relay sees.
	for _, extra := range []string{"", "websocket_validate strict;"} {
		name := "default"
		if extra != "" {
			name = "strict"
		}
		t.Run(name, func(t *testing.T) { offloadFragments(t, extra) })
	}
}

func offloadFragments(t *testing.T, extra string) {
	b := startBackend(t, "plain")
	port := freePort(t)
	startGate(t, compressConf(port, b.addr, "websocket_compression on;\n"+extra))
	h, ext := dialDeflate(t, fmt.Sprintf("127.0.0.1:%d", port))
	if !strings.Contains(ext, "permessage-deflate") {
		t.Fatalf("101 extensions %q", ext)
	}
	for i, n := range []int{0, 10, 5000, 70_000, 1 << 20, 16 << 20} {
		msg := deflateJSON(n, uint64(i))
		pings := h.sendFragmented(t, msg, 1+i*4)
		got, pongs := h.readMessage(t)
		if !bytes.Equal(got, msg) {
			t.Fatalf("size %d: %d bytes back, differing", n, len(got))
		}
		for len(pongs) < len(pings) {
			f := h.next(t)
			if f.op != 0xA {
				t.Fatalf("opcode %d while waiting for pongs", f.op)
			}
			pongs = append(pongs, string(f.data))
		}
		if strings.Join(pongs, ",") != strings.Join(pings, ",") {
			t.Fatalf("pongs %v for pings %v", pongs, pings)
		}
	}
}

// countListener counts the bytes its connections read.
type countListener struct {
	net.Listener
	n *atomic.Int64
}

type countedConn struct {
	net.Conn
	n *atomic.Int64
}

func (l countListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countedConn{c, l.n}, nil
}

func (c countedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.n.Add(int64(n))
	return n, err
}

// TestCompressionOffloadBackend: with `websocket_compression backend` a
// plain client talks to a backend that speaks permessage-deflate: the
// backend gets wsgate's offer, the wire to it carries compressed bytes, and
// the client sees no extension.
func TestCompressionOffloadBackend(t *testing.T) {
	var offer atomic.Value
	wire := new(atomic.Int64)
	up := websocket.Upgrader{EnableCompression: true}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		offer.Store(r.Header.Get("Sec-WebSocket-Extensions"))
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		c.SetReadLimit(-1)
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if c.WriteMessage(mt, msg) != nil {
				return
			}
		}
	}))
	srv.Listener = countListener{srv.Listener, wire}
	srv.Start()
	defer srv.Close()
	port := freePort(t)
	startGate(t, compressConf(port, srv.Listener.Addr().String(), "websocket_compression backend;"))
	c, resp := dial(t, fmt.Sprintf("ws://127.0.0.1:%d/", port), nil)
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		t.Fatalf("the client got extensions %q", ext)
	}
	c.SetReadLimit(-1)
	var plain int64
	for i, n := range []int{0, 1, 126, 65536, 100_000, 1 << 20, 16 << 20} {
		msg := deflateJSON(n, uint64(i))
		if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(slow(60 * time.Second)))
		mt, got, err := c.ReadMessage()
		if err != nil || mt != websocket.TextMessage || !bytes.Equal(got, msg) {
			t.Fatalf("size %d: type %d, %d bytes, %v", n, mt, len(got), err)
		}
		plain += int64(n)
	}
	if o, _ := offer.Load().(string); !strings.Contains(o, "permessage-deflate") {
		t.Fatalf("the backend got offer %q", o)
	}
	if got := wire.Load(); got > plain/3 {
		t.Errorf("the backend read %d bytes for %d of JSON: not compressed", got, plain)
	}
}

// TestCompressionOffloadBomb: a compressed message that inflates past
// websocket_max_message_size is cut off there: the client gets close 1009,
// the backend 1001, and what wsgate inflated stays within the limit.
func TestCompressionOffloadBomb(t *testing.T) {
	b := startBackend(t, "plain")
	port := freePort(t)
	startGate(t, compressConf(port, b.addr, "websocket_compression on;\nwebsocket_max_message_size 1m;"))
	h, _ := dialDeflate(t, fmt.Sprintf("127.0.0.1:%d", port))
	bomb := deflateRaw(make([]byte, 64<<20)) // 64 MiB of zeros, in about 64 KiB
	go h.c.Write(encodeFrame(true, 4, 2, bomb, true))
	for {
		f := h.next(t)
		if f.op == 0x8 {
			if code := be.BigEndian.Uint16(f.data); code != 1009 {
				t.Fatalf("close %d, want 1009", code)
			}
			break
		}
	}
	h.c.Write(encodeFrame(true, 0, 8, []byte{0x03, 0xF1}, true))
	waitFor(t, slow(10*time.Second), "the backend's close", func() bool { return len(b.closeCodes()) > 0 })
	if got := b.closeCodes(); got[0] != 1001 || b.received.Load() != 0 {
		t.Fatalf("backend: closes %v, %d messages", got, b.received.Load())
	}
}

// TestCompressionFramesOffRefused: -t refuses websocket_compression where
// frames are not tracked.
func TestCompressionFramesOffRefused(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "wsgate.conf")
	os.WriteFile(conf, []byte(strings.ReplaceAll(compressConf(freePort(t), "127.0.0.1:9", "websocket_compression on;\nwebsocket_frames off;"), "{{DIR}}", dir)), 0o644)
	code, out, errOut := wsgateOut(t, "-t", "-c", conf)
	if code == 0 || !strings.Contains(out+errOut, `"websocket_compression" cannot be used with "websocket_frames off"`) {
		t.Fatalf("-t: exit %d\n%s%s", code, out, errOut)
	}
	os.WriteFile(conf, []byte(strings.ReplaceAll(compressConf(freePort(t), "127.0.0.1:9", "websocket_compression on;\nwebsocket_compression_window_bits 10;\nwebsocket_compression_context_takeover on;\nwebsocket_compression_level 6;"), "{{DIR}}", dir)), 0o644)
	if code, out, errOut := wsgateOut(t, "-t", "-c", conf); code != 0 {
		t.Fatalf("-t of a valid offload: exit %d\n%s%s", code, out, errOut)
	}
}

// TestCompressionOffloadBadAnswer: with `websocket_compression backend`, a
// backend whose 101 answers wsgate's offer with a parameter it did not
// offer gets the client a 502, as a wrong Sec-WebSocket-Accept does.
func TestCompressionOffloadBadAnswer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\nSec-WebSocket-Extensions: permessage-deflate; mystery=1\r\n\r\n", websocketAccept(req.Header.Get("Sec-WebSocket-Key")))
				io.Copy(io.Discard, c)
			}()
		}
	}()
	port := freePort(t)
	startGate(t, compressConf(port, ln.Addr().String(), "websocket_compression backend;"))
	d := websocket.Dialer{HandshakeTimeout: slow(5 * time.Second)}
	_, resp, err := d.Dial(fmt.Sprintf("ws://127.0.0.1:%d/", port), nil)
	if err == nil || resp == nil || resp.StatusCode != 502 {
		t.Fatalf("dial: %v, %v", err, resp)
	}
}
