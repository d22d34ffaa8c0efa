package report

import (
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/wsgate/wsgate/bench/internal/stats"
)

// Figure keys, "mode.figure". Latencies are in µs, CPU in µs per operation.
const (
	HSRate = "handshake.rate"
	HSP50  = "handshake.p50"
	HSP99  = "handshake.p99"
	HSCPU  = "handshake.cpu"
	// HSUser and HSKernel split HSCPU into user space and the kernel.
	HSUser   = "handshake.user"
	HSKernel = "handshake.kernel"
	HSErr    = "handshake.errors"
	// HSResumed is the share of handshakes that resumed a TLS session, in %.
	HSResumed = "handshake.resumed"
	EchoRate  = "echo.rate"
	EchoP50   = "echo.p50"
	EchoP90   = "echo.p90"
	EchoP99   = "echo.p99"
	EchoP999  = "echo.p999"
	EchoCPU   = "echo.cpu"
	// EchoUser and EchoKernel split EchoCPU as HSUser and HSKernel do.
	EchoUser   = "echo.user"
	EchoKernel = "echo.kernel"
	EchoErr    = "echo.errors"
	TPMBps     = "throughput.mbps"
	TPRate     = "throughput.rate"
	TPP50      = "throughput.p50"
	TPP99      = "throughput.p99"
	TPCPU      = "throughput.cpu"
	TPErr      = "throughput.errors"
	IdleKiB    = "idle.kib"
	IdleFDs    = "idle.fds"
	IdleRSS0   = "idle.rss0"
	IdleMax    = "idle.tunnels"
	IdleFail   = "idle.failed"
	// Reconnect storm: clients, ms until all were open again, failed
	// handshakes retried, proxy CPU µs per reconnect, tunnels that did not
	// echo afterwards.
	StormClients = "storm.clients"
	StormMS      = "storm.ms"
	StormRetries = "storm.retries"
	StormCPU     = "storm.cpu"
	StormFail    = "storm.failed"
	// Paced latency: the scheduled rate, the rate achieved, round-trip
	// quantiles and maximum from the scheduled send time, proxy CPU per
	// message.
	PacedTarget = "paced.target"
	PacedRate   = "paced.rate"
	PacedP50    = "paced.p50"
	PacedP99    = "paced.p99"
	PacedP999   = "paced.p999"
	PacedMax    = "paced.max"
	PacedCPU    = "paced.cpu"
	PacedErr    = "paced.errors"
	// Paced handshakes: the scheduled rate, the rate achieved, latency
	// quantiles from the scheduled time, proxy CPU per handshake split as
	// HSUser and HSKernel split HSCPU.
	PHSTarget = "paced-handshake.target"
	PHSRate   = "paced-handshake.rate"
	PHSP50    = "paced-handshake.p50"
	PHSP99    = "paced-handshake.p99"
	PHSCPU    = "paced-handshake.cpu"
	PHSUser   = "paced-handshake.user"
	PHSKernel = "paced-handshake.kernel"
	PHSErr    = "paced-handshake.errors"
)

// Machine describes where the run happened.
type Machine struct {
	NProc        int
	Model        string
	Kernel       string
	GoVersion    string
	NginxVersion string
	HAProxy      string
	Wsgate       string
	LoadAvg      string // 1-minute load averages at start and end: other work skews figures
	Network      string // loopback drops and retransmissions during the run
}

// IdleStep is one measurement of the idle mode.
type IdleStep struct {
	Tunnels int
	RSSKiB  int64
	FDs     int
}

// Target is one target's figures over all rounds. Status is empty when it
// ran, else the reason it did not (for example "not built").
type Target struct {
	Name      string
	Status    string
	Figures   map[string]stats.Summary
	IdleSteps []IdleStep // from the last round
	Notes     []string   // failures of single modes or rounds
}

func (t *Target) fig(key string) stats.Summary {
	if t == nil || t.Status != "" {
		return stats.Summary{Median: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	}
	s, ok := t.Figures[key]
	if !ok {
		return stats.Summary{Median: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	}
	return s
}

// Report is everything one run produced.
type Report struct {
	Machine   Machine
	Command   string // how to reproduce
	Pinning   string
	Rounds    int
	Smoke     bool
	Settings  []string // one line each: what each mode did
	Date      string
	Targets   []*Target
	ChartFile string // PNG path relative to the markdown, "" for none
	// TLS holds the wss figures of the proxies (handshake, echo and idle
	// keys), none when the run measured no wss; TLSMethod says how, one
	// line each.
	TLS       []*Target
	TLSMethod []string
	// Handshakes holds the TLS handshake comparison (full and resumed,
	// per certificate kind), none when the run did not measure it.
	Handshakes []HandshakeSet
	// TwoCores holds handshake, echo and throughput figures measured with
	// every process on both CPUs and the proxies running two workers;
	// none when the run did not measure it.
	TwoCores []*Target
	// Tunnels holds the h2 and h3 WebSocket tunnel passes, in order;
	// TunnelStreams is the streams per connection of their IdleMux figures.
	Tunnels       []TunnelSet
	TunnelStreams int
	// Syscalls holds the system calls per operation, one set per mode.
	Syscalls []SyscallSet
	// Profiles lists wsgate's CPU profiles kept beside the report;
	// ProfileMethod says how they were taken, one line each.
	Profiles      []Profile
	ProfileMethod []string
	// EventLoop is appended verbatim as its own section when not empty.
	EventLoop string
}

// HandshakeSet is the wss handshake figures of the proxies for one
// certificate kind, full or resumed.
type HandshakeSet struct {
	Title   string
	Targets []*Target
}

func (r *Report) target(name string) *Target {
	for _, t := range r.Targets {
		if t.Name == name {
			return t
		}
	}
	return nil
}

func num(v float64) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// rate formats operations per second compactly (12.3k).
func rate(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	if v >= 1000 {
		return num(v/1000) + "k"
	}
	return num(v)
}

func cell(s stats.Summary, f func(float64) string) string {
	if math.IsNaN(s.Median) {
		return "-"
	}
	if s.N <= 1 || f(s.Min) == f(s.Max) {
		return f(s.Median)
	}
	return fmt.Sprintf("%s (%s-%s)", f(s.Median), f(s.Min), f(s.Max))
}

func ratio(a, b float64) string {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

// column is one table column over targets.
type column struct {
	head string
	val  func(t *Target) string
}

func (r *Report) table(w io.Writer, cols []column) {
	heads := []string{"target"}
	for _, c := range cols {
		heads = append(heads, c.head)
	}
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(heads, " | "), strings.Repeat("---|", len(heads)))
	for _, t := range r.Targets {
		row := []string{t.Name}
		for _, c := range cols {
			if t.Status != "" {
				row = append(row, "-")
				continue
			}
			row = append(row, c.val(t))
		}
		if t.Status != "" {
			row[1] = t.Status
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
	}
	fmt.Fprintln(w)
}

func (r *Report) figCol(head, key string, f func(float64) string) column {
	return column{head, func(t *Target) string { return cell(t.fig(key), f) }}
}

// ratioCol compares each target's median with base's median of the same key.
func (r *Report) ratioCol(head, key, base string) column {
	return column{head, func(t *Target) string {
		if t.Name == base {
			return "1.00x"
		}
		return ratio(t.fig(key).Median, r.target(base).fig(key).Median)
	}}
}

// Markdown writes the whole benchmarks page.
func (r *Report) Markdown(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "# Benchmarks\n\n")
	fmt.Fprintf(w, "Generated by the harness in `bench/` on %s; this page is regenerated whole on every run, do not edit it by hand.", r.Date)
	if r.Smoke {
		fmt.Fprintf(w, " **Smoke run**: tiny counts and windows, figures are not meaningful.")
	}
	fmt.Fprintf(w, "\n\n## Reproduce\n\n```sh\n%s\n```\n\n", r.Command)
	fmt.Fprintf(w, "Options: `--rounds N` (default 3), `--targets direct,nginx,haproxy,wsgate`, `--duration 6s` (each timed window), `--tls` (also measure wss through the proxies), `--tls-handshakes` (also full and resumed TLS 1.3 handshakes with ECDSA P-256 and RSA 2048 certificates), `--storm` (also a reconnect storm of 9,000 clients), `--paced` (also round-trip latency at a paced 20,000 msgs/s and proxy CPU at a paced 2,000 handshakes/s), `--modes handshake,echo,throughput,idle,storm,paced,paced-handshake` (the plain ws modes to run), `--two-cores` (also unpinned, two workers), `--h2` and `--h3` (also WebSockets over HTTP/2 and HTTP/3), `--syscalls` (also system calls per operation under strace), `--profiles` (also a CPU profile of wsgate per mode, in `profiles/`), `--all` (all of these), `--smoke`, `--out docs/benchmarks.md`. As root, the runner installs nginx, HAProxy and strace with apt-get when they are missing, and builds wsgate from `./cmd/wsgate`.\n\n")
	fmt.Fprintf(w, "## Machine\n\n")
	fmt.Fprintf(w, "- CPUs: %d x %s\n- Kernel: %s\n- Go: %s\n- nginx: %s\n- HAProxy: %s\n- wsgate: %s\n", m.NProc, m.Model, m.Kernel, m.GoVersion, m.NginxVersion, m.HAProxy, m.Wsgate)
	if m.LoadAvg != "" {
		fmt.Fprintf(w, "- Load average (1 min) %s; anything above about 2 means other work shared the CPUs and the figures are skewed\n", m.LoadAvg)
	}
	if m.Network != "" {
		fmt.Fprintf(w, "- Network: %s; drops stall a connection for a retransmission timeout and show as p99 in the hundreds of milliseconds (raising `net.core.netdev_max_backlog` helps on a busy machine)\n", m.Network)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "## Method\n\n- %s\n", r.Pinning)
	for _, s := range r.Settings {
		fmt.Fprintf(w, "- %s\n", s)
	}
	fmt.Fprintf(w, "- Each mode ran %d time(s) per target, rounds interleaved across targets, each on freshly started processes; cells show the median and, in parentheses, min-max over rounds. Ratios compare medians from this run.\n", r.Rounds)
	fmt.Fprintf(w, "- Proxy CPU: user+system time of the proxy process (all threads) from `/proc/PID/stat`, read just before and after the timed window, divided by the operations completed in it. The handshake and 64 B tables split it into user space and the kernel (`utime` and `stime`, sampled by the kernel at each clock tick, so a split of a short window is approximate): on loopback the kernel part includes the TCP work each send does for its receiver, so it is the part a proxy's design moves least. On this two-core machine the load generator saturates its CPU before a proxy does, so message rates through any proxy compress towards the same figure; the proxy's CPU per operation is what separates proxies.\n")
	fmt.Fprintf(w, "- Client, echo backend and proxy share loopback; direct means client -> echo backend with no proxy.\n\n")
	if r.ChartFile != "" {
		fmt.Fprintf(w, "![proxy CPU per operation, throughput and idle memory per target](%s)\n\n", r.ChartFile)
	}

	us := func(v float64) string { return num(v) }
	fmt.Fprintf(w, "## Handshakes\n\n16 workers, each opening a TCP connection, upgrading, sending a close frame and closing, over and over. Latency: connect to 101 received.\n\n")
	r.table(w, []column{
		r.figCol("handshakes/s", HSRate, rate),
		r.ratioCol("x direct", HSRate, "direct"),
		r.ratioCol("x nginx", HSRate, "nginx"),
		r.figCol("p50 µs", HSP50, us),
		r.figCol("p99 µs", HSP99, us),
		r.figCol("proxy CPU µs/handshake", HSCPU, us),
		r.ratioCol("CPU x nginx", HSCPU, "nginx"),
		r.figCol("user µs", HSUser, us),
		r.figCol("kernel µs", HSKernel, us),
		r.figCol("errors", HSErr, func(v float64) string { return fmt.Sprintf("%.0f", v) }),
	})
	fmt.Fprintf(w, "## 64 B echo\n\n64 connections, each sending a 64-byte binary message and waiting for its echo (closed loop).\n\n")
	r.table(w, []column{
		r.figCol("msgs/s", EchoRate, rate),
		r.ratioCol("x direct", EchoRate, "direct"),
		r.ratioCol("x nginx", EchoRate, "nginx"),
		r.figCol("p50 µs", EchoP50, us),
		r.figCol("p90 µs", EchoP90, us),
		r.figCol("p99 µs", EchoP99, us),
		r.figCol("p99.9 µs", EchoP999, us),
		r.figCol("proxy CPU µs/msg", EchoCPU, us),
		r.ratioCol("CPU x nginx", EchoCPU, "nginx"),
		r.figCol("user µs", EchoUser, us),
		r.figCol("kernel µs", EchoKernel, us),
	})
	fmt.Fprintf(w, "## 64 KiB throughput\n\n4 connections, each sending a 64 KiB binary message and waiting for its echo. MB/s counts each echoed message once (10^6 bytes).\n\n")
	r.table(w, []column{
		r.figCol("MB/s", TPMBps, us),
		r.ratioCol("x direct", TPMBps, "direct"),
		r.ratioCol("x nginx", TPMBps, "nginx"),
		r.figCol("msgs/s", TPRate, rate),
		r.figCol("p50 µs", TPP50, us),
		r.figCol("p99 µs", TPP99, us),
		r.figCol("proxy CPU µs/msg", TPCPU, us),
		r.ratioCol("CPU x nginx", TPCPU, "nginx"),
	})
	r.idle(w)
	r.storm(w)
	r.paced(w)
	r.pacedHandshakes(w)
	r.goals(w)
	r.wss(w)
	r.handshakes(w)
	r.twoCores(w)
	r.tunnels(w)
	r.syscalls(w)
	r.profiles(w)
	var notes []string
	for _, t := range r.Targets {
		for _, n := range t.Notes {
			notes = append(notes, fmt.Sprintf("- %s: %s", t.Name, n))
		}
	}
	for _, t := range r.TLS {
		for _, n := range t.Notes {
			notes = append(notes, fmt.Sprintf("- %s (wss): %s", t.Name, n))
		}
	}
	for _, t := range r.TwoCores {
		for _, n := range t.Notes {
			notes = append(notes, fmt.Sprintf("- %s (both cores): %s", t.Name, n))
		}
	}
	for _, set := range r.Tunnels {
		for _, t := range set.Targets {
			for _, n := range t.Notes {
				notes = append(notes, fmt.Sprintf("- %s (%s): %s", t.Name, set.Proto, n))
			}
		}
	}
	for _, set := range r.Syscalls {
		for _, t := range set.Targets {
			for _, n := range t.Notes {
				notes = append(notes, fmt.Sprintf("- %s (strace, %s): %s", t.Name, set.Title, n))
			}
		}
	}
	if len(notes) > 0 {
		fmt.Fprintf(w, "## Notes and failures during this run\n\n%s\n\n", strings.Join(notes, "\n"))
	}
	r.eventLoop(w)
}

func (r *Report) idle(w io.Writer) {
	r.idleTable(w, "## Idle tunnels\n\nIdle WebSocket")
}

func (r *Report) idleTable(w io.Writer, head string) {
	fmt.Fprintf(w, "%s tunnels opened through the proxy in steps; at each step the proxy's VmRSS (`/proc/PID/status`) and open descriptors (`/proc/PID/fd`) are read after a short settle. Per-tunnel cost is the least-squares slope over the steps; the average is (RSS at the last step - RSS at 0 tunnels) / tunnels, which also counts what the first tunnels cost; the projection multiplies the slope by 1,000,000. After the last step every tunnel must still echo one message. Direct has no proxy to measure.\n\n", head)
	r.table(w, []column{
		r.figCol("KiB per tunnel (slope)", IdleKiB, func(v float64) string { return fmt.Sprintf("%.2f", v) }),
		r.ratioCol("x nginx", IdleKiB, "nginx"),
		r.figCol("KiB per tunnel (average)", IdleAvg, func(v float64) string { return fmt.Sprintf("%.2f", v) }),
		r.ratioCol("average x nginx", IdleAvg, "nginx"),
		r.figCol("fds per tunnel", IdleFDs, func(v float64) string { return fmt.Sprintf("%.2f", v) }),
		{"1,000,000 tunnels", func(t *Target) string {
			k, f := t.fig(IdleKiB).Median, t.fig(IdleFDs).Median
			if math.IsNaN(k) {
				return "-"
			}
			if math.IsNaN(f) {
				return fmt.Sprintf("%.1f GiB", k*1e6/(1<<20))
			}
			return fmt.Sprintf("%.1f GiB, %.2fM fds", k*1e6/(1<<20), f)
		}},
		r.figCol("RSS at 0 tunnels KiB", IdleRSS0, func(v float64) string { return fmt.Sprintf("%.0f", v) }),
		r.figCol("tunnels", IdleMax, func(v float64) string { return fmt.Sprintf("%.0f", v) }),
		r.figCol("failed echo check", IdleFail, func(v float64) string { return fmt.Sprintf("%.0f", v) }),
	})
	r.idleSteps(w)
}

// idleSteps lists the idle steps of the last round per target.
func (r *Report) idleSteps(w io.Writer) {
	var steps []string
	for _, t := range r.Targets {
		if t.Status != "" || len(t.IdleSteps) == 0 {
			continue
		}
		var parts []string
		for _, s := range t.IdleSteps {
			parts = append(parts, fmt.Sprintf("%d: %d KiB, %d fds", s.Tunnels, s.RSSKiB, s.FDs))
		}
		steps = append(steps, fmt.Sprintf("- %s: %s", t.Name, strings.Join(parts, "; ")))
	}
	if len(steps) > 0 {
		fmt.Fprintf(w, "Steps of the last round (tunnels: RSS, fds):\n\n%s\n\n", strings.Join(steps, "\n"))
	}
}

// wss writes the TLS section: the same tables as plain ws, over r.TLS.
func (r *Report) wss(w io.Writer) {
	if len(r.TLS) == 0 {
		return
	}
	v := &Report{Targets: r.TLS}
	us := func(x float64) string { return num(x) }
	fmt.Fprintf(w, "## wss (TLS 1.3, ECDSA P-256)\n\nThe same proxies terminating TLS in front of the same plain echo backend; there is no direct row, the backend does not speak TLS. Ratios compare with nginx over wss in this run.\n\n")
	for _, s := range r.TLSMethod {
		fmt.Fprintf(w, "- %s\n", s)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "### wss handshakes\n\n16 workers, each opening a TCP connection, completing a full TLS 1.3 handshake, upgrading, sending a close frame and closing, over and over. Latency: connect to 101 received, TLS included.\n\n")
	v.table(w, []column{
		v.figCol("handshakes/s", HSRate, rate),
		v.ratioCol("x nginx", HSRate, "nginx"),
		v.figCol("p50 µs", HSP50, us),
		v.figCol("p99 µs", HSP99, us),
		v.figCol("proxy CPU µs/handshake", HSCPU, us),
		v.ratioCol("CPU x nginx", HSCPU, "nginx"),
		v.figCol("errors", HSErr, func(x float64) string { return fmt.Sprintf("%.0f", x) }),
	})
	fmt.Fprintf(w, "### wss 64 B echo\n\n64 connections over TLS, each sending a 64-byte binary message and waiting for its echo (closed loop).\n\n")
	v.table(w, []column{
		v.figCol("msgs/s", EchoRate, rate),
		v.ratioCol("x nginx", EchoRate, "nginx"),
		v.figCol("p50 µs", EchoP50, us),
		v.figCol("p99 µs", EchoP99, us),
		v.figCol("p99.9 µs", EchoP999, us),
		v.figCol("proxy CPU µs/msg", EchoCPU, us),
		v.ratioCol("CPU x nginx", EchoCPU, "nginx"),
	})
	v.idleTable(w, "### wss idle tunnels\n\nIdle wss (TLS to the proxy, plain to the backend)")
}

// handshakes writes the TLS handshake comparison, one table per set.
func (r *Report) handshakes(w io.Writer) {
	if len(r.Handshakes) == 0 {
		return
	}
	us := func(x float64) string { return num(x) }
	fmt.Fprintf(w, "## TLS 1.3 handshakes: certificates and resumption\n\n16 workers, each opening a TCP connection, completing a TLS 1.3 handshake, upgrading, sending a close frame and closing, over and over, through each proxy. Full: the client keeps no session (every handshake signs with the certificate's key and does an X25519 exchange). Resumed: the client keeps the session tickets each server issues by default and offers them (PSK with X25519, no signature); the resumed column says what share actually resumed. Same certificate settings otherwise as the wss section.\n\n")
	for _, set := range r.Handshakes {
		v := &Report{Targets: set.Targets}
		fmt.Fprintf(w, "### %s\n\n", set.Title)
		v.table(w, []column{
			v.figCol("handshakes/s", HSRate, rate),
			v.ratioCol("x nginx", HSRate, "nginx"),
			v.figCol("p50 µs", HSP50, us),
			v.figCol("p99 µs", HSP99, us),
			v.figCol("proxy CPU µs/handshake", HSCPU, us),
			v.ratioCol("CPU x nginx", HSCPU, "nginx"),
			v.figCol("resumed %", HSResumed, func(x float64) string { return fmt.Sprintf("%.0f", x) }),
			v.figCol("errors", HSErr, func(x float64) string { return fmt.Sprintf("%.0f", x) }),
		})
	}
}

// has reports whether any target has figures for key.
func (r *Report) has(key string) bool {
	for _, t := range r.Targets {
		if _, ok := t.Figures[key]; ok && t.Status == "" {
			return true
		}
	}
	return false
}

// firstMedian returns the first median found for key, NaN when none.
func (r *Report) firstMedian(key string) float64 {
	for _, t := range r.Targets {
		if s, ok := t.Figures[key]; ok && t.Status == "" {
			return s.Median
		}
	}
	return math.NaN()
}

// storm writes the reconnect storm table, when the run measured it.
func (r *Report) storm(w io.Writer) {
	if !r.has(StormMS) {
		return
	}
	count := func(x float64) string { return fmt.Sprintf("%.0f", x) }
	fmt.Fprintf(w, "## Reconnect storm\n\n%s WebSocket tunnels are opened and left to settle; then every client drops its connection (no close frame) and all reconnect at the same moment, one dialer per client, a failed handshake retried after 10 ms. Time: from the command until every tunnel is open again. Proxy CPU covers the whole storm, closing the dropped tunnels as well as opening the new ones, divided by the clients. Afterwards every tunnel must echo a message.\n\n", count(r.firstMedian(StormClients)))
	r.table(w, []column{
		r.figCol("ms until all open", StormMS, func(x float64) string { return num(x) }),
		r.ratioCol("x nginx", StormMS, "nginx"),
		r.figCol("retried handshakes", StormRetries, count),
		r.figCol("proxy CPU µs/reconnect", StormCPU, func(x float64) string { return num(x) }),
		r.ratioCol("CPU x nginx", StormCPU, "nginx"),
		r.figCol("not echoing after", StormFail, count),
	})
}

// paced writes the paced-latency table, when the run measured it.
func (r *Report) paced(w io.Writer) {
	if !r.has(PacedP99) {
		return
	}
	us := func(x float64) string { return num(x) }
	fmt.Fprintf(w, "## Paced latency\n\n64 connections send 64-byte messages on a fixed timetable totalling %.0f msgs/s (open loop: a message goes out at its time whether or not earlier echoes came back). Round trip: from the scheduled send time to the echo, so a sender that fell behind still counts the delay.\n\n", r.firstMedian(PacedTarget))
	r.table(w, []column{
		r.figCol("msgs/s achieved", PacedRate, rate),
		r.figCol("p50 µs", PacedP50, us),
		r.figCol("p99 µs", PacedP99, us),
		r.ratioCol("p99 x nginx", PacedP99, "nginx"),
		r.figCol("p99.9 µs", PacedP999, us),
		r.figCol("max µs", PacedMax, us),
		r.figCol("proxy CPU µs/msg", PacedCPU, us),
		r.figCol("errors", PacedErr, func(x float64) string { return fmt.Sprintf("%.0f", x) }),
	})
}

// pacedHandshakes writes the paced handshake table, when the run measured
// it.
func (r *Report) pacedHandshakes(w io.Writer) {
	if !r.has(PHSCPU) {
		return
	}
	us := func(x float64) string { return num(x) }
	fmt.Fprintf(w, "## Paced handshakes\n\n16 workers open connections on a fixed timetable totalling %.0f handshakes/s (open loop), each upgrading, sending a close frame and closing as in the handshake mode. Every proxy does the same work in the window, so the CPU figures compare proxies at equal load; the closed-loop handshake mode runs each at whatever rate the load client reaches with it. Latency: from the scheduled time to the 101.\n\n", r.firstMedian(PHSTarget))
	r.table(w, []column{
		r.figCol("handshakes/s achieved", PHSRate, rate),
		r.figCol("p50 µs", PHSP50, us),
		r.figCol("p99 µs", PHSP99, us),
		r.figCol("proxy CPU µs/handshake", PHSCPU, us),
		r.ratioCol("CPU x nginx", PHSCPU, "nginx"),
		r.figCol("user µs", PHSUser, us),
		r.figCol("kernel µs", PHSKernel, us),
		r.figCol("errors", PHSErr, func(x float64) string { return fmt.Sprintf("%.0f", x) }),
	})
}

// twoCores writes the unpinned two-worker figures, each rate beside the
// same target's pinned one-worker figure from this run.
func (r *Report) twoCores(w io.Writer) {
	if len(r.TwoCores) == 0 {
		return
	}
	v := &Report{Targets: r.TwoCores}
	us := func(x float64) string { return num(x) }
	scale := func(head, key string) column {
		return column{head, func(t *Target) string {
			return ratio(t.fig(key).Median, r.target(t.Name).fig(key).Median)
		}}
	}
	fmt.Fprintf(w, "## Both cores, unpinned\n\nThe handshake, 64 B echo and 64 KiB throughput modes again with no pinning: proxy, load client and echo backend all share both CPUs. nginx runs a master with `worker_processes 2`, HAProxy `nbthread 2`, wsgate `worker_processes 2` (GOMAXPROCS 2). Proxy CPU counts the proxy and its child processes. \"x 1 core\" divides the figure by the same target's pinned, one-worker figure above; the load client now competes with the proxy for both CPUs, so a proxy that scales shows as lower CPU per operation more than as a higher rate.\n\n")
	v.table(w, []column{
		v.figCol("handshakes/s", HSRate, rate),
		scale("x 1 core", HSRate),
		v.figCol("proxy CPU µs/handshake", HSCPU, us),
		v.figCol("64 B msgs/s", EchoRate, rate),
		scale("x 1 core", EchoRate),
		v.figCol("p99 µs", EchoP99, us),
		v.figCol("proxy CPU µs/msg", EchoCPU, us),
		v.figCol("64 KiB MB/s", TPMBps, us),
		scale("x 1 core", TPMBps),
		v.figCol("proxy CPU µs/64 KiB", TPCPU, us),
	})
}
