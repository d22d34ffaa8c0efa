package backend

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// testCert is a self-signed certificate for 127.0.0.1 and
// backend.example.com, made for the test.
func testCert(t *testing.T) (tls.Certificate, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "backend"},
		DNSNames: []string{"backend.example.com"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, leaf
}

// handshakes records what a TLS backend saw of each handshake.
type handshakes struct {
	mu      sync.Mutex
	sni     []string
	resumed []bool
}

func (h *handshakes) get() ([]string, []bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.sni...), append([]bool(nil), h.resumed...)
}

// startTLSServer is startServer over TLS with cert: each connection's
// handshake is recorded in h, then answer(0) serves it.
func startTLSServer(t *testing.T, cert tls.Certificate, h *handshakes) *server {
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	return startServer(t, func(c net.Conn, n int64) {
		tc := tls.Server(c, cfg)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if err := tc.Handshake(); err != nil {
			return
		}
		c.SetDeadline(time.Time{})
		st := tc.ConnectionState()
		h.mu.Lock()
		h.sni, h.resumed = append(h.sni, st.ServerName), append(h.resumed, st.DidResume)
		h.mu.Unlock()
		answer(0)(tc, n)
	})
}

// A TLS peer serves kept-alive requests over one handshake under one
// worker_connections slot, and its idle connection is taken only by a
// Transport with the same TLS config.
func TestTLSKeepaliveReuse(t *testing.T) {
	cert, _ := testCert(t)
	var h handshakes
	s := startTLSServer(t, cert, &h)
	slots := &counter{limit: 10}
	pool := NewPool(slots, 4, time.Minute, 100)
	cfg := &tls.Config{InsecureSkipVerify: true, ServerName: "backend.example.com"}
	tr := Transport{Idle: pool, Slots: slots, ConnectTimeout: 5 * time.Second, TLS: cfg}
	p := &peer{addr: s.addr()}
	keptAlive(t, tr, p, pool, slots, s.accepts.Load)
	if sni, _ := h.get(); len(sni) != 1 || sni[0] != "backend.example.com" {
		t.Fatalf("handshakes %q, want one with SNI backend.example.com", sni)
	}
	other := tr
	other.TLS = &tls.Config{InsecureSkipVerify: true}
	roundTrip(t, other, p, request(true))
	if n := s.accepts.Load(); n != 2 {
		t.Fatalf("a Transport with another TLS config took the idle connection (%d accepts)", n)
	}
	pool.Close()
	if n := slots.used.Load(); n != 0 {
		t.Fatalf("%d slots held after Close", n)
	}
}

// A certificate the client refuses fails in the Handshaking phase,
// counts against the peer and gives the slot back.
func TestTLSHandshakeRefused(t *testing.T) {
	cert, _ := testCert(t)
	var h handshakes
	s := startTLSServer(t, cert, &h)
	slots := &counter{limit: 10}
	p := &peer{addr: s.addr()}
	var c Conn
	cfg := &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "backend.example.com"}
	err := Transport{Slots: slots, ConnectTimeout: 5 * time.Second, TLS: cfg}.Connect(&c, p)
	var be *Error
	var he *HandshakeError
	if !errors.As(err, &be) || be.Phase != Handshaking || !errors.As(err, &he) {
		t.Fatalf("error %v, want a Handshaking *Error", err)
	}
	if be.Phase.String() != "SSL handshaking to upstream" {
		t.Errorf("phase %q", be.Phase)
	}
	if got := p.ends(); len(got) != 1 || !got[0] {
		t.Fatalf("peer ends %v, want [true]", got)
	}
	if n := slots.used.Load(); n != 0 {
		t.Fatalf("%d slots held after a failed handshake", n)
	}
}

// A handshake that never completes ends at proxy_connect_timeout.
func TestTLSHandshakeTimeout(t *testing.T) {
	s := startServer(t, func(c net.Conn, _ int64) { io.Copy(io.Discard, c) }) // takes the hello, never answers
	p := &peer{addr: s.addr()}
	var c Conn
	err := Transport{Slots: &counter{limit: 1}, ConnectTimeout: 200 * time.Millisecond, TLS: &tls.Config{InsecureSkipVerify: true}}.Connect(&c, p)
	var be *Error
	var ne net.Error
	if !errors.As(err, &be) || be.Phase != Handshaking || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("error %v, want a handshake timeout", err)
	}
}

// With a session cache in the config, the second connection's handshake
// resumes the first's session.
func TestTLSSessionResumed(t *testing.T) {
	cert, _ := testCert(t)
	var h handshakes
	s := startTLSServer(t, cert, &h)
	cfg := &tls.Config{InsecureSkipVerify: true, ClientSessionCache: tls.NewLRUClientSessionCache(4)}
	tr := Transport{Slots: &counter{limit: 10}, ConnectTimeout: 5 * time.Second, TLS: cfg}
	p := &peer{addr: s.addr()}
	roundTrip(t, tr, p, request(false))
	roundTrip(t, tr, p, request(false))
	if _, resumed := h.get(); len(resumed) != 2 || resumed[0] || !resumed[1] {
		t.Fatalf("resumed %v, want [false true]", resumed)
	}
}

// A "unix:/path" peer is dialed over a unix socket, kept alive and
// reused like a TCP one.
func TestUnixPeer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	var accepts atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepts.Add(1)
			wg.Add(1)
			go func() { defer wg.Done(); defer c.Close(); answer(0)(c, 0) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })

	slots := &counter{limit: 10}
	pool := NewPool(slots, 4, time.Minute, 100)
	tr := Transport{Idle: pool, Slots: slots, ConnectTimeout: 5 * time.Second}
	p := &peer{addr: "unix:" + path}
	var c Conn
	if err := tr.Connect(&c, p); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Net().(*net.UnixConn); !ok {
		t.Fatalf("connection %T, want *net.UnixConn", c.Net())
	}
	c.Release(true)
	roundTrip(t, tr, p, request(true))
	roundTrip(t, tr, p, request(true))
	if n := accepts.Load(); n != 2 || pool.Idle() != 1 || slots.used.Load() != 1 {
		t.Fatalf("%d accepts, %d idle, %d slots; want 2, 1, 1", n, pool.Idle(), slots.used.Load())
	}
	pool.Close()

	var d Conn
	err = tr.Connect(&d, &peer{addr: "unix:" + filepath.Join(t.TempDir(), "none.sock")})
	var be *Error
	if !errors.As(err, &be) || be.Phase != Connecting || slots.used.Load() != 0 {
		t.Fatalf("missing socket: %v, %d slots", err, slots.used.Load())
	}
}

// An idle TLS connection the backend closed (close_notify, then FIN) is
// found dead when taken from the pool: a fresh connection and handshake
// serve the next request, and no slot is lost.
func TestTLSKeepaliveClosedWhileIdle(t *testing.T) {
	cert, _ := testCert(t)
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	s := startServer(t, func(c net.Conn, n int64) {
		tc := tls.Server(c, cfg)
		answer(1)(tc, n)
		tc.Close() // close_notify
	})
	slots := &counter{limit: 10}
	pool := NewPool(slots, 4, time.Minute, 100)
	tr := Transport{Idle: pool, Slots: slots, ConnectTimeout: 5 * time.Second, TLS: &tls.Config{InsecureSkipVerify: true}}
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

// TestConnectNowAllocations: the raw connect that a loopback dial starts
// with allocates nothing, and connects. Under -race the pool drops some of
// its calls, which are made again.
func TestConnectNowAllocations(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const runs = 20
	var rcs []syscall.RawConn
	for range runs + 1 { // AllocsPerRun calls once more, to warm up
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		f := os.NewFile(uintptr(fd), "socket")
		defer f.Close()
		rc, err := f.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		rcs = append(rcs, rc)
	}
	addr := ln.Addr().String()
	i := 0
	n := testing.AllocsPerRun(runs, func() {
		if err := connectNow("tcp4", addr, rcs[i]); err != nil {
			t.Fatal(err)
		}
		i++
	})
	limit := 0.0
	if raceBuild {
		limit = 1
	}
	if n > limit {
		t.Errorf("connectNow: %v allocations, want at most %v", n, limit)
	}
	for _, rc := range rcs {
		var soErr int
		rc.Control(func(fd uintptr) { soErr, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_ERROR) })
		if soErr != 0 {
			t.Fatalf("a socket did not connect: %v", syscall.Errno(soErr))
		}
	}
}
