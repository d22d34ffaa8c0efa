package config

import (
	"github.com/wsgate/wsgate/internal/conf"
	"strconv"
)

// Readers of the client connection limits and keep-alive settings.

func dKeepaliveTimeout(l *loader, d *conf.Directive, s *scope) error {
	v, err := ParseDuration(d.Args[0])
	if err != nil {
		return conf.Errorf(d, "invalid value \"%s\" in \"keepalive_timeout\" directive", d.Args[0])
	}
	if s.kind == cUpstream {
		s.ups.KeepaliveTimeout = v
		return nil
	}
	s.lc.KeepaliveTimeout = v
	return s.lc.mark(d, "keepalive_timeout")
}

func dClientMaxBody(l *loader, d *conf.Directive, s *scope) error {
	n, err := ParseSize(d.Args[0])
	if err != nil {
		return conf.Errorf(d, "\"client_max_body_size\" directive invalid value")
	}
	s.lc.ClientMaxBody = n
	return s.lc.mark(d, "client_max_body_size")
}

func dClientBodyBuffer(l *loader, d *conf.Directive, s *scope) error {
	n, err := ParseSize(d.Args[0])
	if err != nil || n < 1 {
		return conf.Errorf(d, "\"client_body_buffer_size\" directive invalid value")
	}
	s.lc.ClientBodyBuffer = n
	return s.lc.mark(d, "client_body_buffer_size")
}

// dClientBodyTemp reads client_body_temp_path PATH [LEVEL1 [LEVEL2
// [LEVEL3]]]. Temporary files are unlinked as soon as they are created, so
// the subdirectory levels, which spread many files over directories, are
// checked (1 or 2 digits each, as nginx) and otherwise not needed.
func dClientBodyTemp(l *loader, d *conf.Directive, s *scope) error {
	for _, a := range d.Args[1:] {
		if a != "1" && a != "2" {
			return conf.Errorf(d, "invalid value \"%s\" in \"client_body_temp_path\" directive", a)
		}
	}
	s.lc.ClientBodyTemp = d.Args[0]
	return s.lc.mark(d, "client_body_temp_path")
}

func dClientHeaderBuffer(l *loader, d *conf.Directive, s *scope) error {
	v, err := ParseSize(d.Args[0])
	if err != nil || v < 64 || v > 1<<20 {
		return conf.Errorf(d, "\"%s\" directive invalid value", d.Name)
	}
	s.lc.Client.HeaderBufferSize = int(v)
	return s.lc.mark(d, d.Name)
}

func dLargeBuffers(l *loader, d *conf.Directive, s *scope) error {
	n, err := strconv.Atoi(d.Args[0])
	size, err2 := ParseSize(d.Args[1])
	if err != nil || err2 != nil || n < 1 || n > 64 || size < 64 || size > 1<<20 {
		return conf.Errorf(d, "invalid value \"%s %s\" in \"%s\" directive", d.Args[0], d.Args[1], d.Name)
	}
	s.lc.Client.LargeBuffers = [2]int{n, int(size)}
	return s.lc.mark(d, d.Name)
}

func dResetTimedOut(l *loader, d *conf.Directive, s *scope) error {
	v, err := parseFlag(d.Args[0])
	if err != nil {
		return conf.Errorf(d, "invalid value \"%s\" in \"%s\" directive, it must be \"on\" or \"off\"", d.Args[0], d.Name)
	}
	s.lc.Client.ResetTimedOut = v
	return s.lc.mark(d, d.Name)
}
