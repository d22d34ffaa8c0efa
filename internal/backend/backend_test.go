package backend

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/sockio"
)

// server is a real backend on 127.0.0.1 that runs handle for every
// connection it accepts.
type server struct {
	ln      net.Listener
	accepts atomic.Int64
	wg      sync.WaitGroup
}

func startServer(t *testing.T, handle func(c net.Conn, n int64)) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := s.accepts.Add(1)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				handle(c, n)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

func (s *server) addr() string { return s.ln.Addr().String() }

// answer serves requests on c with 200 "ok" until it closes, at most max
// of them (0: no bound), then closes c.
func answer(max int) func(c net.Conn, n int64) {
	return func(c net.Conn, _ int64) {
		br := bufio.NewReader(c)
		for i := 0; max == 0 || i < max; i++ {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			body, _ := io.ReadAll(req.Body)
			resp := "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(body)+2) + "\r\n\r\nok" + string(body)
			if _, err := io.WriteString(c, resp); err != nil {
				return
			}
		}
	}
}

// peer records the ends of its uses.
type peer struct {
	addr  string
	mu    sync.Mutex
	dones []bool
}

func (p *peer) Addr() string { return p.addr }
func (p *peer) Done(failed bool) {
	p.mu.Lock()
	p.dones = append(p.dones, failed)
	p.mu.Unlock()
}

func (p *peer) ends() []bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]bool(nil), p.dones...)
}

// counter is a worker_connections account of limit slots.
type counter struct {
	limit int64
	used  atomic.Int64
}

func (c *counter) Reserve() bool {
	if c.used.Add(1) > c.limit {
		c.used.Add(-1)
		return false
	}
	return true
}
func (c *counter) Release(n int64) { c.used.Add(-n) }

func request(keepAlive bool) *Request {
	head := "GET / HTTP/1.1\r\nHost: b\r\n\r\n"
	if !keepAlive {
		head = "GET / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n"
	}
	return &Request{Head: []byte(head), KeepAlive: true, Method: "GET", HeadLimit: 4096,
		SendTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second}
}

// roundTrip connects, sends req, reads the body and releases the
// connection, drained when the answer was read whole.
func roundTrip(t *testing.T, tr Transport, p *peer, req *Request) {
	t.Helper()
	var c Conn
	if err := tr.Connect(&c, p); err != nil {
		t.Fatalf("connect: %v", err)
	}
	resp, err := c.Send(req)
	if err != nil {
		c.Release(true)
		t.Fatalf("send: %v", err)
	}
	if resp.Status != 200 {
		t.Fatalf("status %d", resp.Status)
	}
	if _, err := io.ReadAll(resp.Body(c.Reader())); err != nil {
		t.Fatalf("body: %v", err)
	}
	c.Drained(resp)
	c.Release(false)
}

func TestDialSendRelease(t *testing.T) {
	s := startServer(t, answer(0))
	slots := &counter{limit: 10}
	tr := Transport{Slots: slots, ConnectTimeout: 5 * time.Second, NoDelay: true}
	p := &peer{addr: s.addr()}
	roundTrip(t, tr, p, request(true))
	if got := p.ends(); len(got) != 1 || got[0] {
		t.Fatalf("peer ends %v, want [false]", got)
	}
	if n := slots.used.Load(); n != 0 {
		t.Fatalf("%d slots held after release without a pool", n)
	}
}

// TestDialRefused: a refused connect is the peer's failure, with either
// dialer.
func TestDialRefused(t *testing.T) {
	for _, own := range []bool{false, true} {
		t.Run(dialerName(own), func(t *testing.T) { testDialRefused(t, own) })
	}
}

// dialerName names the dial path that Transport.OwnSocket picks.
func dialerName(own bool) string {
	if own {
		return "own socket"
	}
	return "net dialer"
}

func testDialRefused(t *testing.T, own bool) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	slots := &counter{limit: 10}
	p := &peer{addr: addr}
	var c Conn
	err = Transport{Slots: slots, ConnectTimeout: 5 * time.Second, OwnSocket: own}.Connect(&c, p)
	var be *Error
	if !errors.As(err, &be) || be.Phase != Connecting {
		t.Fatalf("error %v, want a connecting *Error", err)
	}
	// Worded as the net package words a refused connect, whichever
	// connect(2) saw the refusal.
	if !errors.Is(err, syscall.ECONNREFUSED) || !strings.HasSuffix(err.Error(), "connect: connection refused") {
		t.Fatalf("error %q, want a refused connect", err)
	}
	if got := p.ends(); len(got) != 1 || !got[0] {
		t.Fatalf("peer ends %v, want [true]", got)
	}
	if n := slots.used.Load(); n != 0 {
		t.Fatalf("%d slots held after a failed dial", n)
	}
	c.Release(true) // nothing held: no effect
	if got := p.ends(); len(got) != 1 || slots.used.Load() != 0 {
		t.Fatalf("a release of nothing changed state: ends %v, slots %d", got, slots.used.Load())
	}
}

func TestNoSlot(t *testing.T) {
	s := startServer(t, answer(0))
	p := &peer{addr: s.addr()}
	var c Conn
	err := Transport{Slots: &counter{limit: 0}}.Connect(&c, p)
	if err != ErrNoSlot {
		t.Fatalf("error %v, want ErrNoSlot", err)
	}
	if got := p.ends(); len(got) != 1 || got[0] {
		t.Fatalf("peer ends %v, want [false]: no slot is not the peer's fault", got)
	}
	if n := s.accepts.Load(); n != 0 {
		t.Fatalf("%d connections dialed without a slot", n)
	}
}

// keptAlive sends three kept-alive requests through tr to p and checks
// that one connection served them all, idle in pool between requests and
// holding one slot; accepts counts the backend's connections.
func keptAlive(t *testing.T, tr Transport, p *peer, pool *Pool, slots *counter, accepts func() int64) {
	t.Helper()
	for i := 0; i < 3; i++ {
		roundTrip(t, tr, p, request(true))
		if pool.Idle() != 1 || slots.used.Load() != 1 {
			t.Fatalf("after request %d: %d idle, %d slots; want 1 and 1", i, pool.Idle(), slots.used.Load())
		}
	}
	if n := accepts(); n != 1 {
		t.Fatalf("%d connections for 3 kept-alive requests, want 1", n)
	}
}

func TestKeepaliveReuse(t *testing.T) {
	s := startServer(t, answer(0))
	slots := &counter{limit: 10}
	pool := NewPool(slots, 4, time.Minute, 100)
	tr := Transport{Idle: pool, Slots: slots, ConnectTimeout: 5 * time.Second, NoDelay: true}
	p := &peer{addr: s.addr()}
	keptAlive(t, tr, p, pool, slots, s.accepts.Load)
	// A request that asks to close is not kept.
	roundTrip(t, tr, p, request(false))
	if pool.Idle() != 0 || slots.used.Load() != 0 {
		t.Fatalf("after Connection: close: %d idle, %d slots; want 0 and 0", pool.Idle(), slots.used.Load())
	}
	roundTrip(t, tr, p, request(true))
	pool.Close()
	if pool.Idle() != 0 || slots.used.Load() != 0 {
		t.Fatalf("after Close: %d idle, %d slots; want 0 and 0", pool.Idle(), slots.used.Load())
	}
	for _, failed := range p.ends() {
		if failed {
			t.Fatalf("peer ends %v: a success counted as a failure", p.ends())
		}
	}
}

// A kept-alive connection the backend closed while idle is found dead
// when taken from the pool, and a fresh one is dialed.
func TestKeepaliveClosedWhileIdle(t *testing.T) {
	s := startServer(t, answer(1)) // one request per connection, then close
	slots := &counter{limit: 10}
	pool := NewPool(slots, 4, time.Minute, 100)
	tr := Transport{Idle: pool, Slots: slots, ConnectTimeout: 5 * time.Second}
	p := &peer{addr: s.addr()}
	roundTrip(t, tr, p, request(true))
	waitFor(t, func() bool { return s.accepts.Load() == 1 && closedIdle(pool) })
	roundTrip(t, tr, p, request(true))
	if n := s.accepts.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
	pool.Close()
	if n := slots.used.Load(); n != 0 {
		t.Fatalf("%d slots held", n)
	}
}

// closedIdle reports whether the pool's one idle connection was closed by
// the backend (its FIN has arrived).
func closedIdle(p *Pool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns) == 1 && !alive(p.conns[0].c)
}

// A backend that closes a kept-alive connection as the request arrives:
// the request goes again, once, over a fresh connection.
func TestStaleKeepaliveRedialsOnce(t *testing.T) {
	var second atomic.Bool
	s := startServer(t, func(c net.Conn, n int64) {
		if n == 1 {
			br := bufio.NewReader(c)
			if req, err := http.ReadRequest(br); err == nil {
				io.Copy(io.Discard, req.Body)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}
			// The next request is taken and dropped, as by a backend
			// whose keepalive timeout ran out just then.
			http.ReadRequest(br)
			second.Store(true)
			return
		}
		answer(0)(c, n)
	})
	slots := &counter{limit: 10}
	pool := NewPool(slots, 4, time.Minute, 100)
	tr := Transport{Idle: pool, Slots: slots, ConnectTimeout: 5 * time.Second}
	p := &peer{addr: s.addr()}
	roundTrip(t, tr, p, request(true))
	roundTrip(t, tr, p, request(true))
	if !second.Load() || s.accepts.Load() != 2 {
		t.Fatalf("the second request did not go stale then fresh: %d connections", s.accepts.Load())
	}
	if got := p.ends(); len(got) != 2 || got[0] || got[1] {
		t.Fatalf("peer ends %v, want [false false]", got)
	}
	pool.Close()
	if n := slots.used.Load(); n != 0 {
		t.Fatalf("%d slots held", n)
	}
}

// The redial happens once: a fresh connection that fails too is the
// peer's failure.
func TestStaleKeepaliveNoSecondRedial(t *testing.T) {
	s := startServer(t, func(c net.Conn, n int64) {
		br := bufio.NewReader(c)
		if n == 1 {
			if req, err := http.ReadRequest(br); err == nil {
				io.Copy(io.Discard, req.Body)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}
		}
		http.ReadRequest(br) // then close without an answer
	})
	slots := &counter{limit: 10}
	pool := NewPool(slots, 4, time.Minute, 100)
	tr := Transport{Idle: pool, Slots: slots, ConnectTimeout: 5 * time.Second}
	p := &peer{addr: s.addr()}
	roundTrip(t, tr, p, request(true))
	var c Conn
	if err := tr.Connect(&c, p); err != nil {
		t.Fatal(err)
	}
	if !c.Reused() {
		t.Fatal("the second request did not take the kept-alive connection")
	}
	_, err := c.Send(request(true))
	var be *Error
	if !errors.As(err, &be) || be.Phase != Reading || !IsPeer(err) {
		t.Fatalf("error %v, want a reading *Error", err)
	}
	c.Release(true)
	c.Release(true) // a second release does nothing
	if n := s.accepts.Load(); n != 2 {
		t.Fatalf("%d connections, want 2 (one redial)", n)
	}
	if got := p.ends(); len(got) != 2 || got[0] || !got[1] {
		t.Fatalf("peer ends %v, want [false true]", got)
	}
	if n := slots.used.Load(); n != 0 || pool.Idle() != 0 {
		t.Fatalf("%d slots held, %d idle; want 0 and 0", n, pool.Idle())
	}
}

func TestReleaseFailedClosesAndBlames(t *testing.T) {
	s := startServer(t, answer(0))
	slots := &counter{limit: 10}
	pool := NewPool(slots, 4, time.Minute, 100)
	tr := Transport{Idle: pool, Slots: slots, ConnectTimeout: 5 * time.Second}
	p := &peer{addr: s.addr()}
	var c Conn
	if err := tr.Connect(&c, p); err != nil {
		t.Fatal(err)
	}
	resp, err := c.Send(request(true))
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body(c.Reader()))
	c.Drained(resp)
	c.Release(true) // failed: never pooled, even when drained
	c.Release(false)
	if got := p.ends(); len(got) != 1 || !got[0] {
		t.Fatalf("peer ends %v, want [true]", got)
	}
	if n := slots.used.Load(); n != 0 || pool.Idle() != 0 {
		t.Fatalf("%d slots held, %d idle; want 0 and 0", n, pool.Idle())
	}
}

func TestReadTimeout(t *testing.T) {
	hold := make(chan struct{})
	s := startServer(t, func(c net.Conn, _ int64) { <-hold })
	defer close(hold)
	slots := &counter{limit: 10}
	p := &peer{addr: s.addr()}
	var c Conn
	if err := (Transport{Slots: slots, ConnectTimeout: 5 * time.Second}).Connect(&c, p); err != nil {
		t.Fatal(err)
	}
	req := request(true)
	req.ReadTimeout = 50 * time.Millisecond
	_, err := c.Send(req)
	var ne net.Error
	var be *Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.As(err, &be) || be.Phase != Reading {
		t.Fatalf("error %v, want a reading timeout", err)
	}
	c.Release(true)
	if n := slots.used.Load(); n != 0 {
		t.Fatalf("%d slots held", n)
	}
}

// errReader fails after its data, as a client that leaves mid-body.
type errReader struct {
	data string
	err  error
}

func (r *errReader) Read(p []byte) (int, error) {
	if r.data == "" {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// An error of the body's source comes back unchanged: not the peer's.
func TestBodySourceErrorIsNotThePeers(t *testing.T) {
	s := startServer(t, answer(0))
	slots := &counter{limit: 10}
	p := &peer{addr: s.addr()}
	var c Conn
	if err := (Transport{Slots: slots, ConnectTimeout: 5 * time.Second}).Connect(&c, p); err != nil {
		t.Fatal(err)
	}
	clientGone := errors.New("client left")
	req := request(true)
	req.Head = []byte("POST / HTTP/1.1\r\nHost: b\r\nContent-Length: 100\r\n\r\n")
	req.Body = &errReader{data: "0123456789", err: clientGone}
	_, err := c.Send(req)
	if err != clientGone || IsPeer(err) {
		t.Fatalf("error %v, want the body's own error", err)
	}
	c.Release(false)
	if got := p.ends(); len(got) != 1 || got[0] {
		t.Fatalf("peer ends %v, want [false]", got)
	}
}

func TestChunkedBody(t *testing.T) {
	s := startServer(t, answer(0))
	p := &peer{addr: s.addr()}
	var c Conn
	if err := (Transport{Slots: &counter{limit: 10}, ConnectTimeout: 5 * time.Second}).Connect(&c, p); err != nil {
		t.Fatal(err)
	}
	defer c.Release(false)
	req := request(true)
	req.Head = []byte("POST / HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\n\r\n")
	req.Body, req.Chunked = strings.NewReader("hello"), true
	resp, err := c.Send(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body(c.Reader()))
	if string(body) != "okhello" {
		t.Fatalf("backend echoed %q, want %q", body, "okhello")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// zeros is an endless body.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// A backend that stops reading fails the send after send_timeout: the
// peer's failure.
func TestSendTimeout(t *testing.T) {
	hold := make(chan struct{})
	s := startServer(t, func(c net.Conn, _ int64) { <-hold })
	defer close(hold)
	slots := &counter{limit: 10}
	p := &peer{addr: s.addr()}
	var c Conn
	if err := (Transport{Slots: slots, ConnectTimeout: 5 * time.Second}).Connect(&c, p); err != nil {
		t.Fatal(err)
	}
	req := request(true)
	req.Head = []byte("POST / HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\n\r\n")
	req.Body, req.Chunked = zeros{}, true
	req.SendTimeout = 100 * time.Millisecond
	_, err := c.Send(req)
	var ne net.Error
	var be *Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.As(err, &be) || be.Phase != Sending {
		t.Fatalf("error %v, want a sending timeout", err)
	}
	c.Release(true)
	if got := p.ends(); len(got) != 1 || !got[0] || slots.used.Load() != 0 {
		t.Fatalf("peer ends %v, %d slots; want [true] and 0", got, slots.used.Load())
	}
}

// A peer whose accept queue is full never completes the connect:
// proxy_connect_timeout ends the dial as a timeout, the peer's failure,
// with either dialer.
func TestConnectTimeout(t *testing.T) {
	for _, own := range []bool{false, true} {
		t.Run(dialerName(own), func(t *testing.T) { testConnectTimeout(t, own) })
	}
}

func testConnectTimeout(t *testing.T, own bool) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil { // never accepted: the queue fills
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
	slots := &counter{limit: 100}
	tr := Transport{Slots: slots, ConnectTimeout: 200 * time.Millisecond, OwnSocket: own}
	var held []Conn
	defer func() {
		for i := range held {
			held[i].Release(false)
		}
	}()
	for i := 0; i < 16; i++ { // fill the queue; then a connect hangs
		p := &peer{addr: addr}
		var c Conn
		err := tr.Connect(&c, p)
		if err == nil {
			held = append(held, c)
			continue
		}
		var ne net.Error
		var be *Error
		if !errors.As(err, &ne) || !ne.Timeout() || !errors.As(err, &be) || be.Phase != Connecting {
			t.Fatalf("error %v, want a connect timeout", err)
		}
		if got := p.ends(); len(got) != 1 || !got[0] {
			t.Fatalf("peer ends %v, want [true]", got)
		}
		if n := slots.used.Load(); n != int64(len(held)) {
			t.Fatalf("%d slots held by %d connections", n, len(held))
		}
		return
	}
	t.Skip("the kernel accepted every connection: no full queue to time out on")
}

// TestDialLoopbackIPv6: a peer on ::1 is dialled, and its connection's
// addresses are the socket's, as for any peer, with either dialer.
func TestDialLoopbackIPv6(t *testing.T) {
	for _, own := range []bool{false, true} {
		t.Run(dialerName(own), func(t *testing.T) { testDialLoopbackIPv6(t, own) })
	}
}

func testDialLoopbackIPv6(t *testing.T, own bool) {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback:", err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Close()
		}
	}()
	slots := &counter{limit: 10}
	p := &peer{addr: ln.Addr().String()}
	var c Conn
	if err := (Transport{Slots: slots, ConnectTimeout: 5 * time.Second, OwnSocket: own}).Connect(&c, p); err != nil {
		t.Fatal(err)
	}
	defer c.Release(false)
	if got := c.Net().RemoteAddr().String(); got != ln.Addr().String() {
		t.Fatalf("remote address %s, want %s", got, ln.Addr())
	}
	if la, ok := c.Net().LocalAddr().(*net.TCPAddr); !ok || !la.IP.IsLoopback() || la.Port == 0 {
		t.Fatalf("local address %v", c.Net().LocalAddr())
	}
}

// TestDialSocketOptions: a fresh connection to an IP address carries the
// transport's options, whichever dialer made it (wsgate's own socket with
// OwnSocket or proxy_bind, the net package's otherwise): tcp_nodelay off
// leaves Nagle on, proxy_socket_keepalive turns SO_KEEPALIVE on,
// proxy_bind's address is the source, and transparent applies only with
// an address to bind (an empty proxy_bind variable binds nothing and needs
// no privilege).
func TestDialSocketOptions(t *testing.T) {
	s := startServer(t, answer(0))
	for _, tc := range []struct {
		name                   string
		tr                     Transport
		from                   string
		noDelay, keepalive, tp int
		own                    bool
	}{
		{"defaults", Transport{NoDelay: true}, "127.0.0.1", 1, 0, 0, false},
		{"nagle", Transport{}, "127.0.0.1", 0, 0, 0, false},
		{"keepalive", Transport{NoDelay: true, SocketKeepalive: true}, "127.0.0.1", 1, 1, 0, false},
		{"own socket", Transport{NoDelay: true, OwnSocket: true}, "127.0.0.1", 1, 0, 0, true},
		{"own socket, nagle", Transport{OwnSocket: true}, "127.0.0.1", 0, 0, 0, true},
		{"own socket, keepalive", Transport{OwnSocket: true, SocketKeepalive: true}, "127.0.0.1", 0, 1, 0, true},
		{"bind", Transport{NoDelay: true, Local: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}, "127.0.0.2", 1, 0, 0, true},
		{"transparent, nothing to bind", Transport{NoDelay: true, Transparent: true}, "127.0.0.1", 1, 0, 0, false},
	} {
		tc.tr.Slots = &counter{limit: 1}
		var c Conn
		if err := tc.tr.Connect(&c, &peer{addr: s.addr()}); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		local := c.Net().LocalAddr().(*net.TCPAddr)
		_, own := c.Net().(*sockio.Socket)
		var noDelay, keepalive, tp int
		rc, _ := rawConn(c.Net()).SyscallConn()
		rc.Control(func(fd uintptr) {
			noDelay, _ = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_NODELAY)
			keepalive, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
			tp, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_IP, syscall.IP_TRANSPARENT)
		})
		c.Release(true)
		if local.IP.String() != tc.from || noDelay != tc.noDelay || keepalive != tc.keepalive || tp != tc.tp || own != tc.own {
			t.Fatalf("%s: from %v, TCP_NODELAY %d, SO_KEEPALIVE %d, IP_TRANSPARENT %d, own socket %v; want %s, %d, %d, %d, %v",
				tc.name, local.IP, noDelay, keepalive, tp, own, tc.from, tc.noDelay, tc.keepalive, tc.tp, tc.own)
		}
	}
}
