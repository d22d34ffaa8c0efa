package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// streamCount is how many WebSockets the goroutine test opens on one
// connection.
const streamCount = 20

// TestStreamWebSocketGoroutines: an open, idle WebSocket over HTTP/2 or
// HTTP/3 holds one goroutine, the one reading the client (over HTTP/2
// x/net's handler for its stream, over HTTP/3 the tunnel's); the
// backend's direction parks. Counted in-process over streamCount streams
// on one connection, whose client and backend start no goroutine per
// stream; all of them are gone once the connections close.
func TestStreamWebSocketGoroutines(t *testing.T) {
	if rerunWithExtendedConnect(t) {
		return
	}
	s, addr, be := streamWSServer(t)
	defer s.Close()
	t.Run("h2", func(t *testing.T) { countStreamGoroutines(t, be, dialH2Streams(addr), 1, 0) })
	t.Run("h3", func(t *testing.T) { countStreamGoroutines(t, be, dialH3Streams(addr), 1, 1) })
}

// rerunWithExtendedConnect runs the test in a new process with RFC 8441
// on, which x/net reads when the process starts, unless it is on here; it
// reports whether it did.
func rerunWithExtendedConnect(t *testing.T) bool {
	if ExtendedConnectEnabled() {
		return false
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "GODEBUG="+ExtendedConnectEnv)
	out, err := cmd.CombinedOutput()
	t.Logf("with GODEBUG=%s:\n%s", ExtendedConnectEnv, out)
	if err != nil {
		t.Fatal(err)
	}
	return true
}

// countStreamGoroutines opens streamCount WebSockets with open (which
// returns the function that closes its connection) and checks that each
// holds at most per goroutines once idle; the client's connection may
// start clientShared goroutines once it has streams.
func countStreamGoroutines(t *testing.T, be *idleBackend, open func(t *testing.T, n int) func(), per, clientShared int) {
	before := runtime.NumGoroutine()
	// The connection and its own goroutines, without a WebSocket.
	closeConn := open(t, 0)
	base := runtime.NumGoroutine()
	closeConn()
	waitGoroutines(t, "the empty connection to end", before)

	closeConn = open(t, streamCount)
	be.waitFor(t, streamCount)
	// The tunnel package's parking sweeper and its dispatchers (one per
	// P) run while any tunnel exists; quic-go's client reads a stream the
	// server opens with its first answer (QPACK) on one more.
	shared := 1 + min(runtime.GOMAXPROCS(0), 64) + clientShared
	want := base + per*streamCount + shared
	if !pollGoroutines(func(n int) bool { return n <= want }) {
		n := runtime.NumGoroutine()
		t.Errorf("%d idle WebSockets hold %d goroutines beyond their connection's and the tunnels' shared %d (%.1f each), want at most %d each", streamCount, n-base-shared, shared, float64(n-base-shared)/streamCount, per)
	} else {
		t.Logf("%d idle WebSockets hold %d goroutines beyond their connection's and the tunnels' shared %d", streamCount, runtime.NumGoroutine()-base-shared, shared)
	}
	closeConn()
	be.closeAll()
	waitGoroutines(t, "the WebSockets to end", before)
}

// pollGoroutines waits up to 15 s (the backend's directions park within
// two sweeps) for ok to accept the goroutine count.
func pollGoroutines(ok func(int) bool) bool {
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if ok(runtime.NumGoroutine()) {
			return true
		}
	}
	return false
}

func waitGoroutines(t *testing.T, what string, want int) {
	t.Helper()
	if !pollGoroutines(func(n int) bool { return n <= want }) {
		buf := make([]byte, 1<<20)
		t.Fatalf("waiting for %s: %d goroutines, want %d\n%s", what, runtime.NumGoroutine(), want, buf[:runtime.Stack(buf, true)])
	}
}

// idleBackend answers WebSocket handshakes and keeps the connections
// without a goroutine for each.
type idleBackend struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (b *idleBackend) serve() {
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		if answerUpgrade(c, bufio.NewReader(c)) {
			b.mu.Lock()
			b.conns = append(b.conns, c)
			b.mu.Unlock()
		}
	}
}

func (b *idleBackend) waitFor(t *testing.T, n int) {
	t.Helper()
	for end := time.Now().Add(15 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		b.mu.Lock()
		got := len(b.conns)
		b.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("the backend has %d WebSockets, want %d", got, n)
		}
	}
}

func (b *idleBackend) closeAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.conns {
		c.Close()
	}
	b.conns = nil
}

func streamWSServer(t *testing.T) (*Server, string, *idleBackend) {
	dir := t.TempDir()
	writeTestCert(t, dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	be := &idleBackend{ln: ln}
	go be.serve()
	t.Cleanup(func() { ln.Close(); be.closeAll() })
	port := freeTCPPort(t)
	s := applyTestConfig(t, filepath.Join(dir, "t.conf"), fmt.Sprintf(`
error_log stderr crit;
http {
    access_log off;
    server {
        listen 127.0.0.1:%[1]d ssl http2;
        listen 127.0.0.1:%[1]d quic;
        ssl_certificate c.pem;
        ssl_certificate_key k.pem;
        location / {
            proxy_pass http://%[2]s;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }
    }
}`, port, ln.Addr()))
	return s, fmt.Sprintf("127.0.0.1:%d", port), be
}

func writeTestCert(t *testing.T, dir string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"}, DNSNames: []string{"x"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(filepath.Join(dir, "c.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(filepath.Join(dir, "k.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
}

// dialH2Streams opens an HTTP/2 connection with x/net's framer, on the
// calling goroutine, and n WebSockets on it (RFC 8441), each answered 200.
func dialH2Streams(addr string) func(t *testing.T, n int) func() {
	return func(t *testing.T, n int) func() {
		t.Helper()
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: "x", NextProtos: []string{"h2"}})
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(15 * time.Second))
		c.Write([]byte(http2.ClientPreface))
		fr := http2.NewFramer(c, c)
		fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
		fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
		var hb bytes.Buffer
		enc := hpack.NewEncoder(&hb)
		for i := range n {
			hb.Reset()
			for _, f := range [][2]string{{":method", "CONNECT"}, {":protocol", "websocket"}, {":scheme", "https"}, {":path", "/ws"}, {":authority", "x"}, {"sec-websocket-version", "13"}} {
				enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
			}
			if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*i + 1), BlockFragment: hb.Bytes(), EndHeaders: true}); err != nil {
				t.Fatal(err)
			}
		}
		for ok, settled := 0, false; ok < n || !settled; {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatalf("%d of %d streams answered: %v", ok, n, err)
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					fr.WriteSettingsAck()
				} else {
					settled = true
				}
			case *http2.MetaHeadersFrame:
				if f.PseudoValue("status") != "200" {
					t.Fatalf("stream %d answered %s", f.StreamID, f.PseudoValue("status"))
				}
				ok++
			case *http2.RSTStreamFrame, *http2.GoAwayFrame:
				t.Fatalf("the server ended a stream: %v", f)
			}
		}
		c.SetDeadline(time.Time{})
		return func() { c.Close() }
	}
}

// dialH3Streams opens a QUIC connection and n WebSockets on it (RFC 9220),
// each answered 200.
func dialH3Streams(addr string) func(t *testing.T, n int) func() {
	return func(t *testing.T, n int) func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		qc, err := quic.DialAddr(ctx, addr, &tls.Config{InsecureSkipVerify: true, ServerName: "x", NextProtos: []string{http3.NextProtoH3}}, &quic.Config{})
		if err != nil {
			t.Fatal(err)
		}
		cc := (&http3.Transport{}).NewClientConn(qc)
		select {
		case <-cc.ReceivedSettings():
		case <-ctx.Done():
			t.Fatal("no HTTP/3 SETTINGS")
		}
		for range n {
			str, err := cc.OpenRequestStream(ctx)
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest("CONNECT", "https://x/ws", nil)
			req.Proto = "websocket"
			req.Header.Set("Sec-WebSocket-Version", "13")
			if err := str.SendRequestHeader(req); err != nil {
				t.Fatal(err)
			}
			resp, err := str.ReadResponse()
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("extended CONNECT over HTTP/3: %v %v", resp, err)
			}
		}
		return func() { qc.CloseWithError(0, "") }
	}
}

// TestH2WebSocketSendTimeout: a client that stops taking an HTTP/2
// WebSocket's data (its stream window stays shut) has the stream reset
// once a write has waited send_timeout, and the backend gets close 1001,
// as over HTTP/1.1.
func TestH2WebSocketSendTimeout(t *testing.T) {
	if rerunWithExtendedConnect(t) {
		return
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		if !answerUpgrade(c, br) {
			return
		}
		big := make([]byte, 256<<10)
		c.Write(append([]byte{0x82, 127, 0, 0, 0, 0, 0, 4, 0, 0}, big...))
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		b, _ := io.ReadAll(br)
		got <- b
	}()
	dir := t.TempDir()
	writeTestCert(t, dir)
	port := freeTCPPort(t)
	s := applyTestConfig(t, filepath.Join(dir, "t.conf"), fmt.Sprintf(`
error_log stderr crit;
http {
    access_log off;
    send_timeout 300ms;
    proxy_send_timeout 300ms;
    server {
        listen 127.0.0.1:%d ssl http2;
        ssl_certificate c.pem;
        ssl_certificate_key k.pem;
        location / {
            proxy_pass http://%s;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }
    }
}`, port, ln.Addr()))
	defer s.Close()

	c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{InsecureSkipVerify: true, ServerName: "x", NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	c.Write([]byte(http2.ClientPreface))
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1024})
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "CONNECT"}, {":protocol", "websocket"}, {":scheme", "https"}, {":path", "/ws"}, {":authority", "x"}, {"sec-websocket-version", "13"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true})
	data := 0
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("no reset of the stream after %d bytes: %v", data, err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.DataFrame:
			data += len(f.Data()) // no WINDOW_UPDATE: the window stays shut
		case *http2.RSTStreamFrame:
			if f.ErrCode != http2.ErrCodeInternal {
				t.Errorf("the stream was reset with %v, want INTERNAL_ERROR", f.ErrCode)
			}
			if data > 1024 {
				t.Errorf("%d bytes arrived through a window of 1024", data)
			}
			select {
			case b := <-got:
				if len(b) < 8 || b[0] != 0x88 || b[1]&0x7f != 2 || (b[6]^b[2]) != 0x03 || (b[7]^b[3]) != 0xe9 {
					t.Errorf("the backend got % x, want close 1001", b[:min(len(b), 16)])
				}
			case <-time.After(20 * time.Second):
				t.Error("the backend's connection was not closed")
			}
			return
		}
	}
}
