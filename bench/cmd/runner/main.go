// Command runner is wsgate's benchmark harness: in one run it measures every
// mode (handshakes, 64 B echo, 64 KiB throughput, idle tunnels) against the
// echo backend directly and through wsgate, nginx (one worker) and HAProxy
// (one thread), pinning the proxy to CPU 1 and the client and backend to CPU
// 0, and writes docs/benchmarks.md with docs/benchmarks.png. wsgate is built
// from ./cmd/wsgate and measured as a black box.
//
//	go run ./bench/cmd/runner [--rounds 3] [--targets direct,nginx,haproxy,wsgate] [--modes handshake,echo,throughput,idle] [--storm] [--paced] [--two-cores] [--tls] [--tls-handshakes] [--h2] [--h3] [--syscalls] [--profiles] [--all] [--duration 6s] [--smoke] [--out docs/benchmarks.md]
//
// --h2 and --h3 then measure 64 B echo and idle tunnels over WebSockets on
// HTTP/2 (RFC 8441) and HTTP/3 (RFC 9220); --syscalls counts each proxy's
// system calls per handshake and per message under strace; --profiles keeps
// a CPU profile of wsgate per mode in profiles/ beside the markdown, from a
// separate untimed pass with a -tags pprof build. --all turns on every mode.
//
// --storm adds a reconnect storm (9,000 tunnels dropped and reopened at
// once), --paced round-trip latency at a paced 20,000 msgs/s and proxy CPU
// at a paced 2,000 handshakes/s; --modes picks the plain ws modes.
// --two-cores then measures handshakes, 64 B echo and 64 KiB throughput
// again with nothing pinned and the proxies running two workers.
//
// With --tls it then measures the proxies again over wss (TLS 1.3, ECDSA
// P-256): handshakes, 64 B echo and idle tunnels. With --tls-handshakes it
// measures TLS 1.3 handshakes through the proxies, full and resumed, with
// ECDSA P-256 and RSA 2048 certificates.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/bench/internal/load"
	"github.com/wsgate/wsgate/bench/internal/report"
	"github.com/wsgate/wsgate/bench/internal/selfsigned"
	"github.com/wsgate/wsgate/bench/internal/stats"
	"golang.org/x/sys/unix"
)

var allTargets = []string{"direct", "nginx", "haproxy", "wsgate"}

var modeOrder = []string{load.ModeHandshake, load.ModeEcho, load.ModeThroughput, "idle"}

// twoCoreModes are measured again unpinned with --two-cores.
var twoCoreModes = []string{load.ModeHandshake, load.ModeEcho, load.ModeThroughput}

// modeStorm is the reconnect storm, run by idle agents (see runStorm).
const modeStorm = "storm"

// wssModeOrder leaves out 64 KiB throughput: bulk AES-GCM cost is the TLS
// library's, not the proxy's, and the run is long enough already.
var wssModeOrder = []string{load.ModeHandshake, load.ModeEcho, "idle"}

type runner struct {
	repo, tmp                   string
	echoBin, loadBin, wsgateBin string
	libserverBin                string // the protocol library alone, for the h2 and h3 passes
	nginxBin, haproxyBin        string
	procs                       procSet
	warmup, window, settle      time.Duration
	idleSteps                   []int
	wss                         bool              // also measure wss after plain ws
	tlsHandshakes               bool              // also measure full and resumed TLS handshakes per key kind
	negotiated                  map[string]string // target -> what its first wss handshake negotiated
	modes                       []string          // plain ws modes, in order; nil: modeOrder
	stormClients                int               // clients in the reconnect storm
	pacedRate                   int               // total messages per second of the paced mode
	pacedHandshakeRate          int               // total handshakes per second of the paced handshake mode
	twoCores                    bool              // also measure unpinned with two workers
	unpinned                    bool              // the pass under way runs every process on both CPUs, proxies with two workers
	protos                      []string          // tunnel protocols measured after the plain rounds: load.ProtoH2, ProtoH3
	cert                        *tlsFiles         // the run's ECDSA certificate, once written
	syscalls                    bool              // count system calls per operation under strace after the timed rounds
	straceWindow                time.Duration     // the window of each strace run
	stracing                    bool              // the pass under way counts system calls
	profiles                    bool              // keep a CPU profile of wsgate per mode
	profiling                   bool              // the pass under way runs the pprof build and fetches profiles
	wsgatePprofBin              string            // wsgate built with -tags pprof
	profileDir, profilePrefix   string            // where the pass under way saves profiles, and their name prefix
	profileTo                   string            // the profile file of the mode under way, "" for none
	profileErrs                 map[string]string // profile name -> why fetching it failed
}

func main() {
	log.SetFlags(log.Ltime)
	rounds := flag.Int("rounds", 3, "rounds per target and mode (1 with --smoke unless set)")
	targetsFlag := flag.String("targets", strings.Join(allTargets, ","), "comma-separated targets: direct, nginx, haproxy, wsgate")
	smoke := flag.Bool("smoke", false, "tiny counts and windows, for CI")
	out := flag.String("out", "docs/benchmarks.md", "markdown output, relative to the repository root; the PNG goes beside it")
	window := flag.Duration("duration", 6*time.Second, "timed window per mode")
	keep := flag.Bool("keep", false, "keep the temporary folder (configs, logs)")
	useTLS := flag.Bool("tls", false, "after the plain ws rounds, measure wss (TLS 1.3, ECDSA P-256) through the proxies")
	modesFlag := flag.String("modes", strings.Join(modeOrder, ","), "comma-separated plain ws modes: handshake, echo, throughput, idle, storm, paced, paced-handshake")
	storm := flag.Bool("storm", false, "also measure a reconnect storm: 9,000 clients drop and reconnect at once")
	twoCores := flag.Bool("two-cores", false, "then measure handshakes, 64 B echo and 64 KiB throughput unpinned, proxies with two workers")
	paced := flag.Bool("paced", false, "also measure round-trip latency at a paced 20,000 msgs/s, and proxy CPU at a paced 2,000 handshakes/s")
	tlsHS := flag.Bool("tls-handshakes", false, "then measure full and resumed TLS 1.3 handshakes through the proxies, with ECDSA P-256 and RSA 2048 certificates")
	h2 := flag.Bool("h2", false, "then measure 64 B echo and idle tunnels over WebSockets on HTTP/2 (RFC 8441) through wsgate and HAProxy")
	h3 := flag.Bool("h3", false, "then measure 64 B echo and idle tunnels over WebSockets on HTTP/3 (RFC 9220) through wsgate")
	syscalls := flag.Bool("syscalls", false, "then count each proxy's system calls per handshake and per 64 B message under strace -f -c")
	profiles := flag.Bool("profiles", false, "then profile wsgate (a -tags pprof build) once per mode, into profiles/ beside --out")
	all := flag.Bool("all", false, "every mode: plain modes, storm, paced, --tls, --tls-handshakes, --two-cores, --h2, --h3, --syscalls, --profiles")
	flag.Parse()
	if *all {
		*storm, *paced, *useTLS, *tlsHS, *twoCores, *h2, *h3, *syscalls, *profiles = true, true, true, true, true, true, true, true, true
		if !isSet("modes") {
			*modesFlag = strings.Join(modeOrder, ",")
		}
	}
	roundsSet := false
	flag.Visit(func(f *flag.Flag) { roundsSet = roundsSet || f.Name == "rounds" })
	if *smoke && !roundsSet {
		*rounds = 1
	}
	if *rounds < 1 || *rounds > 20 {
		log.Fatal("runner: --rounds must be 1..20")
	}
	var targets []string
	for _, t := range strings.Split(*targetsFlag, ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		known := false
		for _, a := range allTargets {
			known = known || a == t
		}
		if !known {
			log.Fatalf("runner: unknown target %q", t)
		}
		targets = append(targets, t)
	}
	if len(targets) == 0 {
		log.Fatal("runner: no targets")
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	modes, err := parseModes(*modesFlag, *storm, *paced)
	if err != nil {
		log.Fatal(err)
	}
	r := &runner{warmup: time.Second, window: *window, settle: 2 * time.Second, idleSteps: []int{0, 2000, 4000, 6000, 8000, 9000}, wss: *useTLS, tlsHandshakes: *tlsHS,
		modes: modes, stormClients: 9000, pacedRate: 20000, pacedHandshakeRate: 2000, twoCores: *twoCores,
		syscalls: *syscalls, straceWindow: 3 * time.Second, profiles: *profiles}
	if *h2 {
		r.protos = append(r.protos, load.ProtoH2)
	}
	if *h3 {
		r.protos = append(r.protos, load.ProtoH3)
	}
	if *smoke {
		r.warmup, r.settle, r.idleSteps = 200*time.Millisecond, 300*time.Millisecond, []int{0, 50, 100}
		r.stormClients, r.pacedRate, r.pacedHandshakeRate = 100, 2000, 200
		if !isSet("duration") {
			r.window = time.Second
		}
	}
	est := r.estimate(*rounds, len(targets), modes)
	log.Printf("estimated duration on an idle machine: about %v", est.Round(time.Minute))
	t0 := time.Now()
	err = r.main(ctx, targets, *rounds, *smoke, *out, *keep)
	r.procs.stopAll()
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("took %v (estimated %v)", time.Since(t0).Round(time.Second), est.Round(time.Second))
}

// parseModes checks a --modes list and appends storm, and the two paced
// modes, when their flags ask for them.
func parseModes(spec string, storm, paced bool) ([]string, error) {
	known := append(slices.Clone(modeOrder), modeStorm, load.ModePaced, load.ModePacedHandshake)
	var out []string
	for _, m := range strings.Split(spec, ",") {
		m = strings.TrimSpace(m)
		if m == "" {
			continue
		}
		if !slices.Contains(known, m) {
			return nil, fmt.Errorf("runner: unknown mode %q", m)
		}
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	if storm && !slices.Contains(out, modeStorm) {
		out = append(out, modeStorm)
	}
	for _, m := range []string{load.ModePaced, load.ModePacedHandshake} {
		if paced && !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("runner: no modes")
	}
	return out, nil
}

func isSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func (r *runner) main(ctx context.Context, targets []string, rounds int, smoke bool, out string, keep bool) error {
	var err error
	if r.repo, err = findRepo(); err != nil {
		return err
	}
	if r.tmp, err = os.MkdirTemp("", "wsgate-bench-"); err != nil {
		return err
	}
	if keep {
		log.Printf("keeping %s", r.tmp)
	} else {
		defer os.RemoveAll(r.tmp)
	}
	status := map[string]string{}
	if err := r.ensureTools(targets, status); err != nil {
		return err
	}
	if r.syscalls {
		if err := ensureStrace(); err != nil {
			log.Printf("strace not found, no system call counts: %v", err)
			r.syscalls = false
		}
	}
	if !filepath.IsAbs(out) {
		out = filepath.Join(r.repo, out)
	}
	log.Printf("building the harness")
	r.echoBin, r.loadBin = filepath.Join(r.tmp, "echo"), filepath.Join(r.tmp, "load")
	if msg, err := r.goBuild(r.echoBin, "./bench/cmd/echo"); err != nil {
		return fmt.Errorf("building echo: %v: %s", err, msg)
	}
	if msg, err := r.goBuild(r.loadBin, "./bench/cmd/load"); err != nil {
		return fmt.Errorf("building load: %v: %s", err, msg)
	}
	if len(r.protos) > 0 {
		r.libserverBin = filepath.Join(r.tmp, "libserver")
		if msg, err := r.goBuild(r.libserverBin, "./bench/cmd/libserver"); err != nil {
			return fmt.Errorf("building libserver: %v: %s", err, msg)
		}
	}
	wsgateInfo := "not in this run"
	if contains(targets, "wsgate") {
		log.Printf("building wsgate")
		r.wsgateBin = filepath.Join(r.tmp, "wsgate")
		if msg, err := r.goBuild(r.wsgateBin, "./cmd/wsgate"); err != nil {
			status["wsgate"] = "not built"
			wsgateInfo = "not built: `go build ./cmd/wsgate` failed: " + firstLine(msg)
			log.Printf("wsgate not built: %s", firstLine(msg))
		} else {
			wsgateInfo = "built from the working tree" + gitRev(r.repo)
		}
	}
	// From here on the runner only coordinates: keep it off the proxy's CPU.
	pinSelf(0)

	drops0, retrans0, udp0 := netCounters()
	load0 := loadAvg()
	if v, err := strconv.ParseFloat(load0, 64); err == nil && v > 1.5 {
		log.Printf("warning: load average %s: other work shares the CPUs, figures will be skewed", load0)
	}
	modes := r.modes
	if modes == nil {
		modes = modeOrder
	}
	plain, err := r.measure(ctx, rounds, targets, modes, status, nil)
	if err != nil {
		return err
	}
	var proxies []string
	for _, t := range targets {
		if t != "direct" {
			proxies = append(proxies, t)
		}
	}
	var wss *measured
	if r.wss {
		tf, err := writeCert(r.tmp)
		if err != nil {
			return err
		}
		r.cert = tf
		if wss, err = r.measure(ctx, rounds, proxies, wssModeOrder, status, tf); err != nil {
			return err
		}
	}
	var two *measured
	if r.twoCores {
		r.unpinned = true
		two, err = r.measure(ctx, rounds, targets, twoCoreModes, status, nil)
		r.unpinned = false
		if err != nil {
			return err
		}
	}
	var hsSets []report.HandshakeSet
	if r.tlsHandshakes {
		if hsSets, err = r.measureHandshakes(ctx, rounds, proxies, status); err != nil {
			return err
		}
	}

	var tunnels []report.TunnelSet
	if len(r.protos) > 0 {
		if tunnels, err = r.measureTunnels(ctx, rounds, proxies, status); err != nil {
			return err
		}
	}
	var sys []report.SyscallSet
	if r.syscalls {
		if sys, err = r.measureSyscalls(ctx, proxies, status); err != nil {
			return err
		}
	}
	var profs []report.Profile
	if r.profiles && contains(targets, "wsgate") && status["wsgate"] == "" {
		if profs, err = r.profile(ctx, modes, status, filepath.Join(filepath.Dir(out), "profiles")); err != nil {
			return err
		}
	}

	m := machine(r, wsgateInfo)
	m.LoadAvg = fmt.Sprintf("at start %s, at end %s", load0, loadAvg())
	drops1, retrans1, udp1 := netCounters()
	m.Network = fmt.Sprintf("%d packets dropped by the kernel's backlog (/proc/net/softnet_stat), %d TCP segments retransmitted and %d UDP datagrams dropped for a full receive buffer (/proc/net/snmp) during the run", drops1-drops0, retrans1-retrans0, udp1-udp0)
	rep := &report.Report{
		Machine:   m,
		Command:   "bash bench/run.sh            # = go run ./bench/cmd/runner\nbash bench/run.sh --tls      # also wss (TLS 1.3) through the proxies\nbash bench/run.sh --tls-handshakes   # also full and resumed TLS 1.3 handshakes, ECDSA and RSA\nbash bench/run.sh --storm --paced   # also a reconnect storm, paced latency and paced handshakes\nbash bench/run.sh --two-cores   # also unpinned, proxies with two workers\nbash bench/run.sh --h2 --h3   # also WebSockets over HTTP/2 (RFC 8441) and HTTP/3 (RFC 9220)\nbash bench/run.sh --syscalls --profiles   # also system calls per operation and a CPU profile of wsgate per mode\nbash bench/run.sh --all      # every mode; --all --rounds 1 --duration 4s for a shorter run\nbash bench/run.sh --smoke    # CI-sized: a few seconds per target",
		Pinning:   "CPU pinning (taskset): proxy on CPU 1; load client, echo backend and this runner on CPU 0. Go programs pinned to one CPU run with GOMAXPROCS=1.",
		Rounds:    rounds,
		Smoke:     smoke,
		Date:      time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		ChartFile: strings.TrimSuffix(filepath.Base(out), filepath.Ext(out)) + ".png",
		Settings: []string{
			fmt.Sprintf("Timed windows of %v after %v of warm-up; client source addresses %s (spread to avoid ephemeral-port exhaustion).", r.window, r.warmup, sources),
			fmt.Sprintf("Idle steps: %v tunnels, %v settle before each reading, at most %d tunnels per client process. wsgate collects its garbage and returns the free heap to the system once it has allocated under 1 MiB/s for a second (docs/scaling.md), which falls within the settle; nginx and HAProxy free a connection's memory when it closes.", r.idleSteps, r.settle, load.MaxIdlePerAgent),
			"nginx and wsgate read the same config: `worker_processes 1`, `events { worker_connections 20000; }` (the whole 20,000-descriptor limit: wsgate keeps every descriptor for connections and so copies large payloads instead of splicing them; nginx fails the idle step at about 4,500 tunnels with 19000), `access_log off`, an upstream with the echo backend, `location /ws` with `proxy_pass`, `proxy_http_version 1.1`, `proxy_set_header Upgrade $http_upgrade`, `proxy_set_header Connection \"upgrade\"`, `proxy_set_header Host $host` and 3600 s proxy read/send timeouts (to match HAProxy's tunnel timeout). nginx is started with `-g \"daemon off; master_process off;\"` (one process); wsgate as `wsgate -p DIR -c CONF` in the foreground.",
			fmt.Sprintf("Reconnect storm (with --storm): %d tunnels held by client processes of at most %d each, %v settle, then all dropped and reopened at once. Paced latency (with --paced): %d msgs/s in total over 64 connections, same windows. Paced handshakes (with --paced): %d handshakes/s in total over 16 workers on a fixed timetable, same windows: every proxy then does the same work in the window, where the closed-loop handshake mode runs each at whatever rate the load client reaches with it.", r.stormClients, load.MaxIdlePerAgent, r.settle, r.pacedRate, r.pacedHandshakeRate),
			"HAProxy: `nbthread 1`, `maxconn 9000`, `mode http`, `timeout tunnel 1h`, a frontend routing `path_beg /ws` to the echo backend, started with `-db` (foreground).",
			"Handshake mode: each connection upgrades, then the client sends a close frame and closes its socket at once. nginx closes both connections when it reads the client's end of stream (one close frame relayed); wsgate passes the end on as a half-close, relays the backend's answering close frame too and then closes (a `shutdown` and a relayed frame more; with --syscalls, System calls per operation counts each proxy's calls). An A/B build that closed at once as nginx does used 7-10 µs less CPU per handshake.",
		},
	}
	rep.Targets = plain.targets(targets, status)
	if wss != nil {
		rep.TLS = wss.targets(wss.order, status)
		rep.TLSMethod = r.tlsMethod(wss.order)
	}
	rep.Handshakes = hsSets
	if two != nil {
		rep.TwoCores = two.targets(two.order, status)
	}
	rep.Tunnels, rep.TunnelStreams, rep.Syscalls = tunnels, tunnelStreams, sys
	if len(profs) > 0 {
		rep.Profiles, rep.ProfileMethod = profs, r.profileMethod()
	}
	rep.EventLoop = readEventLoop(r.repo)
	var md bytes.Buffer
	rep.Markdown(&md)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(out, md.Bytes(), 0o644); err != nil {
		return err
	}
	var png bytes.Buffer
	if err := rep.Chart(&png); err != nil {
		return err
	}
	pngPath := filepath.Join(filepath.Dir(out), rep.ChartFile)
	if err := os.WriteFile(pngPath, png.Bytes(), 0o644); err != nil {
		return err
	}
	log.Printf("wrote %s and %s", out, pngPath)
	return nil
}

// measured is every round's figures of one kind of run (ws or wss).
type measured struct {
	order     []string
	figs      map[string]map[string][]float64
	idleSteps map[string][]report.IdleStep
	notes     map[string][]string
}

// measure runs every mode on every target, rounds interleaved across
// targets; with tf the proxies serve wss. Failures of single modes become
// notes; only cancellation is an error.
func (r *runner) measure(ctx context.Context, rounds int, targets, modes []string, status map[string]string, tf *tlsFiles) (*measured, error) {
	ms := &measured{order: targets, figs: map[string]map[string][]float64{}, idleSteps: map[string][]report.IdleStep{}, notes: map[string][]string{}}
	kind := "ws"
	if tf != nil {
		kind = "wss"
		if tf.proto != "" {
			kind = tf.proto
		}
	}
	if r.stracing {
		kind += "-strace"
	}
	if r.profiling {
		kind += "-pprof"
	}
	if r.unpinned {
		kind += "-2cores"
	}
	for round := 1; round <= rounds; round++ {
		for _, t := range targets {
			if status[t] != "" {
				continue
			}
			if ms.figs[t] == nil {
				ms.figs[t] = map[string][]float64{}
			}
			for _, mode := range modes {
				if (mode == "idle" || mode == modeIdleStreams) && t == "direct" {
					continue
				}
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				log.Printf("round %d/%d %s %s %s", round, rounds, kind, t, mode)
				f, steps, err := r.runOne(ctx, t, mode, fmt.Sprintf("r%d-%s-%s-%s", round, kind, t, mode), tf)
				if errors.Is(err, context.Canceled) {
					return nil, err
				}
				if err != nil {
					log.Printf("  %s %s: %v", t, mode, err)
					ms.notes[t] = append(ms.notes[t], fmt.Sprintf("round %d, %s: %v", round, mode, err))
				}
				for k, v := range f {
					ms.figs[t][k] = append(ms.figs[t][k], v)
				}
				if steps != nil {
					ms.idleSteps[t] = steps
				}
				if len(f) > 0 {
					log.Printf("  %s", brief(f))
				}
			}
		}
	}
	return ms, nil
}

// targets summarizes the rounds per target, in order.
func (ms *measured) targets(order []string, status map[string]string) []*report.Target {
	var out []*report.Target
	for _, t := range order {
		tg := &report.Target{Name: t, Status: status[t], Figures: map[string]stats.Summary{}, IdleSteps: ms.idleSteps[t], Notes: ms.notes[t]}
		for k, v := range ms.figs[t] {
			tg.Figures[k] = stats.Summarize(v)
		}
		out = append(out, tg)
	}
	return out
}

// tlsMethod describes the wss setup for the report.
func (r *runner) tlsMethod(targets []string) []string {
	lines := []string{
		"Certificate: ECDSA P-256, self-signed, for 127.0.0.1 and localhost, generated with crypto/x509 at the start of the run.",
		"nginx and wsgate: the plain config with `listen 127.0.0.1:PORT ssl`, `ssl_certificate`, `ssl_certificate_key` and `ssl_protocols TLSv1.3` in the server block; no `http2` on the listen, so wss is HTTP/1.1 on every proxy. HAProxy: `bind 127.0.0.1:PORT ssl crt combined.pem ssl-min-ver TLSv1.3` (certificate and key in one PEM). Session caches and tickets are left at each server's defaults.",
		"Client (Go crypto/tls): TLS 1.3 only, X25519 key exchange, SNI localhost, ALPN http/1.1, no certificate verification, session tickets disabled and no session cache: every connection is a full handshake (no resumption), so each costs the proxy an ECDSA P-256 signature and an X25519 exchange.",
		fmt.Sprintf("Same windows, workers and idle steps as plain ws; no 64 KiB throughput mode. wss ran after all plain rounds, %s.", "rounds interleaved across proxies"),
	}
	var neg []string
	for _, t := range targets {
		if n, ok := r.negotiated[t]; ok {
			neg = append(neg, fmt.Sprintf("%s %s", t, n))
		}
	}
	if len(neg) > 0 {
		lines = append(lines, "Negotiated: "+strings.Join(neg, "; ")+".")
	}
	return lines
}

// runOne starts fresh processes for one target and mode, measures, and stops
// them; with tf the proxy serves wss.
func (r *runner) runOne(ctx context.Context, target, mode, name string, tf *tlsFiles) (map[string]float64, []report.IdleStep, error) {
	dir := filepath.Join(r.tmp, name)
	if r.profiling {
		r.profileTo = filepath.Join(r.profileDir, r.profilePrefix+mode+".pprof")
		defer func() { r.profileTo = "" }()
	}
	st, err := r.startTarget(ctx, target, dir, tf)
	if err != nil {
		return nil, nil, err
	}
	defer r.stopTarget(st)
	switch mode {
	case "idle":
		return r.runIdle(ctx, st, dir)
	case modeStorm:
		f, err := r.runStorm(ctx, st, dir)
		return f, nil, err
	case modeIdleStreams:
		f, err := r.runIdleStreams(ctx, st, dir)
		return f, nil, err
	}
	m := loadModes[mode]
	switch mode {
	case load.ModePaced:
		m.rate = r.pacedRate
	case load.ModePacedHandshake:
		m.rate = r.pacedHandshakeRate
	}
	f, err := r.runLoad(ctx, st, m)
	return f, nil, err
}

func brief(f map[string]float64) string {
	var parts []string
	for _, k := range []string{report.HSRate, report.HSCPU, report.EchoRate, report.EchoP50, report.EchoCPU, report.TPMBps, report.TPCPU, report.IdleKiB, report.IdleAvg, report.IdleFDs, report.IdleMuxKiB, report.IdleMuxAvg, report.StormMS, report.StormCPU, report.PacedP99, report.PacedMax, report.PHSRate, report.PHSCPU, report.SysKey(load.ModeHandshake, report.SysTotal), report.SysKey(load.ModeEcho, report.SysTotal)} {
		if v, ok := f[k]; ok && !math.IsNaN(v) {
			parts = append(parts, fmt.Sprintf("%s=%.4g", k, v))
		}
	}
	return strings.Join(parts, " ")
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return tail(s, 200)
}

func nanf() float64 { return math.NaN() }

// findRepo walks up from the working directory to wsgate's go.mod.
func findRepo() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/wsgate/wsgate\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("runner: run from inside the wsgate repository")
		}
		dir = parent
	}
}

// goBuild builds pkg into outPath, with extra flags (such as -tags) first.
func (r *runner) goBuild(outPath, pkg string, extra ...string) (string, error) {
	args := append(append([]string{"build"}, extra...), "-o", outPath, pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = r.repo
	b, err := cmd.CombinedOutput()
	return string(b), err
}

func gitRev(repo string) string {
	b, err := exec.Command("git", "-C", repo, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return " (no commit yet)"
	}
	rev := strings.TrimSpace(string(b))
	if d, err := exec.Command("git", "-C", repo, "status", "--porcelain", "--", "cmd", "internal").Output(); err == nil && len(bytes.TrimSpace(d)) > 0 {
		rev += ", with uncommitted changes"
	}
	return " at " + rev
}

// ensureTools finds nginx and HAProxy, installing them with apt-get when
// missing and running as root; a target whose tool stays missing is skipped.
func (r *runner) ensureTools(targets []string, status map[string]string) error {
	if _, err := exec.LookPath("taskset"); err != nil {
		return errors.New("runner: taskset (util-linux) is required")
	}
	need := map[string]string{}
	if contains(targets, "nginx") {
		// Debian's nginx, as .ci/run installs it: nginx-light, a
		// transitional package now, would also enable the echo module in
		// /etc/nginx/modules-enabled, which the end-to-end tests read.
		need["nginx"] = "nginx"
	}
	if contains(targets, "haproxy") {
		need["haproxy"] = "haproxy"
	}
	var missing []string
	for bin, pkg := range need {
		if _, err := lookTool(bin); err != nil {
			missing = append(missing, pkg)
		}
	}
	if len(missing) > 0 && os.Geteuid() == 0 {
		log.Printf("installing %v with apt-get", missing)
		run := func(args ...string) error {
			cmd := exec.Command("apt-get", args...)
			cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
			b, err := cmd.CombinedOutput()
			if err != nil {
				return fmt.Errorf("apt-get %v: %v: %s", args, err, tail(string(b), 300))
			}
			return nil
		}
		if err := run("update"); err != nil {
			log.Print(err)
		}
		if err := run(append([]string{"install", "-y", "--no-install-recommends"}, missing...)...); err != nil {
			log.Print(err)
		}
	}
	for bin := range need {
		p, err := lookTool(bin)
		if err != nil {
			status[bin] = "not installed"
			continue
		}
		if bin == "nginx" {
			r.nginxBin = p
		} else {
			r.haproxyBin = p
		}
	}
	return nil
}

func lookTool(bin string) (string, error) {
	if p, err := exec.LookPath(bin); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
		p := filepath.Join(d, bin)
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", bin)
}

// pinSelf moves every thread of the runner to cpu; threads created later
// inherit the mask from the pinned ones.
func pinSelf(cpu int) {
	var set unix.CPUSet
	set.Set(cpu)
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return
	}
	for _, t := range tasks {
		var tid int
		if _, err := fmt.Sscan(t.Name(), &tid); err == nil {
			unix.SchedSetaffinity(tid, &set)
		}
	}
}

func machine(r *runner, wsgateInfo string) report.Machine {
	m := report.Machine{NProc: runtime.NumCPU(), Wsgate: wsgateInfo, NginxVersion: "-", HAProxy: "-"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.Model = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	if b, err := exec.Command("go", "version").Output(); err == nil {
		m.GoVersion = strings.TrimSpace(string(b))
	}
	if r.nginxBin != "" {
		if b, err := exec.Command(r.nginxBin, "-v").CombinedOutput(); err == nil {
			m.NginxVersion = strings.TrimPrefix(firstLine(string(b)), "nginx version: ")
		}
	}
	if r.haproxyBin != "" {
		if b, err := exec.Command(r.haproxyBin, "-v").Output(); err == nil {
			m.HAProxy = firstLine(string(b))
		}
	}
	return m
}

// loadAvg returns the 1-minute load average, or "?".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// netCounters returns the kernel's backlog drops, TCP retransmissions and
// UDP receive buffer overflows so far. On loopback, drops happen when
// softirq processing falls behind (a busy machine), and each costs a
// retransmission timeout of 200 ms or more; UDP overflows cost QUIC a
// retransmission too.
func netCounters() (drops, retrans, udpRcvbuf int64) {
	if b, err := os.ReadFile("/proc/net/softnet_stat"); err == nil {
		for line := range strings.Lines(string(b)) {
			if f := strings.Fields(line); len(f) > 1 {
				v, _ := strconv.ParseInt(f[1], 16, 64)
				drops += v
			}
		}
	}
	if b, err := os.ReadFile("/proc/net/snmp"); err == nil {
		retrans = snmpField(string(b), "Tcp:", "RetransSegs")
		udpRcvbuf = snmpField(string(b), "Udp:", "RcvbufErrors")
	}
	return drops, retrans, udpRcvbuf
}

// snmpField reads one counter of /proc/net/snmp: the value under name in
// the pair of lines that start with proto.
func snmpField(snmp, proto, name string) int64 {
	var names []string
	for line := range strings.Lines(snmp) {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != proto {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == name && i < len(f) {
				v, _ := strconv.ParseInt(f[i], 10, 64)
				return v
			}
		}
		return 0
	}
	return 0
}

// measureHandshakes measures the wss handshake mode through the proxies
// with an ECDSA P-256 and an RSA 2048 certificate, each with full
// handshakes and with resumed ones (session tickets, each server's
// defaults).
func (r *runner) measureHandshakes(ctx context.Context, rounds int, proxies []string, status map[string]string) ([]report.HandshakeSet, error) {
	var sets []report.HandshakeSet
	for _, kind := range []struct{ key, name string }{{selfsigned.ECDSA, "ECDSA P-256"}, {selfsigned.RSA, "RSA 2048"}} {
		for _, resume := range []bool{false, true} {
			tf, err := writeCertKind(r.tmp, kind.key)
			if err != nil {
				return nil, err
			}
			tf.resume = resume
			ms, err := r.measure(ctx, rounds, proxies, []string{load.ModeHandshake}, status, tf)
			if err != nil {
				return nil, err
			}
			title := kind.name + ", full handshakes"
			if resume {
				title = kind.name + ", resumed handshakes"
			}
			sets = append(sets, report.HandshakeSet{Title: title, Targets: ms.targets(ms.order, status)})
		}
	}
	return sets, nil
}
