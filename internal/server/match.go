package server

import (
	"net/netip"
	"strings"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/regex"
)

// vhosts are the server blocks that share one listen address, with the
// lookup tables nginx builds for server_name.
type vhosts struct {
	def      *config.Server
	exact    map[string]*config.Server
	wildPre  []wildName // "*.example.com", ".example.com"
	wildSuf  []wildName // "www.example.*"
	regexes  []*config.Server
	regexFor map[*config.Server][]config.ServerName
}

type wildName struct {
	part string // ".example.com" or "www.example."
	dot  bool   // ".example.com" also matches "example.com"
	srv  *config.Server
}

func newVhosts() *vhosts {
	return &vhosts{exact: map[string]*config.Server{}, regexFor: map[*config.Server][]config.ServerName{}}
}

func (v *vhosts) add(srv *config.Server, ls config.Listen) {
	if v.def == nil || ls.DefaultServer {
		v.def = srv
	}
	for _, n := range srv.Names {
		switch n.Kind {
		case config.NameExact:
			if _, dup := v.exact[n.Name]; !dup {
				v.exact[n.Name] = srv
			}
		case config.NameWildcardPrefix:
			part, dot := n.Name[1:], false
			if strings.HasPrefix(n.Name, ".") {
				part, dot = n.Name, true
			}
			v.wildPre = append(v.wildPre, wildName{part: part, dot: dot, srv: srv})
		case config.NameWildcardSuffix:
			v.wildSuf = append(v.wildSuf, wildName{part: n.Name[:len(n.Name)-1], srv: srv})
		case config.NameRegex:
			if len(v.regexFor[srv]) == 0 {
				v.regexes = append(v.regexes, srv)
			}
			v.regexFor[srv] = append(v.regexFor[srv], n)
		}
	}
}

// find picks the server for a host name, in nginx's order: exact name,
// longest leading wildcard, longest trailing wildcard, first matching
// regex, then the default server of the address. It also returns the
// regex captures for $1..$9.
func (v *vhosts) find(host string) (*config.Server, []string) {
	s, caps, _, _ := v.lookup(host)
	return s, caps
}

// lookup is find that also returns the regex that matched, whose named
// captures (config.Config.Captures) become variables. A regex whose
// match was cut short ends the search with its error and the default
// server.
func (v *vhosts) lookup(host string) (*config.Server, []string, *regex.Regexp, error) {
	if s, ok := v.exact[host]; ok {
		return s, nil, nil, nil
	}
	if host != "" {
		var best *config.Server
		n := -1
		for _, w := range v.wildPre {
			if (strings.HasSuffix(host, w.part) || (w.dot && host == w.part[1:])) && len(w.part) > n {
				best, n = w.srv, len(w.part)
			}
		}
		if best != nil {
			return best, nil, nil, nil
		}
		for _, w := range v.wildSuf {
			if strings.HasPrefix(host, w.part) && len(w.part) > n {
				best, n = w.srv, len(w.part)
			}
		}
		if best != nil {
			return best, nil, nil, nil
		}
		for _, s := range v.regexes {
			for _, n := range v.regexFor[s] {
				m, err := n.Regex.FindStringSubmatch(host)
				if err != nil {
					return v.def, nil, nil, err
				}
				if m != nil {
					return s, m, n.Regex, nil
				}
			}
		}
	}
	return v.def, nil, nil, nil
}

// findLocation implements nginx's location search: exact match first, then
// the longest prefix (searching its nested locations), then regexes in file
// order unless the prefix had ^~; the longest prefix when nothing else hit.
// A regex whose match was cut short ends the search with its error.
func findLocation(root *config.Location, path string) (*config.Location, []string, error) {
	loc, caps, _, err := findIn(root, path)
	return loc, caps, err
}

func findIn(level *config.Location, path string) (*config.Location, []string, bool, error) {
	for _, e := range level.Exacts {
		if e.Path == path {
			return e, nil, true, nil
		}
	}
	var best *config.Location
	for _, p := range level.Prefixes {
		if strings.HasPrefix(path, p.Path) && (best == nil || len(p.Path) > len(best.Path)) {
			best = p
		}
	}
	cur := best
	noRegex := false
	if best != nil {
		noRegex = best.Modifier == "^~"
		if len(best.Children) > 0 {
			l, caps, final, err := findIn(best, path)
			if final || err != nil {
				return l, caps, true, err
			}
			if l != nil {
				cur = l
			}
		}
	}
	if !noRegex {
		for _, r := range level.Regexes {
			m, err := r.Regex.FindStringSubmatch(path)
			if err != nil {
				return nil, nil, true, err
			}
			if m != nil {
				if len(r.Children) > 0 {
					if l, caps, final, err := findIn(r, path); final || err != nil {
						return l, caps, true, err
					}
				}
				return r, m, true, nil
			}
		}
	}
	return cur, nil, false, nil
}

// wildcardOf returns the wildcard address of the same port and family.
func wildcardOf(ap netip.AddrPort) netip.AddrPort {
	if ap.Addr().Is4() || ap.Addr().Is4In6() {
		return netip.AddrPortFrom(netip.IPv4Unspecified(), ap.Port())
	}
	return netip.AddrPortFrom(netip.IPv6Unspecified(), ap.Port())
}
