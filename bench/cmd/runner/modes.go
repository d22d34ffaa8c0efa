package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/bench/internal/load"
	"github.com/wsgate/wsgate/bench/internal/procstat"
	"github.com/wsgate/wsgate/bench/internal/report"
	"github.com/wsgate/wsgate/bench/internal/stats"
)

// sources are the client addresses: spreading connections over 16 of them
// keeps ephemeral ports from running out during the handshake mode.
const sources = "127.0.0.2-127.0.0.17"

// loadMode is one closed-loop mode run by the load command.
type loadMode struct {
	name    string
	workers int
	size    int
	rate    int // paced: messages (handshakes) per second over all connections (workers)
}

var loadModes = map[string]loadMode{
	load.ModeHandshake:  {load.ModeHandshake, 16, 0, 0},
	load.ModeEcho:       {load.ModeEcho, 64, 64, 0},
	load.ModeThroughput: {load.ModeThroughput, 4, 64 << 10, 0},
	// The paced modes' rates come from the runner.
	load.ModePaced:          {load.ModePaced, 64, 64, 0},
	load.ModePacedHandshake: {load.ModePacedHandshake, 16, 0, 0},
}

// runLoad runs the load command pinned to CPU 0 and returns its figures keyed
// as the report expects.
func (r *runner) runLoad(ctx context.Context, st *setup, m loadMode) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, r.warmup+r.window+60*time.Second)
	defer cancel()
	args := []string{"-c", r.cpus(0), r.loadBin, "-mode", m.name, "-addr", st.addr, "-src", sources,
		"-workers", strconv.Itoa(m.workers), "-warmup", r.warmup.String(), "-duration", r.window.String(),
		"-cpu-pid", strconv.Itoa(st.proxyPID())}
	if m.size > 0 {
		args = append(args, "-size", strconv.Itoa(m.size))
	}
	if m.rate > 0 {
		args = append(args, "-rate", strconv.Itoa(m.rate))
	}
	if st.tls {
		args = append(args, "-tls")
	}
	if st.resume {
		args = append(args, "-resume")
	}
	if st.proto != "" {
		args = append(args, "-proto", st.proto)
	}
	if r.stracing {
		args = append(args, "-strace-pid", strconv.Itoa(st.proxyPID()))
	}
	stopProfile := r.startProfile(st, r.warmup, r.window)
	cmd := exec.CommandContext(ctx, "taskset", args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	err := cmd.Run()
	stopProfile()
	if err != nil {
		return nil, fmt.Errorf("load %s: %v: %s", m.name, err, tail(strings.TrimSpace(errb.String()), 300))
	}
	var res load.Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return nil, fmt.Errorf("load %s: bad output %q: %v", m.name, tail(out.String(), 200), err)
	}
	if st.proxy != nil && st.proxy.exited() {
		return nil, st.proxy.exitErr()
	}
	cpu, user := res.CPUPerOpUS, res.UserPerOpUS
	if st.proxy == nil {
		cpu, user = nanf(), nanf()
	}
	f := map[string]float64{}
	switch m.name {
	case load.ModeHandshake:
		f[report.HSRate], f[report.HSP50], f[report.HSP99], f[report.HSCPU] = res.OpsPerSec, res.P50, res.P99, cpu
		f[report.HSUser], f[report.HSKernel] = user, cpu-user
		f[report.HSErr] = float64(res.Errors)
		if st.tls && res.Ops > 0 {
			f[report.HSResumed] = 100 * float64(res.Resumed) / float64(res.Ops)
		}
	case load.ModeEcho:
		f[report.EchoRate], f[report.EchoP50], f[report.EchoP90] = res.OpsPerSec, res.P50, res.P90
		f[report.EchoP99], f[report.EchoP999], f[report.EchoCPU] = res.P99, res.P999, cpu
		f[report.EchoUser], f[report.EchoKernel] = user, cpu-user
		f[report.EchoErr] = float64(res.Errors)
	case load.ModeThroughput:
		f[report.TPMBps], f[report.TPRate], f[report.TPP50], f[report.TPP99], f[report.TPCPU] = res.MBPerSec, res.OpsPerSec, res.P50, res.P99, cpu
		f[report.TPErr] = float64(res.Errors)
	case load.ModePacedHandshake:
		f[report.PHSTarget], f[report.PHSRate], f[report.PHSP50], f[report.PHSP99] = float64(m.rate), res.OpsPerSec, res.P50, res.P99
		f[report.PHSCPU], f[report.PHSUser], f[report.PHSKernel] = cpu, user, cpu-user
		f[report.PHSErr] = float64(res.Errors)
	case load.ModePaced:
		f[report.PacedTarget], f[report.PacedRate], f[report.PacedP50] = float64(m.rate), res.OpsPerSec, res.P50
		f[report.PacedP99], f[report.PacedP999], f[report.PacedMax], f[report.PacedCPU] = res.P99, res.P999, res.Max, cpu
		f[report.PacedErr] = float64(res.Errors)
	}
	if res.Syscalls != nil && res.Ops > 0 {
		var total uint64
		for name, n := range res.Syscalls {
			f[report.SysKey(m.name, name)] = float64(n) / float64(res.Ops)
			total += n
		}
		f[report.SysKey(m.name, report.SysTotal)] = float64(total) / float64(res.Ops)
	}
	if res.Errors > 0 {
		return f, fmt.Errorf("load %s: %d errors, first: %s", m.name, res.Errors, res.FirstError)
	}
	return f, nil
}

// agent is one idle-agent process driven over its standard input.
type agent struct {
	p     *proc
	in    io.WriteCloser
	lines chan string
}

func (r *runner) startAgent(dir string, i int, st *setup) (*agent, error) {
	args := []string{"-c", r.cpus(0), r.loadBin, "-mode", "idle-agent", "-addr", st.addr, "-src", sources}
	if st.tls {
		args = append(args, "-tls")
	}
	if st.proto != "" {
		args = append(args, "-proto", st.proto)
	}
	if st.streams > 1 {
		args = append(args, "-streams", strconv.Itoa(st.streams))
	}
	cmd := exec.Command("taskset", args...)
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	outp, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, fmt.Sprintf("agent%d.log", i))
	log, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stderr = log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, err
	}
	a := &agent{p: &proc{name: fmt.Sprintf("idle agent %d", i), cmd: cmd, logPath: logPath, done: make(chan struct{})}, in: in, lines: make(chan string, 64)}
	go func() {
		sc := bufio.NewScanner(outp)
		for sc.Scan() {
			a.lines <- sc.Text()
		}
		close(a.lines)
		a.p.err = cmd.Wait()
		log.Close()
		close(a.p.done)
	}()
	r.procs.mu.Lock()
	r.procs.procs = append(r.procs.procs, a.p)
	r.procs.mu.Unlock()
	return a, nil
}

func (a *agent) send(cmd string) error {
	_, err := fmt.Fprintln(a.in, cmd)
	return err
}

// reply waits up to timeout for the agent's answer and returns its fields
// after "ok".
func (a *agent) reply(ctx context.Context, timeout time.Duration) ([]string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case line, ok := <-a.lines:
		if !ok {
			return nil, a.p.exitErr()
		}
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "ok" {
			return nil, fmt.Errorf("%s: %s", a.p.name, line)
		}
		return f[1:], nil
	case <-t.C:
		return nil, fmt.Errorf("%s: no answer within %v", a.p.name, timeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// runIdle opens idle tunnels through the proxy step by step, measures the
// proxy's RSS and descriptors at each step, then checks every tunnel echoes.
func (r *runner) runIdle(ctx context.Context, st *setup, dir string) (map[string]float64, []report.IdleStep, error) {
	pid := st.proxyPID()
	// A profile covers the window from the first step's opening.
	stopProfile := func() {}
	defer func() { stopProfile() }()
	maxStep := r.idleSteps[len(r.idleSteps)-1]
	n := max(1, (maxStep+load.MaxIdlePerAgent-1)/load.MaxIdlePerAgent)
	agents := make([]*agent, 0, n)
	defer func() {
		for _, a := range agents {
			a.in.Close() // end of input: the agent closes its tunnels and exits
		}
		for _, a := range agents {
			r.procs.stop(a.p)
		}
	}()
	for i := range n {
		a, err := r.startAgent(dir, i, st)
		if err != nil {
			return nil, nil, err
		}
		agents = append(agents, a)
	}
	var steps []report.IdleStep
	var xs, rss, fds []float64
	for _, step := range r.idleSteps {
		if step > 0 && len(steps) > 0 && steps[len(steps)-1].Tunnels == 0 {
			stopProfile = r.startProfile(st, 0, r.window)
		}
		for i, a := range agents {
			share := step / n
			if i < step%n {
				share++
			}
			if err := a.send(fmt.Sprintf("open %d", share)); err != nil {
				return nil, nil, err
			}
		}
		for _, a := range agents {
			if _, err := a.reply(ctx, 120*time.Second); err != nil {
				return nil, nil, fmt.Errorf("opening %d tunnels: %w", step, err)
			}
		}
		if err := sleepCtx(ctx, r.settle); err != nil {
			return nil, nil, err
		}
		kib, err := procstat.RSSKiB(pid)
		if err != nil {
			return nil, nil, err
		}
		nfd, err := procstat.FDs(pid)
		if err != nil {
			return nil, nil, err
		}
		steps = append(steps, report.IdleStep{Tunnels: step, RSSKiB: kib, FDs: nfd})
		xs = append(xs, float64(step))
		rss = append(rss, float64(kib))
		fds = append(fds, float64(nfd))
	}
	var pass, fail int
	for _, a := range agents {
		if err := a.send("check"); err != nil {
			return nil, nil, err
		}
	}
	for _, a := range agents {
		f, err := a.reply(ctx, 120*time.Second)
		if err != nil || len(f) != 2 {
			return nil, nil, fmt.Errorf("echo check: %v %v", f, err)
		}
		p, _ := strconv.Atoi(f[0])
		q, _ := strconv.Atoi(f[1])
		pass += p
		fail += q
	}
	res := map[string]float64{
		report.IdleKiB:  stats.Slope(xs, rss),
		report.IdleFDs:  stats.Slope(xs, fds),
		report.IdleRSS0: rss[0],
		report.IdleAvg:  nanf(),
		report.IdleMax:  float64(maxStep),
		report.IdleFail: float64(fail),
	}
	if maxStep > 0 {
		res[report.IdleAvg] = (rss[len(rss)-1] - rss[0]) / float64(maxStep)
	}
	if pass+fail != maxStep || fail > 0 {
		return res, steps, fmt.Errorf("idle echo check: %d of %d tunnels echoed", pass, maxStep)
	}
	return res, steps, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startAgents starts n idle agents dialing addr.
func (r *runner) startAgents(dir string, st *setup, n int) ([]*agent, error) {
	agents := make([]*agent, 0, n)
	for i := range n {
		a, err := r.startAgent(dir, i, st)
		if err != nil {
			r.stopAgents(agents)
			return nil, err
		}
		agents = append(agents, a)
	}
	return agents, nil
}

// stopAgents ends the agents' input, so each closes its tunnels and exits,
// then stops each by its PID.
func (r *runner) stopAgents(agents []*agent) {
	for _, a := range agents {
		a.in.Close()
	}
	for _, a := range agents {
		r.procs.stop(a.p)
	}
}

// broadcast sends cmd to every agent at once and collects each answer's
// fields after "ok", in agent order.
func broadcast(ctx context.Context, agents []*agent, cmd string, timeout time.Duration) ([][]string, error) {
	for _, a := range agents {
		if err := a.send(cmd); err != nil {
			return nil, err
		}
	}
	out := make([][]string, len(agents))
	for i, a := range agents {
		f, err := a.reply(ctx, timeout)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cmd, err)
		}
		out[i] = f
	}
	return out, nil
}

// runStorm opens r.stormClients tunnels through the target, spread over as
// many agents as the descriptor limit needs, lets them settle, then has
// every agent drop all its tunnels and reconnect them at once. It reports
// the time from the command until every agent had all its tunnels open
// again, the failed handshakes retried on the way, the proxy's CPU per
// reconnect, and then checks every tunnel echoes.
func (r *runner) runStorm(ctx context.Context, st *setup, dir string) (map[string]float64, error) {
	n := r.stormClients
	agents, err := r.startAgents(dir, st, max(1, (n+load.MaxIdlePerAgent-1)/load.MaxIdlePerAgent))
	if err != nil {
		return nil, err
	}
	defer r.stopAgents(agents)
	share := func(i int) int {
		s := n / len(agents)
		if i < n%len(agents) {
			s++
		}
		return s
	}
	for i, a := range agents {
		if err := a.send(fmt.Sprintf("open %d", share(i))); err != nil {
			return nil, err
		}
	}
	for _, a := range agents {
		if _, err := a.reply(ctx, 120*time.Second); err != nil {
			return nil, fmt.Errorf("opening %d tunnels: %w", n, err)
		}
	}
	if err := sleepCtx(ctx, r.settle); err != nil {
		return nil, err
	}
	pid := st.proxyPID()
	var cpu0, cpu1 procstat.CPU
	if pid != 0 {
		if cpu0, err = procstat.TreeCPUTime(pid); err != nil {
			return nil, err
		}
	}
	defer r.startProfile(st, 0, r.window)() // waits after the CPU reading
	t0 := time.Now()
	answers, err := broadcast(ctx, agents, "storm", load.StormTimeout+30*time.Second)
	elapsed := time.Since(t0)
	if err != nil {
		return nil, err
	}
	if pid != 0 {
		if cpu1, err = procstat.TreeCPUTime(pid); err != nil {
			return nil, err
		}
	}
	var retries int
	for _, f := range answers {
		if len(f) != 3 {
			return nil, fmt.Errorf("storm: answer %v", f)
		}
		v, _ := strconv.Atoi(f[1])
		retries += v
	}
	res := map[string]float64{
		report.StormClients: float64(n),
		report.StormMS:      float64(elapsed.Microseconds()) / 1e3,
		report.StormRetries: float64(retries),
		report.StormCPU:     nanf(),
	}
	if pid != 0 {
		res[report.StormCPU] = float64(cpu1.Sub(cpu0).Total().Microseconds()) / float64(n)
	}
	checks, err := broadcast(ctx, agents, "check", 120*time.Second)
	if err != nil {
		return res, err
	}
	var pass, fail int
	for _, f := range checks {
		if len(f) != 2 {
			return res, fmt.Errorf("echo check after the storm: %v", f)
		}
		p, _ := strconv.Atoi(f[0])
		q, _ := strconv.Atoi(f[1])
		pass, fail = pass+p, fail+q
	}
	res[report.StormFail] = float64(n - pass)
	if pass != n || fail > 0 {
		return res, fmt.Errorf("echo check after the storm: %d of %d tunnels echoed", pass, n)
	}
	return res, nil
}
