//go:build linux

package main

import (
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/errlog"
)

// applyMainContext puts the main context's process settings into effect at
// start, before listeners are bound and privileges dropped: env,
// working_directory, worker_rlimit_nofile, worker_rlimit_core,
// worker_priority and worker_cpu_affinity. wsgate has no worker processes, so they apply to
// the one process; a reload does not change them.
//
// wsgate keeps the environment it was started with (nginx clears its
// workers' environment except TZ; wsgate starts no workers, and nothing
// it runs reads the environment): `env VAR=value` sets VAR, `env VAR`
// keeps it, as it would be kept anyway.
func applyMainContext(cfg *config.Config, log *errlog.Logger) {
	for _, e := range cfg.Env {
		if !e.HasValue {
			continue
		}
		os.Setenv(e.Name, e.Value)
		if e.Name == "TZ" {
			// $time_local and the logs follow the zone, as nginx's do.
			if loc, err := time.LoadLocation(e.Value); err == nil {
				time.Local = loc
			} else {
				log.Printf(errlog.Warn, 0, "env TZ=%s: unknown time zone, logs keep %s", e.Value, time.Local)
			}
		}
	}
	if d := cfg.WorkingDirectory; d != "" {
		if err := os.Chdir(d); err != nil {
			log.Printf(errlog.Alert, 0, "chdir(\"%s\") failed (%v)", d, err)
		}
	}
	if n := cfg.RlimitNoFile; n > 0 {
		setNoFile(n, log)
	}
	if cfg.HasRlimitCore {
		setCore(cfg.RlimitCore, log)
	}
	if cfg.HasPriority {
		if err := eachThread(func(tid int) error { return unix.Setpriority(unix.PRIO_PROCESS, tid, cfg.Priority) }); err != nil {
			log.Printf(errlog.Alert, 0, "setpriority(%d) failed (%v)", cfg.Priority, err)
		}
	}
	if len(cfg.CPUs) > 0 {
		var set unix.CPUSet
		for _, cpu := range cfg.CPUs {
			set.Set(cpu)
		}
		if err := eachThread(func(tid int) error { return unix.SchedSetaffinity(tid, &set) }); err != nil {
			log.Printf(errlog.Alert, 0, "sched_setaffinity() failed (%v)", err)
		}
	}
}

// setNoFile sets RLIMIT_NOFILE to n, soft and hard; without the right to
// raise the hard limit it sets what it can and says so.
func setNoFile(n uint64, log *errlog.Logger) {
	rl := unix.Rlimit{Cur: n, Max: n}
	if unix.Setrlimit(unix.RLIMIT_NOFILE, &rl) == nil {
		return
	}
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &cur); err == nil && n <= cur.Max {
		cur.Cur = n
		if unix.Setrlimit(unix.RLIMIT_NOFILE, &cur) == nil {
			return
		}
	}
	log.Printf(errlog.Alert, 0, "setrlimit(RLIMIT_NOFILE, %d) failed (operation not permitted), the limit stays %d", n, currentNoFile())
}

func currentNoFile() uint64 {
	var rl unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_NOFILE, &rl)
	return rl.Cur
}

// eachThread runs set on every thread of the process. On Linux a nice
// value and a CPU mask belong to one thread, and the Go runtime runs on
// several; a thread created later inherits them from the thread that
// creates it, which by then has them too.
func eachThread(set func(tid int) error) error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return set(0)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := set(tid); err != nil && err != unix.ESRCH { // ESRCH: the thread has exited
			return err
		}
	}
	return nil
}
