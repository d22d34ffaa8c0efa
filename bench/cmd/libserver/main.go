// Command libserver is the protocol library alone: the HTTP/2 server of
// golang.org/x/net (-proto h2) or the HTTP/3 server of quic-go (-proto h3),
// set up as wsgate sets them up, accepting WebSockets over extended
// CONNECT (RFC 8441, RFC 9220) and echoing each one's frames in its
// handler, with no backend. Whatever a proxy built on the library pays per
// tunnel, it pays this at least; the benchmark measures it beside wsgate.
// It serves until SIGINT or SIGTERM.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/quic-go/quic-go/http3"
	"golang.org/x/net/http2"

	"github.com/wsgate/wsgate/bench/internal/echo"
)

// extendedConnect is the GODEBUG setting without which x/net's HTTP/2
// server does not offer extended CONNECT; it is read once at start.
const extendedConnect = "http2xconnect=1"

func main() {
	proto := flag.String("proto", "h2", "h2 (HTTP/2 over TLS) or h3 (HTTP/3)")
	addr := flag.String("addr", "127.0.0.1:9443", "loopback host:port to listen on (TCP for h2, UDP for h3)")
	certFile := flag.String("cert", "", "PEM certificate")
	keyFile := flag.String("key", "", "PEM private key")
	flag.Parse()
	host, _, err := net.SplitHostPort(*addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		log.Fatalf("libserver: -addr must be a loopback host:port, got %q", *addr)
	}
	if *proto == "h2" && !strings.Contains(os.Getenv("GODEBUG"), extendedConnect) {
		reexec()
	}
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		log.Fatalf("libserver: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go settle(ctx)
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	switch *proto {
	case "h2":
		err = serveH2(ctx, *addr, cfg)
	case "h3":
		err = serveH3(ctx, *addr, cfg)
	default:
		err = fmt.Errorf("-proto %q: want h2 or h3", *proto)
	}
	if err != nil && ctx.Err() == nil {
		log.Fatalf("libserver: %v", err)
	}
}

// settle collects and gives the heap's free pages back every 2 s until ctx
// ends. wsgate does so once it has gone quiet; without it, this process's
// idle figures would count the garbage of the tunnels' TLS handshakes. On
// the echo mode's few connections a collection costs well under a
// millisecond.
func settle(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			debug.FreeOSMemory()
		case <-ctx.Done():
			return
		}
	}
}

// reexec runs this binary again with extendedConnect added to GODEBUG.
func reexec() {
	godebug := extendedConnect
	if v := os.Getenv("GODEBUG"); v != "" {
		godebug = v + "," + godebug
	}
	exe, err := os.Executable()
	if err == nil {
		err = syscall.Exec(exe, os.Args, append(os.Environ(), "GODEBUG="+godebug))
	}
	log.Fatalf("libserver: re-executing with GODEBUG=%s: %v", godebug, err)
}

// serveH2 runs x/net's HTTP/2 server on each TLS connection. As in wsgate,
// the connection gets a fresh goroutine after the TLS handshake, whose
// stack that handshake has not grown.
func serveH2(ctx context.Context, addr string, cfg *tls.Config) error {
	cfg.NextProtos = []string{"h2"}
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		return err
	}
	context.AfterFunc(ctx, func() { ln.Close() })
	fmt.Println("listening", ln.Addr())
	srv := &http2.Server{IdleTimeout: 3 * time.Minute}
	opts := &http2.ServeConnOpts{Handler: http.HandlerFunc(tunnel)}
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			tc := tls.Server(c, cfg)
			if err := tc.HandshakeContext(ctx); err != nil {
				c.Close()
				return
			}
			go srv.ServeConn(tc, opts)
		}()
	}
}

// serveH3 runs quic-go's HTTP/3 server, which always offers extended
// CONNECT.
func serveH3(ctx context.Context, addr string, cfg *tls.Config) error {
	cfg.NextProtos = []string{http3.NextProtoH3}
	srv := &http3.Server{Addr: addr, TLSConfig: cfg, Handler: http.HandlerFunc(tunnel)}
	context.AfterFunc(ctx, func() { srv.Close() })
	fmt.Println("listening", addr)
	return srv.ListenAndServe()
}

// tunnel accepts a WebSocket over extended CONNECT and echoes its frames
// until the client ends it; anything else gets 400.
func tunnel(w http.ResponseWriter, r *http.Request) {
	proto := r.Header.Get(":protocol")
	if r.ProtoMajor == 3 {
		proto = r.Proto
	}
	if r.Method != http.MethodConnect || proto != "websocket" {
		http.Error(w, "not a WebSocket CONNECT", http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	if s, ok := w.(http3.HTTPStreamer); ok {
		// Taken over, the stream outlives the handler, which returns and
		// frees what quic-go keeps for a handler in progress; wsgate's
		// relay does the same.
		if st, err := s.HTTPStream(); err == nil {
			go func() {
				defer st.Close()
				echo.Frames(st)
			}()
		}
		return
	}
	fl, ok := w.(interface{ FlushError() error })
	if !ok {
		return
	}
	echo.Frames(stream{r.Body, w, fl})
}

// stream is an HTTP/2 tunnel as the echo's connection: it reads the
// request body and flushes each write as DATA.
type stream struct {
	io.Reader
	w  io.Writer
	fl interface{ FlushError() error } // x/net's response writer
}

func (s stream) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	if err == nil {
		err = s.fl.FlushError()
	}
	return n, err
}
