package main

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// listenNotify listens on a unixgram socket at name (a leading '@' is an
// abstract socket) as systemd does.
func listenNotify(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	addr := name
	if strings.HasPrefix(addr, "@") {
		addr = "\x00" + addr[1:]
	}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Net: "unixgram", Name: addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func readNotify(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestNotifierAbstractSocket(t *testing.T) {
	name := "@wsgate-notify-test-" + strconv.Itoa(os.Getpid())
	c := listenNotify(t, name)
	t.Setenv("NOTIFY_SOCKET", name)
	n := newNotifier()
	n.ready("serving\non two lines")
	if got := readNotify(t, c); got != "READY=1\nSTATUS=serving on two lines\n" {
		t.Errorf("datagram %q", got)
	}
	n.stopping("stopping")
	if got := readNotify(t, c); got != "STOPPING=1\nSTATUS=stopping\n" {
		t.Errorf("datagram %q", got)
	}
}

// TestNotifierWatchdogPID: WATCHDOG=1 is sent only when $WATCHDOG_PID is
// unset or names this process.
func TestNotifierWatchdogPID(t *testing.T) {
	path := t.TempDir() + "/notify.sock"
	c := listenNotify(t, path)
	t.Setenv("NOTIFY_SOCKET", path)
	t.Setenv("WATCHDOG_USEC", "20000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()+1))
	stop := make(chan struct{})
	n := newNotifier()
	if n.watchdog(stop) {
		t.Error("the watchdog runs for another process's WATCHDOG_PID")
	}
	close(stop)

	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	stop = make(chan struct{})
	defer close(stop)
	if !n.watchdog(stop) {
		t.Fatal("the watchdog does not run for this process")
	}
	if got := readNotify(t, c); got != "WATCHDOG=1\n" {
		t.Errorf("datagram %q, want WATCHDOG=1", got)
	}
}

// TestNotifierOff: without $NOTIFY_SOCKET nothing is sent and nothing
// fails.
func TestNotifierOff(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := newNotifier()
	n.ready("x")
	n.reloading()
	if n.watchdog(make(chan struct{})) {
		t.Error("a watchdog without a socket")
	}
}
