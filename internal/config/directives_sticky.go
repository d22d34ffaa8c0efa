package config

import (
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/conf"
	"github.com/wsgate/wsgate/internal/vars"
)

// StickyLearn is nginx Plus's `sticky learn`: the first non-empty Create
// variable, evaluated on the backend's response head, names a session that
// the upstream remembers with the peer that answered; a request whose first
// non-empty Lookup variable names a remembered session goes to that peer.
type StickyLearn struct {
	Create  []*vars.Template
	Lookup  []*vars.Template
	Zone    string
	Size    int64         // the zone holds Size/EntryBytes sessions, the least recently used going first
	Timeout time.Duration // a session unused this long is forgotten; 10m by default
	Header  bool          // header: accepted; wsgate always learns from the response head
	Sync    bool          // sync: accepted; the sessions stay in this process
}

// stickyLearn reads `sticky learn create=$v lookup=$v zone=name:size
// [timeout=time] [header] [sync]`; create= and lookup= may repeat.
func (l *loader) stickyLearn(d *conf.Directive, s *scope) error {
	sl := &StickyLearn{Timeout: 10 * time.Minute}
	for _, a := range d.Args[1:] {
		k, v, _ := strings.Cut(a, "=")
		var err error
		switch k {
		case "create", "lookup":
			if !strings.HasPrefix(v, "$") {
				return conf.Errorf(d, "invalid parameter \"%s\": a variable is expected", a)
			}
			t, err := l.cfg.Vars.Compile(v)
			if err != nil {
				return conf.Errorf(d, "%v", err)
			}
			if k == "create" {
				sl.Create = append(sl.Create, t)
			} else {
				sl.Lookup = append(sl.Lookup, t)
			}
		case "zone":
			if sl.Zone != "" {
				return conf.Errorf(d, "duplicate parameter \"%s\"", a)
			}
			if sl.Zone, sl.Size, err = zoneArg(d, a); err != nil {
				return err
			}
		case "timeout":
			if sl.Timeout, err = ParseDuration(v); err != nil || sl.Timeout <= 0 {
				return conf.Errorf(d, "invalid parameter \"%s\"", a)
			}
		case "header", "sync":
			if v != "" || strings.Contains(a, "=") {
				return conf.Errorf(d, "invalid parameter \"%s\"", a)
			}
			sl.Header = sl.Header || k == "header"
			sl.Sync = sl.Sync || k == "sync"
		default:
			return conf.Errorf(d, "invalid parameter \"%s\"", a)
		}
	}
	switch {
	case sl.Create == nil:
		return conf.Errorf(d, "\"create\" parameter is missing")
	case sl.Lookup == nil:
		return conf.Errorf(d, "\"lookup\" parameter is missing")
	case sl.Zone == "":
		return conf.Errorf(d, "\"zone\" parameter is missing")
	}
	for _, u := range l.cfg.HTTP.Upstreams {
		if u.StickyLearn != nil && u.StickyLearn.Zone == sl.Zone {
			return conf.Errorf(d, "duplicate zone \"%s\"", sl.Zone)
		}
	}
	s.ups.StickyLearn = sl
	return nil
}

// dNTLM reads nginx Plus's `ntlm;`; the upstream needs `keepalive`.
func dNTLM(l *loader, d *conf.Directive, s *scope) error {
	if s.ups.NTLM {
		return conf.Errorf(d, "\"ntlm\" directive is duplicate")
	}
	s.ups.NTLM = true
	return nil
}
