// Package referer judges a request's Referer as nginx's
// ngx_http_referer_module does for $invalid_referer.
package referer

import (
	"errors"
	"fmt"
	"github.com/wsgate/wsgate/internal/regex"
	"strings"
)

// Rules is the union of a location's `valid_referers` lines. The zero
// value (no lines) finds every referer valid.
type Rules struct {
	None, Blocked bool
	exact         map[string]string // host to required URI prefix ("" for none)
	head          []wild            // "*.example.com", ".example.com"
	tail          []wild            // "www.example.*"
	regexes       []*regex.Regexp   // matched against the text after the scheme
	nameRegexes   []*regex.Regexp   // server_name regexes, matched against the host
}

type wild struct {
	part string // ".example.com" or "www.example."
	dot  bool   // ".example.com" also matches "example.com"
	uri  string
}

// Add reads one argument of valid_referers: none, blocked, a host name or
// wildcard with an optional URI prefix ("example.com/galleries/"), or a
// case-insensitive regular expression after "~" (Go's RE2 syntax), matched
// against the text after the scheme.
func (r *Rules) Add(arg string) error {
	switch {
	case arg == "":
		return errors.New(`invalid referer ""`)
	case arg == "none":
		r.None = true
		return nil
	case arg == "blocked":
		r.Blocked = true
		return nil
	case arg[0] == '~':
		return r.AddRegex(arg[1:])
	}
	host, uri := arg, ""
	if i := strings.IndexByte(arg, '/'); i >= 0 {
		host, uri = arg[:i], arg[i:]
	}
	return r.AddHost(host, uri)
}

// AddRegex adds a case-insensitive pattern.
func (r *Rules) AddRegex(expr string) error {
	if expr == "" {
		return errors.New(`empty regex in "~"`)
	}
	re, err := regex.Compile(expr, true)
	if err != nil {
		return fmt.Errorf("invalid regex %q: %v", expr, err)
	}
	r.regexes = append(r.regexes, re)
	return nil
}

// AddHost adds a name, "*.name", ".name" or "name.*", with the URI prefix
// the referer's path must start with ("" for any).
func (r *Rules) AddHost(host, uri string) error {
	host = strings.ToLower(host)
	bad := fmt.Errorf("invalid hostname or wildcard %q", host)
	switch {
	case strings.HasPrefix(host, "*."):
		r.head = append(r.head, wild{part: host[1:], uri: uri})
	case strings.HasPrefix(host, "."):
		r.head = append(r.head, wild{part: host, dot: true, uri: uri})
	case strings.HasSuffix(host, ".*"):
		r.tail = append(r.tail, wild{part: host[:len(host)-1], uri: uri})
	case host == "" || strings.Contains(host, "*"):
		return bad
	default:
		if r.exact == nil {
			r.exact = map[string]string{}
		}
		if _, dup := r.exact[host]; dup {
			return fmt.Errorf("conflicting parameter %q", host)
		}
		r.exact[host] = uri
	}
	return nil
}

// Check reports a configuration nginx refuses: none or blocked without
// any host name.
func (r *Rules) Check() error {
	if (r.None || r.Blocked) && len(r.exact)+len(r.head)+len(r.tail) == 0 {
		return errors.New(`the "none" or "blocked" referers are specified in the "valid_referers" directive without any valid referer`)
	}
	return nil
}

// Invalid returns $invalid_referer for a Referer value (present says the
// request had the header): "1" when invalid, "" when valid.
func (r *Rules) Invalid(ref string, present bool) string {
	if r == nil || len(r.exact)+len(r.head)+len(r.tail)+len(r.regexes)+len(r.nameRegexes) == 0 {
		return ""
	}
	if !present {
		return flag(!r.None)
	}
	rest, ok := "", false
	if len(ref) >= len("http://i.ru") {
		switch {
		case strings.EqualFold(ref[:7], "http://"):
			rest, ok = ref[7:], true
		case strings.EqualFold(ref[:8], "https://"):
			rest, ok = ref[8:], true
		}
	}
	if !ok {
		return flag(!r.Blocked)
	}
	end := strings.IndexAny(rest, "/:")
	if end < 0 {
		end = len(rest)
	}
	if end >= 256 {
		return "1"
	}
	if uri, ok := r.find(strings.ToLower(rest[:end])); ok {
		path := rest[end:]
		if i := strings.IndexByte(path, '/'); i >= 0 {
			path = path[i:]
		} else {
			path = ""
		}
		return flag(!strings.HasPrefix(path, uri))
	}
	host := strings.ToLower(rest[:end])
	for _, re := range r.nameRegexes {
		if ok, _ := re.MatchString(host); ok { // a match cut short by the limit is no match
			return ""
		}
	}
	for _, re := range r.regexes {
		if ok, _ := re.MatchString(rest); ok {
			return ""
		}
	}
	return "1"
}

// find looks host up as nginx's combined hash: exact, then the longest
// leading wildcard, then the longest trailing one.
func (r *Rules) find(host string) (string, bool) {
	if uri, ok := r.exact[host]; ok {
		return uri, true
	}
	if w, ok := longest(r.head, host, true); ok {
		return w.uri, true
	}
	if w, ok := longest(r.tail, host, false); ok {
		return w.uri, true
	}
	return "", false
}

func longest(ws []wild, host string, head bool) (wild, bool) {
	var best wild
	found := false
	for _, w := range ws {
		var ok bool
		if head {
			ok = strings.HasSuffix(host, w.part) && len(host) > len(w.part) || w.dot && host == w.part[1:]
		} else {
			ok = strings.HasPrefix(host, w.part) && len(host) > len(w.part)
		}
		if ok && (!found || len(w.part) > len(best.part)) {
			best, found = w, true
		}
	}
	return best, found
}

func flag(invalid bool) string {
	if invalid {
		return "1"
	}
	return ""
}

// AddServerRegex adds a server_name regex, matched against the
// referer's host only.
func (r *Rules) AddServerRegex(re *regex.Regexp) { r.nameRegexes = append(r.nameRegexes, re) }

// Inherit takes the outer level's regexes, and separately its server
// name regexes, when r has none of its own, as nginx merges them.
func (r *Rules) Inherit(outer *Rules) {
	if outer == nil {
		return
	}
	if len(r.regexes) == 0 {
		r.regexes = outer.regexes
	}
	if len(r.nameRegexes) == 0 {
		r.nameRegexes = outer.nameRegexes
	}
}
