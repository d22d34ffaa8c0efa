package load

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
	"golang.org/x/net/http2"

	"github.com/wsgate/wsgate/bench/internal/selfsigned"
	"github.com/wsgate/wsgate/bench/internal/wsproto"
)

// reexecForExtendedConnect makes sure the test binary runs with
// GODEBUG=http2xconnect=1, which x/net's HTTP/2 server reads once at start
// before it offers extended CONNECT; it re-executes the binary when unset.
func reexecForExtendedConnect() {
	if strings.Contains(os.Getenv("GODEBUG"), "http2xconnect=1") {
		return
	}
	env := os.Environ()
	godebug := "http2xconnect=1"
	if v := os.Getenv("GODEBUG"); v != "" {
		godebug = v + "," + godebug
	}
	env = append(env, "GODEBUG="+godebug)
	exe, err := os.Executable()
	if err != nil {
		return
	}
	syscall.Exec(exe, os.Args, env)
}

// tunnelHandler carries each extended CONNECT for a WebSocket to the echo
// backend at backend over an HTTP/1.1 upgrade, copying bytes both ways, as
// a proxy would.
func tunnelHandler(backend string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		proto := r.Header.Get(":protocol")
		if r.ProtoMajor == 3 {
			proto = r.Proto
		}
		if r.Method != http.MethodConnect || proto != "websocket" || r.Header.Get("Sec-Websocket-Version") != "13" {
			http.Error(w, "not a WebSocket CONNECT", http.StatusBadRequest)
			return
		}
		conn, err := net.Dial("tcp4", backend)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer conn.Close()
		if _, err := wsproto.Handshake(conn, backend, r.URL.Path); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		var in io.Reader = r.Body
		var out io.Writer = flushWriter{w}
		w.WriteHeader(http.StatusOK)
		if s, ok := w.(http3.HTTPStreamer); ok {
			str, err := s.HTTPStream()
			if err != nil {
				return
			}
			defer str.Close()
			in, out = str, str
		} else {
			w.(http.Flusher).Flush()
		}
		go func() {
			io.Copy(conn, in)
			conn.(*net.TCPConn).CloseWrite()
		}()
		io.Copy(out, conn)
	}
}

type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(b []byte) (int, error) {
	n, err := f.w.Write(b)
	f.w.(http.Flusher).Flush()
	return n, err
}

// startH2Tunnel serves RFC 8441 WebSockets over TLS HTTP/2 on a loopback
// port, each carried to the echo backend.
func startH2Tunnel(t *testing.T, backend string) string {
	t.Helper()
	sc, err := selfsigned.ServerConfig()
	if err != nil {
		t.Fatal(err)
	}
	sc.NextProtos = []string{"h2"}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http2.Server{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	h := tunnelHandler(backend)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				tc := tls.Server(c, sc)
				if tc.Handshake() == nil {
					srv.ServeConn(tc, &http2.ServeConnOpts{Handler: h})
				}
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
				c.Close()
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// startH3Tunnel serves RFC 9220 WebSockets over HTTP/3 on a loopback UDP
// port, each carried to the echo backend.
func startH3Tunnel(t *testing.T, backend string) string {
	t.Helper()
	sc, err := selfsigned.ServerConfig()
	if err != nil {
		t.Fatal(err)
	}
	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http3.Server{TLSConfig: http3.ConfigureTLSConfig(sc), Handler: tunnelHandler(backend)}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(udp) }()
	t.Cleanup(func() {
		srv.Close()
		udp.Close()
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			t.Logf("h3 server: %v", err)
		}
	})
	return udp.LocalAddr().String()
}

// TestTunnelModes runs the echo and handshake modes and the idle agent over
// h2 and h3 tunnels against in-test servers that carry each WebSocket to
// the real echo backend.
func TestTunnelModes(t *testing.T) {
	backend := startEcho(t)
	srcs, err := Sources("127.0.0.2-127.0.0.3")
	if err != nil {
		t.Fatal(err)
	}
	for _, proto := range []string{ProtoH2, ProtoH3} {
		t.Run(proto, func(t *testing.T) {
			addr := startH2Tunnel(t, backend)
			if proto == ProtoH3 {
				addr = startH3Tunnel(t, backend)
			}
			for _, mode := range []string{ModeEcho, ModeHandshake} {
				res, err := Run(context.Background(), mode, Config{
					Addr: addr, Sources: srcs, Workers: 4, Size: 64, Proto: proto,
					Warmup: 50 * time.Millisecond, Duration: 300 * time.Millisecond, CPUPID: os.Getpid(),
				})
				if err != nil {
					t.Fatalf("%s: %v", mode, err)
				}
				if res.Ops == 0 || res.Errors != 0 {
					t.Fatalf("%s: result %+v", mode, res)
				}
			}
			testIdleAgent(t, Config{Addr: addr, Sources: srcs, Proto: proto})
			t.Run("streams", func(t *testing.T) { testIdleAgent(t, Config{Addr: addr, Sources: srcs, Proto: proto, Streams: 8}) })
		})
	}
}

// TestTunnelRefused: a server that does not offer extended CONNECT (plain
// HTTP/2 without the setting) fails the h2 handshake with an error, not a
// hang.
func TestTunnelWrongALPN(t *testing.T) {
	secure, _ := startTLSEcho(t) // offers no h2
	_, err := Run(context.Background(), ModeEcho, Config{Addr: secure, Workers: 1, Proto: ProtoH2,
		Warmup: 50 * time.Millisecond, Duration: 100 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "ALPN") {
		t.Fatalf("h2 against an HTTP/1.1-only server: %v", err)
	}
}

func TestParseStraceSummary(t *testing.T) {
	const out = `% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 65.70    0.075479         698       108        54 wait4
  6.86    0.007876           4      1601       693 openat
  0.08    0.000097           1        54           getpid
------ ----------- ----------- --------- --------- ----------------
100.00    0.114876          15      1763       747 total
`
	got, err := ParseStraceSummary([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{"wait4": 108, "openat": 1601, "getpid": 54}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if _, err := ParseStraceSummary([]byte("strace: attach: ptrace(PTRACE_SEIZE, 1): Operation not permitted\n")); err == nil {
		t.Fatal("an strace error was read as a summary")
	}
}

// TestRunStrace counts the system calls of this test process, which serves
// the echo backend, over an echo window: the backend reads and writes each
// message, so there are calls to count, spread over the messages.
func TestRunStrace(t *testing.T) {
	if _, err := exec.LookPath("strace"); err != nil {
		t.Skip("strace not installed")
	}
	plain := startEcho(t)
	res, err := Run(context.Background(), ModeEcho, Config{
		Addr: plain, Workers: 2, Size: 64, StracePID: os.Getpid(),
		Warmup: 50 * time.Millisecond, Duration: 500 * time.Millisecond,
	})
	if err != nil {
		if strings.Contains(err.Error(), "attach") {
			t.Skipf("strace cannot trace here: %v", err)
		}
		t.Fatal(err)
	}
	var total uint64
	for _, n := range res.Syscalls {
		total += n
	}
	if res.Ops == 0 || total < res.Ops {
		t.Fatalf("%d messages, system calls %v", res.Ops, res.Syscalls)
	}
}

// TestTunnelStreams: with Streams, tunnels share connections, that many to
// each, and each still echoes; closing them all closes the connections.
func TestTunnelStreams(t *testing.T) {
	backend := startEcho(t)
	for _, proto := range []string{ProtoH2, ProtoH3} {
		t.Run(proto, func(t *testing.T) {
			addr := startH2Tunnel(t, backend)
			if proto == ProtoH3 {
				addr = startH3Tunnel(t, backend)
			}
			r := newRun(Config{Addr: addr, Path: "/ws", Proto: proto, Streams: 4})
			held, err := r.openIdle(nil, 10)
			if err != nil {
				t.Fatal(err)
			}
			conns := map[string]int{}
			for _, c := range held {
				conns[c.Conn.LocalAddr().String()]++
			}
			if len(conns) != 3 {
				t.Errorf("10 tunnels at 4 per connection over %d connections: %v", len(conns), conns)
			}
			if pass, fail, err := checkIdle(held); pass != 10 || fail != 0 {
				t.Errorf("echo check: %d passed, %d failed: %v", pass, fail, err)
			}
			for _, c := range held {
				c.Close()
			}
		})
	}
}
