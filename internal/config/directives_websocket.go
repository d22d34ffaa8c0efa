package config

import (
	"github.com/wsgate/wsgate/internal/conf"
	"strconv"
	"strings"
)

// Readers of the websocket_* directives that need more than a duration.

func wsSize(l *loader, d *conf.Directive, s *scope) error {
	v, err := ParseSize(d.Args[0])
	if err != nil || v == 0 {
		return conf.Errorf(d, "\"%s\" directive invalid value", d.Name)
	}
	if d.Name == "websocket_max_frame_size" {
		s.lc.WS.MaxFrameSize = v
	} else {
		s.lc.WS.MaxMessageSize = v
	}
	return s.lc.mark(d, d.Name)
}

// dMessageRate reads `websocket_message_rate N/s|N/m [burst=M] [client|both]`.
func dMessageRate(l *loader, d *conf.Directive, s *scope) error {
	v := d.Args[0]
	per := 1.0
	switch {
	case strings.HasSuffix(v, "/s"):
		v = v[:len(v)-2]
	case strings.HasSuffix(v, "/m"):
		v, per = v[:len(v)-2], 60
	default:
		return conf.Errorf(d, "invalid rate \"%s\"", d.Args[0])
	}
	n, err := strconv.ParseFloat(v, 64)
	if err != nil || n <= 0 {
		return conf.Errorf(d, "invalid rate \"%s\"", d.Args[0])
	}
	s.lc.WS.MessageRate = n / per
	for _, a := range d.Args[1:] {
		switch {
		case strings.HasPrefix(a, "burst="):
			b, err := strconv.Atoi(a[len("burst="):])
			if err != nil || b < 0 {
				return conf.Errorf(d, "invalid burst \"%s\"", a)
			}
			s.lc.WS.MessageBurst = b
		case a == "client":
			s.lc.WS.RateBoth = false
		case a == "both":
			s.lc.WS.RateBoth = true
		default:
			return conf.Errorf(d, "invalid parameter \"%s\"", a)
		}
	}
	return s.lc.mark(d, d.Name)
}

// dOrigins reads `websocket_allowed_origins origin ...`: exact origins
// ("https://app.example.com"), wildcards ("*.example.com" or
// "https://*.example.com") and "null", which must be named to be allowed.
func dOrigins(l *loader, d *conf.Directive, s *scope) error {
	for _, o := range d.Args {
		lo := strings.ToLower(o)
		host := lo
		if i := strings.Index(lo, "://"); i >= 0 {
			host = lo[i+3:]
		}
		if lo != "null" && (host == "" || strings.ContainsAny(host, "/?#") || strings.Count(host, "*") > 1 || (strings.Contains(host, "*") && !strings.HasPrefix(host, "*."))) {
			return conf.Errorf(d, "invalid origin \"%s\"", o)
		}
		s.lc.WS.Origins = append(s.lc.WS.Origins, lo)
	}
	return s.lc.mark(d, d.Name)
}

func dSubprotocols(l *loader, d *conf.Directive, s *scope) error {
	for _, p := range d.Args {
		if !validHeaderName(p) {
			return conf.Errorf(d, "invalid subprotocol \"%s\"", p)
		}
	}
	s.lc.WS.Subprotocols = append([]string(nil), d.Args...)
	return s.lc.mark(d, d.Name)
}
