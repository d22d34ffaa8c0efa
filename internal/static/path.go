package static

import (
	"path/filepath"
	"strings"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/vars"
)

// Map returns the file path uri names under f's root or alias, and the
// document root, as nginx's ngx_http_map_uri_to_path: root is followed by
// the whole URI; an alias replaces the location's name; an alias in a
// regex location is the whole path.
func Map(f *config.Files, vc *vars.Ctx, uri string) (path, root string) {
	root = "html"
	if f.Root != nil {
		root = f.Root.Eval(vc)
	}
	if !filepath.IsAbs(root) {
		root = strings.TrimSuffix(f.Prefix, "/") + "/" + root
	}
	if !f.Alias {
		return root + uri, root
	}
	if f.AliasAll {
		return root, root
	}
	if len(uri) > f.AliasLen {
		return root + uri[f.AliasLen:], root
	}
	return root, root
}

// escapesAlias reports a path whose alias and URI meet in a ".." segment
// (`location /img { alias /data/img/; }` and "/img../secret"): the URI is
// normalised, so such a segment can only come from the join.
func escapesAlias(f *config.Files, path, root string) bool {
	if !f.Alias || f.AliasAll || strings.Contains(root, "/..") {
		return false
	}
	return strings.Contains(path, "/../") || strings.HasSuffix(path, "/..")
}

// exten is the URI's extension as nginx's ngx_http_set_exten finds it:
// after the last '.' of the last segment, unless the segment starts there.
func exten(uri string) string {
	for i := len(uri) - 1; i > 1; i-- {
		switch {
		case uri[i] == '.' && uri[i-1] != '/':
			return uri[i+1:]
		case uri[i] == '/':
			return ""
		}
	}
	return ""
}

// ContentType is the type of uri's extension in f's types (compared
// case-insensitively), else defaultType.
func ContentType(f *config.Files, uri, defaultType string) string {
	if e := exten(uri); e != "" {
		if t, ok := f.Types[strings.ToLower(e)]; ok {
			return t
		}
	}
	return defaultType
}

// escapeTable marks the bytes an escaping function replaces with %XX.
type escapeTable [256]bool

func newEscape(keep func(c byte) bool) *escapeTable {
	var t escapeTable
	for i := range t {
		t[i] = !keep(byte(i))
	}
	return &t
}

// uriEscape is nginx's NGX_ESCAPE_URI: space, '#', '%', '?', controls
// and bytes from 0x7f.
var uriEscape = newEscape(func(c byte) bool {
	return c > ' ' && c < 0x7f && c != '#' && c != '%' && c != '?'
})

// componentEscape is NGX_ESCAPE_URI_COMPONENT: all but the unreserved
// characters of RFC 3986.
var componentEscape = newEscape(func(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
})

func escape(s string, t *escapeTable) string {
	const hex = "0123456789ABCDEF"
	n := 0
	for i := 0; i < len(s); i++ {
		if t[s[i]] {
			n++
		}
	}
	if n == 0 {
		return s
	}
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if t[c] {
			b = append(b, '%', hex[c>>4], hex[c&15])
		} else {
			b = append(b, c)
		}
	}
	return string(b)
}

var htmlEscaper = strings.NewReplacer("<", "&lt;", ">", "&gt;", "&", "&amp;", "\"", "&quot;")

func escapeHTML(s string) string { return htmlEscaper.Replace(s) }
