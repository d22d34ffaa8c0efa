package server

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
