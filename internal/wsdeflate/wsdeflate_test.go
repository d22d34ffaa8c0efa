package wsdeflate

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/klauspost/compress/flate"
	"github.com/wsgate/wsgate/internal/wsframe"
	"go.uber.org/goleak"
)

func TestNegotiate(t *testing.T) {
	cases := []struct {
		offer, want string
		o           Options
		mem         int
	}{
		{"permessage-deflate; client_max_window_bits", "permessage-deflate; client_max_window_bits=15; server_no_context_takeover; client_no_context_takeover", Options{}, 0},
		{"x-webkit-deflate-frame, permessage-deflate; server_no_context_takeover; client_no_context_takeover", "permessage-deflate; server_no_context_takeover; client_no_context_takeover", Options{}, 0},
		{"permessage-deflate; server_max_window_bits=10", "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10", Options{}, 0},
		{"permessage-deflate; foo=1, permessage-deflate", "permessage-deflate", Options{ContextTakeover: true}, 8<<10 + 32<<10},
		{"permessage-deflate; client_max_window_bits=12", "permessage-deflate; client_max_window_bits=10; server_max_window_bits=10", Options{ContextTakeover: true, WindowBits: 10}, 512 + 1024},
	}
	for _, c := range cases {
		got, p, ok := Negotiate(c.offer, c.o)
		if !ok {
			t.Fatalf("%q: declined", c.offer)
		}
		// Parameter order is not significant: compare as sets.
		if !sameParams(got, c.want) {
			t.Errorf("%q: answer %q, want %q", c.offer, got, c.want)
		}
		if p.Memory() != c.mem {
			t.Errorf("%q: memory %d, want %d", c.offer, p.Memory(), c.mem)
		}
	}
	for _, bad := range []string{"", "x-other", "permessage-deflate; server_max_window_bits", "permessage-deflate; server_max_window_bits=7", "permessage-deflate; server_no_context_takeover=1", "permessage-deflate; client_max_window_bits=16"} {
		if r, _, ok := Negotiate(bad, Options{}); ok {
			t.Errorf("%q accepted: %q", bad, r)
		}
	}
	p, ok, err := Accept("permessage-deflate; server_no_context_takeover; client_no_context_takeover", Options{})
	if err != nil || !ok || p.Memory() != 0 {
		t.Errorf("Accept: %+v %v %v", p, ok, err)
	}
	if _, ok, err := Accept("", Options{}); ok || err != nil {
		t.Errorf("Accept of nothing: %v %v", ok, err)
	}
	if _, _, err := Accept("permessage-deflate; server_max_window_bits=12", Options{WindowBits: 10}); err == nil {
		t.Error("Accept took a window over the offer")
	}
	if _, _, err := Accept("permessage-deflate; mystery", Options{}); err == nil {
		t.Error("Accept took an unknown parameter")
	}
}

func sameParams(a, b string) bool {
	set := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, p := range strings.Split(s, ";") {
			m[strings.TrimSpace(p)] = true
		}
		return m
	}
	x, y := set(a), set(b)
	if len(x) != len(y) {
		return false
	}
	for k := range x {
		if !y[k] {
			return false
		}
	}
	return true
}

// countConn counts the bytes read from a connection.
type countConn struct {
	net.Conn
	n atomic.Int64
}

func (c *countConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.n.Add(int64(n))
	return n, err
}

// wrappedServer accepts one WebSocket on a loopback port, negotiates
// permessage-deflate as a server and hands the wrapped connection, which
// speaks plain frames, to serve.
func wrappedServer(t *testing.T, o Options, cfg Config, serve func(*Conn)) (url string, wire *atomic.Pointer[countConn]) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	wire = new(atomic.Pointer[countConn])
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		cc := &countConn{Conn: c}
		wire.Store(cc)
		br := bufio.NewReader(cc)
		req, err := http.ReadRequest(br)
		if err != nil {
			c.Close()
			return
		}
		resp, p, ok := Negotiate(req.Header.Get("Sec-WebSocket-Extensions"), o)
		head := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + wsframe.AcceptKey(req.Header.Get("Sec-WebSocket-Key")) + "\r\n"
		if ok {
			head += "Sec-WebSocket-Extensions: " + resp + "\r\n"
		}
		c.Write([]byte(head + "\r\n"))
		pending, _ := br.Peek(br.Buffered())
		cfg.Params = p
		serve(Wrap(cc, pending, cfg))
	}()
	return "ws://" + ln.Addr().String() + "/", wire
}

// plainFrame is a frame as read from a wrapped connection.
type plainFrame struct {
	h       wsframe.Header
	payload []byte // unmasked
}

func readFrame(r *bufio.Reader) (plainFrame, error) {
	var hb []byte
	for {
		b, err := r.ReadByte()
		if err != nil {
			return plainFrame{}, err
		}
		hb = append(hb, b)
		h, n, err := wsframe.ParseHeader(hb)
		if err != nil {
			return plainFrame{}, err
		}
		if n == 0 {
			continue
		}
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(r, p); err != nil {
			return plainFrame{}, err
		}
		if h.Masked {
			wsframe.MaskBytes(p, h.Key, 0)
		}
		return plainFrame{h, p}, nil
	}
}

// echoPlain plays a plain backend behind a wrapped client leg: it checks
// that every frame it gets is plain and masked, answers pings, and echoes
// each message whole, unmasked, cut into fragments of cut bytes.
func echoPlain(t *testing.T, errs chan<- error, cut int) func(*Conn) {
	return func(c *Conn) {
		defer c.Close()
		br := bufio.NewReaderSize(c, 1024)
		var msg []byte
		var op wsframe.Opcode
		for {
			f, err := readFrame(br)
			if err != nil {
				errs <- nil
				return
			}
			if !f.h.Masked || f.h.Rsv != 0 {
				errs <- fmt.Errorf("frame to the backend: masked %v, rsv %d", f.h.Masked, f.h.Rsv)
				return
			}
			switch f.h.Opcode {
			case wsframe.OpPing:
				c.Write(wsframe.AppendFrame(nil, wsframe.OpPong, f.payload, false, [4]byte{}))
				continue
			case wsframe.OpClose:
				c.Write(wsframe.AppendFrame(nil, wsframe.OpClose, f.payload, false, [4]byte{}))
				errs <- nil
				return
			case wsframe.OpContinuation:
			default:
				op, msg = f.h.Opcode, nil
			}
			msg = append(msg, f.payload...)
			if !f.h.Fin {
				continue
			}
			var out []byte
			for i := 0; i == 0 || i < len(msg); i += cut {
				fop := op
				if i > 0 {
					fop = wsframe.OpContinuation
				}
				end := min(i+cut, len(msg))
				out = wsframe.AppendHeader(out, wsframe.Header{Fin: end == len(msg), Opcode: fop, Length: int64(end - i)})
				out = append(out, msg[i:end]...)
			}
			if _, err := c.Write(out); err != nil {
				errs <- err
				return
			}
		}
	}
}

// jsonish returns n bytes of JSON-like text, compressible as real traffic is.
func jsonish(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	var b bytes.Buffer
	for b.Len() < n {
		fmt.Fprintf(&b, `{"id":%d,"user":"user%d","price":%d.%02d,"tags":["a","b%d"],"ok":true},`, r.IntN(1e6), r.IntN(1000), r.IntN(1000), r.IntN(100), r.IntN(10))
	}
	return b.Bytes()[:n]
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestGorillaClientRoundTrip: a real permessage-deflate client (gorilla)
// and a plain peer behind the wrapped connection exchange messages of
// every size, compressible and not, byte for byte; the wire carries them
// compressed.
func TestGorillaClientRoundTrip(t *testing.T) {
	for _, level := range []int{0, 6} {
		t.Run("level"+strconv.Itoa(level), func(t *testing.T) { gorillaRoundTrip(t, level) })
	}
}

func gorillaRoundTrip(t *testing.T, level int) {
	errs := make(chan error, 1)
	url, wire := wrappedServer(t, Options{}, Config{Client: true, Level: level}, echoPlain(t, errs, 5000))
	d := websocket.Dialer{EnableCompression: true, HandshakeTimeout: 10 * time.Second}
	c, resp, err := d.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !strings.Contains(resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate") {
		t.Fatalf("not negotiated: %q", resp.Header.Get("Sec-WebSocket-Extensions"))
	}
	c.SetReadLimit(-1)
	sizes := []int{0, 1, 2, 125, 126, 1000, 16<<10 - 1, 16 << 10, 16<<10 + 1, 64 << 10, 100_000, 1 << 20}
	var plain int64
	for i, n := range sizes {
		for j, msg := range [][]byte{jsonish(n, uint64(i)), randomBytes(n, uint64(i))} {
			if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, got, err := c.ReadMessage()
			if err != nil {
				t.Fatalf("size %d: %v", n, err)
			}
			if !bytes.Equal(got, msg) {
				t.Fatalf("size %d (%d): echo differs (%d bytes back)", n, j, len(got))
			}
			if j == 0 {
				plain += int64(n)
			}
		}
	}
	c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	// Random bytes do not compress; JSON does, several times over.
	if got := wire.Load().n.Load(); got > plain*2/3+int64(sum(sizes)) {
		t.Errorf("wire carried %d bytes for %d of JSON and %d random: not compressed", got, plain, sum(sizes))
	}
}

func sum(v []int) (s int) {
	for _, x := range v {
		s += x
	}
	return s
}

// handClient is a hand-rolled permessage-deflate client, to send what
// gorilla does not: fragments of a compressed message with control frames
// between them, and bombs.
type handClient struct {
	c  net.Conn
	br *bufio.Reader
}

func dialHand(t *testing.T, url string) *handClient {
	t.Helper()
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "ws://"), "/")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; server_no_context_takeover\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("handshake: %v %v", err, resp)
	}
	return &handClient{c: c, br: br}
}

// compress deflates msg as RFC 7692 asks (sync flush, tail removed).
func compress(msg []byte) []byte {
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, 5)
	w.Write(msg)
	w.Flush()
	return bytes.TrimSuffix(b.Bytes(), syncTail)
}

// frame builds a masked client frame.
func frame(fin bool, rsv uint8, op wsframe.Opcode, p []byte) []byte {
	key := newKey()
	b := wsframe.AppendHeader(nil, wsframe.Header{Fin: fin, Rsv: rsv, Opcode: op, Masked: true, Key: key, Length: int64(len(p))})
	start := len(b)
	b = append(b, p...)
	wsframe.MaskBytes(b[start:], key, 0)
	return b
}

// sendFragmented sends msg compressed, in parts fragments, a ping between
// each two.
func (h *handClient) sendFragmented(t *testing.T, msg []byte, parts int) {
	t.Helper()
	z := compress(msg)
	step := max(1, (len(z)+parts-1)/parts)
	var out []byte
	for i := 0; i == 0 || i < len(z); i += step {
		end := min(i+step, len(z))
		op, rsv := wsframe.OpContinuation, uint8(0)
		if i == 0 {
			op, rsv = wsframe.OpBinary, 4
		}
		out = append(out, frame(end == len(z), rsv, op, z[i:end])...)
		if end < len(z) {
			out = append(out, frame(true, 0, wsframe.OpPing, []byte(fmt.Sprintf("p%d", i)))...)
		}
	}
	if _, err := h.c.Write(out); err != nil {
		t.Fatal(err)
	}
}

// readMessage reads one data message, inflating it, and the pongs before it.
func (h *handClient) readMessage(t *testing.T) (msg []byte, pongs int, code uint16) {
	t.Helper()
	h.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	var z []byte
	compressed := false
	for {
		f, err := readFrame(h.br)
		if err != nil {
			t.Fatalf("reading: %v", err)
		}
		if f.h.Masked {
			t.Fatal("a masked frame to the client")
		}
		switch f.h.Opcode {
		case wsframe.OpPong:
			pongs++
			continue
		case wsframe.OpClose:
			if len(f.payload) >= 2 {
				code = binary.BigEndian.Uint16(f.payload)
			}
			return nil, pongs, code
		case wsframe.OpContinuation:
		default:
			compressed = f.h.Rsv == 4
		}
		z = append(z, f.payload...)
		if f.h.Fin {
			break
		}
	}
	if !compressed {
		return z, pongs, 0
	}
	r := flate.NewReader(io.MultiReader(bytes.NewReader(z), bytes.NewReader(syncTail)))
	msg, err := io.ReadAll(r)
	if err != nil && err != io.ErrUnexpectedEOF {
		t.Fatalf("inflating: %v", err)
	}
	return msg, pongs, 0
}

// TestFragmentedWithPings: compressed messages cut into fragments with
// pings between them arrive whole and plain; the pings pass and are
// answered; the echo comes back compressed in the backend's fragments.
func TestFragmentedWithPings(t *testing.T) {
	errs := make(chan error, 1)
	url, _ := wrappedServer(t, Options{}, Config{Client: true}, echoPlain(t, errs, 7000))
	h := dialHand(t, url)
	for i, n := range []int{0, 10, 5000, 70_000, 300_000} {
		msg := jsonish(n, uint64(i))
		parts := 1 + i*3
		h.sendFragmented(t, msg, parts)
		got, pongs, _ := h.readMessage(t)
		if !bytes.Equal(got, msg) {
			t.Fatalf("size %d: echo differs", n)
		}
		for pongs < parts-1 && len(compress(msg)) >= parts {
			_, p, _ := h.readMessage(t)
			pongs += p
		}
	}
}

// TestInflateBomb: a message that inflates past the message limit is cut
// short at the limit: the reader hands its relay a fragment over the limit,
// having inflated at most a chunk more than the limit.
func TestInflateBomb(t *testing.T) {
	// 64 MiB of zeros come in about 64 KiB, over several reads (the
	// inflater waits for input as a coroutine); 8 MiB in about 8 KiB,
	// whole in one read (it runs inline).
	for _, size := range []int{64 << 20, 8 << 20} {
		t.Run(strconv.Itoa(size>>20)+"MiB", func(t *testing.T) { inflateBomb(t, size) })
	}
}

func inflateBomb(t *testing.T, size int) {
	const limit = 1 << 20
	got := make(chan int64, 1)
	url, _ := wrappedServer(t, Options{}, Config{Client: true, MaxMessageSize: limit}, func(c *Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		var sum int64
		for {
			var hb []byte
			var h wsframe.Header
			for {
				b, err := br.ReadByte()
				if err != nil {
					got <- -1
					return
				}
				hb = append(hb, b)
				var n int
				h, n, _ = wsframe.ParseHeader(hb)
				if n > 0 {
					break
				}
			}
			sum += h.Length
			if sum > limit {
				got <- sum
				return
			}
			io.CopyN(io.Discard, br, h.Length)
		}
	})
	h := dialHand(t, url)
	bomb := compress(make([]byte, size))
	go h.c.Write(frame(true, 4, wsframe.OpBinary, bomb))
	select {
	case n := <-got:
		if n != limit+1 {
			t.Fatalf("announced %d bytes, want %d", n, limit+1)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("no over-limit fragment")
	}
}

// TestMain checks that no test leaves a goroutine behind: an inflater's
// coroutine included.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestCloseMidMessage: a connection closed inside a compressed message lets
// go of its inflater (TestMain's leak check would find its coroutine).
func TestCloseMidMessage(t *testing.T) {
	done := make(chan struct{})
	url, _ := wrappedServer(t, Options{}, Config{Client: true}, func(c *Conn) {
		defer close(done)
		// The inflater takes the first fragment and waits, suspended, for
		// the rest, which does not come: the read times out.
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		buf := make([]byte, 100)
		for {
			if _, err := c.Read(buf); err != nil {
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Errorf("read: %v", err)
				}
				break
			}
		}
		if c.r.z == nil {
			t.Error("no message in progress")
		}
		c.Close()
	})
	h := dialHand(t, url)
	z := compress(jsonish(50_000, 3))
	h.c.Write(frame(false, 4, wsframe.OpText, z[:len(z)/2]))
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("no read")
	}
}

// takeoverClient compresses and inflates with one context for the whole
// connection, as a client with context takeover does.
type takeoverClient struct {
	*handClient
	zw   *flate.Writer
	zbuf bytes.Buffer
	hist []byte // what the server's messages inflated to so far
}

func (c *takeoverClient) send(t *testing.T, msg []byte) {
	c.zbuf.Reset()
	c.zw.Write(msg)
	c.zw.Flush()
	z := bytes.TrimSuffix(c.zbuf.Bytes(), syncTail)
	if _, err := c.c.Write(frame(true, 4, wsframe.OpText, z)); err != nil {
		t.Fatal(err)
	}
}

// receive reads a message and inflates it with the connection's context:
// the window is what earlier messages inflated to.
func (c *takeoverClient) receive(t *testing.T) []byte {
	c.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	f, err := readFrame(c.br)
	if err != nil || !f.h.Fin || f.h.Rsv != 4 {
		t.Fatalf("frame %+v: %v", f.h, err)
	}
	r := flate.NewReaderDict(io.MultiReader(bytes.NewReader(f.payload), bytes.NewReader(syncTail)), c.hist)
	msg, err := io.ReadAll(r)
	if err != nil && err != io.ErrUnexpectedEOF {
		t.Fatalf("inflating: %v", err)
	}
	c.hist = append(c.hist, msg...)
	if len(c.hist) > 32<<10 {
		c.hist = c.hist[len(c.hist)-32<<10:]
	}
	return msg
}

// TestContextTakeover: with context takeover on and the client's consent,
// both sides keep their context between messages: messages that repeat an
// earlier one shrink to a few bytes each way, and arrive whole. With
// window bits below 15 the same holds within the smaller window, and with
// a compressor of a set level.
func TestContextTakeover(t *testing.T) {
	for _, bits := range []int{15, 9, 16} { // 16: 15 bits at level 5
		level := 0
		if bits == 16 {
			bits, level = 15, 5
		}
		errs := make(chan error, 1)
		o := Options{ContextTakeover: true, WindowBits: bits}
		url, _ := wrappedServer(t, o, Config{Client: true, Level: level}, echoPlain(t, errs, 1<<20))
		addr := strings.TrimSuffix(strings.TrimPrefix(url, "ws://"), "/")
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		fmt.Fprintf(nc, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n")
		br := bufio.NewReader(nc)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 101 {
			t.Fatalf("handshake: %v", err)
		}
		ext := resp.Header.Get("Sec-WebSocket-Extensions")
		if strings.Contains(ext, "no_context_takeover") {
			t.Fatalf("bits %d: takeover declined: %q", bits, ext)
		}
		c := &takeoverClient{handClient: &handClient{c: nc, br: br}}
		c.zw, _ = flate.NewWriter(&c.zbuf, 5)
		msg := jsonish(200, 7)
		for i := range 4 {
			c.send(t, msg)
			got := c.receive(t)
			if !bytes.Equal(got, msg) {
				t.Fatalf("bits %d, message %d: echo differs", bits, i)
			}
		}
		// The last echo went out against the history: tiny on the wire.
		c.send(t, msg)
		nc.SetReadDeadline(time.Now().Add(30 * time.Second))
		f, err := readFrame(br)
		if err != nil || len(f.payload) > 20 {
			t.Fatalf("bits %d: a repeated 200-byte message took %d bytes (%v)", bits, len(f.payload), err)
		}
	}
}
