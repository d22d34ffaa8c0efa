package server

import (
	"net/netip"
	"strings"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/limit"
)

// zones are the limit zones of one snapshot, by the config's pointers.
type zones struct {
	req  map[*config.ReqZone]*limit.ReqZone
	conn map[*config.ConnZone]*limit.ConnZone
}

// buildZones takes zones from the process-wide registry, so that buckets
// and connection counts of zones that keep their name and size survive a
// reload. The build is committed only when the snapshot goes live.
func buildZones(h *config.HTTP, b *limit.Build) (zones, error) {
	z := zones{req: map[*config.ReqZone]*limit.ReqZone{}, conn: map[*config.ConnZone]*limit.ConnZone{}}
	if h == nil {
		return z, nil
	}
	for _, cz := range h.ReqZones {
		lz, err := b.ReqZone(cz.Name, cz.Key.Raw(), cz.Size, cz.RateMilli)
		if err != nil {
			return z, &config.PosError{File: cz.File, Line: cz.Line, Err: err}
		}
		if sh := b.Shared(); cz.Sync && sh != nil {
			lz.Share(sh)
		}
		z.req[cz] = lz
	}
	for _, cz := range h.ConnZones {
		lz, err := b.ConnZone(cz.Name, cz.Key.Raw(), cz.Size)
		if err != nil {
			return z, &config.PosError{File: cz.File, Line: cz.Line, Err: err}
		}
		if sh := b.Shared(); cz.Sync && sh != nil {
			lz.Share(sh)
		}
		z.conn[cz] = lz
	}
	return z, nil
}

// realIP replaces the client address with the one a trusted proxy
// reports (set_real_ip_from, real_ip_header, real_ip_recursive), as
// nginx's realip module.
func (x *exchange) realIP() {
	lc := x.lc
	if len(lc.RealIPFrom) == 0 || x.realIPDone {
		return
	}
	orig := x.conn.remote.Addr()
	if !trusted(lc.RealIPFrom, orig) {
		return
	}
	var addr netip.Addr
	switch strings.ToLower(lc.RealIPHeader) {
	case "proxy_protocol":
		if !x.conn.proxyAddr.IsValid() {
			return
		}
		addr = x.conn.proxyAddr.Addr()
	case "x-forwarded-for":
		// Walk from the right: the last untrusted address is the client
		// (recursive), or the last one at all.
		var list []string
		for v := range x.req.Header.Values("X-Forwarded-For") {
			for _, p := range strings.Split(v, ",") {
				list = append(list, strings.TrimSpace(p))
			}
		}
		for i := len(list) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(list[i])
			if err != nil {
				return
			}
			addr = a.Unmap()
			if !lc.RealIPRecursive || !trusted(lc.RealIPFrom, addr) {
				break
			}
		}
	default:
		v := strings.TrimSpace(x.req.Header.Get(lc.RealIPHeader))
		a, err := netip.ParseAddr(v)
		if err != nil {
			return
		}
		addr = a.Unmap()
	}
	if !addr.IsValid() {
		return
	}
	x.realIPDone = true
	x.vc.SetRemote(netip.AddrPortFrom(addr, 0))
}

func trusted(from []netip.Prefix, a netip.Addr) bool {
	for _, p := range from {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// preaccess refuses a banned session key, then runs limit_req, then
// limit_conn, as nginx's preaccess phase. When every zone of both is
// shared through the cluster store, they are decided in one round trip to
// it, which also registers a WebSocket handshake's session. It reports
// whether the request may go on; when not, the answer is sent. After an
// internal redirect, a limit that already decided (its status variable is
// set) is not applied again, as nginx.
func (x *exchange) preaccess() (ok bool, keep bool) {
	if ok, keep := x.sessionBan(); !ok {
		return ok, keep
	}
	lc := x.lc
	reqRules, reqKeys := x.reqRules()
	connRules, connKeys := x.connRules()
	x.reserveSession()
	if limit.Together(reqRules, connRules) {
		var rider any
		if x.sessRes != nil {
			rider = x.sessRes
		}
		rd, leases, cd, sent := limit.CheckTogetherWith(reqRules, reqKeys, lc.LimitReqDryRun, connRules, connKeys, lc.LimitConnDryRun, x.leases[:0], rider)
		x.leases = leases
		if !sent && x.sessRes != nil {
			x.sessRes.Send()
		}
		if ok, keep := x.applyReq(rd); !ok {
			return ok, keep
		}
		return x.applyConn(cd)
	}
	if x.sessRes != nil {
		x.sessRes.Send()
	}
	if len(reqRules) > 0 {
		if ok, keep := x.applyReq(limit.CheckReq(reqRules, reqKeys, lc.LimitReqDryRun)); !ok {
			return ok, keep
		}
	}
	if len(connRules) > 0 {
		var d limit.ConnDecision
		x.leases, d = limit.AcquireConns(connRules, connKeys, lc.LimitConnDryRun, x.leases[:0])
		return x.applyConn(d)
	}
	return true, false
}

// reqRules are the location's limit_req rules and their keys, evaluated;
// none once limit_req has decided for the request.
func (x *exchange) reqRules() ([]limit.ReqRule, [][]byte) {
	lc := x.lc
	if len(lc.LimitReq) == 0 || x.vc.LimitReqStatus != "" {
		return nil, nil
	}
	rules := make([]limit.ReqRule, len(lc.LimitReq))
	keys := make([][]byte, len(lc.LimitReq))
	for i, r := range lc.LimitReq {
		rules[i] = limit.ReqRule{Zone: x.rt.zones.req[r.Zone], Burst: r.Burst, Delay: r.Delay, NoDelay: r.NoDelay}
		keys[i] = []byte(r.Zone.Key.Eval(x.vc))
	}
	return rules, keys
}

// connRules are the location's limit_conn rules and their keys, evaluated;
// none once limit_conn has decided for the request.
func (x *exchange) connRules() ([]limit.ConnRule, [][]byte) {
	lc := x.lc
	if len(lc.LimitConn) == 0 || x.vc.LimitConnStatus != "" {
		return nil, nil
	}
	rules := make([]limit.ConnRule, len(lc.LimitConn))
	keys := make([][]byte, len(lc.LimitConn))
	for i, r := range lc.LimitConn {
		rules[i] = limit.ConnRule{Zone: x.rt.zones.conn[r.Zone], Limit: r.N}
		keys[i] = []byte(r.Zone.Key.Eval(x.vc))
	}
	return rules, keys
}

// applyReq logs and carries out a limit_req decision: a rejection is
// answered, a delay waited.
func (x *exchange) applyReq(d limit.ReqDecision) (ok bool, keep bool) {
	lc := x.lc
	x.vc.LimitReqStatus = d.Status.String()
	switch d.Status {
	case limit.ReqRejected, limit.ReqRejectedDryRun:
		name := ""
		if d.Zone != nil {
			name = d.Zone.Name()
		}
		dry := ""
		if d.Status == limit.ReqRejectedDryRun {
			dry = ", dry run"
		}
		x.logRequest(errlog.Level(lc.LimitReqLog), "", "limiting requests%s, excess: %d.%03d by zone \"%s\"", dry, d.Excess/1000, d.Excess%1000, name)
		x.conn.srv.metrics.LimitRejected(name, "req")
		if d.Status == limit.ReqRejected {
			return false, x.errorPage(lc.LimitReqStatus)
		}
	case limit.ReqDelayed:
		// nginx logs delays one level below refusals.
		if lvl := max(errlog.Level(lc.LimitReqLog)-1, errlog.Debug); x.log.Enabled(lvl) {
			x.log.Printf(lvl, x.conn.id, "delaying request, excess: %d.%03d, by zone \"%s\", client: %s", d.Excess/1000, d.Excess%1000, d.Zone.Name(), x.vc.Remote.Addr())
		}
		if err := x.conn.pause(d.Delay); err != nil {
			return false, x.abandon(err)
		}
	}
	return true, false
}

// applyConn logs and answers a limit_conn rejection.
func (x *exchange) applyConn(d limit.ConnDecision) (ok bool, keep bool) {
	lc := x.lc
	x.vc.LimitConnStatus = d.Status.String()
	if d.Status != limit.ConnRejected && d.Status != limit.ConnRejectedDryRun {
		return true, false
	}
	name := ""
	if d.Zone != nil {
		name = d.Zone.Name()
	}
	what := "limiting connections"
	if d.Err == limit.ErrZoneFull {
		what = "could not allocate node"
	}
	if d.Status == limit.ConnRejectedDryRun {
		what += ", dry run,"
	}
	x.logRequest(errlog.Level(lc.LimitConnLog), "", "%s by zone \"%s\"", what, name)
	x.conn.srv.metrics.LimitRejected(name, "conn")
	if d.Status == limit.ConnRejected {
		return false, x.errorPage(lc.LimitConnStatus)
	}
	return true, false
}
