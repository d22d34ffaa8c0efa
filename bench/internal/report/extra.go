package report

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// IdleAvg is the average RSS per idle tunnel over the whole idle run:
// (RSS at the last step - RSS at 0 tunnels) / tunnels at the last step, KiB.
const IdleAvg = "idle.avg"

// Idle tunnels of the tunnel protocols with many streams per connection:
// slope, average and descriptors per tunnel, and tunnels that failed the
// echo check.
const (
	IdleMuxKiB  = "idle.streams.kib"
	IdleMuxAvg  = "idle.streams.avg"
	IdleMuxFDs  = "idle.streams.fds"
	IdleMuxFail = "idle.streams.failed"
)

// SysTotal is the SysKey name of all system calls together.
const SysTotal = "total"

// SysKey is the figure key of system call name per operation of mode, as
// counted by strace -c over a window.
func SysKey(mode, name string) string { return "sys." + mode + "." + name }

// Library is the target name of the protocol library alone in a TunnelSet:
// x/net's HTTP/2 server or quic-go's HTTP/3 server echoing each tunnel in
// its handler, with no backend leg (bench/cmd/libserver).
const Library = "library"

// TunnelSet is the figures of one tunnel protocol's pass (echo and idle
// keys): WebSockets opened with extended CONNECT over HTTP/2 (RFC 8441) or
// HTTP/3 (RFC 9220).
type TunnelSet struct {
	Proto   string   // "h2" or "h3"
	Title   string   // section heading
	Method  []string // how, one line each
	Targets []*Target
}

// SyscallSet is the system calls per operation of one mode through each
// proxy (SysKey figures).
type SyscallSet struct {
	Title   string
	Mode    string // the mode part of the SysKey figures
	Op      string // what one operation is, for the heading of the columns
	Targets []*Target
}

// Profile is one CPU profile of wsgate kept with the report.
type Profile struct {
	Mode        string   // e.g. "echo", "wss-handshake", "h2-echo"
	File        string   // path relative to the markdown
	Total       string   // pprof's "Duration: ..., Total samples = ..." line
	Top         []string // pprof -top rows: flat flat% sum% cum cum% function
	TopCum      []string // the same rows for wsgate's own functions by cumulative time
	CPUProfiled float64  // wsgate's CPU per operation in the profiled run, µs; NaN if none
	CPUKey      string   // the figure key CPUProfiled compares with in the timed rounds
	Err         string   // why there is no profile
}

// tunnels writes the h2 and h3 tunnel sections, each compared with
// wsgate's HTTP/1.1 tunnel of this run (plain ws, and wss when measured).
func (r *Report) tunnels(w io.Writer) {
	for _, set := range r.Tunnels {
		v := &Report{Targets: set.Targets}
		fmt.Fprintf(w, "## %s\n\n", set.Title)
		for _, s := range set.Method {
			fmt.Fprintf(w, "- %s\n", s)
		}
		fmt.Fprintln(w)
		ws := r.target("wsgate")
		// vsWS sets wsgate's and the library's figure of key beside
		// wsgate's plain ws figure of base; other rows show "-".
		vsWS := func(head, key, base string) column {
			return column{head, func(t *Target) string {
				if t.Name != "wsgate" && t.Name != Library {
					return "-"
				}
				return ratio(t.fig(key).Median, ws.fig(base).Median)
			}}
		}
		us := func(x float64) string { return num(x) }
		kib := func(x float64) string { return fmt.Sprintf("%.2f", x) }
		v.table(w, []column{
			v.figCol("64 B msgs/s", EchoRate, rate),
			v.figCol("p99 µs", EchoP99, us),
			v.figCol("proxy CPU µs/msg", EchoCPU, us),
			vsWS("CPU x wsgate HTTP/1.1 ws", EchoCPU, EchoCPU),
			v.figCol("KiB per idle tunnel, slope", IdleKiB, kib),
			v.figCol("KiB per idle tunnel, average", IdleAvg, kib),
			vsWS("average x wsgate HTTP/1.1 ws", IdleAvg, IdleAvg),
			v.figCol("fds per tunnel", IdleFDs, kib),
			v.figCol("failed echo check", IdleFail, func(x float64) string { return fmt.Sprintf("%.0f", x) }),
		})
		v.idleSteps(w)
		if v.has(IdleMuxAvg) {
			fmt.Fprintf(w, "Idle tunnels again with %d streams to a connection (the same steps; RSS per tunnel, so the connection's cost is shared):\n\n", r.TunnelStreams)
			v.table(w, []column{
				v.figCol("KiB per idle tunnel, slope", IdleMuxKiB, kib),
				v.figCol("KiB per idle tunnel, average", IdleMuxAvg, kib),
				vsWS("average x wsgate HTTP/1.1 ws", IdleMuxAvg, IdleAvg),
				v.figCol("fds per tunnel", IdleMuxFDs, kib),
				v.figCol("failed echo check", IdleMuxFail, func(x float64) string { return fmt.Sprintf("%.0f", x) }),
			})
		}
	}
}

// syscalls writes one table per mode: calls per operation in total and the
// most frequent calls.
func (r *Report) syscalls(w io.Writer) {
	if len(r.Syscalls) == 0 {
		return
	}
	fmt.Fprintf(w, "## System calls per operation\n\nAfter the timed rounds, each proxy again for a short window under `strace -f -c -p PID` (every thread), attached once the warm-up is over and detached at the end of the window; the calls counted are divided by the operations the client completed in that window. strace stops the proxy at every call, so these windows give no CPU or rate figures. Calls that follow time rather than work (the Go runtime's monitor thread's `nanosleep`, idle `epoll_pwait` and `futex` wake-ups) grow per operation as strace slows the rate: read the calls on the data path (`recvfrom`, `sendto`, `read`, `write`, `epoll_ctl`, `accept4`, ...) for what one operation costs.\n\n")
	for _, set := range r.Syscalls {
		fmt.Fprintf(w, "### %s\n\n| target | calls per %s | most frequent calls per %s |\n|---|---|---|\n", set.Title, set.Op, set.Op)
		for _, t := range set.Targets {
			if t.Status != "" {
				fmt.Fprintf(w, "| %s | %s | - |\n", t.Name, t.Status)
				continue
			}
			total := t.fig(SysKey(set.Mode, SysTotal)).Median
			fmt.Fprintf(w, "| %s | %s | %s |\n", t.Name, num(total), strings.Join(topCalls(t, set.Mode, 8), ", "))
		}
		fmt.Fprintln(w)
	}
}

// topCalls lists the n calls of mode with the most per operation, as
// "name 1.23".
func topCalls(t *Target, mode string, n int) []string {
	prefix := SysKey(mode, "")
	type call struct {
		name string
		per  float64
	}
	var calls []call
	for k, s := range t.Figures {
		name, ok := strings.CutPrefix(k, prefix)
		if !ok || name == SysTotal || math.IsNaN(s.Median) {
			continue
		}
		calls = append(calls, call{name, s.Median})
	}
	slices.SortFunc(calls, func(a, b call) int {
		if a.per != b.per {
			if a.per > b.per {
				return -1
			}
			return 1
		}
		return strings.Compare(a.name, b.name)
	})
	var out []string
	for i, c := range calls {
		if i == n {
			break
		}
		out = append(out, fmt.Sprintf("%s %s", c.name, num(c.per)))
	}
	return out
}

// profiles writes where each CPU profile is and its top functions.
func (r *Report) profiles(w io.Writer) {
	if len(r.Profiles) == 0 {
		return
	}
	fmt.Fprintf(w, "## Where wsgate spends its CPU\n\n")
	for _, s := range r.ProfileMethod {
		fmt.Fprintf(w, "- %s\n", s)
	}
	fmt.Fprintln(w)
	for _, p := range r.Profiles {
		fmt.Fprintf(w, "### %s\n\n", p.Mode)
		if p.Err != "" {
			fmt.Fprintf(w, "%s\n\n", p.Err)
			continue
		}
		fmt.Fprintf(w, "[`%s`](%s); %s.", p.File, p.File, p.Total)
		if p.CPUKey != "" {
			timed := r.timedCPU(p.Mode, p.CPUKey)
			fmt.Fprintf(w, " wsgate CPU while profiled %s µs/op, in the timed rounds %s µs/op (%s).", num(p.CPUProfiled), num(timed), ratio(p.CPUProfiled, timed))
		}
		fmt.Fprintf(w, "\n\n")
		pprofTable(w, "Top 5 by flat time", p.Top)
		if len(p.TopCum) > 0 {
			pprofTable(w, "wsgate's own functions, top 5 by cumulative time", p.TopCum)
		}
	}
}

// pprofTable writes rows of `go tool pprof -top` as a table.
func pprofTable(w io.Writer, title string, rows []string) {
	fmt.Fprintf(w, "%s:\n\n| flat | flat%% | sum%% | cum | cum%% | function |\n|---|---|---|---|---|---|\n", title)
	for _, row := range rows {
		f := strings.Fields(row)
		if len(f) < 6 {
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | `%s` |\n", f[0], f[1], f[2], f[3], f[4], strings.Join(f[5:], " "))
	}
	fmt.Fprintln(w)
}

// timedCPU finds wsgate's timed figure for a profile's mode: plain modes
// in Targets, "wss-" in TLS, "h2-"/"h3-" in Tunnels.
func (r *Report) timedCPU(mode, key string) float64 {
	targets := r.Targets
	switch {
	case strings.HasPrefix(mode, "wss-"):
		targets = r.TLS
	case strings.HasPrefix(mode, "h2-"), strings.HasPrefix(mode, "h3-"):
		targets = nil
		for _, set := range r.Tunnels {
			if strings.HasPrefix(mode, set.Proto+"-") {
				targets = set.Targets
			}
		}
	}
	return (&Report{Targets: targets}).target("wsgate").fig(key).Median
}

// eventLoop appends the event-loop libraries' results verbatim.
func (r *Report) eventLoop(w io.Writer) {
	if strings.TrimSpace(r.EventLoop) == "" {
		return
	}
	fmt.Fprintf(w, "## Event-loop libraries\n\n%s", r.EventLoop)
	if !strings.HasSuffix(r.EventLoop, "\n") {
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
}
