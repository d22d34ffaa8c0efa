// Command evproxy is one WebSocket-upgrade relay of the event-loop
// evaluation: it accepts on -listen, reads each client's HTTP/1.1 request
// head, connects to -backend, forwards the head and then relays bytes both
// ways, on the library -lib names. It parses no WebSocket frames.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"

	"github.com/wsgate/wsgate/bench/evloop/internal/epollrelay"
	"github.com/wsgate/wsgate/bench/evloop/internal/eviorelay"
	"github.com/wsgate/wsgate/bench/evloop/internal/gnetrelay"
	"github.com/wsgate/wsgate/bench/evloop/internal/nbiorelay"
	"github.com/wsgate/wsgate/bench/evloop/internal/netpollrelay"
	"github.com/wsgate/wsgate/bench/evloop/internal/stdrelay"
)

var libs = map[string]func(listen, backend string) error{
	"std":     stdrelay.Run,
	"epoll":   epollrelay.Run,
	"epark":   epollrelay.RunParked,
	"eraw":    epollrelay.RunRaw,
	"gnet":    gnetrelay.Run,
	"nbio":    nbiorelay.Run,
	"evio":    eviorelay.Run,
	"netpoll": netpollrelay.Run,
}

func main() {
	lib := flag.String("lib", "std", "gnet, nbio, evio, netpoll, std, epoll, epark (epoll, waiting in Go's netpoller) or eraw (epark with raw system calls)")
	listen := flag.String("listen", "127.0.0.1:8080", "address to accept on")
	backend := flag.String("backend", "127.0.0.1:9000", "backend address")
	flag.Parse()
	run, ok := libs[*lib]
	if !ok {
		fmt.Fprintf(os.Stderr, "evproxy: unknown -lib %q\n", *lib)
		os.Exit(2)
	}
	if err := run(*listen, *backend); err != nil {
		log.Fatalf("evproxy %s: %v", *lib, err)
	}
}
