package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/wsgate/wsgate/bench/internal/load"
	"github.com/wsgate/wsgate/bench/internal/report"
)

// tunnelModes are measured over h2 and h3 tunnels: proxy CPU per 64 B
// message and RSS per idle tunnel, one tunnel per connection and
// tunnelStreams to a connection.
var tunnelModes = []string{load.ModeEcho, "idle", modeIdleStreams}

// modeIdleStreams is the idle mode with tunnelStreams tunnels to each h2 or
// h3 connection.
const modeIdleStreams = "idle-streams"

// tunnelStreams is the streams per connection of modeIdleStreams, within
// HAProxy's default of 100 concurrent streams.
const tunnelStreams = 100

// runIdleStreams runs the idle mode with tunnelStreams tunnels to each
// connection and names its figures apart.
func (r *runner) runIdleStreams(ctx context.Context, st *setup, dir string) (map[string]float64, error) {
	st.streams = tunnelStreams
	f, _, err := r.runIdle(ctx, st, dir)
	out := map[string]float64{}
	for from, to := range map[string]string{report.IdleKiB: report.IdleMuxKiB, report.IdleAvg: report.IdleMuxAvg, report.IdleFDs: report.IdleMuxFDs, report.IdleFail: report.IdleMuxFail} {
		if v, ok := f[from]; ok {
			out[to] = v
		}
	}
	return out, err
}

// tunnelProxies are the proxies that carry WebSockets over each tunnel
// protocol here: nginx 1.22 has neither RFC 8441 nor QUIC; Debian's
// HAProxy 2.6 has RFC 8441 on an HTTP/2 frontend but is built without QUIC.
var tunnelProxies = map[string][]string{
	load.ProtoH2: {"haproxy", "wsgate"},
	load.ProtoH3: {"wsgate"},
}

// tunnelTargetsOf keeps the proxies of targets that speak proto, with the
// protocol library alone (report.Library) before wsgate, which is built on
// it.
func tunnelTargetsOf(proto string, targets []string) []string {
	var out []string
	for _, t := range targets {
		if t == "wsgate" {
			out = append(out, report.Library)
		}
		if slices.Contains(tunnelProxies[proto], t) {
			out = append(out, t)
		}
	}
	return out
}

// tunnelFiles is the run's certificate set up for proto's tunnels.
func (r *runner) tunnelFiles(proto string) (*tlsFiles, error) {
	if r.cert == nil {
		tf, err := writeCert(r.tmp)
		if err != nil {
			return nil, err
		}
		r.cert = tf
	}
	tf := *r.cert
	tf.resume, tf.proto = false, proto
	return &tf, nil
}

// measureTunnels runs the echo and idle modes through the proxies over
// each protocol of r.protos.
func (r *runner) measureTunnels(ctx context.Context, rounds int, targets []string, status map[string]string) ([]report.TunnelSet, error) {
	var sets []report.TunnelSet
	for _, proto := range r.protos {
		tf, err := r.tunnelFiles(proto)
		if err != nil {
			return nil, err
		}
		tt := tunnelTargetsOf(proto, targets)
		ms, err := r.measure(ctx, rounds, tt, tunnelModes, status, tf)
		if err != nil {
			return nil, err
		}
		sets = append(sets, report.TunnelSet{Proto: proto, Title: tunnelTitle(proto), Method: tunnelMethod(proto), Targets: ms.targets(ms.order, status)})
	}
	return sets, nil
}

func tunnelTitle(proto string) string {
	if proto == load.ProtoH2 {
		return "WebSockets over HTTP/2 (RFC 8441)"
	}
	return "WebSockets over HTTP/3 (RFC 9220)"
}

func tunnelMethod(proto string) []string {
	common := fmt.Sprintf("The 64 B echo (64 tunnels) and idle modes of plain ws, with every tunnel a stream of its own connection (one stream per connection: the idle figures, and the goals, are the cost of a connection with its tunnel); then the idle steps again with %d tunnels to a connection. The proxies carry each tunnel to the same plain HTTP/1.1 echo backend. Ratios compare with wsgate's plain HTTP/1.1 ws tunnel (no TLS) of this run: the tunnel here also pays TLS, which the wss section prices separately.", tunnelStreams)
	if proto == load.ProtoH2 {
		return []string{
			"Client: Go's golang.org/x/net/http2 client over TLS 1.3 (ALPN h2, X25519, ECDSA P-256 certificate, no resumption); extended CONNECT with `:protocol websocket` once the server's SETTINGS allow it (SETTINGS_ENABLE_CONNECT_PROTOCOL).",
			"wsgate: `listen 127.0.0.1:PORT ssl http2;` with the wss certificate settings; it re-executes itself with GODEBUG=http2xconnect=1 to offer extended CONNECT. HAProxy 2.6: `bind ... ssl crt combined.pem ssl-min-ver TLSv1.3 alpn h2,http/1.1` (RFC 8441 on HTTP/2 frontends since 2.4). nginx 1.22.1 is left out: it does not accept RFC 8441 WebSockets (no extended CONNECT on HTTP/2).",
			"library: golang.org/x/net's HTTP/2 server alone (`bench/cmd/libserver -proto h2`, the x/net version wsgate is built with), each connection served on a fresh goroutine after its TLS handshake as wsgate serves it, each tunnel's frames echoed in its stream's handler, with no backend leg: the least any server built on x/net pays per tunnel.",
			common,
		}
	}
	return []string{
		"Client: quic-go's HTTP/3 client, each tunnel its own UDP socket and QUIC connection (TLS 1.3, ALPN h3, X25519, keep-alive every 10 s so idle connections outlive QUIC's idle timeout); extended CONNECT with `:protocol websocket` once the server's SETTINGS allow it (SETTINGS_ENABLE_CONNECT_PROTOCOL).",
		"wsgate: `listen 127.0.0.1:PORT quic;` beside `listen 127.0.0.1:PORT ssl;` with the wss certificate settings. nginx 1.22.1 has no HTTP/3 (QUIC arrived in 1.25) and Debian's HAProxy 2.6 is built without QUIC (`haproxy -vv`: -QUIC), so wsgate is the only proxy.",
		"library: quic-go's HTTP/3 server alone (`bench/cmd/libserver -proto h3`, the quic-go version wsgate is built with), each tunnel's stream taken over as wsgate takes it (http3.HTTPStreamer) and its frames echoed on one goroutine, with no backend leg: the least any server built on quic-go pays per tunnel.",
		common,
	}
}

// measureSyscalls counts each proxy's system calls per handshake and per
// 64 B message, and per 64 B message over each tunnel protocol, in short
// windows under strace after the timed rounds.
func (r *runner) measureSyscalls(ctx context.Context, proxies []string, status map[string]string) ([]report.SyscallSet, error) {
	window := r.window
	r.window = min(r.window, r.straceWindow)
	r.stracing = true
	defer func() { r.window, r.stracing = window, false }()
	ms, err := r.measure(ctx, 1, proxies, []string{load.ModeHandshake, load.ModeEcho}, status, nil)
	if err != nil {
		return nil, err
	}
	ts := ms.targets(ms.order, status)
	sets := []report.SyscallSet{
		{Title: "Plain handshake", Mode: load.ModeHandshake, Op: "handshake", Targets: ts},
		{Title: "64 B echo", Mode: load.ModeEcho, Op: "message", Targets: ts},
	}
	for _, proto := range r.protos {
		tf, err := r.tunnelFiles(proto)
		if err != nil {
			return nil, err
		}
		ms, err := r.measure(ctx, 1, tunnelTargetsOf(proto, proxies), []string{load.ModeEcho}, status, tf)
		if err != nil {
			return nil, err
		}
		sets = append(sets, report.SyscallSet{Title: "64 B echo over " + proto, Mode: load.ModeEcho, Op: "message", Targets: ms.targets(ms.order, status)})
	}
	return sets, nil
}

// profileKinds are the passes profiled: plain ws modes, then wss, h2 and
// h3 when the run measures them. Each profile is named prefix+mode.
type profileKind struct {
	prefix string
	modes  []string
	tf     *tlsFiles
}

// profile runs every mode once more against a wsgate built with -tags
// pprof, fetching a CPU profile over each mode's window into dir (old
// profiles there are removed first). These runs are not timed rounds: the
// figures of the report come from the release build.
func (r *runner) profile(ctx context.Context, modes []string, status map[string]string, dir string) ([]report.Profile, error) {
	log.Printf("building wsgate with -tags pprof")
	r.wsgatePprofBin = filepath.Join(r.tmp, "wsgate-pprof")
	if msg, err := r.goBuild(r.wsgatePprofBin, "./cmd/wsgate", "-tags", "pprof"); err != nil {
		return []report.Profile{{Mode: "all", Err: "`go build -tags pprof ./cmd/wsgate` failed: " + firstLine(msg)}}, nil
	}
	old, _ := filepath.Glob(filepath.Join(dir, "*.pprof"))
	for _, p := range old {
		os.Remove(p)
	}
	kinds := []profileKind{{"", modes, nil}}
	if r.wss {
		tf, err := r.tunnelFiles("")
		if err != nil {
			return nil, err
		}
		kinds = append(kinds, profileKind{"wss-", []string{load.ModeHandshake, load.ModeEcho}, tf})
	}
	for _, proto := range r.protos {
		tf, err := r.tunnelFiles(proto)
		if err != nil {
			return nil, err
		}
		kinds = append(kinds, profileKind{proto + "-", []string{load.ModeEcho}, tf})
	}
	r.profiling = true
	defer func() { r.profiling, r.profileDir, r.profilePrefix = false, "", "" }()
	r.profileDir = dir
	var out []report.Profile
	for _, k := range kinds {
		r.profilePrefix = k.prefix
		ms, err := r.measure(ctx, 1, []string{"wsgate"}, k.modes, status, k.tf)
		if err != nil {
			return nil, err
		}
		for _, m := range k.modes {
			name := k.prefix + m
			p := r.profileSummary(name, m, filepath.Join(dir, name+".pprof"), "profiles/"+name+".pprof", lastFigures(ms, "wsgate"))
			if e, ok := r.profileErrs[name]; ok && p.Err == "" {
				p.Err = e
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// lastFigures is target's last value of every figure in ms.
func lastFigures(ms *measured, target string) map[string]float64 {
	out := map[string]float64{}
	for k, v := range ms.figs[target] {
		if len(v) > 0 {
			out[k] = v[len(v)-1]
		}
	}
	return out
}

// profileMethod says how the profiles were taken, for the report.
func (r *runner) profileMethod() []string {
	return []string{
		fmt.Sprintf("After the timed rounds, a separate untimed pass: wsgate built with `-tags pprof` (`WSGATE_PPROF=127.0.0.1:PORT` serves net/http/pprof), pinned like the timed runs, each mode once more; `/debug/pprof/profile?seconds=%d` is fetched over the mode's timed window (for idle from the opening of the first step's tunnels, for the storm from the drop). The figures in the tables above come from the release build of the timed rounds, which the profiler never touched; the CPU per operation of the profiled run is set beside them to show what profiling cost.", profileSeconds(r.window)),
		"Each profile lists the five functions with the most flat CPU time (`go tool pprof -top -nodecount=5 FILE`) and wsgate's own five with the most cumulative time (`-cum -show=^github.com/wsgate/wsgate/`); `go tool pprof -http=: FILE` opens the whole profile.",
	}
}

// readEventLoop returns bench/evloop/results.md of the repository, or ""
// when there is none.
func readEventLoop(repo string) string {
	b, err := os.ReadFile(filepath.Join(repo, "bench", "evloop", "results.md"))
	if err != nil {
		return ""
	}
	return string(b)
}

// estimate is how long a run with these settings takes, roughly: each
// start and stop of a target, each mode's warm-up and window, and the
// idle and storm steps.
func (r *runner) estimate(rounds, targets int, modes []string) time.Duration {
	const start = 2 * time.Second // start, readiness check, stop
	lw := start + r.warmup + r.window + time.Second
	per := func(m string) time.Duration {
		switch m {
		case "idle":
			last := r.idleSteps[len(r.idleSteps)-1]
			return start + time.Duration(len(r.idleSteps))*r.settle + time.Duration(last/1500+2)*time.Second
		case modeStorm:
			return start + r.settle + time.Duration(r.stormClients/1000+3)*time.Second
		}
		return lw
	}
	proxies := targets
	if targets > 1 {
		proxies = targets - 1 // direct
	}
	var d time.Duration
	for _, m := range modes {
		n := targets
		if m == "idle" {
			n = proxies
		}
		d += time.Duration(rounds*n) * per(m)
	}
	if r.wss {
		d += time.Duration(rounds*proxies) * (2*lw + per("idle"))
	}
	if r.tlsHandshakes {
		d += time.Duration(4*rounds*proxies) * lw
	}
	if r.twoCores {
		d += time.Duration(3*rounds*targets) * lw
	}
	for _, p := range r.protos {
		n := time.Duration(rounds * (len(tunnelProxies[p]) + 1)) // and the library
		d += n * (lw + 2*per("idle"))
	}
	if r.syscalls {
		sw := start + r.warmup + min(r.window, r.straceWindow) + time.Second
		d += time.Duration(2*proxies+len(r.protos)) * sw
	}
	if r.profiles {
		for _, m := range modes {
			d += per(m)
		}
		if r.wss {
			d += 2 * lw
		}
		d += time.Duration(len(r.protos)) * lw
	}
	return d + time.Minute // builds
}

// ensureStrace finds strace, installing it with apt-get when missing and
// running as root.
func ensureStrace() error {
	if _, err := exec.LookPath("strace"); err == nil {
		return nil
	}
	if os.Geteuid() == 0 {
		log.Printf("installing strace with apt-get")
		cmd := exec.Command("apt-get", "install", "-y", "strace")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if b, err := cmd.CombinedOutput(); err != nil {
			log.Printf("apt-get install strace: %v: %s", err, tail(strings.TrimSpace(string(b)), 300))
		}
	}
	_, err := exec.LookPath("strace")
	return err
}
