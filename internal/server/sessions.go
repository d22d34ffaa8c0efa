package server

import (
	"github.com/wsgate/wsgate/internal/errlog"
)

// sessionBan refuses, with 403, a request whose websocket_session_key is
// on the cluster's ban list. The list is held in memory: the check asks
// the store nothing.
func (x *exchange) sessionBan() (ok bool, keep bool) {
	tk := x.lc.Cluster.SessionKey
	if tk == nil {
		return true, false
	}
	st := x.conn.srv.cluster.Load()
	if st == nil {
		return true, false
	}
	if key := tk.Eval(x.vc); key == "" || !st.Banned(key) {
		return true, false
	}
	x.logRequest(errlog.Error, "", "session key is banned")
	return false, x.errorPage(403)
}

// reserveSession registers a WebSocket handshake's session under the
// location's websocket_session_key before the limits run, so that its
// store write rides in their round trip; the tunnel attaches itself to
// it (registerSession), and a handshake that fails cancels it.
func (x *exchange) reserveSession() {
	tk := x.lc.Cluster.SessionKey
	if tk == nil || x.sessRes != nil || !x.upgrade() {
		return
	}
	st := x.conn.srv.cluster.Load()
	if st == nil {
		return
	}
	if key := tk.Eval(x.vc); key != "" {
		x.sessRes = st.Reserve(key, x.vc.Remote.Addr().String(), x.req.RequestURI)
	}
}

// sessionKey is the request's websocket_session_key value; "" when the
// location has none.
func (x *exchange) sessionKey() string {
	if tk := x.lc.Cluster.SessionKey; tk != nil {
		return tk.Eval(x.vc)
	}
	return ""
}

// registerSession registers e's tunnel in the cluster store under the
// location's websocket_session_key, so that any instance can list and
// close it, or attaches it to the session reserved at preaccess. It
// returns the registration, or nil when there is nothing to register.
func (x *exchange) registerSession(e *tunnelEnd) *clusterSession {
	if r := x.sessRes; r != nil {
		x.sessRes = nil
		return &clusterSession{unreg: r.Attach(e.shutdown), key: r.Key(), uri: x.req.RequestURI}
	}
	tk := x.lc.Cluster.SessionKey
	if tk == nil {
		return nil
	}
	st := x.conn.srv.cluster.Load()
	if st == nil {
		return nil
	}
	key := tk.Eval(x.vc)
	if key == "" {
		return nil
	}
	return &clusterSession{unreg: st.Register(key, x.vc.Remote.Addr().String(), x.req.RequestURI, e.shutdown), key: key, uri: x.req.RequestURI}
}
