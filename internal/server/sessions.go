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

// registerSession registers e's tunnel in the cluster store under the
// location's websocket_session_key, so that any instance can list and
// close it. It sets e.unreg to what unregisters it, left nil when there is
// nothing to register, and e.sessKey and e.sessURI.
func (x *exchange) registerSession(e *tunnelEnd) {
	tk := x.lc.Cluster.SessionKey
	if tk == nil {
		return
	}
	st := x.conn.srv.cluster.Load()
	if st == nil {
		return
	}
	key := tk.Eval(x.vc)
	if key == "" {
		return
	}
	e.sessKey, e.sessURI = key, x.req.RequestURI
	e.unreg = st.Register(key, x.vc.Remote.Addr().String(), x.req.RequestURI, e.shutdown)
}
