package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// keepsReverse lists the relays that pass a half-close on and keep the other
// direction open; the others close the whole tunnel when one side's input
// ends (their libraries close a socket on end of input).
var keepsReverse = map[string]bool{"std": true, "epoll": true, "epark": true, "eraw": true}

const upgrade = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"

// dropsOnWake lists the relays whose library loses output when it hands a
// connection new bytes while earlier ones still wait for the socket: evio's
// wake replaces the pending output (loopWake assigns c.out), so a transfer
// larger than the socket buffers loses chunks. Only small messages are
// checked there.
var dropsOnWake = map[string]bool{"evio": true}

var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "evproxy-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "evproxy")
	out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build: %v: %s\n", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// backend answers every upgrade with 101 and then acts by the request
// path: /echo echoes; /collect reads to the end of input, reports it on
// eof, answers "got:" and what it read, and closes; /serverclose sends
// "bye", shuts its output and reports what it reads afterwards on eof.
type backend struct {
	ln  net.Listener
	eof chan string
	wg  sync.WaitGroup
}

func newBackend(t *testing.T) *backend {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{ln: ln, eof: make(chan string, 4)}
	b.wg.Add(1)
	go b.serve()
	t.Cleanup(func() { ln.Close(); b.wg.Wait() })
	return b
}

func (b *backend) serve() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			b.handle(c.(*net.TCPConn))
		}()
	}
}

func (b *backend) handle(c *net.TCPConn) {
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil {
		return
	}
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			return
		}
		if l == "\r\n" {
			break
		}
	}
	c.Write([]byte(upgrade))
	switch strings.Fields(line)[1] {
	case "/echo":
		io.Copy(c, br)
	case "/collect":
		got, _ := io.ReadAll(br)
		b.eof <- string(got)
		c.Write(append([]byte("got:"), got...))
	case "/serverclose":
		c.Write([]byte("bye"))
		c.CloseWrite()
		got, _ := io.ReadAll(br)
		b.eof <- string(got)
	}
}

// startProxy runs the built relay on lib and waits until it accepts.
func startProxy(t *testing.T, lib, backend string) string {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(binPath, "-lib", lib, "-listen", addr, "-backend", backend)
	var logb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logb, &logb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp4", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		select {
		case <-done:
			t.Fatalf("%s relay exited: %s", lib, logb.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s relay not accepting on %s: %v", lib, addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// open upgrades a connection through the relay at addr on path and checks
// the backend's answer comes back whole.
func open(t *testing.T, addr, path string) (*net.TCPConn, *bufio.Reader) {
	c, err := net.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	req := "GET " + path + " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	// The head arrives in two pieces, as a slow client would send it.
	for _, part := range []string{req[:20], req[20:]} {
		if _, err := c.Write([]byte(part)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	br := bufio.NewReader(c)
	got := make([]byte, len(upgrade))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != upgrade {
		t.Fatalf("answer %q, %v; want the 101", got, err)
	}
	return c.(*net.TCPConn), br
}

var libNames = []string{"std", "epoll", "epark", "eraw", "gnet", "nbio", "evio", "netpoll"}

func TestRelayBothWays(t *testing.T) {
	for _, lib := range libNames {
		t.Run(lib, func(t *testing.T) {
			b := newBackend(t)
			addr := startProxy(t, lib, b.ln.Addr().String())
			c, br := open(t, addr, "/echo")
			small := []byte("\x81\x04ping")
			big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB: more than any buffer
			msgs := [][]byte{small, big, small}
			if dropsOnWake[lib] {
				msgs = [][]byte{small, small}
			}
			for _, msg := range msgs {
				errc := make(chan error, 1)
				go func() { _, err := c.Write(msg); errc <- err }()
				got := make([]byte, len(msg))
				if _, err := io.ReadFull(br, got); err != nil {
					t.Fatalf("reading the echo of %d bytes: %v", len(msg), err)
				}
				if !bytes.Equal(got, msg) {
					t.Fatalf("echo of %d bytes differs", len(msg))
				}
				if err := <-errc; err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestHalfCloseFromClient(t *testing.T) {
	for _, lib := range libNames {
		t.Run(lib, func(t *testing.T) {
			b := newBackend(t)
			addr := startProxy(t, lib, b.ln.Addr().String())
			c, br := open(t, addr, "/collect")
			if _, err := c.Write([]byte("last")); err != nil {
				t.Fatal(err)
			}
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			select {
			case got := <-b.eof:
				if got != "last" {
					t.Fatalf("backend read %q before its end of input, want %q", got, "last")
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the client's half-close did not reach the backend")
			}
			rest, _ := io.ReadAll(br)
			if keepsReverse[lib] && string(rest) != "got:last" {
				t.Fatalf("after the half-close the client read %q, want %q", rest, "got:last")
			}
		})
	}
}

func TestHalfCloseFromBackend(t *testing.T) {
	for _, lib := range libNames {
		t.Run(lib, func(t *testing.T) {
			b := newBackend(t)
			addr := startProxy(t, lib, b.ln.Addr().String())
			c, br := open(t, addr, "/serverclose")
			rest, err := io.ReadAll(br)
			if err != nil && keepsReverse[lib] {
				t.Fatalf("reading to the backend's end: %v", err)
			}
			if string(rest) != "bye" {
				t.Fatalf("client read %q then the end, want %q", rest, "bye")
			}
			if !keepsReverse[lib] {
				return
			}
			c.Write([]byte("late"))
			c.CloseWrite()
			select {
			case got := <-b.eof:
				if got != "late" {
					t.Fatalf("backend read %q after its half-close, want %q", got, "late")
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the client's bytes after the backend's half-close did not arrive")
			}
		})
	}
}

func TestHeadTooLongIsRefused(t *testing.T) {
	for _, lib := range libNames {
		t.Run(lib, func(t *testing.T) {
			b := newBackend(t)
			addr := startProxy(t, lib, b.ln.Addr().String())
			c, err := net.Dial("tcp4", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			go c.Write([]byte("GET /echo HTTP/1.1\r\nX: " + strings.Repeat("a", 20<<10)))
			got, _ := io.ReadAll(c)
			if !strings.HasPrefix(string(got), "HTTP/1.1 400 ") {
				t.Fatalf("answer to a 20 KiB head without its end: %q, want a 400", got)
			}
		})
	}
}
