package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/bench/internal/load"
	"github.com/wsgate/wsgate/bench/internal/report"
)

func TestConfigs(t *testing.T) {
	tf := &tlsFiles{cert: "/tmp/x/cert.pem", key: "/tmp/x/key.pem", combined: "/tmp/x/combined.pem"}
	h2 := &tlsFiles{cert: "/tmp/x/cert.pem", key: "/tmp/x/key.pem", combined: "/tmp/x/combined.pem", proto: load.ProtoH2}
	h3 := &tlsFiles{cert: "/tmp/x/cert.pem", key: "/tmp/x/key.pem", combined: "/tmp/x/combined.pem", proto: load.ProtoH3}
	tests := []struct {
		name    string
		text    string
		want    []string
		notWant []string
	}{
		{"nginx", nginxConfig("/tmp/x", 9001, 9002, nil), []string{
			"pid /tmp/x/nginx.pid;", "server 127.0.0.1:9001;", "listen 127.0.0.1:9002;", "worker_connections 20000;",
			`proxy_set_header Connection "upgrade";`, "proxy_set_header Upgrade $http_upgrade;",
		}, []string{"ssl"}},
		{"haproxy", haproxyConfig(9001, 9002, nil), []string{
			"bind 127.0.0.1:9002\n", "server b1 127.0.0.1:9001", "nbthread 1", "maxconn 9000", "timeout tunnel 1h",
		}, []string{"ssl"}},
		{"nginx wss", nginxConfig("/tmp/x", 9001, 9002, tf), []string{
			"listen 127.0.0.1:9002 ssl;\n", "ssl_certificate /tmp/x/cert.pem;", "ssl_certificate_key /tmp/x/key.pem;",
			"ssl_protocols TLSv1.3;", "server 127.0.0.1:9001;", "location /ws {",
		}, []string{"http2", "combined.pem"}},
		{"haproxy wss", haproxyConfig(9001, 9002, tf), []string{
			"bind 127.0.0.1:9002 ssl crt /tmp/x/combined.pem ssl-min-ver TLSv1.3\n", "server b1 127.0.0.1:9001",
		}, []string{"alpn", "h2"}},
		{"nginx h2", nginxConfig("/tmp/x", 9001, 9002, h2), []string{
			"listen 127.0.0.1:9002 ssl http2;\n", "ssl_certificate /tmp/x/cert.pem;", "ssl_protocols TLSv1.3;", "location /ws {",
		}, []string{"quic"}},
		{"nginx h3", nginxConfig("/tmp/x", 9001, 9002, h3), []string{
			"listen 127.0.0.1:9002 quic;\n        listen 127.0.0.1:9002 ssl;\n", "ssl_certificate_key /tmp/x/key.pem;", "location /ws {",
		}, []string{"http2"}},
		{"haproxy h2", haproxyConfig(9001, 9002, h2), []string{
			"bind 127.0.0.1:9002 ssl crt /tmp/x/combined.pem ssl-min-ver TLSv1.3 alpn h2,http/1.1\n",
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if strings.Contains(tt.text, "%!") {
				t.Fatalf("template has a formatting error:\n%s", tt.text)
			}
			for _, w := range tt.want {
				if !strings.Contains(tt.text, w) {
					t.Errorf("config lacks %q", w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(tt.text, w) {
					t.Errorf("config has %q", w)
				}
			}
			if t.Failed() {
				t.Log(tt.text)
			}
		})
	}
}

// TestSmokeDirect runs the whole harness, smoke-sized, against the echo
// backend alone: it builds the harness, starts and stops real processes and
// writes the markdown and the chart.
func TestSmokeDirect(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the harness")
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		t.Skip("taskset not installed")
	}
	out := filepath.Join(t.TempDir(), "bench.md")
	r := &runner{warmup: 100 * time.Millisecond, window: 300 * time.Millisecond, settle: 100 * time.Millisecond, idleSteps: []int{0, 10}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := r.main(ctx, []string{"direct"}, 1, true, out, false)
	r.procs.stopAll()
	if err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| direct | ", "## Handshakes", "![", "bench.png"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	if st, err := os.Stat(filepath.Join(filepath.Dir(out), "bench.png")); err != nil || st.Size() == 0 {
		t.Fatalf("chart: %v", err)
	}
	if strings.Contains(string(md), "Failures during this run") {
		t.Fatalf("smoke run had failures:\n%s", md)
	}
}

// TestWriteCert checks the files the proxies load: a P-256 pair, and the
// combined PEM HAProxy reads holding the same pair.
func TestWriteCert(t *testing.T) {
	dir := t.TempDir()
	tf, err := writeCert(dir)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		cert, key string
	}{
		{"separate", tf.cert, tf.key},
		{"combined", tf.combined, tf.combined},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pair, err := tls.LoadX509KeyPair(tt.cert, tt.key)
			if err != nil {
				t.Fatal(err)
			}
			leaf, err := x509.ParseCertificate(pair.Certificate[0])
			if err != nil {
				t.Fatal(err)
			}
			if leaf.PublicKeyAlgorithm != x509.ECDSA {
				t.Fatalf("key algorithm %v", leaf.PublicKeyAlgorithm)
			}
			if err := leaf.VerifyHostname("127.0.0.1"); err != nil {
				t.Fatal(err)
			}
			if err := leaf.VerifyHostname("localhost"); err != nil {
				t.Fatal(err)
			}
		})
	}
	if st, err := os.Stat(tf.key); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", st.Mode(), err)
	}
}

// TestWaitHandshakeTLS checks the readiness probe against a real wss echo
// server: it reports the negotiation, and a plain probe does not pass.
func TestWaitHandshakeTLS(t *testing.T) {
	if _, err := exec.LookPath("taskset"); err != nil {
		t.Skip("taskset not installed")
	}
	dir := t.TempDir()
	r := &runner{repo: "", tmp: dir}
	r.echoBin = filepath.Join(dir, "echo")
	if out, err := exec.Command("go", "build", "-o", r.echoBin, "github.com/wsgate/wsgate/bench/cmd/echo").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The echo backend is plain: a wss probe must fail, a ws one succeed.
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p, err := r.procs.start("echo", "0", filepath.Join(dir, "echo.log"), r.echoBin, "-addr", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer r.procs.stopAll()
	if neg, err := waitHandshake(ctx, p, addr, false); err != nil || neg != "" {
		t.Fatalf("plain probe: %q, %v", neg, err)
	}
	short, cancel2 := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel2()
	if _, err := waitHandshake(short, p, addr, true); err == nil {
		t.Fatal("wss probe passed against a plain backend")
	}
}

// TestSmokeStormPaced runs the reconnect storm and the paced mode,
// smoke-sized, against the echo backend alone, with real processes, and
// checks both report sections and that every tunnel came back.
func TestSmokeStormPaced(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the harness")
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		t.Skip("taskset not installed")
	}
	out := filepath.Join(t.TempDir(), "bench.md")
	r := &runner{warmup: 100 * time.Millisecond, window: 500 * time.Millisecond, settle: 100 * time.Millisecond,
		modes: []string{modeStorm, "paced", "paced-handshake"}, stormClients: 120, pacedRate: 1000, pacedHandshakeRate: 200}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	err := r.main(ctx, []string{"direct"}, 1, true, out, false)
	r.procs.stopAll()
	if err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Reconnect storm\n\n120 WebSocket tunnels", "## Paced latency", "totalling 1000 msgs/s", "| direct | ", "totalling 200 handshakes/s"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	if strings.Contains(string(md), "Failures during this run") {
		t.Fatalf("smoke run had failures:\n%s", md)
	}
	if t.Failed() {
		t.Log(string(md))
	}
}

func TestParseModes(t *testing.T) {
	tests := []struct {
		spec         string
		storm, paced bool
		want         string
		wantErr      bool
	}{
		{"handshake,echo", false, false, "handshake,echo", false},
		{"handshake", true, true, "handshake,storm,paced,paced-handshake", false},
		{"paced-handshake", false, true, "paced-handshake,paced", false},
		{"storm,storm", true, false, "storm", false},
		{"", false, true, "paced,paced-handshake", false},
		{"", false, false, "", true},
		{"dance", false, false, "", true},
	}
	for _, tt := range tests {
		got, err := parseModes(tt.spec, tt.storm, tt.paced)
		if (err != nil) != tt.wantErr || strings.Join(got, ",") != tt.want {
			t.Errorf("parseModes(%q, %v, %v) = %v, %v; want %q", tt.spec, tt.storm, tt.paced, got, err, tt.want)
		}
	}
}

// TestUnpinnedConfigs: the unpinned pass gives every proxy two workers and
// nginx its master process; the pinned one keeps one process on one CPU.
func TestUnpinnedConfigs(t *testing.T) {
	r := &runner{}
	if got := r.workers(nginxConfig("/tmp/x", 1, 2, nil)); !strings.Contains(got, "worker_processes 1;") {
		t.Errorf("pinned nginx config:\n%s", got)
	}
	if r.cpus(1) != "1" || r.nginxGlobals() != "daemon off; master_process off;" {
		t.Errorf("pinned: cpus %q, globals %q", r.cpus(1), r.nginxGlobals())
	}
	r.unpinned = true
	if got := r.workers(nginxConfig("/tmp/x", 1, 2, nil)); !strings.Contains(got, "worker_processes 2;") {
		t.Errorf("unpinned nginx config:\n%s", got)
	}
	if got := r.workers(haproxyConfig(1, 2, nil)); !strings.Contains(got, "nbthread 2\n") || strings.Contains(got, "nbthread 1") {
		t.Errorf("unpinned haproxy config:\n%s", got)
	}
	if r.cpus(1) != "0,1" || r.cpus(0) != "0,1" || strings.Contains(r.nginxGlobals(), "master_process") {
		t.Errorf("unpinned: cpus %q, globals %q", r.cpus(1), r.nginxGlobals())
	}
}

// TestSmokeTwoCores runs the echo mode pinned and then the unpinned pass,
// smoke-sized, against the echo backend alone, and checks the section.
func TestSmokeTwoCores(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the harness")
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		t.Skip("taskset not installed")
	}
	out := filepath.Join(t.TempDir(), "bench.md")
	r := &runner{warmup: 100 * time.Millisecond, window: 300 * time.Millisecond, settle: 100 * time.Millisecond,
		modes: []string{"echo"}, twoCores: true}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	err := r.main(ctx, []string{"direct"}, 1, true, out, false)
	r.procs.stopAll()
	if err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(md), "## Both cores, unpinned")
	if i < 0 {
		t.Fatalf("no two-core section:\n%s", md)
	}
	if !strings.Contains(string(md[i:]), "| direct | ") {
		t.Errorf("two-core section lacks direct:\n%s", md[i:])
	}
	if strings.Contains(string(md), "Failures during this run") {
		t.Fatalf("smoke run had failures:\n%s", md)
	}
}

// TestReadEventLoop: the event-loop results file is read verbatim when the
// repository has one, and its absence gives no section.
func TestReadEventLoop(t *testing.T) {
	repo := t.TempDir()
	if got := readEventLoop(repo); got != "" {
		t.Fatalf("no file, got %q", got)
	}
	const text = "| library | µs/msg |\n|---|---|\n| epoll, raw | 6.0 |\n"
	if err := os.MkdirAll(filepath.Join(repo, "bench", "evloop"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, "bench", "evloop", "results.md"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := readEventLoop(repo); got != text {
		t.Fatalf("got %q, want %q", got, text)
	}
}

func TestParsePprofTop(t *testing.T) {
	const out = `File: wsgate
Type: cpu
Duration: 6.01s, Total samples = 4.95s (82.37%)
Showing nodes accounting for 3.80s, 76.77% of 4.95s total
Dropped 120 nodes (cum <= 0.02s)
Showing top 2 nodes out of 150
      flat  flat%   sum%        cum   cum%
     3.10s 62.63% 62.63%      3.10s 62.63%  internal/runtime/syscall/linux.Syscall6
     0.70s 14.14% 76.77%      0.90s 18.18%  runtime.selectgo
`
	total, top, err := parsePprofTop(out)
	if err != nil {
		t.Fatal(err)
	}
	if total != "Duration: 6.01s, Total samples = 4.95s (82.37%)" {
		t.Errorf("total %q", total)
	}
	want := []string{"3.10s 62.63% 62.63% 3.10s 62.63% internal/runtime/syscall/linux.Syscall6", "0.70s 14.14% 76.77% 0.90s 18.18% runtime.selectgo"}
	if strings.Join(top, "\n") != strings.Join(want, "\n") {
		t.Errorf("top %q, want %q", top, want)
	}
	if _, _, err := parsePprofTop("failed to fetch\n"); err == nil {
		t.Error("pprof's error read as a table")
	}
}

// TestTunnelTargets: nginx never carries h2 or h3 tunnels here, HAProxy h2
// only, wsgate both.
// TestTunnelTargets: the proxies that speak each protocol, with the
// library alone beside wsgate only.
func TestTunnelTargets(t *testing.T) {
	all := []string{"nginx", "haproxy", "wsgate"}
	if got := strings.Join(tunnelTargetsOf(load.ProtoH2, all), ","); got != "haproxy,library,wsgate" {
		t.Errorf("h2: %s", got)
	}
	if got := strings.Join(tunnelTargetsOf(load.ProtoH3, all), ","); got != "library,wsgate" {
		t.Errorf("h3: %s", got)
	}
	if got := strings.Join(tunnelTargetsOf(load.ProtoH2, []string{"haproxy"}), ","); got != "haproxy" {
		t.Errorf("h2 without wsgate: %s", got)
	}
}

// TestLibraryTarget starts the protocol library alone (bench/cmd/libserver)
// as the runner does, over h2 and h3: it is ready only once a real client's
// tunnel echoes (load.Probe), which a second probe checks again. Without a
// tunnel protocol it refuses to start.
func TestLibraryTarget(t *testing.T) {
	if _, err := exec.LookPath("taskset"); err != nil {
		t.Skip("taskset not installed")
	}
	dir := t.TempDir()
	r := &runner{tmp: dir, echoBin: filepath.Join(dir, "echo"), libserverBin: filepath.Join(dir, "libserver")}
	for bin, pkg := range map[string]string{r.echoBin: "echo", r.libserverBin: "libserver"} {
		if out, err := exec.Command("go", "build", "-o", bin, "github.com/wsgate/wsgate/bench/cmd/"+pkg).CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
	defer r.procs.stopAll()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, proto := range []string{load.ProtoH2, load.ProtoH3} {
		tf, err := r.tunnelFiles(proto)
		if err != nil {
			t.Fatal(err)
		}
		st, err := r.startTarget(ctx, report.Library, filepath.Join(dir, proto), tf)
		if err != nil {
			t.Fatalf("%s: %v", proto, err)
		}
		if err := load.Probe(load.Config{Addr: st.addr, Proto: proto}, 2*time.Second); err != nil {
			t.Errorf("%s: %v", proto, err)
		}
		r.stopTarget(st)
	}
	if st, err := r.startTarget(ctx, report.Library, filepath.Join(dir, "plain"), nil); err == nil {
		r.stopTarget(st)
		t.Fatal("the library started without a tunnel protocol")
	}
}

// TestEstimate: every pass --all adds lengthens the estimate, and one
// round of it is shorter than three.
func TestEstimate(t *testing.T) {
	base := func() *runner {
		return &runner{warmup: time.Second, window: 6 * time.Second, settle: 2 * time.Second, idleSteps: []int{0, 9000}, stormClients: 9000, straceWindow: 3 * time.Second}
	}
	modes := []string{"handshake", "echo", "throughput", "idle", modeStorm, load.ModePaced}
	plain := base().estimate(1, 4, modes)
	all := base()
	all.wss, all.tlsHandshakes, all.twoCores, all.syscalls, all.profiles = true, true, true, true, true
	all.protos = []string{load.ProtoH2, load.ProtoH3}
	one, three := all.estimate(1, 4, modes), all.estimate(3, 4, modes)
	if !(plain < one && one < three) {
		t.Fatalf("estimates: plain %v, --all %v, --all 3 rounds %v", plain, one, three)
	}
}

func TestSnmpField(t *testing.T) {
	const snmp = `Tcp: RtoAlgorithm RetransSegs InErrs
Tcp: 1 42 0
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors
Udp: 1387868 27691 34949 1442197 34950 0
`
	if got := snmpField(snmp, "Tcp:", "RetransSegs"); got != 42 {
		t.Errorf("RetransSegs %d", got)
	}
	if got := snmpField(snmp, "Udp:", "RcvbufErrors"); got != 34950 {
		t.Errorf("RcvbufErrors %d", got)
	}
	if got := snmpField(snmp, "Udp:", "Missing"); got != 0 {
		t.Errorf("a missing counter reads %d", got)
	}
}
