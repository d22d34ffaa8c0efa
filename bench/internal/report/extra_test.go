package report

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/bench/internal/stats"
)

// TestTunnelSections: the h2 and h3 tables compare wsgate's tunnel with its
// HTTP/1.1 ws tunnel of the same run, and the goals judge the ratios.
func TestTunnelSections(t *testing.T) {
	r := sample()
	r.Tunnels = []TunnelSet{
		{Proto: "h2", Title: "WebSockets over HTTP/2 (RFC 8441)", Method: []string{"one stream per connection"}, Targets: []*Target{
			{Name: "haproxy", Figures: map[string]stats.Summary{EchoCPU: one(20), IdleAvg: one(9)}},
			{Name: Library, Figures: map[string]stats.Summary{EchoCPU: one(10), IdleAvg: one(6.75)}},
			{Name: "wsgate", Figures: map[string]stats.Summary{EchoCPU: one(15), IdleAvg: one(8.1), IdleKiB: one(8), IdleMuxAvg: one(5.4), IdleMuxKiB: one(5)}},
		}},
		{Proto: "h3", Title: "WebSockets over HTTP/3 (RFC 9220)", Targets: []*Target{
			{Name: "wsgate", Figures: map[string]stats.Summary{EchoCPU: one(24), IdleAvg: one(27)}},
		}},
	}
	r.TunnelStreams = 100
	var b bytes.Buffer
	r.Markdown(&b)
	md := b.String()
	for _, want := range []string{
		"## WebSockets over HTTP/2 (RFC 8441)\n\n- one stream per connection\n",
		"with 100 streams to a connection",
		"| wsgate | 5.00 | 5.40 | 2.00x | - | - |", // 5.4/2.7 the HTTP/1.1 average
		// 15/12 = 1.25x the HTTP/1.1 CPU; 8.1/2.7 = 3.00x its average RSS.
		"| wsgate | - | - | 15.0 | 1.25x | 8.00 | 8.10 | 3.00x |",
		"| haproxy | - | - | 20.0 | - | - | 9.00 | - |",
		// The library alone gets the ratios too: 10/12, 6.75/2.7.
		"| library | - | - | 10.0 | 0.83x | - | 6.75 | 2.50x |",
		"| h2 tunnel: RSS per idle tunnel (average), vs wsgate's HTTP/1.1 ws tunnel | 8.10 | wsgate HTTP/1.1 2.70 | 3.00x | yes (<= 3x) | - | x/net alone, no backend: 6.75 (2.50x) |",
		"| h2 tunnel: proxy CPU per 64 B message, vs wsgate's HTTP/1.1 ws tunnel | 15.0 | wsgate HTTP/1.1 12.0 | 1.25x | yes (<= 1.5x) | - | x/net alone, no backend: 10.0 (0.83x) |",
		// No library in the h3 set: no note.
		"| h3 tunnel: proxy CPU per 64 B message, vs wsgate's HTTP/1.1 ws tunnel | 24.0 | wsgate HTTP/1.1 12.0 | 2.00x | **no** (<= 1.5x) | - |  |",
		"## WebSockets over HTTP/3 (RFC 9220)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(md)
	}
}

// TestSyscallSection: calls per operation in total and the most frequent
// ones, largest first; a target that did not run says why.
func TestSyscallSection(t *testing.T) {
	r := sample()
	fig := map[string]stats.Summary{
		SysKey("handshake", SysTotal): one(27), SysKey("handshake", "recvfrom"): one(4), SysKey("handshake", "accept4"): one(1.4),
		SysKey("handshake", "epoll_ctl"): one(4), SysKey("echo", "sendto"): one(1),
	}
	r.Syscalls = []SyscallSet{{Title: "Plain handshake", Mode: "handshake", Op: "handshake", Targets: []*Target{
		{Name: "nginx", Status: "not installed"},
		{Name: "wsgate", Figures: fig},
	}}}
	var b bytes.Buffer
	r.Markdown(&b)
	md := b.String()
	for _, want := range []string{
		"## System calls per operation",
		"| target | calls per handshake | most frequent calls per handshake |",
		"| nginx | not installed | - |",
		"| wsgate | 27.0 | epoll_ctl 4.00, recvfrom 4.00, accept4 1.40 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(md)
	}
}

// TestProfileSection: each profile links its file, shows pprof's top rows
// and sets the profiled CPU beside the timed figure of the same mode.
func TestProfileSection(t *testing.T) {
	r := sample()
	r.Tunnels = []TunnelSet{{Proto: "h2", Targets: []*Target{{Name: "wsgate", Figures: map[string]stats.Summary{EchoCPU: one(20)}}}}}
	r.ProfileMethod = []string{"a separate untimed pass"}
	r.Profiles = []Profile{
		{Mode: "echo", File: "profiles/echo.pprof", Total: "Duration: 6s, Total samples = 5s (83%)", CPUProfiled: 13.2, CPUKey: EchoCPU,
			Top:    []string{"180ms 90.00% 90.00% 180ms 90.00% internal/runtime/syscall/linux.Syscall6"},
			TopCum: []string{"0.02s 1.87% 1.87% 0.64s 59.81% github.com/wsgate/wsgate/internal/server.(*Server).serveConns"}},
		{Mode: "h2-echo", File: "profiles/h2-echo.pprof", CPUProfiled: 22, CPUKey: EchoCPU},
		{Mode: "idle", CPUProfiled: math.NaN(), Err: "pprof: connection refused"},
	}
	var b bytes.Buffer
	r.Markdown(&b)
	md := b.String()
	for _, want := range []string{
		"## Where wsgate spends its CPU\n\n- a separate untimed pass\n",
		"[`profiles/echo.pprof`](profiles/echo.pprof); Duration: 6s, Total samples = 5s (83%). wsgate CPU while profiled 13.2 µs/op, in the timed rounds 12.0 µs/op (1.10x).",
		"Top 5 by flat time:\n\n| flat |",
		"| 180ms | 90.00% | 90.00% | 180ms | 90.00% | `internal/runtime/syscall/linux.Syscall6` |",
		"wsgate's own functions, top 5 by cumulative time:\n\n| flat |",
		"| 0.02s | 1.87% | 1.87% | 0.64s | 59.81% | `github.com/wsgate/wsgate/internal/server.(*Server).serveConns` |",
		"in the timed rounds 20.0 µs/op (1.10x)", // h2-echo against the h2 pass
		"### idle\n\npprof: connection refused\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(md)
	}
}

// TestEventLoopSection: results of the event-loop libraries are appended
// verbatim at the end, and only when there are some.
func TestEventLoopSection(t *testing.T) {
	r := sample()
	var b bytes.Buffer
	r.Markdown(&b)
	if strings.Contains(b.String(), "## Event-loop libraries") {
		t.Fatal("event-loop section without results")
	}
	r.EventLoop = "| library | µs/msg |\n|---|---|\n| gnet | 7.1 |"
	b.Reset()
	r.Markdown(&b)
	md := b.String()
	want := "## Event-loop libraries\n\n| library | µs/msg |\n|---|---|\n| gnet | 7.1 |\n"
	if !strings.Contains(md, want) || !strings.HasSuffix(strings.TrimRight(md, "\n"), "| gnet | 7.1 |") {
		t.Fatalf("markdown lacks %q at its end:\n%s", want, md)
	}
}
