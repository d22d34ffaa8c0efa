//go:build linux

package main

import (
	"os"
	"runtime/debug"

	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/internal/errlog"
)

// setCore applies worker_rlimit_core: RLIMIT_CORE becomes n, soft and
// hard, or the soft limit only when the hard one cannot be raised. A Go
// program writes a core file only when it crashes with GOTRACEBACK=crash,
// so a limit above zero also asks the runtime for that, unless the
// environment already chose a GOTRACEBACK.
func setCore(n uint64, log *errlog.Logger) {
	if n > 0 && os.Getenv("GOTRACEBACK") == "" {
		debug.SetTraceback("crash")
	}
	rl := unix.Rlimit{Cur: n, Max: n}
	if unix.Setrlimit(unix.RLIMIT_CORE, &rl) == nil {
		return
	}
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_CORE, &cur); err == nil && n <= cur.Max {
		cur.Cur = n
		if unix.Setrlimit(unix.RLIMIT_CORE, &cur) == nil {
			return
		}
	}
	log.Printf(errlog.Alert, 0, "setrlimit(RLIMIT_CORE, %d) failed (operation not permitted)", n)
}
