package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/wsgate/wsgate/internal/conf"
	"github.com/wsgate/wsgate/internal/config"
)

// proxyOptions are the options of `wsgate proxy`.
type proxyOptions struct {
	from, tlsCert, tlsKey, accessLog, errorLog, pid string
	readTimeout, pingInterval                       string
	to                                              []string
	printConfig, quiet, help                        bool
}

// proxyName names the generated configuration in messages.
const proxyName = "(wsgate proxy)"

func proxyFlags(po *proxyOptions) []cliFlag {
	return []cliFlag{
		{long: "from", arg: "ADDRESS", str: &po.from,
			help: "address to listen on: PORT, :PORT (all addresses) or HOST:PORT (default 127.0.0.1:8080)"},
		{long: "to", arg: "HOST:PORT", strs: &po.to,
			help: "backend to proxy to (http:// and ws:// prefixes are allowed); repeat it for several servers, balanced round robin"},
		{long: "tls-cert", arg: "FILE", str: &po.tlsCert,
			help: "serve TLS with this certificate chain (PEM); needs --tls-key"},
		{long: "tls-key", arg: "FILE", str: &po.tlsKey,
			help: "the private key (PEM) of --tls-cert"},
		{long: "access-log", arg: "FILE", str: &po.accessLog,
			help: "write an access log line per request and per WebSocket session to FILE (- for standard output; default: none)"},
		{long: "error-log", arg: "FILE", str: &po.errorLog,
			help: "error log (default: standard error)"},
		{long: "pid", arg: "FILE", str: &po.pid,
			help: "pid file (default: wsgate-proxy-PORT.pid in the temporary directory)"},
		{long: "read-timeout", arg: "TIME", str: &po.readTimeout,
			help: "close a WebSocket after it has been idle this long in both directions (default 1h)"},
		{long: "ping-interval", arg: "TIME", str: &po.pingInterval,
			help: "ping a WebSocket leg that has been silent this long, 0 for never (default 30s)"},
		{long: "print-config", b: &po.printConfig,
			help: "print the equivalent configuration file and exit"},
		{short: "q", long: "quiet", b: &po.quiet,
			help: "suppress warnings"},
		{short: "h", long: "help", b: &po.help,
			help: "print this help and exit"},
	}
}

var proxyPage = page{
	synopsis: []string{"wsgate proxy --from ADDRESS --to HOST:PORT [--to HOST:PORT ...] [options]"},
	summary: "wsgate proxy runs a reverse proxy for WebSockets and plain HTTP without a configuration file. " +
		"It builds an nginx-syntax configuration from its options and runs it exactly as if it had been read with -c: " +
		"the Upgrade and Connection headers are passed, Host is kept, X-Forwarded-For and X-Forwarded-Proto are set, " +
		"idle WebSockets are pinged and closed after an hour. --print-config shows that configuration, " +
		"a starting point for a file of your own. Signals are those of wsgate, except that HUP cannot reload it.",
	sections: []section{
		{"Proxy examples", []string{
			"wsgate proxy --from :8080 --to 127.0.0.1:9000",
			"wsgate proxy --from :443 --to 10.0.0.5:9000 --to 10.0.0.6:9000 \\",
			"    --tls-cert fullchain.pem --tls-key privkey.pem --access-log -",
			"wsgate proxy --from :8080 --to 127.0.0.1:9000 --print-config > wsgate.conf",
		}},
	},
}

// runProxy implements `wsgate proxy`.
func runProxy(args []string, stdout, stderr io.Writer) int {
	po := proxyOptions{from: "127.0.0.1:8080", readTimeout: "1h", pingInterval: "30s"}
	table := proxyFlags(&po)
	rest, err := parseFlags("wsgate proxy", table, args, stderr)
	if err != nil {
		return 1
	}
	if po.help {
		fmt.Fprint(stdout, helpText(proxyPage, table))
		return 0
	}
	if len(rest) > 0 {
		fmt.Fprintf(stderr, "wsgate proxy: unexpected argument %q\nTry 'wsgate proxy --help' for more information.\n", rest[0])
		return 1
	}
	text, err := proxyConfig(po)
	if err != nil {
		fmt.Fprintf(stderr, "wsgate proxy: %v\n", err)
		return 1
	}
	o := options{quiet: po.quiet}
	o.prefix, _ = os.Getwd()
	cfg, err := config.LoadBytes(proxyName, []byte(text), config.Options{Prefix: o.prefix, Root: os.Geteuid() == 0})
	if err != nil {
		fmt.Fprintf(stderr, "wsgate: [emerg] %v\n", err)
		return 1
	}
	cfg.Source = text
	for _, w := range cfg.Warnings {
		if !po.quiet {
			fmt.Fprintf(stderr, "wsgate: [warn] %s\n", w)
		}
	}
	if po.printConfig {
		fmt.Fprint(stdout, text)
		return 0
	}
	return serve(o, cfg, nil, stderr)
}

// proxyConfig builds the configuration text of `wsgate proxy`. It is
// assembled as directives and printed by the same code as -T, so every
// value is quoted as the parser needs and the text loads back unchanged.
func proxyConfig(po proxyOptions) (string, error) {
	listen, err := listenArg(po.from)
	if err != nil {
		return "", err
	}
	if len(po.to) == 0 {
		return "", errors.New("--to HOST:PORT is required (the backend to proxy to)")
	}
	var servers []*conf.Directive
	for _, t := range po.to {
		addr, err := backendArg(t)
		if err != nil {
			return "", err
		}
		servers = append(servers, dir("server", addr))
	}
	if (po.tlsCert == "") != (po.tlsKey == "") {
		return "", errors.New("--tls-cert and --tls-key go together")
	}
	srv := []*conf.Directive{dir("listen", listen)}
	if po.tlsCert != "" {
		srv[0].Args = append(srv[0].Args, "ssl")
		srv = append(srv, dir("ssl_certificate", absPath(po.tlsCert)), dir("ssl_certificate_key", absPath(po.tlsKey)))
	}
	srv = append(srv, block("location", []string{"/"},
		dir("proxy_pass", "http://backend"),
		dir("proxy_http_version", "1.1"),
		dir("proxy_set_header", "Upgrade", "$http_upgrade"),
		dir("proxy_set_header", "Connection", "$connection_upgrade"),
		dir("proxy_set_header", "Host", "$host"),
		dir("proxy_set_header", "X-Forwarded-For", "$proxy_add_x_forwarded_for"),
		dir("proxy_set_header", "X-Forwarded-Proto", "$scheme"),
		dir("proxy_read_timeout", po.readTimeout),
		dir("proxy_send_timeout", po.readTimeout),
		dir("websocket_ping_interval", po.pingInterval),
	))
	accessLog := dir("access_log", "off")
	switch po.accessLog {
	case "":
	case "-":
		accessLog = dir("access_log", "/dev/stdout")
	default:
		accessLog = dir("access_log", absPath(po.accessLog))
	}
	errorLog := dir("error_log", "stderr", "notice")
	if po.errorLog != "" && po.errorLog != "-" {
		errorLog = dir("error_log", absPath(po.errorLog), "notice")
	}
	pid := po.pid
	if pid == "" {
		pid = filepath.Join(os.TempDir(), "wsgate-proxy-"+portOf(listen)+".pid")
	}
	ds := []*conf.Directive{
		errorLog,
		dir("pid", absPath(pid)),
		block("events", nil, dir("worker_connections", "4096")),
		block("http", nil,
			accessLog,
			block("map", []string{"$http_upgrade", "$connection_upgrade"},
				dir("default", "upgrade"),
				&conf.Directive{Name: "", Args: []string{"close"}}),
			block("upstream", []string{"backend"}, servers...),
			block("server", nil, srv...),
		),
	}
	var b bytes.Buffer
	b.WriteString("# Generated by wsgate proxy; load it with wsgate -c FILE.\n")
	if err := conf.Dump(&b, ds); err != nil {
		return "", err
	}
	return b.String(), nil
}

func dir(name string, args ...string) *conf.Directive {
	return &conf.Directive{Name: name, Args: args}
}

func block(name string, args []string, body ...*conf.Directive) *conf.Directive {
	if body == nil {
		body = []*conf.Directive{}
	}
	return &conf.Directive{Name: name, Args: args, Block: body}
}

// listenArg turns --from into a listen argument: ":8080" listens on every
// address, as Go and Caddy write it.
func listenArg(from string) (string, error) {
	if strings.HasPrefix(from, ":") {
		from = "*" + from
	}
	if from == "" || strings.ContainsAny(from, " \t/;{}\"'") {
		return "", fmt.Errorf("--from %q: want PORT, :PORT or HOST:PORT", from)
	}
	return from, nil
}

// backendArg turns --to into an upstream server address.
func backendArg(to string) (string, error) {
	addr := to
	for _, p := range []string{"http://", "ws://"} {
		addr = strings.TrimPrefix(addr, p)
	}
	if strings.HasPrefix(addr, "https://") || strings.HasPrefix(addr, "wss://") {
		return "", fmt.Errorf("--to %q: TLS to backends is not supported yet; use http:// or ws://", to)
	}
	addr = strings.TrimSuffix(addr, "/")
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" || strings.ContainsAny(addr, " \t/;{}\"'") {
		return "", fmt.Errorf("--to %q: want HOST:PORT, e.g. 127.0.0.1:9000", to)
	}
	return addr, nil
}

// portOf returns the port of a listen argument.
func portOf(listen string) string {
	if i := strings.LastIndexByte(listen, ':'); i >= 0 {
		return listen[i+1:]
	}
	return listen
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
