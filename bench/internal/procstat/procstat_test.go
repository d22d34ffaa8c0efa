package procstat

import (
	"os"
	"testing"
)

func TestSelf(t *testing.T) {
	pid := os.Getpid()
	if ClockTicks() <= 0 {
		t.Fatalf("ClockTicks = %d", ClockTicks())
	}
	cpu, err := CPUTime(pid)
	if err != nil || cpu < 0 {
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
