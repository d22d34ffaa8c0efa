package server

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"syscall"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/regex"
	"github.com/wsgate/wsgate/internal/static"
)

// maxURIChanges is nginx's NGX_HTTP_MAX_URI_CHANGES: a request may be
// rewritten or redirected inside the server this many times.
const maxURIChanges = 10

// serverPhases runs the request from the server rewrite phase: at its
// start, and again after every internal redirect.
func (x *exchange) serverPhases() bool {
	x.lc = x.srv.Loc.Conf
	x.log = x.logFor(x.lc)
	x.realIP()
	x.stopRewrite = false
	if done, keep := x.rewrite(x.srv.Loc); done {
		return keep
	}
	return x.locationPhases(nil)
}

// locationPhases finds the location for $uri (or takes named, a named
// location), runs its rewrite phase, and searches again while a rewrite
// changed the URI, at most maxURIChanges times in all; then the access
// and content phases.
func (x *exchange) locationPhases(named *config.Location) bool {
	for {
		loc := named
		named = nil
		if loc == nil {
			var caps []string
			var err error
			loc, caps, err = findLocation(x.srv.Locations, x.vc.Path)
			if err != nil {
				return x.regexFailed(err)
			}
			if loc == nil {
				loc = x.srv.Locations
			}
			if caps != nil {
				x.setCaptures(loc.Regex, caps)
			}
			if loc.Conf.Internal && !x.internal {
				x.enter(loc)
				return x.errorPage(404)
			}
		}
		x.enter(loc)
		x.uriChanged, x.vc.URIBreak = false, false
		x.stopRewrite = false // `break` ends one level's instructions, not the next level's
		if le := loc.LimitExcept; le != nil && !le.Methods[x.req.Method] {
			// The block's configuration, whose rewrite phase is empty,
			// applies to the methods it does not list, as nginx.
			loc = le.Loc
			x.lc = loc.Conf
			x.log = x.logFor(x.lc)
		}
		x.otelStart()
		if done, keep := x.rewrite(loc); done {
			return keep
		}
		if !x.uriChanged {
			break
		}
		x.uriChanges--
		if x.uriChanges <= 0 {
			x.log.Printf(errlog.Error, x.conn.id, "rewrite or internal redirection cycle while processing \"%s\"%s", x.vc.Path, x.logSuffix())
			return x.errorPage(500)
		}
	}
	return x.contentPhases()
}

// enter makes loc the request's location.
func (x *exchange) enter(loc *config.Location) {
	x.loc, x.lc = loc, loc.Conf
	x.log = x.logFor(x.lc)
	if x.log.Enabled(errlog.Debug) {
		x.log.Printf(errlog.Debug, x.conn.id, "using configuration \"%s%s%s\", client: %s, request: \"%s\"", loc.Modifier, spaceIf(loc.Modifier), loc.Path, x.conn.remote.Addr(), requestLine(x.vc))
	}
	x.realIP()
}

// contentPhases runs preaccess, access, try_files and the content
// handler.
func (x *exchange) contentPhases() bool {
	// A refused handshake never costs a backend connection.
	for i, phase := range [...]func() (bool, bool){x.preaccess, x.access, x.checkOrigin, x.checkWebSocket} {
		if x.sub && i < 2 {
			continue // nginx's subrequests skip the (pre)access checks the main request passed
		}
		if ok, keep := phase(); !ok {
			if x.isUpgrade() {
				x.conn.srv.metrics.Handshake("rejected")
			}
			return keep
		}
	}
	if ok, keep := x.mirror(); !ok {
		return keep
	}
	if len(x.lc.TryFiles) > 0 {
		if done, keep := x.tryFiles(); done {
			return keep
		}
	}
	switch {
	case x.lc.StubStatus:
		return x.stubStatus()
	case x.lc.Status != "":
		return x.statusHandler()
	case x.lc.Proxy != nil:
		return x.proxy()
	case x.lc.EmptyGif:
		return x.serveEmptyGif()
	}
	return x.static()
}

// setCaptures makes m the captures $0..$9, replacing the last regex's
// even when re has no groups (as nginx: `location ~ ^/x/(.*)$ { rewrite ^
// /y/$1; }` leaves $1 empty), and sets the variables of re's named groups.
func (x *exchange) setCaptures(re *regex.Regexp, m []string) {
	x.vc.Captures = append(x.vc.Captures[:0], m...)
	if re == nil {
		return
	}
	for _, nc := range x.rt.cfg.Captures[re] {
		x.vc.Set(nc.Var, m[nc.Group])
	}
}

// regexFailed answers 500 for a regex whose match was cut short, with
// nginx's alert line for a PCRE error.
func (x *exchange) regexFailed(err error) bool {
	x.RegexError(err)
	return x.errorPage(500)
}

// hostRegexFailed ends a request whose server_name regex match was cut
// short as nginx does: the alert line, the connection closed without an
// answer, and 500 in the access log.
func (x *exchange) hostRegexFailed(err error) bool {
	x.RegexError(err)
	x.close = true
	x.vc.Status = 500
	x.done()
	return false
}

// RegexError logs a regex whose match was cut short (a map's, too).
func (x *exchange) RegexError(err error) {
	x.log.Printf(errlog.Alert, x.conn.id, "%v%s", err, x.logSuffix())
}

// UninitializedVariable is uninitialized_variable_warn's log line.
func (x *exchange) UninitializedVariable(name string) {
	if x.lc != nil && x.lc.UninitWarn {
		x.log.Printf(errlog.Warn, x.conn.id, "using uninitialized \"%s\" variable%s", name, x.logSuffix())
	}
}

// logMatch is rewrite_log's line for a rewrite or if regex.
func (x *exchange) logMatch(pattern, subject string, matched bool) {
	if !x.lc.RewriteLog {
		return
	}
	verb := "matches"
	if !matched {
		verb = "does not match"
	}
	x.log.Printf(errlog.Notice, x.conn.id, "\"%s\" %s \"%s\"%s", pattern, verb, subject, x.logSuffix())
}

// doRewrite executes one `rewrite`. done reports an answer was sent (a
// redirect); otherwise $uri and $args may have changed, and the flags
// last and break end the rewrite phase.
func (x *exchange) doRewrite(rw *config.Rewrite) (done, keep bool) {
	m, err := rw.Regex.FindStringSubmatch(x.vc.Path)
	if err != nil {
		return true, x.regexFailed(err)
	}
	x.logMatch(rw.Pattern, x.vc.Path, m != nil)
	if m == nil {
		return false, false
	}
	x.setCaptures(rw.Regex, m)
	uri, args := x.rewriteResult(rw)
	if rw.Redirect != 0 {
		loc := uri
		sep := "?"
		if rw.Args != nil {
			loc += "?" + args
			sep = "&"
		}
		if rw.AddArgs && x.vc.Args != "" {
			loc += sep + x.vc.Args
		}
		if x.lc.RewriteLog {
			x.log.Printf(errlog.Notice, x.conn.id, "rewritten redirect: \"%s\"%s", loc, x.logSuffix())
		}
		return true, x.redirect(rw.Redirect, loc)
	}
	if uri == "" {
		x.log.Printf(errlog.Error, x.conn.id, "the rewritten URI has a zero length%s", x.logSuffix())
		return true, x.errorPage(500)
	}
	switch {
	case rw.Args != nil:
		if rw.AddArgs && x.vc.Args != "" {
			args += "&" + x.vc.Args
		}
		x.vc.Args = args
	case !rw.AddArgs:
		x.vc.Args = ""
	}
	x.vc.Path = uri
	x.internal, x.vc.URIChanged = true, true
	if x.lc.RewriteLog {
		x.log.Printf(errlog.Notice, x.conn.id, "rewritten data: \"%s\", args: \"%s\"%s", uri, x.vc.Args, x.logSuffix())
	}
	switch rw.Flag {
	case "break":
		x.uriChanged, x.stopRewrite, x.vc.URIBreak = false, true, true
	case "last":
		x.uriChanged, x.stopRewrite = true, true
	default:
		x.uriChanged = true
	}
	return false, false
}

// rewriteResult renders a rewrite's replacement. As nginx, when the
// request's path was sent with escapes or '+', the captures $0..$9 are
// escaped again in the arguments (as arguments), and in the URI of a
// redirect (as a path).
func (x *exchange) rewriteResult(rw *config.Rewrite) (uri, args string) {
	raw, _, _ := strings.Cut(x.vc.RequestURI, "?")
	quoted := strings.ContainsAny(raw, "%+")
	if !quoted {
		uri = rw.URI.Eval(x.vc)
		if rw.Args != nil {
			args = rw.Args.Eval(x.vc)
		}
		return uri, args
	}
	plain := x.vc.Captures
	if rw.Redirect != 0 {
		x.vc.Captures = escapeAll(plain, "#%?")
	}
	uri = rw.URI.Eval(x.vc)
	if rw.Args != nil {
		x.vc.Captures = escapeAll(plain, "#%&+?")
		args = rw.Args.Eval(x.vc)
	}
	x.vc.Captures = plain
	return uri, args
}

// escapeAll escapes each string as nginx's ngx_escape_uri: controls,
// space, bytes above 0x7e and the characters of set.
func escapeAll(in []string, set string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = escapeSet(s, set)
	}
	return out
}

func escapeSet(s, set string) string {
	const hexd = "0123456789ABCDEF"
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(set, c) >= 0 {
			if b == nil {
				b = append(make([]byte, 0, len(s)+8), s[:i]...)
			}
			b = append(b, '%', hexd[c>>4], hexd[c&15])
			continue
		}
		if b != nil {
			b = append(b, c)
		}
	}
	if b == nil {
		return s
	}
	return string(b)
}

// redirect answers with a 3xx and its Location; a path is made absolute
// with the request's scheme and host.
func (x *exchange) redirect(code int, loc string) bool {
	x.errStatus = code // a redirect is a special response: its own status
	loc = x.absoluteLocation(loc)
	line := statusString(code) + " " + http1.StatusText(code)
	body := "<html>\r\n<head><title>" + line + "</title></head>\r\n<body>\r\n<center><h1>" + line + "</h1></center>\r\n" + errorTail
	return x.respond(code, http1.Header{{Name: "Content-Type", Value: "text/html"}, {Name: "Location", Value: loc}}, body)
}

// internalRedirect restarts the request at the server rewrite phase with
// the path uri and the same arguments, as nginx's index module does for
// an index file. It reports whether the connection may be kept.
func (x *exchange) internalRedirect(uri string) bool {
	return x.redirectInternally(uri, x.vc.Args)
}

// redirectInternally restarts the request with a new $uri and $args,
// counting against maxURIChanges.
func (x *exchange) redirectInternally(path, args string) bool {
	x.uriChanges--
	if x.uriChanges <= 0 {
		x.log.Printf(errlog.Error, x.conn.id, "rewrite or internal redirection cycle while internally redirecting to \"%s\"%s", path, x.logSuffix())
		return x.errorPage(500)
	}
	x.vc.Path, x.vc.Args = path, args
	x.internal, x.vc.URIChanged = true, true
	return x.serverPhases()
}

// namedRedirect continues the request in a named location, from its
// rewrite phase, with the URI unchanged.
func (x *exchange) namedRedirect(name string) bool {
	loc := x.srv.Named[name]
	if loc == nil {
		x.log.Printf(errlog.Error, x.conn.id, "could not find named location \"%s\"%s", name, x.logSuffix())
		return x.errorPage(500)
	}
	x.uriChanges--
	if x.uriChanges <= 0 {
		x.log.Printf(errlog.Error, x.conn.id, "rewrite or internal redirection cycle while redirect to named location \"%s\"%s", name, x.logSuffix())
		return x.errorPage(500)
	}
	x.internal = true
	return x.locationPhases(loc)
}

// errorPageFor returns the error_page that applies to status, if any: one
// per request unless recursive_error_pages, and none once the redirect
// budget is spent.
func (x *exchange) errorPageFor(status int) *config.ErrorPage {
	if !x.phased || x.errorPaged || x.uriChanges <= 0 || x.lc == nil {
		return nil
	}
	for i := range x.lc.ErrorPages {
		ep := &x.lc.ErrorPages[i]
		for _, c := range ep.Codes {
			if c == status {
				return ep
			}
		}
	}
	return nil
}

// sendErrorPage answers status through ep: an internal redirect to a
// URI or a named location, or a redirect to a URL.
func (x *exchange) sendErrorPage(ep *config.ErrorPage, status int) bool {
	// The caller (the proxy, mid-exchange) reads its own location's
	// settings once the page is sent; a tunnel that the redirected request
	// opened owns them instead.
	lc, loc, log := x.lc, x.loc, x.log
	defer func() {
		if !x.conn.hijacked {
			x.lc, x.loc, x.log = lc, loc, log
		}
	}()
	if !x.lc.RecursiveErrorPages {
		x.errorPaged = true
	}
	x.errStatus = status
	if ep.Overwrite >= 0 {
		x.errStatus = ep.Overwrite
	}
	uri := ep.URI.Eval(x.vc)
	// The request body stays: nginx discards it only for a built-in page.
	// A URI is fetched with GET (HEAD stays HEAD); a named location keeps
	// the method, as nginx.
	if strings.HasPrefix(uri, "/") && x.req.Method != "HEAD" && x.req.Method != "GET" {
		x.req.Method = "GET"
		x.vc.SetMethod("GET")
	}
	switch {
	case strings.HasPrefix(uri, "/"):
		path, args, _ := strings.Cut(uri, "?")
		return x.redirectInternally(path, args)
	case strings.HasPrefix(uri, "@"):
		return x.namedRedirect(uri)
	}
	code := 302
	switch ep.Overwrite {
	case 301, 302, 303, 307, 308:
		code = ep.Overwrite
	}
	x.errStatus = 0
	return x.redirect(code, uri)
}

// intercepts reports whether proxy_intercept_errors hands a backend's
// answer with this status to error_page.
func (x *exchange) intercepts(status int) bool {
	return x.lc.InterceptErrors && status >= 300 && x.errorPageFor(status) != nil
}

// tryFiles runs try_files: the first argument naming an existing file
// (or, with a trailing '/', a directory) under root becomes $uri and the
// location's content handler serves it; else the last argument answers:
// =code, a named location, or an internal redirect to a URI.
func (x *exchange) tryFiles() (done, keep bool) {
	tfs := x.lc.TryFiles
	for _, tf := range tfs[:len(tfs)-1] {
		name := tf.Name.Eval(x.vc)
		path, _ := static.Map(&x.lc.Files, x.vc, name) // root or alias, as nginx
		st, err := os.Stat(path)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) && !errors.Is(err, syscall.ENAMETOOLONG) {
				x.log.Printf(errlog.Crit, x.conn.id, "stat() \"%s\" failed %s%s", path, static.ErrnoText(err), x.logSuffix())
			}
			continue
		}
		if st.IsDir() != tf.TestDir {
			continue
		}
		// The request URI stays valid: a proxy_pass without a URI part
		// still sends the one the client sent, as nginx.
		x.vc.Path = name
		return false, false
	}
	last := tfs[len(tfs)-1]
	if last.Code != 0 {
		if last.Code >= 300 {
			return true, x.errorPage(last.Code)
		}
		return true, x.respond(last.Code, nil, "")
	}
	name := last.Name.Eval(x.vc)
	if strings.HasPrefix(name, "@") {
		return true, x.namedRedirect(name)
	}
	path, args, _ := strings.Cut(name, "?")
	return true, x.redirectInternally(path, args)
}
