package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/conf"
)

// Reauth is websocket_reauth_interval: every Interval, each open tunnel of
// the location asks its auth_request again, with the handshake's headers.
type Reauth struct {
	Interval time.Duration // 0: no re-authorisation
	// CloseOnError closes a session whose check fails for want of an
	// answer (on_error=close): a status other than 2xx, 401 and 403, or
	// an auth backend that cannot be reached. By default such a session
	// is kept (fail-open).
	CloseOnError bool
	File         string
	Line         int
}

// dReauth reads `websocket_reauth_interval TIME [on_error=close|keep]`,
// or `off` for a location below one that sets it.
func dReauth(l *loader, d *conf.Directive, s *scope) error {
	if d.Args[0] == "off" && len(d.Args) == 1 {
		s.lc.WS.Reauth = Reauth{}
		return s.lc.mark(d, d.Name)
	}
	v, err := ParseDuration(d.Args[0])
	if err != nil || v <= 0 {
		return conf.Errorf(d, "\"%s\" directive invalid value \"%s\"", d.Name, d.Args[0])
	}
	r := Reauth{Interval: v, File: d.File, Line: d.Line}
	for _, a := range d.Args[1:] {
		switch a {
		case "on_error=close":
			r.CloseOnError = true
		case "on_error=keep":
		default:
			return conf.Errorf(d, "invalid parameter \"%s\", it must be \"on_error=close\" or \"on_error=keep\"", a)
		}
	}
	s.lc.WS.Reauth = r
	return s.lc.mark(d, d.Name)
}

// checkReauth refuses a location that proxies with websocket_reauth_interval
// in effect but no auth_request to ask: its sessions could never be
// checked. The locations that auth_request asks are exempt, as they
// answer subrequests, not handshakes.
func checkReauth(h *HTTP) error {
	for _, srv := range h.Servers {
		targets := authTargets(srv)
		var bad error
		srv.Walk(func(loc *Location) {
			c := loc.Conf
			if bad != nil || c.WS.Reauth.Interval == 0 || c.Proxy == nil || c.Auth.Request != "" ||
				loc.Modifier == "if" || loc.Modifier == "limit_except" || targets[loc.Path] {
				return
			}
			r := c.WS.Reauth
			bad = &conf.Error{File: r.File, Line: r.Line, Msg: fmt.Sprintf("\"websocket_reauth_interval\" needs \"auth_request\" in location \"%s\"", strings.TrimSpace(loc.Modifier+" "+loc.Path))}
		})
		if bad != nil {
			return bad
		}
	}
	return nil
}

func init() {
	mergers["websocket_reauth_interval"] = func(c, p *LocConf) { c.WS.Reauth = p.WS.Reauth }
}
