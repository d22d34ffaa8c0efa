package server

import (
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/wsgate/wsgate/internal/static"
)

// static serves the location's files through package static, as nginx's
// index, autoindex and static modules do for a location without a
// content handler.
func (x *exchange) static() bool {
	if x.req.ContentLength > 0 || x.req.Chunked {
		x.close = true // the body is not read: the connection cannot be reused
	}
	r := &static.Request{Method: x.req.Method, URI: x.vc.Path, Args: x.vc.Args, Header: x.req.Header,
		DefaultType: x.defaultType(), Files: &x.lc.Files, Vars: x.vc, Compressed: x.gzipWhole}
	path, root := static.Map(r.Files, x.vc, r.URI)
	if !strings.HasSuffix(r.URI, "/") {
		if a := x.gzipStatic(r, path, root); a != nil {
			return x.sendAnswer(a)
		}
		return x.sendAnswer(static.Serve(r, path, root))
	}
	uri, a := static.Dir(r, x.indexNames(), path, root)
	if a != nil {
		return x.sendAnswer(a) // a listing, or why there is none
	}
	// nginx's index module: the index file is reached by an internal
	// redirect, so the locations that match its URI apply to it.
	return x.internalRedirect(uri)
}

// indexNames is the location's `index` list with its variables evaluated.
func (x *exchange) indexNames() []string {
	if len(x.lc.IndexVars) == 0 {
		return x.lc.Index // the built-in default
	}
	names := make([]string, len(x.lc.IndexVars))
	for i, t := range x.lc.IndexVars {
		names[i] = t.Eval(x.vc)
	}
	return names
}

// sendAnswer writes a static answer: an error status as the error page
// with the answer's headers, anything else with its body (none for HEAD).
func (x *exchange) sendAnswer(a *static.Answer) bool {
	defer a.Close()
	for _, l := range a.Log {
		x.log.Printf(l.Level, x.conn.id, "%s%s", l.Text, x.logSuffix())
	}
	if a.Status == 304 {
		return x.respond(304, a.Header, "")
	}
	if a.Body == nil {
		for _, f := range a.Header {
			if strings.EqualFold(f.Name, "Location") {
				f.Value = x.absoluteLocation(f.Value)
			}
			x.extra = append(x.extra, f)
		}
		return x.errorPage(a.Status)
	}
	hdr, length, chunked := x.filters(a.Status, x.carriedType(a.Header), a.Length, a.Length < 0 && x.req.Proto != "HTTP/1.0")
	head := x.head(a.Status, hdr, length, chunked)
	bw := x.conn.bw
	bw.Write(head)
	x.sent += int64(len(head))
	if x.req.Method != "HEAD" {
		var w io.Writer = bw
		var cw *chunkedBody
		if chunked {
			cw = newChunkedBody(bw)
			w = cw
		}
		w, z := x.gzipBody(w)
		n, err := a.Body.WriteTo(w)
		if z != nil {
			n, err = x.gzipEnd(z, err)
		}
		if cw != nil && err == nil {
			err = x.endChunked(cw)
		}
		n = bodyBytes(cw, n)
		x.sent += n
		x.bodySent += n
		if err != nil {
			x.close = true
		}
	}
	err := bw.Flush()
	x.done()
	return err == nil && !x.close
}

// absoluteLocation makes a Location that starts with '/' absolute, as
// nginx's header filter with absolute_redirect on: the scheme, the host
// (server_name_in_redirect: the server's first name; else the request's
// host; else the local address) and the port unless port_in_redirect is
// off or the port is the scheme's default.
func (x *exchange) absoluteLocation(loc string) string {
	if !strings.HasPrefix(loc, "/") || x.lc == nil || !x.lc.Files.AbsoluteRedirect {
		return loc
	}
	f := &x.lc.Files
	host := x.vc.Host
	switch {
	case f.ServerNameInRedirect:
		host = x.vc.ServerName
	case host == "":
		host = x.vc.Local.Addr().Unmap().String()
	}
	port := x.vc.Local.Port()
	if !f.PortInRedirect || port == 80 && x.vc.Scheme == "http" || port == 443 && x.vc.Scheme == "https" {
		port = 0
	}
	if port != 0 {
		host += ":" + strconv.Itoa(int(port))
	}
	return x.vc.Scheme + "://" + host + loc
}

// DocumentRoot is $document_root: the location's root or alias.
func (x *exchange) DocumentRoot() string {
	if x.lc == nil {
		return ""
	}
	_, root := static.Map(&x.lc.Files, x.vc, x.vc.Path)
	return root
}

// RealpathRoot is $realpath_root: the document root with symlinks
// resolved, empty when it does not exist.
func (x *exchange) RealpathRoot() string {
	p, err := filepath.EvalSymlinks(x.DocumentRoot())
	if err != nil {
		return ""
	}
	return p
}

// RequestFilename is $request_filename: the file the URI maps to.
func (x *exchange) RequestFilename() string {
	if x.lc == nil {
		return ""
	}
	p, _ := static.Map(&x.lc.Files, x.vc, x.vc.Path)
	return p
}
