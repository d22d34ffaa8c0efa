package server

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/wsframe"
)

// TestTunnelOutlivesSendTimeout: the 101 is written under send_timeout,
// but that deadline must not carry over into the tunnel, whose first write
// to the client after send_timeout would otherwise fail. Nor may the
// deadline of an earlier response on the same connection, whether it has
// expired by the time of the 101 or not.
func TestTunnelOutlivesSendTimeout(t *testing.T) {
	for _, earlier := range []bool{false, true} {
		t.Run(fmt.Sprintf("earlier response %v", earlier), func(t *testing.T) { tunnelOutlivesSendTimeout(t, earlier) })
	}
}

func tunnelOutlivesSendTimeout(t *testing.T, earlier bool) {
	const sendTimeout = 200 * time.Millisecond
	backend := upgradeBackend(t, func(c net.Conn, br *bufio.Reader) {
		time.Sleep(2 * sendTimeout)
		c.Write([]byte{0x81, 2, 'h', 'i'}) // an unmasked text frame, as a server sends
		io.Copy(io.Discard, br)
	})

	port := freeTCPPort(t)
	s := applyTestConfig(t, "/tmp/t.conf", fmt.Sprintf(`
error_log stderr crit;
http {
    access_log off;
    send_timeout %dms;
    server {
        listen 127.0.0.1:%d;
        location = /plain {
            return 200 "ok\n";
        }
        location / {
            proxy_pass http://%s;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }
    }
}`, sendTimeout.Milliseconds(), port, backend.Addr()))
	defer s.Close()

	c, err := net.Dial("tcp", s.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	if earlier {
		// A response written under send_timeout, then a pause past it.
		fmt.Fprintf(c, "GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
		if status, err := br.ReadString('\n'); err != nil || !strings.Contains(status, " 200 ") {
			t.Fatalf("status line %q, %v", status, err)
		}
		skipHead(t, br)
		if body, err := br.ReadString('\n'); err != nil || body != "ok\n" {
			t.Fatalf("body %q, %v", body, err)
		}
		time.Sleep(2 * sendTimeout)
	}
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, " 101 ") {
		t.Fatalf("status line %q, %v", status, err)
	}
	skipHead(t, br)
	frame := make([]byte, 4)
	if _, err := io.ReadFull(br, frame); err != nil {
		t.Fatalf("the backend's frame sent after send_timeout did not arrive: %v", err)
	}
	if string(frame[2:]) != "hi" {
		t.Fatalf("frame % x", frame)
	}
}

// TestReloadDrainsTunnelBeingRegistered: a reload that removes a location
// while one of its handshakes is between the client's 101 and the
// tunnel's registration still drains that tunnel with 1001; its drain
// pass ran before the tunnel was registered.
func TestReloadDrainsTunnelBeingRegistered(t *testing.T) {
	backend := upgradeBackend(t, func(_ net.Conn, br *bufio.Reader) { io.Copy(io.Discard, br) })
	port := freeTCPPort(t)
	load := func(path string) *config.Config {
		cfg, err := config.LoadBytes("/tmp/t.conf", []byte(fmt.Sprintf(`
error_log stderr crit;
http {
    access_log off;
    server {
        listen 127.0.0.1:%d;
        location %s {
            proxy_pass http://%s;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            websocket_drain_period 0;
        }
    }
}`, port, path, backend.Addr())), config.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	log := errlog.Stderr()
	s := New(log)
	if err := s.Apply(load("/ws"), log); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	reloaded := make(chan error, 1)
	testHookUpgraded = func() { reloaded <- s.Apply(load("/other"), log) }
	defer func() { testHookUpgraded = func() {} }()

	c, err := net.Dial("tcp", s.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(c)
	if status, err := br.ReadString('\n'); err != nil || !strings.Contains(status, " 101 ") {
		t.Fatalf("status line %q, %v", status, err)
	}
	if err := <-reloaded; err != nil {
		t.Fatal(err)
	}
	skipHead(t, br)
	frame := make([]byte, 4)
	if _, err := io.ReadFull(br, frame); err != nil {
		t.Fatalf("no close frame after the reload removed the location: %v", err)
	}
	if frame[0] != 0x88 || frame[2] != 0x03 || frame[3] != 0xe9 {
		t.Fatalf("frame % x, want close 1001", frame)
	}
}

// upgradeBackend is a backend that answers one WebSocket handshake with
// 101 and then hands the connection to after.
func upgradeBackend(t *testing.T, after func(net.Conn, *bufio.Reader)) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		if answerUpgrade(c, br) {
			after(c, br)
		}
	}()
	return ln
}

// freeTCPPort is a loopback port nothing listens on.
func freeTCPPort(t testing.TB) int {
	t.Helper()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer free.Close()
	return free.Addr().(*net.TCPAddr).Port
}

// skipHead reads a response head up to its empty line.
func skipHead(t *testing.T, br *bufio.Reader) {
	t.Helper()
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if l == "\r\n" {
			return
		}
	}
}

// TestCloseWithTLSConnOpen: Close ends a connection whose TLS handshake
// its serving goroutine has just run, through the socket as accepted.
func TestCloseWithTLSConnOpen(t *testing.T) {
	dir := t.TempDir()
	writeTestCert(t, dir)
	port := freeTCPPort(t)
	s := applyTestConfig(t, filepath.Join(dir, "t.conf"), fmt.Sprintf(`
error_log stderr crit;
http {
    access_log off;
    server { listen 127.0.0.1:%d ssl; ssl_certificate c.pem; ssl_certificate_key k.pem; return 200; }
}`, port))
	c, err := tls.Dial("tcp", s.Addrs()[0].String(), &tls.Config{InsecureSkipVerify: true, ServerName: "x"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("the connection is still open after Close")
	}
}

// answerUpgrade reads a WebSocket handshake from br and answers it with
// 101 on c; false when the request did not arrive whole.
func answerUpgrade(c net.Conn, br *bufio.Reader) bool {
	key := ""
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			return false
		}
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, "Sec-WebSocket-Key") {
			key = strings.TrimSpace(v)
		}
		if l == "\r\n" {
			break
		}
	}
	fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", wsframe.AcceptKey(key))
	return true
}

// TestExtensionRSV: the RSV bits a backend's accepted extensions allow,
// parameters and spacing aside; none once the tunnel offloads them.
func TestExtensionRSV(t *testing.T) {
	for _, c := range []struct {
		accepted  string
		offloaded bool
		want      uint8
	}{
		{"", false, 0},
		{" , ", false, 0},
		{"permessage-deflate", false, 4},
		{"Permessage-Deflate; client_max_window_bits=10 ,", false, 4},
		{"permessage-deflate, x-webkit-deflate-frame", false, 7},
		{"x-custom; a=1", false, 7},
		{"permessage-deflate", true, 0},
	} {
		if got := extensionRSV(c.accepted, c.offloaded); got != c.want {
			t.Errorf("extensionRSV(%q, %v) = %d, want %d", c.accepted, c.offloaded, got, c.want)
		}
	}
}
