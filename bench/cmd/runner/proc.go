package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// proc is one process the runner started; it is stopped by its PID only.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error
}

// procSet remembers every long-running process so an interrupted run can
// still stop them all.
type procSet struct {
	mu    sync.Mutex
	procs []*proc
}

// start runs bin pinned to cpus, a taskset list such as "1" or "0,1" (via
// taskset, which execs so the PID is the program's), with output to logPath.
func (s *procSet) start(name string, cpus string, logPath string, bin string, args ...string) (*proc, error) {
	return s.startEnv(nil, name, cpus, logPath, bin, args...)
}

// startEnv is start with env added to the runner's environment.
func (s *procSet) startEnv(env []string, name string, cpus string, logPath string, bin string, args ...string) (*proc, error) {
	log, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("taskset", append([]string{"-c", cpus, bin}, args...)...)
	cmd.Stdout, cmd.Stderr = log, log
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	// Own process group: a terminal's ^C reaches only the runner, which then
	// stops its children in order; Pdeathsig covers a runner that dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, err
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		log.Close()
		close(p.done)
	}()
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process's PID, then SIGKILL after a grace period.
func (p *proc) stop() {
	if p.exited() {
		return
	}
	syscall.Kill(p.pid(), syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(5 * time.Second):
	}
	syscall.Kill(p.pid(), syscall.SIGKILL)
	<-p.done
}

func (s *procSet) stop(p *proc) {
	p.stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, q := range s.procs {
		if q == p {
			s.procs = append(s.procs[:i], s.procs[i+1:]...)
			break
		}
	}
}

// stopAll stops every process still running, newest first.
func (s *procSet) stopAll() {
	s.mu.Lock()
	ps := s.procs
	s.procs = nil
	s.mu.Unlock()
	for i := len(ps) - 1; i >= 0; i-- {
		ps[i].stop()
	}
}

// logTail returns the last lines of a process's log, for error messages.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	b = bytes.TrimSpace(b)
	if len(b) > 400 {
		b = b[len(b)-400:]
	}
	return string(bytes.ReplaceAll(b, []byte("\n"), []byte(" | ")))
}

var errExited = errors.New("process exited")

func (p *proc) exitErr() error {
	return fmt.Errorf("%s %w (%v): %s", p.name, errExited, p.err, logTail(p.logPath))
}
