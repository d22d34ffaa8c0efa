package http1

import (
	"bytes"
	"strings"
)

// cleanPath returns nginx's $uri for the path of a request-target (which
// starts with '/'): percent-escapes decoded, then, as in nginx's
// ngx_http_parse_complex_uri with merge_slashes on, runs of '/' merged
// and "." and ".." segments resolved, a decoded "%2F" or "%2E" counting
// as the character it encodes. A trailing '/', "/." or "/.." leaves the
// result ending in '/', so a path that names a directory still does.
// With keepSlashes (merge_slashes off) every empty segment but a last
// one is kept, and ".." removes an empty segment as any other.
//
// It reports false, for a 400, where nginx refuses the URI: a malformed
// escape, an escaped NUL, or ".." above the root. It also refuses an
// escaped CR or LF, which nginx accepts and would copy into $uri: there
// they could split a response header or forge a log line.
func cleanPath(p string, keepSlashes bool) (string, bool) {
	if !strings.Contains(p, "%") && !strings.Contains(p, "//") && !strings.Contains(p, "/.") {
		return p, true
	}
	b, ok := unescapePath(p)
	if !ok {
		return "", false
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); {
		j := i + 1
		for j < len(b) && b[j] != '/' {
			j++
		}
		seg, last := b[i+1:j], j == len(b)
		switch string(seg) {
		case "":
			if keepSlashes && !last {
				out = append(out, '/')
			}
		case ".":
		case "..":
			k := bytes.LastIndexByte(out, '/')
			if k < 0 {
				return "", false
			}
			out = out[:k]
		default:
			out = append(out, '/')
			out = append(out, seg...)
		}
		if last && !isName(seg) {
			out = append(out, '/')
		}
		i = j
	}
	return string(out), true
}

// isName reports whether a path segment names a file or directory
// rather than being empty, "." or "..".
func isName(seg []byte) bool {
	s := string(seg)
	return s != "" && s != "." && s != ".."
}

// unescapePath decodes the percent-escapes of p.
func unescapePath(p string) ([]byte, bool) {
	b := make([]byte, 0, len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '%' {
			if i+2 >= len(p) {
				return nil, false
			}
			hi, ok1 := unhex(p[i+1])
			lo, ok2 := unhex(p[i+2])
			if !ok1 || !ok2 {
				return nil, false
			}
			c = hi<<4 | lo
			if c == 0 || c == '\r' || c == '\n' {
				return nil, false
			}
			i += 2
		}
		b = append(b, c)
	}
	return b, true
}
