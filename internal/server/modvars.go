package server

import (
	"time"

	"github.com/wsgate/wsgate/internal/securelink"
)

// ModuleVar answers the per-location module variables for the location
// the request is in (vars.LocVars).
func (x *exchange) ModuleVar(name string) (string, bool) {
	if x.lc == nil {
		return "", false
	}
	switch name {
	case "invalid_referer":
		ref, present := x.referer()
		return x.lc.Referers.Invalid(ref, present), true
	case "secure_link":
		r := x.secureLink()
		return r.Value, r.Found
	case "otel_trace_id", "otel_span_id", "otel_parent_id", "otel_parent_sampled":
		return x.otelVar(name)
	case "uid_got", "uid_set":
		return x.uidVar(name)
	case "secure_link_expires":
		// Only the secure_link expression: secure_link_md5 commonly
		// names $secure_link_expires itself.
		if sl := x.lc.SecureLink; sl.Secret == "" && sl.Link != nil && sl.MD5 != nil {
			return securelink.Expires(sl.Link.Eval(x.vc))
		}
		return "", false
	}
	return "", false
}

// referer is the request's first Referer header and whether it has one.
func (x *exchange) referer() (string, bool) {
	for v := range x.req.Header.Values("Referer") {
		return v, true
	}
	return "", false
}

// secureLink checks the request against the location's secure_link
// settings: the secret form when secure_link_secret is set, else the
// secure_link and secure_link_md5 expressions.
func (x *exchange) secureLink() securelink.Result {
	sl := &x.lc.SecureLink
	switch {
	case sl.Secret != "":
		return securelink.CheckSecret(x.req.RequestURI, sl.Secret)
	case sl.Link == nil || sl.MD5 == nil:
		return securelink.Result{}
	}
	link := sl.Link.Eval(x.vc)
	return securelink.Check(link, sl.MD5.Eval(x.vc), time.Now())
}
