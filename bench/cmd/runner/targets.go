package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/wsgate/wsgate/bench/internal/load"
	"github.com/wsgate/wsgate/bench/internal/report"
	"github.com/wsgate/wsgate/bench/internal/wsproto"
)

// The same nginx-language config serves nginx and wsgate. The long proxy
// timeouts match HAProxy's "timeout tunnel 1h", so idle tunnels survive a
// long idle step (nginx's default proxy_read_timeout is 60 s).
const nginxConf = `worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;

events {
    worker_connections 20000;
}

http {
    access_log off;

    upstream websocket_backend {
        server 127.0.0.1:%[2]d;
    }

    server {
        listen 127.0.0.1:%[3]d%[4]s;%[5]s

        location /ws {
            proxy_pass http://websocket_backend;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_set_header Host $host;
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
        }
    }
}
`

const haproxyConf = `global
    nbthread 1
    maxconn 9000

defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h

frontend ws
    bind 127.0.0.1:%[2]d%[3]s
    acl is_ws path_beg /ws
    use_backend websocket_backend if is_ws

backend websocket_backend
    server b1 127.0.0.1:%[1]d
`

// nginxConfig fills nginxConf; with tf the server listens for TLS 1.3 only.
// The listen gets no http2 unless tf.proto asks for h2 (wss stays HTTP/1.1
// on every proxy); h3 adds a quic listen on the same port, beside ssl.
func nginxConfig(dir string, bport, pport int, tf *tlsFiles) string {
	var listen, ssl string
	if tf != nil {
		listen = " ssl"
		switch tf.proto {
		case load.ProtoH2:
			listen = " ssl http2"
		case load.ProtoH3:
			listen = fmt.Sprintf(" quic;\n        listen 127.0.0.1:%d ssl", pport)
		}
		ssl = fmt.Sprintf("\n        ssl_certificate %s;\n        ssl_certificate_key %s;\n        ssl_protocols TLSv1.3;", tf.cert, tf.key)
	}
	return fmt.Sprintf(nginxConf, dir, bport, pport, listen, ssl)
}

// haproxyConfig fills haproxyConf; with tf the frontend binds TLS 1.3 only,
// offering HTTP/2 by ALPN when tf.proto is h2.
func haproxyConfig(bport, pport int, tf *tlsFiles) string {
	var ssl string
	if tf != nil {
		ssl = fmt.Sprintf(" ssl crt %s ssl-min-ver TLSv1.3", tf.combined)
		if tf.proto == load.ProtoH2 {
			ssl += " alpn h2,http/1.1"
		}
	}
	return fmt.Sprintf(haproxyConf, bport, pport, ssl)
}

// setup is one started target: the echo backend and, unless direct, a proxy.
type setup struct {
	addr    string // where the load client connects
	tls     bool   // the proxy serves wss at addr
	resume  bool   // with tls: the load client resumes sessions
	proto   string // load.ProtoH2 or ProtoH3: WebSockets are tunnels in HTTP/2 or HTTP/3 streams
	streams int    // with proto: idle tunnels per connection; 0 for one
	backend *proc
	proxy   *proc // nil for direct
	// pprofAddr is where a wsgate built with -tags pprof serves
	// net/http/pprof, during the profile pass only.
	pprofAddr string
}

// startWsgate starts wsgate on CPU 1; during the profile pass it is the
// pprof build, serving net/http/pprof on a free loopback port.
func (r *runner) startWsgate(st *setup, log, dir, conf string) (*proc, error) {
	if !r.profiling {
		return r.procs.start("wsgate", r.cpus(1), log, r.wsgateBin, "-p", dir, "-c", conf)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	st.pprofAddr = fmt.Sprintf("127.0.0.1:%d", port)
	return r.procs.startEnv([]string{"WSGATE_PPROF=" + st.pprofAddr}, "wsgate (pprof build)", r.cpus(1), log, r.wsgatePprofBin, "-p", dir, "-c", conf)
}

func (st *setup) proxyPID() int {
	if st.proxy == nil {
		return 0
	}
	return st.proxy.pid()
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startTarget starts the echo backend on CPU 0 and the target's proxy on
// CPU 1, and returns once a WebSocket handshake through it succeeds.
// With tf the proxy terminates TLS with those files.
func (r *runner) startTarget(ctx context.Context, target, dir string, tf *tlsFiles) (*setup, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	bport, err := freePort()
	if err != nil {
		return nil, err
	}
	st := &setup{addr: fmt.Sprintf("127.0.0.1:%d", bport)}
	st.backend, err = r.procs.start("echo backend", r.cpus(0), filepath.Join(dir, "echo.log"), r.echoBin, "-addr", st.addr)
	if err != nil {
		return nil, err
	}
	if _, err := waitHandshake(ctx, st.backend, st.addr, false); err != nil {
		r.stopTarget(st)
		return nil, err
	}
	if target == "direct" {
		if tf != nil {
			r.stopTarget(st)
			return nil, fmt.Errorf("direct has no TLS: the echo backend speaks plain ws")
		}
		return st, nil
	}
	pport, err := freePort()
	if err != nil {
		r.stopTarget(st)
		return nil, err
	}
	st.addr = fmt.Sprintf("127.0.0.1:%d", pport)
	st.tls = tf != nil
	st.resume = tf != nil && tf.resume
	if tf != nil {
		st.proto = tf.proto
	}
	log := filepath.Join(dir, target+".log")
	switch target {
	case "nginx", "wsgate":
		conf := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(conf, []byte(r.workers(nginxConfig(dir, bport, pport, tf))), 0o644); err != nil {
			r.stopTarget(st)
			return nil, err
		}
		if target == "nginx" {
			st.proxy, err = r.procs.start("nginx", r.cpus(1), log, r.nginxBin, "-p", dir+"/", "-c", conf, "-g", r.nginxGlobals())
		} else {
			st.proxy, err = r.startWsgate(st, log, dir, conf)
		}
	case report.Library:
		if st.proto == "" {
			err = fmt.Errorf("the library alone serves only h2 and h3 tunnels")
			break
		}
		st.proxy, err = r.procs.start("libserver", r.cpus(1), log, r.libserverBin, "-proto", st.proto, "-addr", st.addr, "-cert", tf.cert, "-key", tf.key)
	case "haproxy":
		conf := filepath.Join(dir, "haproxy.cfg")
		if err := os.WriteFile(conf, []byte(r.workers(haproxyConfig(bport, pport, tf))), 0o644); err != nil {
			r.stopTarget(st)
			return nil, err
		}
		st.proxy, err = r.procs.start("haproxy", r.cpus(1), log, r.haproxyBin, "-db", "-f", conf)
	default:
		err = fmt.Errorf("unknown target %q", target)
	}
	if err != nil {
		r.stopTarget(st)
		return nil, err
	}
	var negotiated string
	if st.proto != "" {
		err = waitTunnel(ctx, st.proxy, st.addr, st.proto)
	} else {
		negotiated, err = waitHandshake(ctx, st.proxy, st.addr, st.tls)
	}
	if err != nil {
		if el, rerr := os.ReadFile(filepath.Join(dir, "error.log")); rerr == nil && len(el) > 0 {
			err = fmt.Errorf("%w; error.log: %s", err, tail(string(el), 300))
		}
		r.stopTarget(st)
		return nil, err
	}
	if st.tls && st.proto == "" {
		r.noteTLS(target, negotiated)
	}
	return st, nil
}

// noteTLS remembers the first negotiation seen per target, for the report.
func (r *runner) noteTLS(target, negotiated string) {
	if r.negotiated == nil {
		r.negotiated = map[string]string{}
	}
	if _, ok := r.negotiated[target]; !ok {
		r.negotiated[target] = negotiated
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (r *runner) stopTarget(st *setup) {
	if st.proxy != nil {
		r.procs.stop(st.proxy)
	}
	if st.backend != nil {
		r.procs.stop(st.backend)
	}
}

// waitHandshake polls addr with WebSocket handshakes for up to 10 s, over
// TLS with the load client's settings when useTLS; it returns what TLS
// negotiated.
func waitHandshake(ctx context.Context, p *proc, addr string, useTLS bool) (string, error) {
	deadline := time.Now().Add(10 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		if p.exited() {
			return "", p.exitErr()
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		conn, err := net.DialTimeout("tcp4", addr, time.Second)
		if err == nil {
			conn.SetDeadline(time.Now().Add(2 * time.Second))
			var negotiated string
			if useTLS {
				tc := tls.Client(conn, load.ClientTLS())
				if err = tc.Handshake(); err == nil {
					negotiated = describeTLS(tc.ConnectionState())
				}
				conn = tc
			}
			var c *wsproto.Client
			if err == nil {
				c, err = wsproto.Handshake(conn, addr, "/ws")
			}
			if err == nil {
				c.Close()
				return negotiated, nil
			}
			conn.Close()
		}
		last = err
		t := time.NewTimer(20 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	return "", fmt.Errorf("%s at %s not ready after 10 s: %v; log: %s", p.name, addr, last, logTail(p.logPath))
}

// waitTunnel polls addr with h2 or h3 WebSocket tunnels that must echo,
// for up to 10 s.
func waitTunnel(ctx context.Context, p *proc, addr, proto string) error {
	deadline := time.Now().Add(10 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		if p.exited() {
			return p.exitErr()
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if last = load.Probe(load.Config{Addr: addr, Proto: proto}, 2*time.Second); last == nil {
			return nil
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("%s at %s: no %s WebSocket after 10 s: %v; log: %s", p.name, addr, proto, last, logTail(p.logPath))
}

// cpus returns the taskset CPU list for a process that the pinned runs put
// on cpu: that CPU alone, or both while the runner measures unpinned.
func (r *runner) cpus(cpu int) string {
	if r.unpinned {
		return "0,1"
	}
	return strconv.Itoa(cpu)
}

// workers turns a one-worker proxy config into a two-worker one while the
// runner measures unpinned: nginx and wsgate get worker_processes 2 (wsgate
// sets GOMAXPROCS from it), HAProxy nbthread 2.
func (r *runner) workers(conf string) string {
	if !r.unpinned {
		return conf
	}
	conf = strings.Replace(conf, "worker_processes 1;", "worker_processes 2;", 1)
	return strings.Replace(conf, "nbthread 1\n", "nbthread 2\n", 1)
}

// nginxGlobals is nginx's -g: one process when pinned; a master with its
// workers when unpinned, since without a master nginx runs one process
// whatever worker_processes says.
func (r *runner) nginxGlobals() string {
	if r.unpinned {
		return "daemon off;"
	}
	return "daemon off; master_process off;"
}
