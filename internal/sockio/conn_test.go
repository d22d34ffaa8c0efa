package sockio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a.(*net.TCPConn), b.(*net.TCPConn)
}

func newConn(t *testing.T, c *net.TCPConn) *Conn {
	t.Helper()
	sc, ok := Wrap(c).(*Conn)
	if !ok {
		t.Fatal("a TCP connection was not wrapped")
	}
	return sc
}

// TestConnCarriesBytes: a write larger than both socket buffers waits for
// the reader, which starts late, and arrives whole, in order; the end of
// the stream is io.EOF.
func TestConnCarriesBytes(t *testing.T) {
	a, b := tcpPair(t)
	w, r := newConn(t, a), newConn(t, b)
	want := make([]byte, 32<<20)
	for i := range want {
		want[i] = byte(i * 7)
	}
	done := make(chan error, 1)
	go func() {
		n, err := w.Write(want)
		if err == nil && n != len(want) {
			err = io.ErrShortWrite
		}
		w.CloseWrite()
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, not the %d written", len(got), len(want))
	}
	if n, err := r.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("after the end: %d %v, want io.EOF", n, err)
	}
}

// TestConnErrors: a deadline is a timeout, a reset names the read, and a
// closed connection is net.ErrClosed, as the net package's own errors are.
func TestConnErrors(t *testing.T) {
	a, b := tcpPair(t)
	r := newConn(t, b)
	r.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := r.Read(make([]byte, 8))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("deadline: %v, want a timeout", err)
	}
	r.SetReadDeadline(time.Time{})

	a.SetLinger(0)
	a.Close()
	_, err = r.Read(make([]byte, 8))
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "read" || !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("reset: %v, want a read error wrapping ECONNRESET", err)
	}
	_, err = r.Write([]byte("x"))
	if !errors.As(err, &oe) || oe.Op != "write" {
		t.Fatalf("write after reset: %v, want a write error", err)
	}
	r.Close()
	if _, err := r.Read(make([]byte, 8)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("closed: %v, want net.ErrClosed", err)
	}
}

// TestConnAllocations: a Write and the Read that takes its bytes allocate
// nothing (crypto/tls makes one of each per record), when the read finds
// the bytes there and when it waits for them. Under -race the pool drops
// some of its calls, which are made again.
func TestConnAllocations(t *testing.T) {
	limit := 0.0
	if raceBuild {
		limit = 2
	}
	a, b := tcpPair(t)
	ca, cb := newConn(t, a), newConn(t, b)
	msg, buf := []byte("sixty-four bytes, give or take"), make([]byte, 64)
	round := func() {
		if _, err := ca.Write(msg); err != nil {
			t.Fatal(err)
		}
		if n, err := cb.Read(buf); err != nil || n != len(msg) {
			t.Fatalf("read %d, %v", n, err)
		}
	}
	if n := testing.AllocsPerRun(200, round); n > limit {
		t.Errorf("a write and a read: %v allocations, want at most %v", n, limit)
	}
	start := make(chan struct{})
	defer close(start)
	go func() { // the writer, which lets the reader wait first
		for range start {
			time.Sleep(time.Millisecond)
			ca.Write(msg)
		}
	}()
	waited := func() {
		start <- struct{}{}
		if n, err := cb.Read(buf); err != nil || n != len(msg) {
			t.Fatalf("read %d, %v", n, err)
		}
	}
	if n := testing.AllocsPerRun(20, waited); n > limit {
		t.Errorf("a read that waits: %v allocations, want at most %v", n, limit)
	}
}
