// Package gzipfilter is nginx's gzip filter: which responses are
// compressed (ngx_http_gzip_filter_module's header filter and the core
// module's ngx_http_gzip_ok), how their headers change, and the
// compressing body writer with its $gzip_ratio.
package gzipfilter

import (
	"strings"

	"github.com/wsgate/wsgate/internal/regex"
)

// Proxied is gzip_proxied's set of conditions for requests that came
// through a proxy (with a Via header).
type Proxied uint16

// gzip_proxied parameters, as nginx's NGX_HTTP_GZIP_PROXIED_* bits.
const (
	ProxiedOff Proxied = 1 << iota
	ProxiedExpired
	ProxiedNoCache
	ProxiedNoStore
	ProxiedPrivate
	ProxiedNoLastModified
	ProxiedNoETag
	ProxiedAuth
	ProxiedAny
)

// ProxiedNames maps gzip_proxied's parameters to their bits.
var ProxiedNames = map[string]Proxied{
	"off": ProxiedOff, "expired": ProxiedExpired, "no-cache": ProxiedNoCache,
	"no-store": ProxiedNoStore, "private": ProxiedPrivate, "no_last_modified": ProxiedNoLastModified,
	"no_etag": ProxiedNoETag, "auth": ProxiedAuth, "any": ProxiedAny,
}

// Static is a gzip_static mode.
type Static int

// gzip_static modes.
const (
	StaticOff Static = iota
	StaticOn
	StaticAlways
)

// Conf is one location's gzip settings after merging.
type Conf struct {
	On           bool
	Level        int             // gzip_comp_level, 1..9
	Buffers      [2]int          // gzip_buffers: number and size (the writer's output buffer)
	Types        map[string]bool // gzip_types, lowercased; text/html is always in
	AnyType      bool            // gzip_types *
	MinLength    int64           // gzip_min_length
	HTTPVersion  int             // gzip_http_version as major*1000+minor
	Proxied      Proxied         // gzip_proxied
	Disable      []*regex.Regexp // gzip_disable patterns, matched on User-Agent
	DisableMSIE6 bool            // gzip_disable msie6
	Vary         bool            // gzip_vary
	Static       Static          // gzip_static
}

// Default is nginx's gzip configuration when nothing is set.
func Default() Conf {
	return Conf{Level: 1, Buffers: [2]int{32, 4096}, Types: map[string]bool{"text/html": true},
		MinLength: 20, HTTPVersion: 1001, Proxied: ProxiedOff}
}

// typeOK reports whether a Content-Type value is in gzip_types: its
// media type, without parameters, lowercased.
func (c *Conf) typeOK(ctype string) bool {
	if c.AnyType {
		return true // even without a Content-Type, as nginx's "*"
	}
	if ctype == "" {
		return false
	}
	if i := strings.IndexByte(ctype, ';'); i >= 0 {
		ctype = ctype[:i]
	}
	ctype = strings.ToLower(strings.TrimSpace(ctype))
	return ctype == "text/html" || c.Types[ctype]
}
