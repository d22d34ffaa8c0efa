package proxy

import (
	"strings"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/vars"
)

// RewriteRedirects applies proxy_redirect to the Location and Refresh
// headers of a backend's response, in place, and reports whether a
// Location was rewritten (a rewritten Location that starts with '/' is
// made absolute, as nginx does; one the backend sent relative is not).
// Without proxy_redirect in the configuration a location with proxy_pass
// uses `default`: the proxy_pass URL (with "/" appended when it has no
// URI part) is replaced by the location's name (by "/").
func RewriteRedirects(h http1.Header, lc *config.LocConf, loc *config.Location, vc *vars.Ctx) (locationRewritten bool) {
	pr := &lc.ProxyRest
	if pr.RedirectOff || lc.Proxy == nil {
		return false
	}
	for i := range h {
		f := &h[i]
		prefix := 0
		switch {
		case strings.EqualFold(f.Name, "Location"):
		case strings.EqualFold(f.Name, "Refresh"):
			j := indexFold(f.Value, "url=")
			if j < 0 {
				continue
			}
			prefix = j + len("url=")
		default:
			continue
		}
		v, ok := rewriteOne(f.Value, prefix, lc, loc, vc)
		if ok {
			f.Value = v
			if prefix == 0 {
				locationRewritten = true
			}
		}
	}
	return locationRewritten
}

// rewriteOne applies the first rule that matches value after prefix.
func rewriteOne(value string, prefix int, lc *config.LocConf, loc *config.Location, vc *vars.Ctx) (string, bool) {
	pr := &lc.ProxyRest
	if !pr.RedirectSet {
		return rewriteDefault(value, prefix, lc.Proxy, locName(loc))
	}
	for i := range pr.Redirects {
		r := &pr.Redirects[i]
		switch {
		case r.Default:
			if v, ok := rewriteDefault(value, prefix, lc.Proxy, r.LocName); ok {
				return v, true
			}
		case r.Regex != nil:
			m := r.Regex.FindStringSubmatch(value[prefix:])
			if m == nil {
				continue
			}
			saved := vc.Captures
			vc.Captures = m
			rep := r.Replacement.Eval(vc)
			vc.Captures = saved
			return value[:prefix] + rep, true
		default:
			pat := r.Pattern.Eval(vc)
			if strings.HasPrefix(value[prefix:], pat) {
				return value[:prefix] + r.Replacement.Eval(vc) + value[prefix+len(pat):], true
			}
		}
	}
	return value, false
}

// rewriteDefault is `proxy_redirect default`.
func rewriteDefault(value string, prefix int, pp *config.ProxyPass, name string) (string, bool) {
	if pp.Dynamic != nil {
		return value, false // nginx has no default for a URL with variables
	}
	pat, rep := pp.Scheme+"://"+pp.HostPort+pp.URI, name
	if !pp.HasURI {
		pat, rep = pat+"/", "/"
	}
	if !strings.HasPrefix(value[prefix:], pat) {
		return value, false
	}
	return value[:prefix] + rep + value[prefix+len(pat):], true
}

func locName(loc *config.Location) string {
	if loc == nil {
		return "/"
	}
	return loc.Path
}

// indexFold is strings.Index, ASCII case-insensitive.
func indexFold(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}
