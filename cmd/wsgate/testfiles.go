package main

import (
	"os"
	"strings"

	"github.com/wsgate/wsgate/internal/config"
)

// logFiles lists the log files cfg opens, as absolute paths: error logs
// and access logs without variables, at every level.
func logFiles(cfg *config.Config) []string {
	var out []string
	add := func(p string) {
		if p == "" || p == "stderr" || strings.HasPrefix(p, "/dev/") || strings.HasPrefix(p, "syslog:") || strings.Contains(p, "$") {
			return
		}
		out = append(out, cfg.Abs(p))
	}
	for _, l := range cfg.ErrorLogs {
		add(l.Path)
	}
	if cfg.HTTP == nil {
		return out
	}
	var walk func(*config.Location)
	walk = func(l *config.Location) {
		if l == nil {
			return
		}
		if l.Conf != nil {
			for _, a := range l.Conf.AccessLogs {
				add(a.Path)
			}
		}
		for _, c := range l.Children {
			walk(c)
		}
	}
	if cfg.HTTP.Loc != nil {
		for _, a := range cfg.HTTP.Loc.AccessLogs {
			add(a.Path)
		}
	}
	for _, s := range cfg.HTTP.Servers {
		walk(s.Loc)
		walk(s.Locations)
	}
	return out
}

// absent returns the paths that do not exist yet.
func absent(paths []string) map[string]bool {
	out := map[string]bool{}
	for _, p := range paths {
		if _, err := os.Lstat(p); os.IsNotExist(err) {
			out[p] = true
		}
	}
	return out
}

// removeCreated deletes the files of created that a configuration test
// made and left empty. -t opens the logs as a start would, so that their
// errors show; run as root it would otherwise leave root-owned files that
// the service, running as its own user, could not open afterwards.
func removeCreated(created map[string]bool) {
	for p := range created {
		if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() && fi.Size() == 0 {
			os.Remove(p)
		}
	}
}
