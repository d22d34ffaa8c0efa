// Command echo is the benchmark's WebSocket echo backend. It listens on a
// loopback address, echoes frames, answers GET /health with 200, and exits on
// SIGINT or SIGTERM.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/wsgate/wsgate/bench/internal/echo"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9001", "loopback host:port to listen on")
	flag.Parse()
	host, _, err := net.SplitHostPort(*addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		log.Fatalf("echo: -addr must be a loopback host:port, got %q", *addr)
	}
	ln, err := net.Listen("tcp4", *addr)
	if err != nil {
		log.Fatal(err)
	}
	var s echo.Server
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		s.Close()
	}()
	fmt.Println("listening", ln.Addr())
	if err := s.Serve(ln); err != nil && err != echo.ErrServerClosed {
		log.Fatal(err)
	}
}
