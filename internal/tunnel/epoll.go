package tunnel

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The dispatcher's epoll calls are raw system calls: neither can block
// (epoll_wait is made with a zero timeout), and the scheduler's system
// call path, which golang.org/x/sys/unix takes, wakes the runtime's
// monitor thread (sysmon) whenever the process was idle. The monitor then
// polls every 20 µs until the process is idle again: a wake-up, and a
// context switch or more, for each message that a parked tunnel carries
// at part load, where the relay's own calls (recvfrom, sendto) wake
// nothing.

// epollWait collects up to len(events) ready events of the epoll instance
// epfd without waiting; events is not empty.
func epollWait(epfd int, events []unix.EpollEvent) (int, error) {
	n, _, e := syscall.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd),
		uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// epollCtl is epoll_ctl(2): op on fd's registration in epfd, with ev
// (nil for EPOLL_CTL_DEL).
func epollCtl(epfd, op, fd int, ev *unix.EpollEvent) error {
	_, _, e := syscall.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), uintptr(fd),
		uintptr(unsafe.Pointer(ev)), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}
