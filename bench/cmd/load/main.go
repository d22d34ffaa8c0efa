// Command load drives one benchmark mode against a WebSocket target on a
// loopback address and prints its figures as one JSON object; in idle-agent
// mode it holds idle tunnels, reconnects them all at once on request (a
// reconnect storm) and obeys commands on standard input (see
// load.IdleAgent). It stops by itself after its warm-up and window.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/bench/internal/load"
)

func main() {
	var cfg load.Config
	mode := flag.String("mode", load.ModeEcho, "handshake, echo, throughput, paced or idle-agent")
	flag.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "target loopback host:port")
	flag.StringVar(&cfg.Path, "path", "/ws", "request path")
	src := flag.String("src", "", "client source addresses in 127.0.0.0/8, e.g. 127.0.0.2-127.0.0.17")
	flag.IntVar(&cfg.Workers, "workers", 16, "workers (handshake) or connections (echo, throughput)")
	flag.IntVar(&cfg.Size, "size", 64, "message payload bytes")
	flag.DurationVar(&cfg.Warmup, "warmup", time.Second, "untimed lead-in")
	flag.DurationVar(&cfg.Duration, "duration", 5*time.Second, "timed window")
	flag.BoolVar(&cfg.TLS, "tls", false, "wss: TLS 1.3, no verification, no resumption (a full handshake per connection)")
	flag.BoolVar(&cfg.Resume, "resume", false, "with -tls: keep session tickets, so connections after the first resume")
	flag.IntVar(&cfg.Rate, "rate", 1000, "paced: messages per second over all connections")
	flag.IntVar(&cfg.CPUPID, "cpu-pid", 0, "PID whose CPU time is sampled around the window (0: none)")
	flag.StringVar(&cfg.Proto, "proto", "", "tunnel protocol: empty for HTTP/1.1 Upgrade, h2 (RFC 8441 over TLS) or h3 (RFC 9220)")
	flag.IntVar(&cfg.Streams, "streams", 1, "with -proto h2 or h3: tunnels per connection")
	flag.IntVar(&cfg.StracePID, "strace-pid", 0, "PID whose system calls strace -f -c counts over the window (0: none)")
	flag.StringVar(&cfg.Echo, "echo", "", "also serve the echo backend on this loopback host:port, in this process, for the run")
	flag.Parse()

	mustLoopback("addr", cfg.Addr)
	if cfg.Echo != "" {
		mustLoopback("echo", cfg.Echo)
	}
	if cfg.Proto != load.ProtoHTTP1 && cfg.Proto != load.ProtoH2 && cfg.Proto != load.ProtoH3 {
		log.Fatalf("load: -proto must be empty, h2 or h3, got %q", cfg.Proto)
	}
	var err error
	if cfg.Sources, err = load.Sources(*src); err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *mode == "idle-agent" {
		if err := load.IdleAgent(ctx, cfg, os.Stdin, os.Stdout); err != nil {
			log.Fatal(err)
		}
		return
	}
	res, err := load.Run(ctx, *mode, cfg)
	if err != nil {
		log.Fatal(err)
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		log.Fatal(err)
	}
}

// mustLoopback exits unless flag name's value v is a loopback host:port.
func mustLoopback(name, v string) {
	host, _, err := net.SplitHostPort(v)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		log.Fatalf("load: -%s must be a loopback host:port, got %q", name, v)
	}
}
