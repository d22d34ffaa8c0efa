package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/wsgate/wsgate/bench/internal/load"
	"github.com/wsgate/wsgate/bench/internal/report"
)

// profileSeconds is the length of a CPU profile covering a window of d.
func profileSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// startProfile fetches a CPU profile of wsgate over seconds of d, starting
// after delay, into r.profileTo, when the pass under way profiles and st
// serves net/http/pprof. The returned function waits for the fetch; its
// failure is kept in r.profileErrs under the profile's name.
func (r *runner) startProfile(st *setup, delay, d time.Duration) func() {
	if r.profileTo == "" || st.pprofAddr == "" {
		return func() {}
	}
	path := r.profileTo
	done := make(chan error, 1)
	go func() {
		time.Sleep(delay)
		done <- fetchProfile(st.pprofAddr, profileSeconds(d), path)
	}()
	return func() {
		if err := <-done; err != nil {
			if r.profileErrs == nil {
				r.profileErrs = map[string]string{}
			}
			r.profileErrs[strings.TrimSuffix(filepath.Base(path), ".pprof")] = err.Error()
		}
	}
}

// fetchProfile reads /debug/pprof/profile?seconds=N from addr into path.
func fetchProfile(addr string, seconds int, path string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seconds+30)*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, seconds), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("pprof: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return fmt.Errorf("pprof: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("pprof: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// topFunctions returns the n functions with the most flat CPU time in the
// profile at path, as `go tool pprof -top` prints them (flat, flat%, sum%,
// cum, cum%, name), and pprof's header line naming the total sampled.
// Extra flags (such as -cum) go before the file.
func (r *runner) topFunctions(path string, n int, extra ...string) (total string, top []string, err error) {
	args := append(append([]string{"tool", "pprof", "-top", fmt.Sprintf("-nodecount=%d", n)}, extra...), path)
	cmd := exec.Command("go", args...)
	cmd.Dir = r.repo
	b, err := cmd.CombinedOutput()
	if err != nil {
		return "", nil, fmt.Errorf("go tool pprof: %v: %s", err, firstLine(string(b)))
	}
	return parsePprofTop(string(b))
}

// parsePprofTop reads the text of `go tool pprof -top`: the "Duration:"
// line and the rows after the column heads.
func parsePprofTop(text string) (total string, top []string, err error) {
	rows := false
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "Duration:"):
			total = line
		case strings.HasPrefix(line, "flat") && strings.Contains(line, "cum%"):
			rows = true
		case rows && line != "":
			top = append(top, strings.Join(strings.Fields(line), " "))
		}
	}
	if !rows {
		return "", nil, fmt.Errorf("no table in pprof's output: %s", firstLine(text))
	}
	return total, top, nil
}

// profileSummary describes one saved profile for the report: the top
// functions by flat time and wsgate's CPU per operation while profiled.
// base is the mode without its prefix ("echo" of "h2-echo").
func (r *runner) profileSummary(mode, base, path, rel string, profiled map[string]float64) report.Profile {
	p := report.Profile{Mode: mode, File: rel, CPUProfiled: math.NaN()}
	if _, err := os.Stat(path); err != nil {
		p.Err = "no profile: " + err.Error()
		return p
	}
	total, top, err := r.topFunctions(path, 5)
	if err != nil {
		p.Err = err.Error()
		return p
	}
	p.Total, p.Top = total, top
	if _, cum, err := r.topFunctions(path, 5, "-cum", "-show=^github.com/wsgate/wsgate/"); err == nil {
		p.TopCum = cum
	}
	if k, ok := cpuKeys[base]; ok {
		if v, ok := profiled[k]; ok {
			p.CPUProfiled, p.CPUKey = v, k
		}
	}
	return p
}

// cpuKeys is the proxy CPU per operation figure of each mode; idle has
// none.
var cpuKeys = map[string]string{
	load.ModeHandshake:      report.HSCPU,
	load.ModeEcho:           report.EchoCPU,
	load.ModeThroughput:     report.TPCPU,
	load.ModePaced:          report.PacedCPU,
	load.ModePacedHandshake: report.PHSCPU,
	modeStorm:               report.StormCPU,
}
