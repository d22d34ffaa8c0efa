package tunnel

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestEpollRaw: the raw epoll calls register, report readiness without
// waiting and remove, and return the kernel's errors as syscall errnos,
// which the dispatcher and arm compare with.
func TestEpollRaw(t *testing.T) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(epfd)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	events := make([]unix.EpollEvent, 4)
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: 42}
	if err := epollCtl(epfd, unix.EPOLL_CTL_ADD, fds[0], &ev); err != nil {
		t.Fatal(err)
	}
	if err := epollCtl(epfd, unix.EPOLL_CTL_ADD, fds[0], &ev); err != unix.EEXIST {
		t.Errorf("second add: %v, want EEXIST", err)
	}
	if n, err := epollWait(epfd, events); n != 0 || err != nil {
		t.Errorf("nothing ready: %d, %v", n, err)
	}
	if _, err := unix.Write(fds[1], []byte("x")); err != nil {
		t.Fatal(err)
	}
	if n, err := epollWait(epfd, events); n != 1 || err != nil || events[0].Fd != 42 || events[0].Events&unix.EPOLLIN == 0 {
		t.Errorf("readable: %d, %v, %+v", n, err, events[0])
	}
	if n, err := epollWait(epfd, events); n != 0 || err != nil {
		t.Errorf("edge reported again: %d, %v", n, err)
	}
	if err := epollCtl(epfd, unix.EPOLL_CTL_DEL, fds[0], nil); err != nil {
		t.Fatal(err)
	}
	if err := epollCtl(epfd, unix.EPOLL_CTL_MOD, fds[0], &ev); err != unix.ENOENT {
		t.Errorf("modify after removal: %v, want ENOENT", err)
	}
	if _, err := epollWait(-1, events); err != unix.EBADF {
		t.Errorf("bad descriptor: %v, want EBADF", err)
	}
}
