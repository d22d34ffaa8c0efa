package server

import (
	"io"
	"slices"
	"strings"

	"github.com/wsgate/wsgate/internal/charset"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/http1"
)

// recoding is the charset_map a response body is recoded through, and
// its direction.
type recoding struct {
	m    *charset.Map
	back bool
}

// charset is nginx's charset header filter for an answer whose type is in
// charset_types (text/html always is), not for wsgate's own redirect
// pages. It adds "; charset=..." to a Content-Type that names none; one
// that names a charset keeps it, unless override_charset is on, which
// makes it the source. When the source (that, or source_charset) differs
// from charset and a charset_map joins them, the body is recoded
// (x.recode), its length becoming unknown.
func (x *exchange) charset(hdr http1.Header, length int64, chunked bool) (http1.Header, int64, bool) {
	x.recode = nil
	c := &x.lc.Charset
	if cs := x.upstreamOut.charset; cs != "" {
		return x.overrideCharset(hdr, cs), length, chunked
	}
	if c.Charset == nil || x.errStatus >= 300 && x.errStatus < 400 {
		return hdr, length, chunked
	}
	i := slices.IndexFunc(hdr, func(f http1.Field) bool { return strings.EqualFold(f.Name, "Content-Type") })
	if i < 0 || hdr[i].Value == "" || !charsetType(c, hdr[i].Value) {
		return hdr, length, chunked
	}
	name := c.Charset.Eval(x.vc)
	if name == "" || name == "off" {
		return hdr, length, chunked
	}
	base, have := splitCharset(hdr[i].Value)
	src := c.Source
	if have != "" {
		if !c.Override || strings.EqualFold(have, name) {
			return hdr, length, chunked
		}
		src = have
	}
	if src == "" || strings.EqualFold(src, name) {
		out := slices.Clone(hdr)
		out[i].Value = base + "; charset=" + name
		return out, length, chunked
	}
	return x.recodeHead(hdr, base, src, name, length, chunked)
}

// recodeHead sets up the body's recoding from src to name and the
// headers that go with it: a compressed body, or a pair that no
// charset_map joins (logged), is left alone, as nginx.
func (x *exchange) recodeHead(hdr http1.Header, base, src, name string, length int64, chunked bool) (http1.Header, int64, bool) {
	if hdr.Get("Content-Encoding") != "" {
		return hdr, length, chunked
	}
	m, back := charset.Find(x.rt.cfg.CharsetMaps, src, name)
	if m == nil {
		x.log.Printf(errlog.Error, x.conn.id, "no \"charset_map\" between the charsets \"%s\" and \"%s\"%s", src, name, x.logSuffix())
		return hdr, length, chunked
	}
	out := slices.Clone(hdr)
	if !m.SameLength() {
		out = slices.DeleteFunc(out, func(f http1.Field) bool {
			return strings.EqualFold(f.Name, "Content-Length") || strings.EqualFold(f.Name, "Accept-Ranges")
		})
	}
	ct := slices.IndexFunc(out, func(f http1.Field) bool { return strings.EqualFold(f.Name, "Content-Type") })
	out[ct].Value = base + "; charset=" + name
	noBody := length == -2 || x.req.Method == "HEAD"
	switch {
	case m.SameLength():
		if !noBody {
			x.recode = &recoding{m: m, back: back} // byte for byte: the length holds
		}
		return out, length, chunked
	case noBody:
		return out, -2, false // only the headers change
	}
	x.recode = &recoding{m: m, back: back}
	return out, -1, x.req.Major == 1 && x.req.Minor >= 1 && x.lc.ChunkedTransferEncoding
}

// charsetType reports whether ct is in charset_types; text/html always
// is, as nginx.
func charsetType(c *config.CharsetConf, ct string) bool {
	mime, _, _ := strings.Cut(ct, ";")
	mime = strings.ToLower(strings.TrimSpace(mime))
	types := c.Types
	if types == nil {
		types = config.DefaultCharsetTypes
	}
	return c.AnyType || mime == "text/html" || slices.Contains(types, mime)
}

// splitCharset returns a Content-Type without its charset parameter, and
// that parameter's value ("" when it has none).
func splitCharset(ct string) (base, cs string) {
	parts := strings.Split(ct, ";")
	keep := parts[:1]
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(strings.TrimSpace(k), "charset") {
			cs = strings.Trim(strings.TrimSpace(v), `"`)
			continue
		}
		keep = append(keep, p)
	}
	return strings.Join(keep, ";"), cs
}

// recodeWriter puts the charset recoder in front of w.
func (r *recoding) writer(w io.Writer) io.WriteCloser {
	return charset.NewWriter(w, r.m, r.back)
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
