package report

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// goal is one of wsgate's performance goals, judged in the run that
// measured it: wsgate's figure against a base (a peer's figure, wsgate's
// own HTTP/1.1 tunnel, or a fixed limit of 1 unit). It is met at most
// factor times the base, and its stretch at most stretch times (NaN: no
// stretch).
type goal struct {
	what            string
	value           func(r *Report) float64
	base            func(r *Report) (string, float64)
	factor, stretch float64
	note            func(r *Report) string
}

// wsFig is wsgate's median of key among targets.
func wsFig(targets []*Target, key string) float64 {
	return (&Report{Targets: targets}).target("wsgate").fig(key).Median
}

func (r *Report) tunnelTargets(proto string) []*Target {
	for _, set := range r.Tunnels {
		if set.Proto == proto {
			return set.Targets
		}
	}
	return nil
}

func plainWs(key string) func(r *Report) float64 {
	return func(r *Report) float64 { return wsFig(r.Targets, key) }
}

func peer(name, key string) func(r *Report) (string, float64) {
	return func(r *Report) (string, float64) { return name, r.target(name).fig(key).Median }
}

func limit(unit string) func(r *Report) (string, float64) {
	return func(*Report) (string, float64) { return "limit " + unit, 1 }
}

// twoCoresBase is the lower of nginx's (2 workers) and HAProxy's (2
// threads) unpinned figures.
func twoCoresBase(key string) func(r *Report) (string, float64) {
	return func(r *Report) (string, float64) {
		v := &Report{Targets: r.TwoCores}
		n, h := v.target("nginx").fig(key).Median, v.target("haproxy").fig(key).Median
		if math.IsNaN(h) || n <= h {
			return "nginx, 2 workers", n
		}
		return "haproxy, 2 threads", h
	}
}

// scaling notes the 1 -> 2 core scaling of wsgate's rate of key.
func scaling(key string) func(r *Report) string {
	return func(r *Report) string {
		return "1 -> 2 cores: " + ratio(wsFig(r.TwoCores, key), wsFig(r.Targets, key))
	}
}

// split notes where wsgate's and nginx's CPU per operation went: user
// space (user) and the kernel (kernel), medians.
func split(user, kernel string) func(r *Report) string {
	return func(r *Report) string {
		ws, ng := r.target("wsgate"), r.target("nginx")
		wu, nu, wk, nk := ws.fig(user).Median, ng.fig(user).Median, ws.fig(kernel).Median, ng.fig(kernel).Median
		if math.IsNaN(wu) || math.IsNaN(nu) || math.IsNaN(wk) || math.IsNaN(nk) {
			return ""
		}
		return fmt.Sprintf("user %s µs (nginx %s), kernel %s µs (nginx %s)", num(wu), num(nu), num(wk), num(nk))
	}
}

// alone notes the figure of key of proto's protocol library alone (the
// Library target, lib) and its ratio to wsgate's HTTP/1.1 tunnel's figure
// of the same key: the least that any server built on the library pays.
func alone(proto, lib, key string) func(r *Report) string {
	return func(r *Report) string {
		v := (&Report{Targets: r.tunnelTargets(proto)}).target(Library).fig(key).Median
		if math.IsNaN(v) {
			return ""
		}
		return fmt.Sprintf("%s alone, no backend: %s (%s)", lib, num(v), ratio(v, wsFig(r.Targets, key)))
	}
}

func tunnelGoals(proto, name, lib string) []goal {
	return []goal{
		{name + " tunnel: RSS per idle tunnel (average), vs wsgate's HTTP/1.1 ws tunnel",
			func(r *Report) float64 { return wsFig(r.tunnelTargets(proto), IdleAvg) },
			func(r *Report) (string, float64) { return "wsgate HTTP/1.1", wsFig(r.Targets, IdleAvg) },
			3, math.NaN(), alone(proto, lib, IdleAvg)},
		{name + " tunnel: proxy CPU per 64 B message, vs wsgate's HTTP/1.1 ws tunnel",
			func(r *Report) float64 { return wsFig(r.tunnelTargets(proto), EchoCPU) },
			func(r *Report) (string, float64) { return "wsgate HTTP/1.1", wsFig(r.Targets, EchoCPU) },
			1.5, math.NaN(), alone(proto, lib, EchoCPU)},
	}
}

var goals = append([]goal{
	{"proxy CPU per plain handshake (µs)", plainWs(HSCPU), peer("nginx", HSCPU), 1, 0.8, split(HSUser, HSKernel)},
	{"proxy CPU per plain handshake at a paced rate, equal load (µs)", plainWs(PHSCPU), peer("nginx", PHSCPU), 1, 0.8, split(PHSUser, PHSKernel)},
	{"proxy CPU per 64 B message (µs)", plainWs(EchoCPU), peer("nginx", EchoCPU), 0.9, 0.8, split(EchoUser, EchoKernel)},
	{"proxy CPU per 64 KiB message (µs)", plainWs(TPCPU), peer("haproxy", TPCPU), 0.9, 0.8, nil},
	{"RSS per idle tunnel, average over the idle steps (KiB)", plainWs(IdleAvg), limit("KiB"), 3, 2.5,
		func(r *Report) string { return "slope " + num(wsFig(r.Targets, IdleKiB)) + " KiB" }},
	{"RSS per idle wss tunnel, average (KiB)", func(r *Report) float64 { return wsFig(r.TLS, IdleAvg) }, limit("KiB"), 8, math.NaN(),
		func(r *Report) string { return "slope " + num(wsFig(r.TLS, IdleKiB)) + " KiB" }},
}, append(append(tunnelGoals("h2", "h2", "x/net"), tunnelGoals("h3", "h3", "quic-go")...),
	goal{"both cores unpinned: proxy CPU per handshake (µs)", func(r *Report) float64 { return wsFig(r.TwoCores, HSCPU) }, twoCoresBase(HSCPU), 1, math.NaN(), scaling(HSRate)},
	goal{"both cores unpinned: proxy CPU per 64 B message (µs)", func(r *Report) float64 { return wsFig(r.TwoCores, EchoCPU) }, twoCoresBase(EchoCPU), 1, math.NaN(), scaling(EchoRate)},
	goal{"both cores unpinned: proxy CPU per 64 KiB message (µs)", func(r *Report) float64 { return wsFig(r.TwoCores, TPCPU) }, twoCoresBase(TPCPU), 1, math.NaN(), scaling(TPMBps)},
	goal{"reconnect storm: ms until all tunnels are open again", plainWs(StormMS), peer("nginx", StormMS), 1, 0.8, nil},
	goal{"paced 64 B messages: p99 round trip (µs)", plainWs(PacedP99), peer("nginx", PacedP99), 1, math.NaN(), nil},
)...)

// judge says whether v is at most factor times base: "yes", "**no**", or
// "-" when either figure is missing.
func judge(v, base, factor float64) string {
	if math.IsNaN(v) || math.IsNaN(base) || math.IsNaN(factor) {
		return "-"
	}
	if v <= base*factor*1.0005 {
		return "yes"
	}
	return "**no**"
}

func (r *Report) goals(w io.Writer) {
	fmt.Fprintf(w, "## Goals\n\nwsgate's performance goals, each judged in this run: \"met\" when wsgate's figure is at most the factor times the figure it is set against (a peer measured in this run, wsgate's own HTTP/1.1 tunnel, or a fixed limit), \"stretch\" for the further target. Both cores: the lower of nginx's (2 workers) and HAProxy's (2 threads) figure, with wsgate's 1 -> 2 core rate scaling noted. A goal whose mode did not run shows \"-\".\n\n")
	ws := r.target("wsgate")
	if ws == nil || ws.Status != "" {
		why := "not in this run"
		if ws != nil {
			why = ws.Status
		}
		fmt.Fprintf(w, "wsgate: %s, so no goal could be checked.\n\n", why)
	}
	fmt.Fprintf(w, "| goal | wsgate | against | ratio | met | stretch | note |\n|---|---|---|---|---|---|---|\n")
	for _, g := range goals {
		v := g.value(r)
		name, b := g.base(r)
		against, rat, target := fmt.Sprintf("%s %s", name, num(b)), ratio(v, b), fmt.Sprintf("<= %gx", g.factor)
		if strings.HasPrefix(name, "limit") {
			against, rat, target = name, "-", fmt.Sprintf("<= %g", g.factor)
		}
		stretch := "-"
		if !math.IsNaN(g.stretch) {
			stretch = fmt.Sprintf("%s (<= %g%s)", judge(v, b, g.stretch), g.stretch, map[bool]string{true: "", false: "x"}[strings.HasPrefix(name, "limit")])
		}
		note := ""
		if g.note != nil {
			note = g.note(r)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s (%s) | %s | %s |\n", g.what, num(v), against, rat, judge(v, b, g.factor), target, stretch, note)
	}
	fmt.Fprintln(w)
}
