package server

import (
	"time"

	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/userid"
)

// uidState is one request's userid work, done once: the cookie the
// client sent and the identifier the response sets, if any.
type uidState struct {
	got     userid.Got
	set     userid.UID
	setting bool // a Set-Cookie goes out
	reuse   bool // it carries the client's own identifier, to add the mark
}

// userid reads the identifier cookie and decides the one to set, once
// per request, for the location's userid settings.
func (x *exchange) userid() *uidState {
	if x.uid != nil {
		return x.uid
	}
	c := &x.lc.UserID
	u := &uidState{}
	x.uid = u
	got, bad := userid.Parse(headerValues(x.req.Header, "Cookie"), c.CookieName())
	if bad != "" {
		x.logRequest(errlog.Error, "", "%s", bad)
	}
	u.got = got
	reset := x.uidReset()
	if !userid.NeedsCookie(c, got, reset) {
		return u
	}
	u.setting = true
	switch {
	case !got.UID.Zero() && !reset:
		u.set, u.reuse = got.UID, true
	default:
		u.set = userid.New(c, x.vc.Local.Addr(), time.Now())
	}
	return u
}

// uidVar answers $uid_got and $uid_set.
func (x *exchange) uidVar(name string) (string, bool) {
	c := &x.lc.UserID
	if c.Mode == userid.Off {
		return "", false
	}
	u := x.userid()
	switch {
	case name == "uid_got" && !u.got.UID.Zero():
		return u.got.UID.Var(c.CookieName()), true
	case name == "uid_set" && u.setting:
		return u.set.Var(c.CookieName()), true
	}
	return "", false
}

// useridHeader adds the userid cookie (and P3P) to a response, as
// nginx's userid filter.
func (x *exchange) useridHeader(hdr http1.Header) http1.Header {
	c := &x.lc.UserID
	if c.Mode < userid.V1 {
		return hdr
	}
	u := x.userid()
	if !u.setting {
		return hdr
	}
	hdr = append(hdr, http1.Field{Name: "Set-Cookie", Value: userid.Cookie(c, u.set, u.got.Raw, u.reuse, time.Now())})
	if c.P3P != "" {
		hdr = append(hdr, http1.Field{Name: "P3P", Value: c.P3P})
	}
	return hdr
}

// headerValues lists every value of a request header.
func headerValues(h http1.Header, name string) []string {
	var out []string
	for v := range h.Values(name) {
		out = append(out, v)
	}
	return out
}

// uidReset reads $uid_reset, which a `set` or `map` may define: a value
// other than "" and "0" asks for a new identifier. An unset `set`
// variable here is no mistake worth a warning.
func (x *exchange) uidReset() bool {
	warn := x.vc.Warn
	x.vc.Warn = nil
	v, ok := x.vc.GetName("uid_reset")
	x.vc.Warn = warn
	return ok && v != "" && v != "0"
}
