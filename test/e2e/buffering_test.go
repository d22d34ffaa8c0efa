package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Response buffering (proxy_buffering, proxy_buffers, proxy_temp_path,
// proxy_max_temp_file_size) seen from both ends: a backend that counts what
// it wrote and sees when its connection ends, and a client that reads as
// slowly as it likes.

// bigBlock is the repeating content of bigBackend's bodies.
var bigBlock = func() []byte {
	b := make([]byte, 64<<10)
	rand.New(rand.NewSource(20)).Read(b)
	return b
}()

// bigBackend answers every request with a body of size bytes (bigBlock
// over and over) plus the extra header lines, and serves further requests
// on the connection until the proxy ends it.
type bigBackend struct {
	addr     string
	size     int64
	extra    string
	written  atomic.Int64 // body bytes written, over all connections
	released atomic.Int32 // connections the proxy ended after the whole body
	ended    atomic.Int32 // connections ended, whole body or not
	accepted atomic.Int32 // connections accepted
}

func startBigBackend(t testing.TB, size int64, extra string) *bigBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	b := &bigBackend{addr: ln.Addr().String(), size: size, extra: extra}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go b.serve(c)
		}
	}()
	return b
}

func (b *bigBackend) serve(c net.Conn) {
	c.(*net.TCPConn).SetWriteBuffer(256 << 10)
	b.accepted.Add(1)
	defer b.ended.Add(1)
	defer c.Close()
	br := bufio.NewReader(c)
	for served := 0; ; served++ {
		if !readHead(br) {
			if served > 0 {
				b.released.Add(1) // the proxy ended the connection after a whole body
			}
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n%s\r\n", b.size, b.extra)
		for left := b.size; left > 0; {
			n, err := c.Write(bigBlock[:min(left, int64(len(bigBlock)))])
			b.written.Add(int64(n))
			left -= int64(n)
			if err != nil {
				return
			}
		}
	}
}

// readHead reads a request head; false at the end of the connection.
func readHead(br *bufio.Reader) bool {
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return false
		}
		if line == "\r\n" {
			return true
		}
	}
}

// slowClient is a client connection with a small receive buffer, whose
// response body is read on demand and checked against bigBlock.
type slowClient struct {
	c    net.Conn
	br   *bufio.Reader
	read int64
}

func startSlowClient(t testing.TB, addr, path string) *slowClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.(*net.TCPConn).SetReadBuffer(64 << 10)
	c.SetDeadline(time.Now().Add(slow(120 * time.Second)))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path)
	sc := &slowClient{c: c, br: bufio.NewReaderSize(c, 16<<10)}
	for {
		line, err := sc.br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the response head: %v", err)
		}
		if line == "\r\n" {
			return sc
		}
	}
}

// readBody reads n more body bytes (or to the end when n < 0), each
// chunk after pause, and checks them.
func (s *slowClient) readBody(t testing.TB, n int64, pause time.Duration) {
	t.Helper()
	buf := make([]byte, 64<<10)
	for n != 0 {
		want := int64(len(buf))
		if n > 0 {
			want = min(want, n)
		}
		k, err := s.br.Read(buf[:want])
		for i := range k {
			if buf[i] != bigBlock[(s.read+int64(i))%int64(len(bigBlock))] {
				t.Fatalf("body byte %d differs", s.read+int64(i))
			}
		}
		s.read += int64(k)
		if n > 0 {
			n -= int64(k)
		}
		if err == io.EOF && n < 0 {
			return
		}
		if err != nil {
			t.Fatalf("after %d body bytes: %v", s.read, err)
		}
		time.Sleep(pause)
	}
}

// tempFDs lists the gate's descriptors open on files under dir: each
// link as /proc shows it.
func (g *gate) tempFDs(t testing.TB, dir string) []string {
	t.Helper()
	fdDir := fmt.Sprintf("/proc/%d/fd", g.cmd.Process.Pid)
	ents, err := os.ReadDir(fdDir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join(fdDir, e.Name())); err == nil && strings.HasPrefix(l, dir+"/") {
			out = append(out, l)
		}
	}
	return out
}

// statusKB is a "VmRSS"-style line of the gate's /proc status, in kB.
func (g *gate) statusKB(t testing.TB, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", g.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + field + `:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no %s in /proc status", field)
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return n
}

// filesUnder lists the regular files under dir.
func filesUnder(dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// TestBufferingSlowReader: with proxy_buffering on, a 100 MB answer to a
// client that reads slowly goes to an unlinked temporary file under
// proxy_temp_path (in its levels), the backend's connection ends once the
// body is in, long before the client has it, the gate's memory stays far
// below the body's size, and the temporary file is gone at the end.
func TestBufferingSlowReader(t *testing.T) {
	const size = 100 << 20
	be := startBigBackend(t, size, "")
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	g := startGate(t, `pid {{DIR}}/logs/wsgate.pid;
error_log {{DIR}}/error.log info;
events { worker_connections 64; }
http {
    access_log off;
    proxy_temp_path {{DIR}}/ptemp 1 2;
    server {
        listen `+addr+`;
        location / { proxy_pass http://`+be.addr+`; }
    }
}`)
	temp := filepath.Join(g.dir, "ptemp")
	base := g.statusKB(t, "VmRSS")
	c := startSlowClient(t, addr, "/big")
	c.readBody(t, 1<<20, 2*time.Millisecond) // the first megabyte, slowly
	waitFor(t, 60*time.Second, "the backend's connection to end while the client reads slowly", func() bool { return be.released.Load() == 1 })
	if c.read > size/2 {
		t.Fatalf("the client had read %d bytes when the backend was released", c.read)
	}
	fds := g.tempFDs(t, temp)
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(temp) + `/\d/\d\d/\d{10} \(deleted\)$`)
	if len(fds) != 1 || !re.MatchString(fds[0]) {
		t.Fatalf("temporary files open under %s: %q, want one unlinked file in levels 1 2", temp, fds)
	}
	c.readBody(t, -1, 0) // the rest, fast
	if c.read != size {
		t.Fatalf("body of %d bytes, want %d", c.read, size)
	}
	waitFor(t, 10*time.Second, "the temporary file to be closed", func() bool { return len(g.tempFDs(t, temp)) == 0 })
	if left := filesUnder(temp); len(left) > 0 {
		t.Fatalf("files left under proxy_temp_path: %q", left)
	}
	// The peak resident size of the whole process grew by far less than
	// the body.
	hwm := g.statusKB(t, "VmHWM")
	t.Logf("RSS %d kB before the request, peak %d kB", base, hwm)
	if hwm-base > 32<<10 {
		t.Fatalf("peak RSS %d kB, %d kB before, while relaying a 100 MB body", hwm, base)
	}
	if !strings.Contains(g.errorLog(), "an upstream response is buffered to a temporary file") {
		t.Fatalf("no warning about the temporary file in the error log:\n%s", g.errorLog())
	}
	stopNoRace(t, g)
}

// TestBufferingBackpressure: without room for the whole body (no, a small
// or an impossible temporary file, buffering off, or X-Accel-Buffering:
// no) the
// backend can only write as fast as the client reads, as nginx; the body
// arrives whole once the client reads it.
func TestBufferingBackpressure(t *testing.T) {
	// Several times what the sockets between backend and client hold
	// (the backend's send buffer is fixed small, the client's receive
	// buffer too, and the gate's grow only as it reads), so that a
	// backend that finishes proves the gate read ahead.
	const size = 40 << 20
	for _, tc := range []struct {
		name, loc, header, log string
		file                   bool
	}{
		{name: "max_temp_file_size 0", loc: "proxy_max_temp_file_size 0;"},
		{name: "max_temp_file_size 1m", loc: "proxy_max_temp_file_size 1m; proxy_temp_file_write_size 64k;", file: true},
		{name: "buffering off", loc: "proxy_buffering off;"},
		{name: "X-Accel-Buffering no", header: "X-Accel-Buffering: no\r\n"},
		// A temporary file that cannot be made: logged, and the answer
		// relayed from memory.
		{name: "unwritable proxy_temp_path", loc: "proxy_temp_path {{DIR}}/wsgate.conf/ptemp;", log: "proxy temporary file under"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := startBigBackend(t, size, tc.header)
			addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
			g := startGate(t, `pid {{DIR}}/logs/wsgate.pid;
error_log {{DIR}}/error.log info;
events { worker_connections 64; }
http {
    access_log off;
    proxy_temp_path {{DIR}}/ptemp;
    server {
        listen `+addr+`;
        location / { proxy_pass http://`+be.addr+`; `+tc.loc+` }
    }
}`)
			temp := filepath.Join(g.dir, "ptemp")
			c := startSlowClient(t, addr, "/big")
			c.readBody(t, 64<<10, 0)
			waitStalled(t, &be.written)
			if w := be.written.Load(); w >= size || be.released.Load() != 0 {
				t.Fatalf("the backend wrote %d of %d bytes while the client had read %d", w, size, c.read)
			}
			if fds := g.tempFDs(t, temp); (len(fds) > 0) != tc.file {
				t.Fatalf("temporary files open: %q", fds)
			}
			c.readBody(t, -1, 0)
			if c.read != size {
				t.Fatalf("body of %d bytes, want %d", c.read, size)
			}
			waitFor(t, 10*time.Second, "the backend's connection to end", func() bool { return be.released.Load() == 1 })
			if tc.log != "" && !strings.Contains(g.errorLog(), tc.log) {
				t.Errorf("no %q in the error log:\n%s", tc.log, g.errorLog())
			}
			stopNoRace(t, g)
		})
	}
}

// waitStalled waits until n has stopped growing for a while: the writer
// behind it is blocked.
func waitStalled(t testing.TB, n *atomic.Int64) {
	t.Helper()
	last, same := int64(-1), 0
	waitFor(t, 60*time.Second, "the backend to stall", func() bool {
		if v := n.Load(); v != last {
			last, same = v, 0
			return false
		}
		same++
		return same >= 60 // 300 ms without progress
	})
}

// TestBufferingClientAbort: a client that leaves mid-body, while the body
// is still read into the temporary file, ends the backend's connection and
// the temporary file; the gate's descriptors come back to where they were.
func TestBufferingClientAbort(t *testing.T) {
	const size = 40 << 20
	be := startBigBackend(t, size, "")
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	g := startGate(t, `pid {{DIR}}/logs/wsgate.pid;
error_log {{DIR}}/error.log info;
events { worker_connections 64; }
http {
    access_log off;
    proxy_temp_path {{DIR}}/ptemp;
    server {
        listen `+addr+`;
        location / { proxy_pass http://`+be.addr+`; proxy_limit_rate 4m; }
    }
}`)
	base := g.fdCount(t)
	temp := filepath.Join(g.dir, "ptemp")
	c := startSlowClient(t, addr, "/big")
	c.readBody(t, 64<<10, 0)
	waitFor(t, 10*time.Second, "the temporary file", func() bool { return len(g.tempFDs(t, temp)) == 1 })
	c.c.(*net.TCPConn).SetLinger(0) // a reset: the gate's next write fails
	c.c.Close()
	waitFor(t, 20*time.Second, "the backend's connection to end", func() bool { return be.ended.Load() == 1 })
	if be.released.Load() != 0 || be.written.Load() >= size {
		t.Fatalf("the backend wrote %d of %d bytes for a client that left", be.written.Load(), size)
	}
	g.waitFDs(t, base)
	if left := filesUnder(temp); len(left) > 0 {
		t.Fatalf("files left under proxy_temp_path: %q", left)
	}
	stopNoRace(t, g)
}

// stopNoRace stops the gate and fails the test if its race detector (a
// WSGATE_E2E_RACE=1 build) reported anything.
func stopNoRace(t testing.TB, g *gate) {
	t.Helper()
	g.stop()
	if out := g.stderr.String(); strings.Contains(out, "DATA RACE") {
		t.Errorf("wsgate reported a data race:\n%s", out)
	}
}

// TestBufferingKeepalive: a buffered answer's backend connection goes back
// to the upstream's keepalive cache once its body is read, and serves the
// next request.
func TestBufferingKeepalive(t *testing.T) {
	const size = 2 << 20
	be := startBigBackend(t, size, "")
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	g := startGate(t, `pid {{DIR}}/logs/wsgate.pid;
error_log {{DIR}}/error.log info;
events { worker_connections 64; }
http {
    access_log off;
    proxy_temp_path {{DIR}}/ptemp;
    upstream big { server `+be.addr+`; keepalive 4; }
    server {
        listen `+addr+`;
        location / { proxy_pass http://big; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }
}`)
	for range 3 {
		c := startSlowClient(t, addr, "/big")
		c.readBody(t, -1, 0)
		if c.read != size {
			t.Fatalf("body of %d bytes, want %d", c.read, size)
		}
	}
	if n := be.accepted.Load(); n != 1 {
		t.Fatalf("the backend accepted %d connections for three buffered answers, want 1", n)
	}
	stopNoRace(t, g)
}

// TestBufferingStoreOutlivesClient: with proxy_store, a client that leaves
// mid-body does not stop the backend's answer from being read and stored
// whole, as nginx.
func TestBufferingStoreOutlivesClient(t *testing.T) {
	const size = 8 << 20
	be := startBigBackend(t, size, "")
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	g := startGate(t, `pid {{DIR}}/logs/wsgate.pid;
error_log {{DIR}}/error.log info;
events { worker_connections 64; }
http {
    access_log off;
    server {
        listen `+addr+`;
        location / { proxy_pass http://`+be.addr+`; proxy_store {{DIR}}/store$uri; proxy_max_temp_file_size 0; }
    }
}`)
	c := startSlowClient(t, addr, "/big.bin")
	c.readBody(t, 64<<10, 0)
	c.c.(*net.TCPConn).SetLinger(0)
	c.c.Close()
	stored := filepath.Join(g.dir, "store", "big.bin")
	waitFor(t, 20*time.Second, "the stored file", func() bool {
		st, err := os.Stat(stored)
		return err == nil && st.Size() == size
	})
	b, err := os.ReadFile(stored)
	if err != nil || !bytes.Equal(b[:len(bigBlock)], bigBlock) || !bytes.Equal(b[size-len(bigBlock):], bigBlock) {
		t.Fatalf("stored file: %v", err)
	}
	waitFor(t, 10*time.Second, "the backend's connection to end after the whole answer", func() bool { return be.released.Load() == 1 })
	stopNoRace(t, g)
}
