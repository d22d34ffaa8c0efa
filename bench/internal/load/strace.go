package load

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// tracer is `strace -f -c -p PID` counting one process's system calls
// (every thread) between start and stop.
type tracer struct {
	cmd *exec.Cmd
	out string
}

// startTrace attaches strace to pid and returns once it reports the
// process attached.
func startTrace(pid int) (*tracer, error) {
	f, err := os.CreateTemp("", "load-strace-*.txt")
	if err != nil {
		return nil, err
	}
	f.Close()
	t := &tracer{out: f.Name()}
	t.cmd = exec.Command("strace", "-f", "-c", "-o", t.out, "-p", strconv.Itoa(pid))
	stderr, err := t.cmd.StderrPipe()
	if err != nil {
		os.Remove(t.out)
		return nil, err
	}
	if err := t.cmd.Start(); err != nil {
		os.Remove(t.out)
		return nil, fmt.Errorf("load: strace: %w", err)
	}
	attached := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			if !sent && strings.Contains(sc.Text(), "attached") {
				attached <- true
				sent = true
			}
		}
		if !sent {
			attached <- false
		}
	}()
	select {
	case ok := <-attached:
		if !ok {
			t.cmd.Wait()
			os.Remove(t.out)
			return nil, fmt.Errorf("load: strace could not attach to %d", pid)
		}
	case <-time.After(10 * time.Second):
		t.cmd.Process.Kill()
		t.cmd.Wait()
		os.Remove(t.out)
		return nil, fmt.Errorf("load: strace did not attach to %d within 10 s", pid)
	}
	// -f attaches the other threads one by one after the first.
	time.Sleep(200 * time.Millisecond)
	return t, nil
}

// stop detaches strace and returns the calls it counted per system call.
func (t *tracer) stop() (map[string]uint64, error) {
	defer os.Remove(t.out)
	t.cmd.Process.Signal(syscall.SIGINT)
	t.cmd.Wait()
	b, err := os.ReadFile(t.out)
	if err != nil {
		return nil, err
	}
	return ParseStraceSummary(b)
}

// ParseStraceSummary reads the table of `strace -c` into calls per system
// call, leaving out the total row.
func ParseStraceSummary(b []byte) (map[string]uint64, error) {
	out := map[string]uint64{}
	header := false
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == "%" {
			header = true
			continue
		}
		if !header || len(f) < 5 || strings.HasPrefix(f[0], "---") || f[len(f)-1] == "total" {
			continue
		}
		n, err := strconv.ParseUint(f[3], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("load: strace summary line %q: %v", strings.TrimSpace(line), err)
		}
		out[f[len(f)-1]] += n
	}
	if !header {
		return nil, fmt.Errorf("load: no strace summary in %q", bytes.TrimSpace(b))
	}
	return out, nil
}
