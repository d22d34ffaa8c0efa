package main

import (
	"bytes"
	"fmt"
	"math"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"time"
)

// measured gathers every round's figures per target; it is saved as JSON
// beside the report, so that the report can be rendered again (-from).
type measured struct {
	Vals      map[string]map[string][]float64          `json:"values"` // target -> figure -> rounds
	Calls     map[string]map[string]map[string]float64 `json:"calls"`  // target -> figure -> system call -> per operation
	Failed    map[string][]string                      `json:"failed"`
	LoadStart string                                   `json:"load_start"`
	LoadEnd   string                                   `json:"load_end"`
	Start     time.Time                                `json:"start"`
	End       time.Time                                `json:"end"`
	Rounds    int                                      `json:"rounds"`
	Idle      int                                      `json:"idle"`
	Window    time.Duration                            `json:"window"`
	Targets   []string                                 `json:"targets"`
}

func (m *measured) add(target, fig string, v float64) {
	if m.Vals[target] == nil {
		m.Vals[target] = map[string][]float64{}
	}
	m.Vals[target][fig] = append(m.Vals[target][fig], v)
}

func (m *measured) setCalls(target, fig string, calls map[string]float64) {
	if m.Calls[target] == nil {
		m.Calls[target] = map[string]map[string]float64{}
	}
	m.Calls[target][fig] = calls
}

// loadErrors notes a load run's failed operations.
func (m *measured) loadErrors(target, mode string, r loadResult) {
	if r.Errors > 0 {
		m.fail(target, fmt.Errorf("%s: %d of %d operations failed, first: %s", mode, r.Errors, r.Ops+r.Errors, r.FirstError))
	}
}

func (m *measured) fail(target string, err error) {
	if m.Failed == nil {
		m.Failed = map[string][]string{}
	}
	m.Failed[target] = append(m.Failed[target], err.Error())
}

func (m *measured) median(target, fig string) float64 {
	v := slices.Clone(m.Vals[target][fig])
	if len(v) == 0 {
		return math.NaN()
	}
	sort.Float64s(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func num(v float64) string {
	switch {
	case math.IsNaN(v):
		return "n/a"
	case math.Abs(v) >= 1000:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func ratio(v, ref float64) string {
	if math.IsNaN(v) || math.IsNaN(ref) || ref == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", v/ref)
}

// report renders results.md.
func (m *measured) report() []byte {
	targets := m.Targets
	var b bytes.Buffer
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("# Event-loop libraries for wsgate's hot path\n\n")
	w("Written by `go run ./cmd/compare` (bench/evloop) on %s, %s to %s UTC.\n\n", m.Start.Format("2006-01-02"), m.Start.Format("15:04"), m.End.Format("15:04"))
	w("Load average %s at the start, %s at the end (2 cores: any other work on them skews the CPU figures, not the system-call counts). ", m.LoadStart, m.LoadEnd)
	w("%d rounds, targets interleaved (rotated each round), medians; %v load windows.\n\n", m.Rounds, m.Window)
	w("Pinning as the main harness: the proxy on CPU 1 (nginx and wsgate with `worker_processes 1`, nginx without a master; the Go relays with GOMAXPROCS=1, so one loop), the load client and the echo backend on CPU 0. ")
	w("Handshake: `load -mode handshake`, 16 workers (upgrade, close frame, close), as fast as the target answers. Paced handshake: `load -mode paced-handshake -rate %s`, the same handshakes on a fixed timetable over 16 workers, so that every target does the same work and idles between handshakes, as a proxy at part load does. Message: `load -mode echo -size 64`, 64 connections. ", pacedRate)
	w("Idle: one `load -mode idle-agent` opens 0 then %d tunnels; RSS per tunnel = (RSS@%d - RSS@0) / %d; every tunnel echoes afterwards. ", m.Idle, m.Idle, m.Idle)
	w("System calls: `strace -f -c -p PID` attached to the proxy before a separate short load run (1 ms warm-up) and detached after it; a handshake is counted by the proxy's `socket` calls (one backend socket each); a message by the load client's count, after taking out its connections' handshakes and closes at the handshake figures. \"Socket and epoll calls\" leave out the Go runtime's own calls (nanosleep, futex, signals), whose counts grow with the slowdown under strace.\n\n")
	w("Library versions: %s.\n\n", libVersions())
	ref := func(t, fig string) float64 { return m.median(t, fig) }
	for _, fig := range figures {
		w("## %s\n\n| target | value | x nginx | x wsgate |\n| --- | ---: | ---: | ---: |\n", fig)
		for _, t := range targets {
			v := m.median(t, fig)
			w("| %s | %s | %s | %s |\n", t, num(v), ratio(v, ref("nginx", fig)), ratio(v, ref("wsgate", fig)))
		}
		w("\n")
	}
	w("## System calls by name, per operation (first round)\n\n")
	for _, fig := range []string{figSysHS, figSysMsg} {
		w("%s:\n\n", fig)
		for _, t := range targets {
			calls := m.Calls[t][fig]
			if calls == nil {
				continue
			}
			var names []string
			for k := range calls {
				if k != "total" && calls[k] >= 0.05 {
					names = append(names, k)
				}
			}
			sort.Slice(names, func(i, j int) bool { return calls[names[i]] > calls[names[j]] })
			var parts []string
			for _, k := range names {
				parts = append(parts, fmt.Sprintf("%s %.2f", k, calls[k]))
			}
			w("- %s: %s\n", t, strings.Join(parts, ", "))
		}
		w("\n")
	}
	if len(m.Failed) > 0 {
		w("## Failures and errors\n\n")
		for _, t := range targets {
			for _, e := range m.Failed[t] {
				w("- %s: %s\n", t, e)
			}
		}
		w("\n")
	}
	w("%s", verdicts)
	return b.Bytes()
}

func libVersions() string {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Path}} {{.Version}}",
		"github.com/panjf2000/gnet/v2", "github.com/lesismal/nbio", "github.com/tidwall/evio",
		"github.com/cloudwego/netpoll", "golang.org/x/sys")
	out, err := cmd.Output()
	if err != nil {
		return "unknown (go list failed)"
	}
	return strings.Join(strings.Split(strings.TrimSpace(string(out)), "\n"), ", ")
}
