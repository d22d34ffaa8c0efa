package proxy

import (
	"strings"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/vars"
)

// RewriteCookies applies proxy_cookie_domain, proxy_cookie_path and
// proxy_cookie_flags to the Set-Cookie headers of a backend's response, in
// place. A cookie that a rule changed is written again as nginx writes it:
// its attributes joined by "; "; one that no rule changed is left as sent.
func RewriteCookies(h http1.Header, rest *config.ProxyRest, vc *vars.Ctx) {
	if len(rest.CookieDomains) == 0 && len(rest.CookiePaths) == 0 && len(rest.CookieFlags) == 0 {
		return
	}
	for i := range h {
		if strings.EqualFold(h[i].Name, "Set-Cookie") {
			if v, ok := rewriteCookie(h[i].Value, rest, vc); ok {
				h[i].Value = v
			}
		}
	}
}

// cookieAttr is one part of a Set-Cookie value: name=value first, then
// the attributes; hasValue tells "Secure" from "Secure=".
type cookieAttr struct {
	key, value string
	hasValue   bool
	skip       bool
}

func parseCookie(v string) []cookieAttr {
	parts := strings.Split(v, ";")
	attrs := make([]cookieAttr, 0, len(parts))
	for _, p := range parts {
		p = strings.Trim(p, " \t")
		if p == "" {
			continue
		}
		k, val, has := strings.Cut(p, "=")
		attrs = append(attrs, cookieAttr{key: strings.Trim(k, " \t"), value: strings.Trim(val, " \t"), hasValue: has})
	}
	return attrs
}

func rewriteCookie(v string, rest *config.ProxyRest, vc *vars.Ctx) (string, bool) {
	attrs := parseCookie(v)
	if len(attrs) == 0 {
		return v, false
	}
	changed := false
	for i := 1; i < len(attrs); i++ {
		a := &attrs[i]
		switch {
		case len(rest.CookieDomains) > 0 && strings.EqualFold(a.key, "domain") && a.hasValue:
			if nv, ok := rewriteDomain(a.value, rest.CookieDomains, vc); ok {
				a.value, changed = nv, true
			}
		case len(rest.CookiePaths) > 0 && strings.EqualFold(a.key, "path") && a.hasValue:
			if nv, ok := rewritePath(a.value, rest.CookiePaths, vc); ok {
				a.value, changed = nv, true
			}
		}
	}
	if flags := cookieFlags(attrs[0].key, rest.CookieFlags, vc); flags != nil {
		attrs, changed = editFlags(attrs, flags), true
	}
	if !changed {
		return v, false
	}
	var b strings.Builder
	for i, a := range attrs {
		if a.skip {
			continue
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(a.key)
		if a.hasValue {
			b.WriteByte('=')
			b.WriteString(a.value)
		}
	}
	return b.String(), true
}

// rewriteDomain applies the first proxy_cookie_domain rule that matches:
// a string equal to the domain without case or its leading dot (which
// stays), or a regex, whose replacement takes the whole value.
func rewriteDomain(v string, rules []config.CookieRewrite, vc *vars.Ctx) (string, bool) {
	for i := range rules {
		r := &rules[i]
		if r.Regex != nil {
			if nv, ok := regexReplace(v, r, vc); ok {
				return nv, true
			}
			continue
		}
		dot, rest := "", v
		if strings.HasPrefix(v, ".") {
			dot, rest = ".", v[1:]
		}
		if strings.EqualFold(r.Pattern.Eval(vc), rest) {
			return dot + r.Replacement.Eval(vc), true
		}
	}
	return v, false
}

// rewritePath applies the first proxy_cookie_path rule that matches: a
// string prefix (case-sensitive), or a regex.
func rewritePath(v string, rules []config.CookieRewrite, vc *vars.Ctx) (string, bool) {
	for i := range rules {
		r := &rules[i]
		if r.Regex != nil {
			if nv, ok := regexReplace(v, r, vc); ok {
				return nv, true
			}
			continue
		}
		if pat := r.Pattern.Eval(vc); strings.HasPrefix(v, pat) {
			return r.Replacement.Eval(vc) + v[len(pat):], true
		}
	}
	return v, false
}

func regexReplace(v string, r *config.CookieRewrite, vc *vars.Ctx) (string, bool) {
	m := r.Regex.FindStringSubmatch(v)
	if m == nil {
		return v, false
	}
	saved := vc.Captures
	vc.Captures = m
	nv := r.Replacement.Eval(vc)
	vc.Captures = saved
	return nv, true
}

// cookieFlags returns the flags of the first proxy_cookie_flags rule that
// names the cookie (without case), or nil.
func cookieFlags(name string, rules []config.CookieFlags, vc *vars.Ctx) []string {
	for i := range rules {
		r := &rules[i]
		if r.Regex != nil && r.Regex.MatchString(name) || r.Regex == nil && strings.EqualFold(r.Name.Eval(vc), name) {
			return r.Flags
		}
	}
	return nil
}

// editFlags sets and removes the Secure, HttpOnly and SameSite attributes
// as flags say: a flag already present stays as it is, a missing one is
// added at the end, SameSite takes the new value.
func editFlags(attrs []cookieAttr, flags []string) []cookieAttr {
	for _, f := range flags {
		remove := strings.HasPrefix(f, "no")
		key, val, has := strings.Cut(flagNames[strings.TrimPrefix(f, "no")], "=")
		i := findAttr(attrs, key)
		switch {
		case remove:
			if i > 0 {
				attrs[i].skip = true
			}
		case i > 0 && has:
			attrs[i].value, attrs[i].hasValue = val, true
		case i < 0:
			attrs = append(attrs, cookieAttr{key: key, value: val, hasValue: has})
		}
	}
	return attrs
}

// flagNames are the attributes as nginx writes them.
var flagNames = map[string]string{"secure": "Secure", "httponly": "HttpOnly", "samesite": "SameSite",
	"samesite=strict": "SameSite=Strict", "samesite=lax": "SameSite=Lax", "samesite=none": "SameSite=None"}

func findAttr(attrs []cookieAttr, key string) int {
	for i := 1; i < len(attrs); i++ {
		if strings.EqualFold(attrs[i].key, key) {
			return i
		}
	}
	return -1
}
