package procstat

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestSelf(t *testing.T) {
	pid := os.Getpid()
	if ClockTicks() <= 0 {
		t.Fatalf("ClockTicks = %d", ClockTicks())
	}
	cpu, err := CPUTime(pid)
	if err != nil || cpu.User < 0 || cpu.System < 0 {
		t.Fatalf("CPUTime = %v, %v", cpu, err)
	}
	rss, err := RSSKiB(pid)
	if err != nil || rss <= 0 {
		t.Fatalf("RSSKiB = %d, %v", rss, err)
	}
	before, err := FDs(pid)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	after, err := FDs(pid)
	f.Close()
	if err != nil || after != before+1 {
		t.Fatalf("FDs after opening a file = %d, %v; before %d", after, err, before)
	}
}

func TestMissingProcess(t *testing.T) {
	// PIDs are capped well below this by the kernel's pid_max limit.
	const pid = 1 << 30
	if _, err := CPUTime(pid); err == nil {
		t.Error("CPUTime of a missing process succeeded")
	}
	if _, err := RSSKiB(pid); err == nil {
		t.Error("RSSKiB of a missing process succeeded")
	}
	if _, err := FDs(pid); err == nil {
		t.Error("FDs of a missing process succeeded")
	}
}

// TestTreeCPUTime: a child's CPU time counts towards its parent's tree.
func TestTreeCPUTime(t *testing.T) {
	cmd := exec.Command("sh", "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; sleep 60")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	deadline := time.Now().Add(30 * time.Second)
	var child time.Duration
	for child == 0 && time.Now().Before(deadline) {
		c, err := CPUTime(cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		child = c.Total()
		if child == 0 {
			time.Sleep(20 * time.Millisecond) // polling a counter; no event to wait on
		}
	}
	if child == 0 {
		t.Fatal("child used no CPU time")
	}
	self, err := CPUTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	tree, err := TreeCPUTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if tree.Total() < self.Total()+child {
		t.Fatalf("tree %v < self %v + child %v", tree.Total(), self.Total(), child)
	}
	if _, err := TreeCPUTime(1 << 30); err == nil {
		t.Fatal("TreeCPUTime of a missing process succeeded")
	}
}

// TestCPUSplit: a process whose work the kernel does (zeroing pages) is charged
// mostly kernel time, one that computes mostly user time.
func TestCPUSplit(t *testing.T) {
	for _, c := range []struct {
		name   string
		argv   []string
		kernel bool
	}{
		{"kernel work", []string{"dd", "if=/dev/zero", "of=/dev/null", "bs=64k", "count=200000", "status=none"}, true},
		{"computing", []string{"sh", "-c", "i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done"}, false},
	} {
		cmd := exec.Command(c.argv[0], c.argv[1:]...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Until it is waited for, an ended process keeps its times: they
		// stop changing when the work is done. Polling a counter; no
		// event to wait on.
		var cpu CPU
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
			next, err := CPUTime(cmd.Process.Pid)
			if err != nil {
				t.Fatal(err)
			}
			if next == cpu && cpu.Total() > 0 {
				break
			}
			cpu = next
		}
		cmd.Process.Kill()
		cmd.Wait()
		if cpu.Total() < 50*time.Millisecond {
			t.Fatalf("%s: %v of CPU time, too little to split", c.name, cpu.Total())
		}
		if kernelMost := cpu.System > cpu.User; kernelMost != c.kernel {
			t.Errorf("%s: user %v, system %v", c.name, cpu.User, cpu.System)
		}
		t.Logf("%s: user %v, system %v", c.name, cpu.User, cpu.System)
	}
}
