package main

import (
	"net"
	"os"
	"strconv"

	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/server"
)

// listenFDsStart is the first descriptor systemd passes (SD_LISTEN_FDS_START).
const listenFDsStart = 3

// activatedListeners returns the listening TCP sockets systemd passed for
// socket activation: $LISTEN_FDS descriptors from 3 on, when $LISTEN_PID
// names this process. Other sockets are closed and returned by address
// in skipped. The variables are unset afterwards so that no child takes
// the sockets for its own.
func activatedListeners() (lns []*net.TCPListener, skipped []string) {
	pid, _ := strconv.Atoi(os.Getenv("LISTEN_PID"))
	n, _ := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if pid != os.Getpid() || n <= 0 {
		return nil, nil
	}
	for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		os.Unsetenv(k)
	}
	for fd := listenFDsStart; fd < listenFDsStart+n; fd++ {
		f := os.NewFile(uintptr(fd), "listen-fd-"+strconv.Itoa(fd))
		ln, err := net.FileListener(f) // a duplicate: f is closed below
		f.Close()
		if err != nil {
			skipped = append(skipped, "descriptor "+strconv.Itoa(fd))
			continue
		}
		if tl, ok := ln.(*net.TCPListener); ok {
			lns = append(lns, tl)
			continue
		}
		skipped = append(skipped, ln.Addr().String())
		ln.Close()
	}
	return lns, skipped
}

// inheritActivated hands systemd's sockets to srv before its first Apply.
func inheritActivated(srv *server.Server, log *errlog.Logger) {
	lns, skipped := activatedListeners()
	for _, s := range skipped {
		log.Printf(errlog.Warn, 0, "socket activation: %s is not a listening TCP socket, closed", s)
	}
	if len(lns) > 0 {
		srv.Inherit(lns)
	}
}

// dropUninherited closes the activated sockets no listen directive took.
func dropUninherited(srv *server.Server, log *errlog.Logger) {
	for _, a := range srv.Uninherited() {
		log.Printf(errlog.Warn, 0, "socket activation: no listen directive for %s, closed", a)
	}
}
