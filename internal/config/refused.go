package config

import (
	"strings"

	"github.com/wsgate/wsgate/internal/conf"
)

// refusedModules maps a directive-name prefix, or a whole name, to the nginx
// module it belongs to: modules wsgate deliberately does not implement.
// Prefixes end in "_"; anything else is matched whole.
var refusedModules = []struct{ name, module string }{
	{"fastcgi_", "ngx_http_fastcgi_module"},
	{"uwsgi_", "ngx_http_uwsgi_module"},
	{"scgi_", "ngx_http_scgi_module"},
	{"grpc_", "ngx_http_grpc_module"},
	{"memcached_", "ngx_http_memcached_module"},
	{"mail", "ngx_mail_core_module"},
	{"stream", "ngx_stream_core_module"},
	{"js_", "ngx_http_js_module"},
	{"perl", "ngx_http_perl_module"},
	{"perl_", "ngx_http_perl_module"},
	{"xslt_", "ngx_http_xslt_module"},
	{"xml_entities", "ngx_http_xslt_module"},
	{"image_filter", "ngx_http_image_filter_module"},
	{"image_filter_", "ngx_http_image_filter_module"},
	{"dav_methods", "ngx_http_dav_module"},
	{"dav_access", "ngx_http_dav_module"},
	{"create_full_put_path", "ngx_http_dav_module"},
	{"min_delete_depth", "ngx_http_dav_module"},
	{"flv", "ngx_http_flv_module"},
	{"mp4", "ngx_http_mp4_module"},
	{"mp4_", "ngx_http_mp4_module"},
	{"slice", "ngx_http_slice_module"},
}

// refusedDirectives are directives of modules wsgate implements that it
// refuses all the same, with the reason.
var refusedDirectives = map[string]string{
	"ssl_engine": "wsgate's TLS (Go's crypto/tls) has no OpenSSL engines; keep the private keys in files that ssl_certificate_key names",
}

// refusedModule names the nginx module of a directive wsgate refuses by
// design, or "" when the directive belongs to none of them.
func refusedModule(name string) string {
	for _, r := range refusedModules {
		if strings.HasSuffix(r.name, "_") && strings.HasPrefix(name, r.name) || name == r.name {
			return r.module
		}
	}
	return ""
}

// unknownDirective is the error for a directive wsgate's table lacks: the
// module's name when it is one wsgate refuses, a suggestion when the name is
// a likely typo of a known directive, nginx's plain message otherwise,
// naming the dynamic modules load_module named and wsgate ignored.
func (l *loader) unknownDirective(d *conf.Directive) error {
	if why := refusedDirectives[d.Name]; why != "" {
		return conf.Errorf(d, "\"%s\" is not supported: %s", d.Name, why)
	}
	if m := refusedModule(d.Name); m != "" {
		return conf.Errorf(d, "\"%s\" belongs to nginx's %s, which wsgate does not implement", d.Name, m)
	}
	if s := suggest(d.Name); s != "" {
		return conf.Errorf(d, "unknown directive \"%s\", did you mean \"%s\"?", d.Name, s)
	}
	if len(l.ignoredModules) > 0 {
		return conf.Errorf(d, "unknown directive \"%s\" (wsgate does not implement %s)", d.Name, strings.Join(l.ignoredModules, "; "))
	}
	return conf.Errorf(d, "unknown directive \"%s\"", d.Name)
}

// suggest returns the known directive closest to name when it is close
// enough to be a typo: at most one edit for short names, two for longer.
func suggest(name string) string {
	limit := 1
	if len(name) > 6 {
		limit = 2
	}
	best, bestDist := "", limit+1
	for known := range table {
		dist := editDistance(name, known, limit+1)
		if dist <= limit && (dist < bestDist || dist == bestDist && known < best) {
			best, bestDist = known, dist
		}
	}
	return best
}

// editDistance is the Damerau–Levenshtein distance (adjacent transpositions
// count as one edit) between a and b; any result of max or more is reported
// as max, which lets hopeless candidates stop early.
func editDistance(a, b string, max int) int {
	if d := len(a) - len(b); d >= max || -d >= max {
		return max
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
			rowMin = min(rowMin, cur[j])
		}
		if rowMin >= max {
			return max
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return min(prev[len(b)], max)
}
