package server

import (
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/tunnel"
	"github.com/wsgate/wsgate/internal/vars"
)

// websocket_reauth_interval: every interval, an open tunnel asks its
// location's auth_request again, as its handshake did: with the
// handshake's request (headers and cookies) and variables. A 2xx keeps
// it, 401 and 403 close it with 1008, anything else (an error status, an
// auth backend that cannot be reached) keeps it unless on_error=close.

// reauthConcurrency bounds the checks that run at once in the process,
// so that a burst of due checks reaches the auth backends a few at a time.
const reauthConcurrency = 32

var reauthSlots = make(chan struct{}, reauthConcurrency)

// reauthSession is what a tunnel keeps to re-authorise itself: its
// request (one string holds the whole head), its connection, and of its
// variables only those a later check cannot compute again. Only tunnels
// of locations with websocket_reauth_interval have one.
type reauthSession struct {
	mu      sync.Mutex // guards stopped, timer's rescheduling and logVC
	stopped bool
	timer   *time.Timer
	t       *tunnel.Tunnel
	every   time.Duration
	onError bool // on_error=close

	conn  *conn
	rt    *generation
	req   *http1.Request
	srv   *config.Server
	loc   *config.Location
	lc    *config.LocConf
	log   *errlog.Logger
	state reqState
	// logVC is the variables the session's access log line is written
	// from (nil without one): each check's auth_request_set values go
	// there too, as the handshake's did.
	logVC *vars.Ctx
}

// reqState is what a request's variables hold that its head and
// connection do not tell: where rewrites and realip left it, its
// captures, and what set and auth_request_set gave its variables.
type reqState struct {
	path, args     string
	uriChanged     bool
	remote, realIP netip.AddrPort
	captures       []string
	assigned       []vars.Assigned
}

func saveState(vc *vars.Ctx) reqState {
	caps := make([]string, len(vc.Captures))
	for i, c := range vc.Captures {
		caps[i] = strings.Clone(c)
	}
	return reqState{path: vc.Path, args: vc.Args, uriChanged: vc.URIChanged, remote: vc.Remote, realIP: vc.RealRemote,
		captures: caps, assigned: vc.Assigned()}
}

// startReauth arranges the re-authorisation of e's tunnel when x's
// location asks for it, and returns nil otherwise. The first check comes
// at a random moment within the interval, so that sessions opened
// together are checked apart, and each check one interval after the
// previous one.
func (x *exchange) startReauth(e *tunnelEnd) *reauthSession {
	ra := x.lc.WS.Reauth
	if ra.Interval <= 0 || x.lc.Auth.Request == "" {
		return nil
	}
	r := &reauthSession{t: e.t, every: ra.Interval, onError: ra.CloseOnError,
		conn: x.conn, rt: x.rt, req: x.req, srv: x.srv, loc: x.loc, lc: x.lc, log: x.log, state: saveState(x.vc)}
	if e.sess != nil {
		r.logVC = e.sess.vc
	}
	r.mu.Lock()
	r.timer = time.AfterFunc(firstCheck(ra.Interval), r.due)
	r.mu.Unlock()
	return r
}

// firstCheck is when a new session's first check comes: at a uniformly
// random moment in (0, every], so that the checks of sessions opened
// together spread over the interval, and none waits longer than one
// interval after its handshake.
func firstCheck(every time.Duration) time.Duration {
	return time.Duration(rand.Int64N(int64(every))) + 1
}

// due runs a check when its turn comes and closes the tunnel or
// schedules the next check.
func (r *reauthSession) due() {
	began := time.Now()
	reauthSlots <- struct{}{}
	status, ran := r.check()
	<-reauthSlots
	if !ran {
		return
	}
	if r.refused(status) {
		r.t.Close(tunnel.ReasonReauth, tunnel.CodePolicyViolation, "reauthorization failed")
		return
	}
	r.mu.Lock()
	if !r.stopped {
		r.timer.Reset(max(r.every-time.Since(began), 0))
	}
	r.mu.Unlock()
}

// check asks the auth_request location, with the request's variables
// rebuilt as they were at the handshake, and returns its status; ran is
// false once the tunnel has closed. It holds no lock while it waits for
// the auth backend, so that a slow one never holds up the tunnel's end.
func (r *reauthSession) check() (status int, ran bool) {
	if !r.live(nil) {
		return 0, false
	}
	x := r.exchange()
	defer ctxPool.Put(x.vc)
	if r.lc.SatisfyAny && r.admittedOtherwise(x) {
		x.logRequest(errlog.Debug, "", "WebSocket session re-authorized by allow or auth_basic")
		return 200, true
	}
	sets := r.lc.Auth.Set
	vals := make([]string, len(sets))
	status = x.subrequest(r.lc.Auth.Request, func(int, http1.Header) {
		for i, s := range sets {
			vals[i] = strings.Clone(s.Value.Eval(x.vc))
			x.vc.Set(s.Var, vals[i])
		}
	})
	if !r.live(vals) {
		return 0, false
	}
	switch {
	case status >= 200 && status < 300:
		x.logRequest(errlog.Debug, "", "WebSocket session re-authorized with %d", status)
	case status == 401 || status == 403:
		x.logRequest(errlog.Info, "", "WebSocket session refused by re-authorization with %d, closing it", status)
	default:
		what := "keeping it"
		if r.onError {
			what = "closing it"
		}
		x.logRequest(errlog.Error, "", "auth request unexpected status: %d while re-authorizing a WebSocket session, %s", status, what)
	}
	return status, true
}

// live reports whether the tunnel is still open; if so, and vals holds a
// check's auth_request_set values, they go to the session's log line.
func (r *reauthSession) live(vals []string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return false
	}
	if r.logVC != nil {
		for i, s := range r.lc.Auth.Set[:len(vals)] {
			r.logVC.Set(s.Var, vals[i])
		}
	}
	return true
}

// exchange rebuilds the handshake's exchange, in the location that
// started the tunnel, with fresh variables from the pool.
func (r *reauthSession) exchange() *exchange {
	x := &exchange{conn: r.conn, rt: r.rt, req: r.req, srv: r.srv, close: true}
	vc := ctxPool.Get().(*vars.Ctx)
	vc.Reset(r.rt.cfg.Vars)
	x.vc = vc
	x.fillVars(r.state.captures)
	st := &r.state
	vc.Path, vc.Args, vc.URIChanged = st.path, st.args, st.uriChanged
	vc.Remote, vc.RealRemote = st.remote, st.realIP
	vc.Assign(st.assigned)
	vc.Warn = x
	x.loc, x.lc, x.log = r.loc, r.lc, r.log
	return x
}

// admittedOtherwise reports whether, under `satisfy any`, allow/deny or
// auth_basic (when the request carries credentials) still let the
// request in: auth_request need not be asked.
func (r *reauthSession) admittedOtherwise(x *exchange) bool {
	if x.accessRules() == passed {
		return true
	}
	return r.req.Header.Has("Authorization") && x.authBasic() == passed
}

// refused reports whether a check's status ends the session.
func (r *reauthSession) refused(status int) bool {
	switch {
	case status >= 200 && status < 300:
		return false
	case status == 401 || status == 403:
		return true
	}
	return r.onError
}

// stop ends the checks: a check still running finds it so when it has
// its answer, and leaves the tunnel's variables, which are then the
// session log's alone, untouched.
func (r *reauthSession) stop() {
	r.mu.Lock()
	r.stopped = true
	r.timer.Stop()
	r.mu.Unlock()
}

// endSession is the end of a tunnel that kept its request, its
// variables or its span: the checks stop, then the session is logged and
// its span ends.
func (e *tunnelEnd) endSession(r *tunnel.Result) {
	ex := e.extra
	if ex != nil && ex.reauth != nil {
		ex.reauth.stop()
	}
	if e.sess != nil {
		e.logSession(r)
	}
	if ex != nil && ex.span != nil {
		otelSessionEnd(e.srv, ex.span, r)
	}
}
