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
