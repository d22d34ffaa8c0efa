package main

import (
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// notifier speaks systemd's sd_notify protocol: one datagram of
// newline-separated KEY=VALUE lines to the unix socket in $NOTIFY_SOCKET
// (a leading '@' names an abstract socket). Without the variable every
// method does nothing, so wsgate runs the same outside systemd.
type notifier struct {
	addr *net.UnixAddr
}

// newNotifier reads $NOTIFY_SOCKET. The variable stays set: a daemon
// child and the re-executed process (same PID) report through it.
func newNotifier() *notifier {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return &notifier{}
	}
	if path[0] == '@' {
		path = "\x00" + path[1:]
	}
	return &notifier{addr: &net.UnixAddr{Net: "unixgram", Name: path}}
}

// send writes one notification; failures are ignored, as sd_notify's
// callers do: a service must not die because its manager went away.
func (n *notifier) send(lines ...string) {
	if n.addr == nil {
		return
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return
	}
	defer c.Close()
	c.SetWriteDeadline(time.Now().Add(time.Second))
	c.Write([]byte(strings.Join(lines, "\n") + "\n"))
}

// ready reports that listeners are bound and the pid file is written.
func (n *notifier) ready(status string) { n.send("READY=1", "STATUS="+oneLine(status)) }

// reloading reports the start of a reload with the CLOCK_MONOTONIC time
// systemd needs to match it to `systemctl reload` (Type=notify-reload).
func (n *notifier) reloading() {
	n.send("RELOADING=1", "MONOTONIC_USEC="+strconv.FormatInt(monotonicUsec(), 10), "STATUS=reloading")
}

// stopping reports that shutdown has begun.
func (n *notifier) stopping(status string) { n.send("STOPPING=1", "STATUS="+oneLine(status)) }

// watchdog sends WATCHDOG=1 every half $WATCHDOG_USEC until stop is
// closed, and reports whether it does: not when the watchdog is off or
// meant for another process ($WATCHDOG_PID).
func (n *notifier) watchdog(stop <-chan struct{}) bool {
	if n.addr == nil {
		return false
	}
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return false
	}
	if p := os.Getenv("WATCHDOG_PID"); p != "" && p != strconv.Itoa(os.Getpid()) {
		return false
	}
	t := time.NewTicker(time.Duration(usec) * time.Microsecond / 2)
	go func() {
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				n.send("WATCHDOG=1")
			}
		}
	}()
	return true
}

func monotonicUsec() int64 {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) != nil {
		return 0
	}
	return ts.Sec*1_000_000 + ts.Nsec/1_000
}

// oneLine keeps a status message on one line, as the protocol needs.
func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }
