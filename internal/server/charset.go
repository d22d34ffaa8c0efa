package server

import (
	"slices"
	"strings"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/http1"
)

// charset adds "; charset=..." to the Content-Type of an answer whose
// type is in charset_types (text/html always is), as nginx's charset filter: not to a type that
// names its charset already, nor to wsgate's own redirect pages.
func (x *exchange) charset(hdr http1.Header) http1.Header {
	c := &x.lc.Charset
	if cs := x.upstreamOut.charset; cs != "" {
		return x.overrideCharset(hdr, cs)
	}
	if c.Charset == nil || x.errStatus >= 300 && x.errStatus < 400 {
		return hdr
	}
	i := slices.IndexFunc(hdr, func(f http1.Field) bool { return strings.EqualFold(f.Name, "Content-Type") })
	if i < 0 || hdr[i].Value == "" {
		return hdr
	}
	ct := hdr[i].Value
	mime, params, _ := strings.Cut(ct, ";")
	mime = strings.ToLower(strings.TrimSpace(mime))
	types := c.Types
	if types == nil {
		types = config.DefaultCharsetTypes
	}
	listed := c.AnyType || mime == "text/html" || slices.Contains(types, mime) // text/html is always in, as nginx
	if !listed || strings.Contains(strings.ToLower(params), "charset=") {
		return hdr
	}
	name := c.Charset.Eval(x.vc)
	if name == "" || name == "off" {
		return hdr
	}
	return labelCharset(hdr, name)
}

// overrideCharset labels the answer with a backend's X-Accel-Charset,
// whatever its type, as nginx: when the configuration knows the charset
// and the body is not encoded.
func (x *exchange) overrideCharset(hdr http1.Header, name string) http1.Header {
	if !x.rt.cfg.Charsets[strings.ToLower(name)] {
		x.logRequest(errlog.Error, "", "unknown charset \"%s\" to override", name)
		return hdr
	}
	if hdr.Get("Content-Encoding") != "" {
		return hdr
	}
	return labelCharset(hdr, name)
}

// labelCharset adds "; charset=name" to the Content-Type, unless it has
// none or names a charset already.
func labelCharset(hdr http1.Header, name string) http1.Header {
	i := slices.IndexFunc(hdr, func(f http1.Field) bool { return strings.EqualFold(f.Name, "Content-Type") })
	if i < 0 || hdr[i].Value == "" || strings.Contains(strings.ToLower(hdr[i].Value), "charset=") {
		return hdr
	}
	out := slices.Clone(hdr)
	out[i].Value += "; charset=" + name
	return out
}
