package server

import (
	"bufio"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/internal/auth"
	"github.com/wsgate/wsgate/internal/backend"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/crypt"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/proxy"
	"github.com/wsgate/wsgate/internal/vars"
)

// The results of one access check: declined (not configured here), passed,
// or a status to answer with.
const (
	declined = -1
	passed   = 0
)

// access is nginx's access phase: allow/deny, auth_basic, then
// auth_request. Under `satisfy all` the first refusal answers; under
// `satisfy any` one pass lets the request in, and when every configured
// check refuses, 401 wins over 403. Any other status answers at once. A
// 401 waits auth_delay first.
func (x *exchange) access() (ok bool, keep bool) {
	refused, kept := 0, len(x.extra)
	for _, check := range [...]func() int{x.accessRules, x.authBasic, x.authRequest} {
		switch st := check(); {
		case st == declined:
		case st == passed:
			if x.lc.SatisfyAny {
				x.extra = x.extra[:kept] // a challenge of a refused check is not sent
				return true, false
			}
		case (st == 401 || st == 403) && x.lc.SatisfyAny:
			if refused != 401 {
				refused = st
			}
		default:
			return false, x.refuse(st)
		}
	}
	if refused != 0 {
		return false, x.refuse(refused)
	}
	return true, false
}

// refuse answers the access phase's status.
func (x *exchange) refuse(status int) bool {
	if status == 401 && x.lc.AuthDelay > 0 {
		time.Sleep(x.lc.AuthDelay)
	}
	return x.errorPage(status)
}

// accessRules applies allow and deny (ngx_http_access_module).
func (x *exchange) accessRules() int {
	a := x.vc.Remote.Addr().Unmap()
	for _, r := range x.lc.Access {
		if r.All || r.Prefix.Contains(a) {
			if r.Allow {
				return passed
			}
			if !x.lc.SatisfyAny {
				x.logRequest(errlog.Error, "", "access forbidden by rule")
			}
			return 403
		}
	}
	return declined
}

// authBasic checks the request's Basic credentials against the user file
// (ngx_http_auth_basic_module).
func (x *exchange) authBasic() int {
	ac := &x.lc.Auth
	if !ac.Basic() {
		return declined
	}
	realm := ac.Realm.Eval(x.vc)
	if realm == "off" {
		return declined
	}
	user, password, ok := auth.Credentials(x.req.Header.Get("Authorization"))
	if !ok {
		x.logRequest(errlog.Info, "", "no user/password was provided for basic authentication")
		return x.challenge(realm)
	}
	file := ac.UserFile.Eval(x.vc)
	if !filepath.IsAbs(file) {
		file = filepath.Join(ac.Prefix, file)
	}
	hash, found, status := x.lookupUser(file, user)
	if status != passed {
		return status
	}
	if !found {
		x.logRequest(errlog.Error, "", "user \"%s\" was not found in \"%s\"", user, file)
		return x.challenge(realm)
	}
	if !crypt.Check(hash, password) {
		x.logRequest(errlog.Error, "", "user \"%s\": password mismatch", user)
		return x.challenge(realm)
	}
	return passed
}

// lookupUser finds user's hash in an htpasswd file, read through a
// small buffer as nginx does. A missing file is 403, any other failure
// 500, as nginx.
func (x *exchange) lookupUser(file, user string) (hash string, found bool, status int) {
	f, err := os.Open(file)
	if err == nil {
		defer f.Close()
		if hash, found, err = auth.Lookup(bufio.NewReaderSize(f, 2048), user); err == nil {
			return hash, found, passed
		}
		x.logRequest(errlog.Crit, "", "read() \"%s\" failed (%v)", file, err)
		return "", false, 500
	}
	level, status := errlog.Crit, 500
	if errors.Is(err, fs.ErrNotExist) {
		level, status = errlog.Error, 403
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		x.logRequest(level, "", "open() \"%s\" failed (%d: %s)", file, int(errno), capitalize(errno.Error()))
	} else {
		x.logRequest(level, "", "open() \"%s\" failed (%v)", file, err)
	}
	return "", false, status
}

// challenge adds the realm's WWW-Authenticate and refuses with 401.
func (x *exchange) challenge(realm string) int {
	x.extra = append(x.extra, http1.Field{Name: "WWW-Authenticate", Value: auth.Challenge(realm)})
	return 401
}

// authRequest asks the auth_request URI whether the request may go on
// (ngx_http_auth_request_module): 2xx lets it in, 401 (with the answer's
// WWW-Authenticate) and 403 refuse it, anything else is 500. The
// auth_request_set variables are set from the answer in every case.
func (x *exchange) authRequest() int {
	uri := x.lc.Auth.Request
	if uri == "" {
		return declined
	}
	sets := x.lc.Auth.Set
	status := x.subrequest(uri, func(status int, h http1.Header) {
		for _, s := range sets {
			x.vc.Set(s.Var, s.Value.Eval(x.vc))
		}
		if status == 401 {
			for v := range h.Values("WWW-Authenticate") {
				x.extra = append(x.extra, http1.Field{Name: "WWW-Authenticate", Value: v})
			}
		}
	})
	switch {
	case status >= 200 && status < 300:
		return passed
	case status == 401 || status == 403:
		return status
	}
	x.logRequest(errlog.Error, "", "auth request unexpected status: %d", status)
	return 500
}

// subState is what a subrequest changes of the request's state.
type subState struct {
	loc                 *config.Location
	lc                  *config.LocConf // the limit_except block's when it applies
	log                 *errlog.Logger
	path, args          string
	changed, brk        bool
	caps                []string
	addr, status, rtime string
	header              vars.Header
	proxyHost           string
}

// subrequest runs the location of uri (a path and optional query) for
// the current request, with its headers and without its body, and hands
// the answer's status and head to done while they are current: the
// location's $uri and $args, and $upstream_* of the answer. Locations
// that proxy and those whose first instruction is `return` are run;
// their rewrite and access phases are not, as nginx's subrequests skip
// access. Any other location answers 500. The request's state is back
// as it was afterwards.
func (x *exchange) subrequest(uri string, done func(int, http1.Header)) int {
	vc := x.vc
	saved := subState{x.loc, x.lc, x.log, vc.Path, vc.Args, vc.URIChanged, vc.URIBreak,
		append([]string(nil), vc.Captures...), vc.UpstreamAddr, vc.UpstreamStatus, vc.UpstreamRespTime, vc.UpstreamHeader, vc.ProxyHost}
	defer x.restore(&saved)
	path, args, _ := strings.Cut(uri, "?")
	loc, caps, err := findLocation(x.srv.Locations, path)
	if err != nil {
		x.RegexError(err) // the regex match limit: the subrequest fails
		done(500, nil)
		return 500
	}
	if loc == nil {
		loc = x.srv.Locations
	}
	x.loc, x.lc, x.log = loc, loc.Conf, x.logFor(loc.Conf)
	vc.Path, vc.Args, vc.URIChanged, vc.URIBreak = path, args, true, false
	if caps != nil {
		x.setCaptures(loc.Regex, caps)
	}
	if rules := loc.Rewrite; len(rules) > 0 && rules[0].Kind == config.OpReturn {
		done(rules[0].Code, nil)
		return rules[0].Code
	}
	if loc.Conf.Proxy == nil {
		x.logRequest(errlog.Error, "", "auth request location \"%s\" neither proxies nor returns", loc.Path)
		done(500, nil)
		return 500
	}
	return x.askUpstream(done)
}

func (x *exchange) restore(s *subState) {
	vc := x.vc
	x.loc, x.lc, x.log = s.loc, s.lc, s.log
	vc.Path, vc.Args, vc.URIChanged, vc.URIBreak = s.path, s.args, s.changed, s.brk
	vc.Captures = append(vc.Captures[:0], s.caps...)
	vc.UpstreamAddr, vc.UpstreamStatus, vc.UpstreamRespTime, vc.UpstreamHeader = s.addr, s.status, s.rtime, s.header
	vc.ProxyHost = s.proxyHost
}

// askUpstream sends the subrequest to the location's upstream, trying
// peers as proxy_next_upstream allows for failures before an answer,
// and drops the answer's connection once done has read its head. With no
// answer the status is 502.
func (x *exchange) askUpstream(done func(int, http1.Header)) int {
	pp, status := x.target()
	if status != 0 {
		done(status, nil)
		return status
	}
	x.vc.ProxyHost = pp.HostPort
	hb := headPool.Get().(*[]byte)
	head := proxy.AppendRequest((*hb)[:0], x.req.Method, proxy.URI(pp, x.loc, x.vc), x.req, x.lc, x.vc, pp.HostPort, proxy.Body{Length: -1})
	defer putHead(hb, head)
	req := backend.Request{Head: head, Method: x.req.Method, HeadLimit: x.lc.BufferSize, SendTimeout: x.lc.SendTimeout, ReadTimeout: x.lc.ReadTimeout}
	tr := x.transport()
	var ch chooser
	ch.start(x)
	start := time.Now()
	for peer := ch.next(x); peer != nil; peer = ch.next(x) {
		var bc backend.Conn
		err := tr.Connect(&bc, peer)
		if err == nil {
			var resp *http1.Response
			if resp, err = bc.Send(&req); err == nil {
				x.vc.UpstreamAddr, x.vc.UpstreamStatus, x.vc.UpstreamHeader = peer.Addr(), strconv.Itoa(resp.Status), resp.Header
				x.vc.UpstreamRespTime = vars.Seconds(time.Since(start))
				done(resp.Status, resp.Header)
				bc.Release(false) // an answer: the peer did not fail; its body goes with the connection
				return resp.Status
			}
			bc.Release(backend.IsPeer(err))
		}
		if err == backend.ErrNoSlot {
			break
		}
		x.upstreamError(err, peer.Addr())
		if !retries(x.lc.NextUpstream, err) {
			break
		}
	}
	x.vc.UpstreamStatus = "502"
	done(502, nil)
	return 502
}
