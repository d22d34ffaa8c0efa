package procstat

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"time"
)

// atClkTck is the auxiliary-vector entry holding sysconf(_SC_CLK_TCK).
const atClkTck = 17

var clockTicks = readClockTicks()

func readClockTicks() int64 {
	b, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return 100
	}
	for i := 0; i+16 <= len(b); i += 16 {
		k := binary.NativeEndian.Uint64(b[i:])
		v := binary.NativeEndian.Uint64(b[i+8:])
		if k == atClkTck && v > 0 {
			return int64(v)
		}
	}
	return 100
}

// ClockTicks returns the kernel's clock ticks per second (CLK_TCK).
func ClockTicks() int64 { return clockTicks }

// CPU is CPU time as the kernel accounts it: in user space, and in the
// kernel on the process's behalf (system calls, and the network work a
// loopback send does for its receiver).
type CPU struct{ User, System time.Duration }

// Total is user plus system time.
func (c CPU) Total() time.Duration { return c.User + c.System }

// Sub is the time used between an earlier reading d and c.
func (c CPU) Sub(d CPU) CPU { return CPU{c.User - d.User, c.System - d.System} }

// CPUTime returns the CPU time pid has used, all threads included, at the
// resolution of one clock tick.
func CPUTime(pid int) (CPU, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return CPU{}, err
	}
	// The command name may hold spaces and parentheses: fields start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return CPU{}, fmt.Errorf("procstat: malformed /proc/%d/stat", pid)
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return CPU{}, fmt.Errorf("procstat: short /proc/%d/stat", pid)
	}
	ut, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	st, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return CPU{}, fmt.Errorf("procstat: malformed /proc/%d/stat times", pid)
	}
	tick := time.Second / time.Duration(clockTicks)
	return CPU{time.Duration(ut) * tick, time.Duration(st) * tick}, nil
}

// RSSKiB returns pid's resident set size (VmRSS) in KiB.
func RSSKiB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			v = bytes.TrimSpace(v)
			v = bytes.TrimSuffix(v, []byte("kB"))
			return strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
		}
	}
	return 0, fmt.Errorf("procstat: no VmRSS for pid %d", pid)
}

// FDs returns the number of file descriptors pid has open.
func FDs(pid int) (int, error) {
	d, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, err
	}
	return len(d), nil
}

// TreeCPUTime returns the CPU time of pid and of every process descending
// from it that is alive now (for example nginx's master and its workers).
// Processes that exit while the tree is read are left out.
func TreeCPUTime(pid int) (CPU, error) {
	total, err := CPUTime(pid)
	if err != nil {
		return CPU{}, err
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return CPU{}, err
	}
	children := map[int][]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp, ok := parentPID(p); ok {
			children[pp] = append(children[pp], p)
		}
	}
	queue := children[pid]
	for len(queue) > 0 {
		p := queue[0]
		queue = append(queue[1:], children[p]...)
		if t, err := CPUTime(p); err == nil {
			total.User += t.User
			total.System += t.System
		}
	}
	return total, nil
}

func parentPID(pid int) (int, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 2 {
		return 0, false
	}
	pp, err := strconv.Atoi(string(f[1]))
	return pp, err == nil
}
