package config

import (
	"github.com/wsgate/wsgate/internal/conf"
	"strings"
)

// Readers of the logging and status directives.

func parseLevel(d *conf.Directive, s string) (Level, error) {
	for i, n := range levelNames {
		if n == s {
			return Level(i), nil
		}
	}
	return 0, conf.Errorf(d, "invalid log level \"%s\"", s)
}

func dErrorLog(l *loader, d *conf.Directive, s *scope) error {
	el := ErrorLog{Path: d.Args[0], Level: LevelError}
	if len(d.Args) == 2 {
		lv, err := parseLevel(d, d.Args[1])
		if err != nil {
			return err
		}
		el.Level = lv
	}
	if strings.HasPrefix(el.Path, "syslog:") || strings.HasPrefix(el.Path, "memory:") {
		return conf.Errorf(d, "\"%s\" error_log targets are not supported", strings.SplitN(el.Path, ":", 2)[0])
	}
	if s.kind == cMain {
		l.cfg.ErrorLogs = append(l.cfg.ErrorLogs, el)
		return nil
	}
	if !s.lc.set["error_log"] {
		s.lc.ErrorLogs = nil
	}
	s.lc.ErrorLogs = append(s.lc.ErrorLogs, el)
	return s.lc.mark(d, "error_log")
}

func dLogFormat(l *loader, d *conf.Directive, s *scope) error {
	lf := &LogFormat{Name: d.Args[0], Escape: "default", File: d.File, Line: d.Line}
	parts := d.Args[1:]
	if v, ok := strings.CutPrefix(parts[0], "escape="); ok {
		switch v {
		case "default", "json", "none":
			lf.Escape = v
		default:
			return conf.Errorf(d, "unknown log format escaping \"%s\"", v)
		}
		parts = parts[1:]
	}
	if len(parts) == 0 {
		return conf.Errorf(d, "invalid number of arguments in \"log_format\" directive")
	}
	lf.Parts = parts
	h := l.cfg.HTTP
	if h.LogFormats == nil {
		h.LogFormats = map[string]*LogFormat{}
	}
	if _, dup := h.LogFormats[lf.Name]; dup || lf.Name == "combined" {
		return conf.Errorf(d, "duplicate \"log_format\" name \"%s\"", lf.Name)
	}
	h.LogFormats[lf.Name] = lf
	return nil
}

// dAccessLog reads `access_log path [format [buffer=size] [flush=time]
// [if=condition]] | off`. Formats may be defined after use, as in nginx;
// they are checked when the runtime is built.
func dAccessLog(l *loader, d *conf.Directive, s *scope) error {
	if !s.lc.set["access_log"] {
		s.lc.AccessLogs, s.lc.AccessLogOff = nil, false
	}
	s.lc.set["access_log"] = true
	if d.Args[0] == "off" {
		if len(d.Args) > 1 {
			return conf.Errorf(d, "invalid parameter \"%s\"", d.Args[1])
		}
		s.lc.AccessLogOff = true
		return nil
	}
	al := AccessLog{Path: d.Args[0], Format: "combined", File: d.File, Line: d.Line}
	if strings.HasPrefix(al.Path, "syslog:") || strings.Contains(al.Path, "$") {
		return conf.Errorf(d, "syslog and variables in \"access_log\" are not supported")
	}
	rest := d.Args[1:]
	if len(rest) > 0 && !strings.Contains(rest[0], "=") {
		al.Format, rest = rest[0], rest[1:]
	}
	for _, a := range rest {
		k, v, _ := strings.Cut(a, "=")
		var err error
		switch k {
		case "buffer":
			al.Buffer, err = ParseSize(v)
		case "flush":
			al.Flush, err = ParseDuration(v)
		case "if":
			al.If, err = l.cfg.Vars.Compile(v)
			if err != nil {
				return conf.Errorf(d, "%v", err)
			}
		case "gzip":
			return conf.Errorf(d, "\"access_log ... gzip\" is not supported")
		default:
			return conf.Errorf(d, "invalid parameter \"%s\"", a)
		}
		if err != nil {
			return conf.Errorf(d, "invalid parameter \"%s\"", a)
		}
	}
	if al.Flush > 0 && al.Buffer == 0 {
		return conf.Errorf(d, "no buffer is defined for access_log \"%s\"", al.Path)
	}
	s.lc.AccessLogs = append(s.lc.AccessLogs, al)
	return nil
}

func dStubStatus(l *loader, d *conf.Directive, s *scope) error {
	if len(d.Args) == 1 && d.Args[0] != "on" {
		return conf.Errorf(d, "invalid parameter \"%s\"", d.Args[0])
	}
	s.lc.StubStatus = true
	return s.lc.mark(d, "stub_status")
}

// dStatusHandler reads `metrics;` (Prometheus text), `api;` (JSON, as
// nginx Plus's read-only api) and `dashboard;` (a live page): content
// handlers for a location.
func dStatusHandler(l *loader, d *conf.Directive, s *scope) error {
	if err := apiWriteArg(d, s); err != nil {
		return err
	}
	if s.lc.Status != "" {
		return conf.Errorf(d, "\"%s\" and \"%s\" in one location", s.lc.Status, d.Name)
	}
	s.lc.Status = d.Name
	s.lc.set["status_handler"] = true
	return nil
}
