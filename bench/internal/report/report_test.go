package report

import (
	"bytes"
	"image/png"
	"math"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/bench/internal/stats"
)

func one(v float64) stats.Summary { return stats.Summary{Median: v, Min: v, Max: v, N: 1} }

func sample() *Report {
	return &Report{
		Machine:   Machine{NProc: 2, Model: "test CPU", Kernel: "Linux test"},
		Command:   "bash bench/run.sh",
		Rounds:    3,
		ChartFile: "benchmarks.png",
		Targets: []*Target{
			{Name: "direct", Figures: map[string]stats.Summary{HSRate: one(20000), TPMBps: one(1000)}},
			{Name: "nginx", Figures: map[string]stats.Summary{
				HSRate: one(10000), HSCPU: {Median: 44, Min: 40, Max: 50, N: 3}, EchoCPU: one(10), TPCPU: one(100), TPMBps: one(600), IdleKiB: one(17.6), IdleFDs: one(2), IdleAvg: one(18),
				HSUser: one(10), HSKernel: one(34), EchoUser: one(1), EchoKernel: one(9),
			}, IdleSteps: []IdleStep{{0, 1000, 10}, {2000, 36200, 4010}}},
			{Name: "haproxy", Figures: map[string]stats.Summary{HSCPU: one(54), TPCPU: one(48), TPMBps: one(1200), IdleKiB: one(4.5)}},
			{Name: "wsgate", Figures: map[string]stats.Summary{
				HSRate: one(15000), HSCPU: one(22), EchoCPU: one(12), TPCPU: one(40), TPMBps: one(1300), IdleKiB: one(4), IdleFDs: one(2), IdleAvg: one(2.7),
				HSUser: one(8), HSKernel: one(14), EchoUser: one(3), EchoKernel: one(9),
			}},
		},
	}
}

func TestMarkdown(t *testing.T) {
	var b bytes.Buffer
	sample().Markdown(&b)
	md := b.String()
	for _, want := range []string{
		"bash bench/run.sh",
		"2 x test CPU",
		"![proxy CPU per operation",
		"| wsgate | 15.0k | 0.75x | 1.50x |", // handshakes/s and ratios to direct and nginx
		"| nginx | 10.0k | 0.50x | 1.00x | - | - | 44.0 (40.0-50.0) | 1.00x | 10.0 | 34.0 |", // range over rounds; user and kernel
		"| direct | 20.0k | 1.00x | 2.00x | - | - | - | - | - | - |",                         // no proxy, no CPU
		"| 12.0 | 1.20x | 3.00 | 9.00 |",                                                     // wsgate's 64 B CPU, user and kernel
		"| proxy CPU per plain handshake (µs) | 22.0 | nginx 44.0 | 0.50x | yes (<= 1x) | yes (<= 0.8x) | user 8.00 µs (nginx 10.0), kernel 14.0 µs (nginx 34.0) |",
		"| proxy CPU per 64 B message (µs) | 12.0 | nginx 10.0 | 1.20x | **no** (<= 0.9x) | **no** (<= 0.8x) | user 3.00 µs (nginx 1.00), kernel 9.00 µs (nginx 9.00) |",
		// 40/48 = 0.83: met, stretch missed.
		"| proxy CPU per 64 KiB message (µs) | 40.0 | haproxy 48.0 | 0.83x | yes (<= 0.9x) | **no** (<= 0.8x) |  |",
		"| RSS per idle tunnel, average over the idle steps (KiB) | 2.70 | limit KiB | - | yes (<= 3) | **no** (<= 2.5) | slope 4.00 KiB |",
		// Modes that did not run show "-".
		"| h3 tunnel: proxy CPU per 64 B message, vs wsgate's HTTP/1.1 ws tunnel | - | wsgate HTTP/1.1 12.0 | - | - (<= 1.5x) | - |  |",
		"| 2.70 | 0.15x |", // the average column and its ratio to nginx's
		"nginx: 0: 1000 KiB, 10 fds; 2000: 36200 KiB, 4010 fds",
		"16.8 GiB, 2.00M fds", // 1,000,000 tunnels at 17.6 KiB and 2 fds
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	for _, notWant := range []string{"baselines", "decisions", "shared/"} {
		if strings.Contains(md, notWant) {
			t.Errorf("markdown names %q, a file outside the run", notWant)
		}
	}
}

func withTLS() *Report {
	r := sample()
	r.TLSMethod = []string{"client: TLS 1.3, no resumption"}
	r.TLS = []*Target{
		{Name: "nginx", Figures: map[string]stats.Summary{HSRate: one(2800), HSCPU: one(300), EchoRate: one(60000), EchoCPU: one(14), IdleKiB: one(40)}},
		{Name: "haproxy", Figures: map[string]stats.Summary{HSRate: one(2700), HSCPU: one(330), IdleKiB: one(18)}, Notes: []string{"round 1, echo: boom"}},
		{Name: "wsgate", Status: "not built"},
	}
	return r
}

func TestMarkdownWSS(t *testing.T) {
	tests := []struct {
		name    string
		r       *Report
		want    []string
		notWant []string
	}{
		{"with wss", withTLS(), []string{
			"## wss (TLS 1.3, ECDSA P-256)",
			"- client: TLS 1.3, no resumption",
			"| nginx | 2.80k | 1.00x | - | - | 300 | 1.00x |",
			"| haproxy | 2.70k | 0.96x | - | - | 330 | 1.10x |",
			"| wsgate | not built |",
			"### wss idle tunnels",
			"| haproxy | 18.00 | 0.45x |",
			"- haproxy (wss): round 1, echo: boom",
			"`--tls`",
		}, []string{"baselines", "79.0k"}},
		{"plain only", sample(), []string{"## Handshakes"}, []string{"## wss", "(wss)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			tt.r.Markdown(&b)
			md := b.String()
			for _, w := range tt.want {
				if !strings.Contains(md, w) {
					t.Errorf("markdown lacks %q", w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(md, w) {
					t.Errorf("markdown has %q", w)
				}
			}
			if t.Failed() {
				t.Log(md)
			}
		})
	}
}

func TestMarkdownWsgateNotBuilt(t *testing.T) {
	r := sample()
	r.Targets[3] = &Target{Name: "wsgate", Status: "not built"}
	var b bytes.Buffer
	r.Markdown(&b)
	md := b.String()
	if !strings.Contains(md, "| wsgate | not built |") || !strings.Contains(md, "wsgate: not built, so no goal could be checked") {
		t.Fatalf("markdown does not say wsgate was not built:\n%s", md)
	}
}

func TestChart(t *testing.T) {
	tests := []struct {
		name string
		r    *Report
		rows int
	}{
		{"full", sample(), 2},
		{"with wss", withTLS(), 3},
		{"empty figures", &Report{Targets: []*Target{{Name: "direct"}, {Name: "wsgate", Status: "not built"}}}, 2},
		{"no targets", &Report{}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tt.r.Chart(&b); err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(&b)
			if err != nil {
				t.Fatal(err)
			}
			if got := img.Bounds().Dx(); got != cols*panelW {
				t.Fatalf("width %d", got)
			}
			if got := img.Bounds().Dy(); got != tt.rows*panelH+40 {
				t.Fatalf("height %d, want %d rows", got, tt.rows)
			}
		})
	}
}

func TestCells(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{cell(stats.Summary{Median: 5, Min: 4, Max: 6, N: 3}, num), "5.00 (4.00-6.00)"},
		{cell(one(1234), rate), "1.23k"},
		{cell(stats.Summary{Median: math.NaN()}, num), "-"},
		{ratio(1, 0), "-"},
		{ratio(3, 2), "1.50x"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestMarkdownHandshakes(t *testing.T) {
	r := sample()
	var b bytes.Buffer
	r.Markdown(&b)
	if strings.Contains(b.String(), "## TLS 1.3 handshakes") {
		t.Error("a run without handshake sets has the section")
	}
	r.Handshakes = []HandshakeSet{
		{Title: "RSA 2048, resumed handshakes", Targets: []*Target{
			{Name: "nginx", Figures: map[string]stats.Summary{HSRate: one(8000), HSCPU: one(60), HSResumed: one(100)}},
			{Name: "wsgate", Figures: map[string]stats.Summary{HSRate: one(9000), HSCPU: one(50), HSResumed: one(99.6)}},
		}},
	}
	b.Reset()
	r.Markdown(&b)
	md := b.String()
	for _, want := range []string{
		"## TLS 1.3 handshakes: certificates and resumption",
		"### RSA 2048, resumed handshakes",
		"| wsgate | 9.00k | 1.12x | - | - | 50.0 | 0.83x | 100 | - |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
}

// TestStormPacedSections: the new sections appear only with their figures,
// with ratios against nginx.
func TestStormPacedSections(t *testing.T) {
	var b bytes.Buffer
	sample().Markdown(&b)
	if md := b.String(); strings.Contains(md, "## Reconnect storm") || strings.Contains(md, "## Paced latency") {
		t.Fatal("storm or paced section without figures")
	}
	r := sample()
	for _, tg := range r.Targets[1:] {
		tg.Figures[StormClients], tg.Figures[PacedTarget] = one(9000), one(20000)
	}
	r.target("nginx").Figures[StormMS], r.target("nginx").Figures[StormCPU] = one(2000), one(30)
	r.target("wsgate").Figures[StormMS], r.target("wsgate").Figures[StormCPU] = one(1000), one(15)
	r.target("nginx").Figures[PacedP99], r.target("nginx").Figures[PacedMax] = one(400), one(9000)
	r.target("wsgate").Figures[PacedP99], r.target("wsgate").Figures[PacedMax] = one(200), one(5000)
	b.Reset()
	r.Markdown(&b)
	md := b.String()
	for _, want := range []string{
		"## Reconnect storm\n\n9000 WebSocket tunnels",
		"| wsgate | 1000 | 0.50x | - | 15.0 | 0.50x | - |",
		"totalling 20000 msgs/s",
		"| wsgate | - | - | 200 | 0.50x | - | 5000 | - | - |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(md)
	}
}

// TestPacedHandshakeSection: the paced handshake table and its goal appear
// only with their figures; the goal compares wsgate's CPU per handshake
// with nginx's at the same rate.
func TestPacedHandshakeSection(t *testing.T) {
	var b bytes.Buffer
	sample().Markdown(&b)
	if strings.Contains(b.String(), "## Paced handshakes") {
		t.Fatal("paced handshake section without figures")
	}
	r := sample()
	for _, tg := range r.Targets[1:] {
		tg.Figures[PHSTarget], tg.Figures[PHSRate] = one(2000), one(1990)
	}
	r.target("nginx").Figures[PHSCPU], r.target("nginx").Figures[PHSUser], r.target("nginx").Figures[PHSKernel] = one(100), one(25), one(75)
	r.target("wsgate").Figures[PHSCPU], r.target("wsgate").Figures[PHSUser], r.target("wsgate").Figures[PHSKernel] = one(150), one(60), one(90)
	b.Reset()
	r.Markdown(&b)
	md := b.String()
	for _, want := range []string{
		"## Paced handshakes\n\n16 workers open connections on a fixed timetable totalling 2000 handshakes/s",
		"| wsgate | 1.99k | - | - | 150 | 1.50x | 60.0 | 90.0 | - |",
		"| proxy CPU per plain handshake at a paced rate, equal load (µs) | 150 | nginx 100 | 1.50x | **no** (<= 1x) | **no** (<= 0.8x) | user 60.0 µs (nginx 25.0), kernel 90.0 µs (nginx 75.0) |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(md)
	}
}

// TestTwoCoresSection: each two-core rate is divided by the same target's
// pinned figure.
func TestTwoCoresSection(t *testing.T) {
	r := sample()
	r.TwoCores = []*Target{{Name: "wsgate", Figures: map[string]stats.Summary{HSRate: one(30000), HSCPU: one(20), TPMBps: one(1950)}}}
	var b bytes.Buffer
	r.Markdown(&b)
	md := b.String()
	want := "| wsgate | 30.0k | 2.00x | 20.0 | - | - | - | - | 1950 | 1.50x | - |"
	if !strings.Contains(md, "## Both cores, unpinned") || !strings.Contains(md, want) {
		t.Errorf("markdown lacks %q:\n%s", want, md)
	}
}
