package server

import (
	"slices"
	"strings"

	"github.com/wsgate/wsgate/internal/http1"
)

// substitution is a response's sub_filter work: the strings evaluated
// for this request.
type substitution struct {
	find, repl []string
}

// subHead is nginx's sub filter's header part: for an answer with a body
// of a sub_filter_types type (text/html always), it drops the length and
// Accept-Ranges (the body is sent chunked) and, unless
// sub_filter_last_modified is on, Last-Modified and ETag (else the ETag
// turns weak); the body then goes through the substitutions.
func (x *exchange) subHead(hdr http1.Header, length int64, chunked bool) (http1.Header, int64, bool) {
	x.subst = nil
	c := &x.lc.Sub
	if len(c.Find) == 0 || length == 0 || !x.subType(hdr.Get("Content-Type")) {
		return hdr, length, chunked
	}
	s := &substitution{}
	for i, f := range c.Find {
		if v := f.Eval(x.vc); v != "" {
			s.find = append(s.find, v)
			s.repl = append(s.repl, c.Repl[i].Eval(x.vc))
		}
	}
	if len(s.find) == 0 {
		return hdr, length, chunked
	}
	out := make(http1.Header, 0, len(hdr))
	for _, f := range hdr {
		switch {
		case strings.EqualFold(f.Name, "Content-Length"), strings.EqualFold(f.Name, "Accept-Ranges"):
			continue
		case !c.LastModified && (strings.EqualFold(f.Name, "Last-Modified") || strings.EqualFold(f.Name, "ETag")):
			continue
		case c.LastModified && strings.EqualFold(f.Name, "ETag") && !strings.HasPrefix(f.Value, "W/"):
			if !strings.HasPrefix(f.Value, `"`) {
				continue // nginx drops an ETag it cannot make weak
			}
			f.Value = "W/" + f.Value
		}
		out = append(out, f)
	}
	if length == -2 || x.req.Method == "HEAD" {
		return out, -2, false // no body: only the headers change
	}
	x.subst = s
	return out, -1, x.req.Major == 1 && x.req.Minor >= 1 && x.lc.ChunkedTransferEncoding
}

// subType reports whether the Content-Type is one sub_filter works on.
func (x *exchange) subType(ct string) bool {
	c := &x.lc.Sub
	mime, _, _ := strings.Cut(ct, ";")
	mime = strings.ToLower(strings.TrimSpace(mime))
	return mime != "" && (c.AnyType || mime == "text/html" || slices.Contains(c.Types, mime))
}
