// Command compare measures the event-loop relays of this module against
// nginx and wsgate on the main harness's figures and writes results.md.
// Run it from bench/evloop: `go run ./cmd/compare`. It builds the relays,
// the repository's echo backend, load client and wsgate, pins as the main
// harness does (proxy on CPU 1 with one worker or GOMAXPROCS=1, load client
// and echo backend on CPU 0), and interleaves the targets in every round.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// figure names, in report order.
const (
	figHS      = "handshake CPU (µs)"
	figPHS     = "handshake CPU at a paced 2,000/s (µs)"
	figMsg     = "64 B message CPU (µs)"
	figRSS0    = "RSS at 0 tunnels (KiB)"
	figIdle    = "RSS per idle tunnel (KiB)"
	figSysHS   = "system calls per handshake"
	figSysMsg  = "system calls per message"
	figIOHS    = "socket and epoll calls per handshake"
	figIOMsg   = "socket and epoll calls per message"
	figHSErr   = "failed handshakes (per 10,000)"
	figMsgRate = "64 B messages/s"
)

var figures = []string{figHS, figPHS, figMsg, figMsgRate, figRSS0, figIdle, figIOHS, figIOMsg, figSysHS, figSysMsg, figHSErr}

type compare struct {
	binDir, nginx string
}

func (c *compare) bin(name string) string { return filepath.Join(c.binDir, name) }

func main() {
	rounds := flag.Int("rounds", 3, "rounds; targets are interleaved in each")
	window := flag.Duration("window", 3*time.Second, "timed window of each load run")
	warmup := flag.Duration("warmup", 500*time.Millisecond, "untimed lead-in of each load run")
	idle := flag.Int("idle", 5000, "idle tunnels for the RSS figure")
	settle := flag.Duration("settle", time.Second, "wait before each RSS reading")
	straceWin := flag.Duration("strace-window", 1500*time.Millisecond, "window of each strace count")
	targetList := flag.String("targets", "nginx,wsgate,std,epoll,epark,eraw,gnet,nbio,evio,netpoll", "targets")
	out := flag.String("out", "results.md", "report file")
	nginx := flag.String("nginx", "", "nginx binary (default: nginx on PATH, else in the sbin directories)")
	from := flag.String("from", "", "render the report from a saved results .json instead of measuring")
	flag.Parse()

	if *from != "" {
		if err := render(*from, *out); err != nil {
			log.Fatal(err)
		}
		return
	}
	root, err := repoRoot()
	if err != nil {
		log.Fatal(err)
	}
	tmp, err := os.MkdirTemp("", "evloop-compare")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	c := &compare{binDir: filepath.Join(tmp, "bin"), nginx: findNginx(*nginx)}
	if err := c.build(root); err != nil {
		log.Fatal(err)
	}
	m := &measured{Vals: map[string]map[string][]float64{}, Calls: map[string]map[string]map[string]float64{},
		Targets: strings.Split(*targetList, ","), Rounds: *rounds, Window: *window, Idle: *idle}
	m.LoadStart, m.Start = loadAvg(), time.Now().UTC()
	for r := range *rounds {
		order := slices.Clone(m.Targets)
		// Rotate so that no target always runs first or last.
		order = append(order[r%len(order):], order[:r%len(order)]...)
		for _, t := range order {
			dir := filepath.Join(tmp, fmt.Sprintf("r%d-%s", r, t))
			log.Printf("round %d: %s", r+1, t)
			if err := c.measure(m, t, dir, r == 0, *warmup, *window, *straceWin, *settle, *idle); err != nil {
				log.Printf("%s: %v", t, err)
				m.fail(t, err)
			}
		}
	}
	m.LoadEnd, m.End = loadAvg(), time.Now().UTC()
	if err := os.WriteFile(*out, m.report(), 0o644); err != nil {
		log.Fatal(err)
	}
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(strings.TrimSuffix(*out, ".md")+".json", raw, 0o644); err != nil {
		log.Fatal(err)
	}
	log.Printf("wrote %s and its figures as JSON", *out)
}

// render writes the report of the figures saved in the JSON file from.
func render(from, out string) error {
	raw, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	var m measured
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("%s: %w", from, err)
	}
	return os.WriteFile(out, m.report(), 0o644)
}

// findNginx returns flagged, or nginx from PATH or the sbin directories
// that are often left off a user's PATH.
func findNginx(flagged string) string {
	if flagged != "" {
		return flagged
	}
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	for _, d := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
		if p := filepath.Join(d, "nginx"); fileExists(p) {
			return p
		}
	}
	return "nginx"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// repoRoot walks up from the working directory to the main module.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(b, []byte("module github.com/wsgate/wsgate\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run from inside the wsgate repository (bench/evloop)")
		}
		dir = parent
	}
}

// build compiles the relays, the echo backend, the load client and wsgate.
func (c *compare) build(root string) error {
	steps := []struct{ dir, out, pkg string }{
		{filepath.Join(root, "bench", "evloop"), c.bin("evproxy"), "./cmd/evproxy"},
		{root, c.bin("echo"), "./bench/cmd/echo"},
		{root, c.bin("load"), "./bench/cmd/load"},
		{root, c.bin("wsgate"), "./cmd/wsgate"},
	}
	for _, s := range steps {
		cmd := exec.Command("go", "build", "-o", s.out, s.pkg)
		cmd.Dir = s.dir
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v: %s", s.pkg, err, b)
		}
	}
	return nil
}

// measure takes one round's figures for target; with sys it counts system
// calls too (they vary little, one round is enough).
func (c *compare) measure(m *measured, target, dir string, sys bool, warmup, window, straceWin, settle time.Duration, idle int) error {
	st, err := c.startTarget(target, dir)
	if err != nil {
		return err
	}
	defer st.stop()
	hs, err := c.runLoad(st, "handshake", warmup, window)
	if err != nil {
		return err
	}
	m.add(target, figHS, hs.CPUPerOpUS)
	m.add(target, figHSErr, 1e4*float64(hs.Errors)/float64(max(1, hs.Ops+hs.Errors)))
	m.loadErrors(target, "handshake", hs)
	phs, err := c.runLoad(st, "paced-handshake", warmup, window)
	if err != nil {
		return err
	}
	m.add(target, figPHS, phs.CPUPerOpUS)
	m.loadErrors(target, "paced-handshake", phs)
	echo, err := c.runLoad(st, "echo", warmup, window)
	if err != nil {
		return err
	}
	m.loadErrors(target, "echo", echo)
	m.add(target, figMsg, echo.CPUPerOpUS)
	m.add(target, figMsgRate, echo.OpsPerSec)
	if sys {
		// Before the idle step, whose thousands of closes would still be
		// under way; after the last load run's closes.
		time.Sleep(settle)
		if err := c.countCalls(m, st, target, dir, straceWin); err != nil {
			return err
		}
	}
	rss0, rssN, err := c.idleKiB(st, idle, settle)
	if err != nil {
		return err
	}
	m.add(target, figRSS0, float64(rss0))
	m.add(target, figIdle, float64(rssN-rss0)/float64(idle))
	return nil
}

// countCalls counts the proxy's system calls per handshake and per message.
func (c *compare) countCalls(m *measured, st *setup, target, dir string, straceWin time.Duration) error {
	var hsCalls map[string]float64
	for _, mode := range []string{"handshake", "echo"} {
		time.Sleep(300 * time.Millisecond) // the last run's closes end first
		per, calls, err := c.straceCount(st, mode, dir, straceWin, hsCalls)
		if err != nil {
			return err
		}
		if mode == "handshake" {
			hsCalls = maps.Clone(calls)
		}
		fig, io := figSysHS, figIOHS
		if mode == "echo" {
			fig, io = figSysMsg, figIOMsg
		}
		m.add(target, fig, per)
		m.add(target, io, calls[ioTotal])
		delete(calls, ioTotal)
		m.setCalls(target, fig, calls)
	}
	return nil
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
