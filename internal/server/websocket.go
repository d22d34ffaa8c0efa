package server

import (
	"math/rand/v2"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/tunnel"
	"github.com/wsgate/wsgate/internal/upstream"
	"github.com/wsgate/wsgate/internal/wsframe"
)

// checkOrigin applies websocket_allowed_origins and
// websocket_subprotocols (the access phase, after allow/deny).
func (x *exchange) checkOrigin() (ok, keep bool) {
	req := x.req
	if !x.isUpgrade() || x.lc.Proxy == nil {
		return true, false
	}
	ws := x.lc.WS
	if len(ws.Origins) > 0 {
		origin, has := req.Header.Get("Origin"), req.Header.Has("Origin")
		// A client that sends no Origin is not a browser, and cross-site
		// WebSocket hijacking needs a browser: it is let through.
		if has && !originAllowed(ws.Origins, origin) {
			x.logRequest(errlog.Error, "", "WebSocket origin \"%s\" is not allowed", origin)
			return false, x.errorPage(403)
		}
	}
	if len(ws.Subprotocols) > 0 && req.Header.Has("Sec-WebSocket-Protocol") {
		if !subprotocolAllowed(ws.Subprotocols, req.Header.Join("Sec-WebSocket-Protocol", ",")) {
			x.logRequest(errlog.Error, "", "no allowed WebSocket subprotocol in \"%s\"", req.Header.Join("Sec-WebSocket-Protocol", ","))
			return false, x.errorPage(403)
		}
	}
	return true, false
}

// checkWebSocket validates a WebSocket handshake before any backend is
// contacted (the end of the access phase): RFC 6455's required headers.
// It applies only where wsgate acts on frames (websocket_frames on); with
// it off, the request goes to the backend as nginx would send it.
func (x *exchange) checkWebSocket() (ok, keep bool) {
	req := x.req
	if !strings.EqualFold(req.Header.Get("Upgrade"), "websocket") || x.lc.Proxy == nil || !x.lc.WebSocketFrames {
		return true, false
	}
	bad := func(why string) (bool, bool) {
		x.logRequest(errlog.Info, "", "invalid WebSocket handshake: %s", why)
		x.close = true
		return false, x.errorPage(400)
	}
	switch {
	case req.Method != "GET":
		return bad("method " + req.Method)
	case req.Major != 1 || req.Minor < 1:
		return bad("HTTP/1.0")
	case !req.Header.HasToken("Connection", "upgrade"):
		return bad("no \"Connection: Upgrade\"")
	case !wsframe.ValidKey(req.Header.Get("Sec-WebSocket-Key")):
		return bad("\"Sec-WebSocket-Key\" is not 16 bytes of base64")
	}
	switch v := req.Header.Get("Sec-WebSocket-Version"); v {
	case "13":
	case "":
		return bad("no \"Sec-WebSocket-Version\"")
	default:
		x.logRequest(errlog.Info, "", "unsupported WebSocket version \"%s\"", v)
		x.extra = append(x.extra, httpField("Sec-WebSocket-Version", "13"))
		return false, x.errorPage(426)
	}
	return true, false
}

// originAllowed matches an Origin against exact origins, "*.example.com"
// (any scheme) and "https://*.example.com" patterns; "null" only when
// listed.
func originAllowed(allowed []string, origin string) bool {
	o := strings.ToLower(origin)
	scheme, host, ok := strings.Cut(o, "://")
	if !ok {
		scheme, host = "", o
	}
	for _, a := range allowed {
		if a == o {
			return true
		}
		pscheme, phost, hasScheme := strings.Cut(a, "://")
		if !hasScheme {
			pscheme, phost = "", a
		}
		if hasScheme && pscheme != scheme {
			continue
		}
		if !hasScheme && phost == host && o != "null" {
			return true
		}
		if suffix, wild := strings.CutPrefix(phost, "*"); wild && strings.HasSuffix(hostOnly(host), suffix) && hostOnly(host) != suffix[1:] {
			return true
		}
	}
	return false
}

func hostOnly(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		return h[:i]
	}
	return h
}

func subprotocolAllowed(allowed []string, offered string) bool {
	for _, p := range strings.Split(offered, ",") {
		p = strings.TrimSpace(p)
		for _, a := range allowed {
			if strings.EqualFold(a, p) {
				return true
			}
		}
	}
	return false
}

// tunnelInfo is what a reload needs to know about an open tunnel to decide
// whether its server, location, upstream and peer still exist.
type tunnelInfo struct {
	srv   *config.Server   // of the snapshot the tunnel started under; immutable
	loc   *config.Location // of that snapshot too; its key is computed on reload only
	ups   string
	peer  *upstream.Peer
	drain time.Duration
	// rebalanced marks a tunnel already asked to close by a rebalancer
	// (guarded by Server.mu).
	rebalanced bool
	// tried marks a tunnel that an upgrade has tried to hand over
	// (guarded by Server.mu).
	tried bool
	// virtual marks an HTTP/2 stream's tunnel: its TCP connection is its
	// conn's. Immutable.
	virtual bool
	started int64 // when the tunnel was registered, Unix nanoseconds
	// end is the tunnel's tunnelEnd, for a binary upgrade (handover.go)
	// and captures.
	end *tunnelEnd
}

func locKey(loc *config.Location) string {
	for loc != nil && loc.Modifier == "if" {
		loc = loc.Parent
	}
	if loc == nil {
		return ""
	}
	var parts []string
	for l := loc; l != nil && l.Parent != nil; l = l.Parent {
		parts = append(parts, l.Modifier+" "+l.Path)
	}
	return strings.Join(parts, " < ")
}

// stillServed reports whether rt keeps the tunnel's server (a listen
// address and a name in common), its location, its upstream and its peer.
func (ti *tunnelInfo) stillServed(rt *generation) bool {
	if rt.cfg.HTTP == nil {
		return false
	}
	key := locKey(ti.loc)
	for _, srv := range rt.cfg.HTTP.Servers {
		if !shareListen(srv, ti.srv) || !shareName(srv, ti.srv) {
			continue
		}
		found := false
		srv.Walk(func(l *config.Location) {
			if !found && l.Modifier != "if" && locKey(l) == key {
				found = ti.ups == "" || (l.Conf.Proxy != nil && (l.Conf.Proxy.Dynamic != nil || l.Conf.Proxy.Upstream != nil && l.Conf.Proxy.Upstream.Name == ti.ups))
				if found && ti.peer != nil {
					if p := rt.pools[l.Conf.Proxy.Upstream]; p != nil && !p.Contains(ti.peer) {
						found = false
					}
				}
			}
		})
		if found {
			return true
		}
	}
	return false
}

func shareListen(a, b *config.Server) bool {
	for _, x := range a.Listens {
		for _, y := range b.Listens {
			if x.AddrPort == y.AddrPort {
				return true
			}
		}
	}
	return false
}

func shareName(a, b *config.Server) bool {
	for _, x := range a.Names {
		for _, y := range b.Names {
			if x.Name == y.Name {
				return true
			}
		}
	}
	return false
}

// drain closes tunnels with close 1001, each at a random moment within its
// location's websocket_drain_period, so that clients do not all reconnect
// at once; why is what their Result.Reason says.
func drain(ts map[*tunnel.Tunnel]*tunnelInfo, why tunnel.Reason, reason string) {
	for t, ti := range ts {
		delay := time.Duration(0)
		if ti.drain > 0 {
			delay = time.Duration(rand.Int64N(int64(ti.drain)))
		}
		go func() {
			if delay > 0 {
				time.Sleep(delay)
			}
			t.Close(why, 1001, reason)
		}()
	}
}

// extensionRSV returns the RSV bits that the extensions a backend accepted
// (its Sec-WebSocket-Extensions) may set: RSV1 for permessage-deflate, all
// three for an extension wsgate does not know. Offloaded, the tunnel
// relays plain frames only.
func extensionRSV(accepted string, offloaded bool) uint8 {
	var rsv uint8
	if offloaded {
		return 0
	}
	for e := range strings.SplitSeq(accepted, ",") {
		name, _, _ := strings.Cut(e, ";")
		switch name = strings.TrimSpace(name); {
		case name == "":
		case strings.EqualFold(name, "permessage-deflate"):
			rsv |= 4
		default:
			rsv = 7
		}
	}
	return rsv
}

// sessionTime is a new tunnel's lifetime under websocket_max_session_time:
// the maximum less a random part of the jitter, so that sessions opened
// together do not all end together; 0 for none.
func sessionTime(ws *config.WebSocket) time.Duration {
	if ws.MaxSession <= 0 {
		return 0
	}
	if ws.SessionJitter <= 0 {
		return ws.MaxSession
	}
	return ws.MaxSession - time.Duration(rand.Int64N(int64(ws.SessionJitter)+1))
}
