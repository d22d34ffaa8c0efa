package static

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/vars"
)

// Request is what serving a file needs of a request.
type Request struct {
	Method      string
	URI         string // $uri, normalised
	Args        string
	Header      http1.Header
	DefaultType string
	Files       *config.Files
	Vars        *vars.Ctx // evaluates root, alias and disable_symlinks from=
	// Compressed, when set, reports whether a 200 answer with these
	// headers and length will be gzip-compressed; such an answer ignores
	// Range, as nginx's range filter after the gzip filter.
	Compressed func(hdr http1.Header, length int64) bool
}

// Answer is the response to a request for a file or a directory.
type Answer struct {
	// Status is 200, 206, 304 or an error status, for which the caller
	// sends its error page with Header.
	Status int
	Header http1.Header
	Length int64 // the body's length; -1 when unknown (send it chunked)
	Body   Body  // nil without a body of its own
	Log    []LogLine
}

// LogLine is one error-log line, without the request's context.
type LogLine struct {
	Level errlog.Level
	Text  string
}

// Body is a response body; WriteTo writes all of it.
type Body interface {
	io.WriterTo
	io.Closer
}

// Close releases the answer's file, if any.
func (a *Answer) Close() {
	if a.Body != nil {
		a.Body.Close()
	}
}

func (a *Answer) logf(level errlog.Level, format string, args ...any) {
	a.Log = append(a.Log, LogLine{level, fmt.Sprintf(format, args...)})
}

// HTTPTime is the format of Last-Modified and of HTTP dates.
const HTTPTime = "Mon, 02 Jan 2006 15:04:05 GMT"

func fail(status int) *Answer { return &Answer{Status: status, Length: -1} }

// Serve answers r for the file at path (from Map), for a URI that does not
// end in '/'.
func Serve(r *Request, path, root string) *Answer {
	switch r.Method {
	case "GET", "HEAD", "POST":
	default:
		return fail(405)
	}
	if escapesAlias(r.Files, path, root) {
		a := fail(403)
		a.logf(errlog.Error, "\"%s\" leaves the alias \"%s\"", path, root)
		return a
	}
	f, a := openLogged(r, path)
	if a != nil {
		return a
	}
	st, a := notAFile(r, f, path)
	if a != nil {
		f.Close()
		return a
	}
	return serveFile(r, f, st)
}

// notAFile answers an opened path that is not served as a file: a
// folder (301 to the URI with '/'), a FIFO or device (404), or any file
// for POST (405).
func notAFile(r *Request, f *os.File, path string) (os.FileInfo, *Answer) {
	st, err := f.Stat()
	switch {
	case err != nil:
		a := fail(500)
		a.logf(errlog.Crit, "fstat() \"%s\" failed %s", path, ErrnoText(err))
		return nil, a
	case st.IsDir():
		a := fail(301)
		loc := escape(r.URI, uriEscape) + "/"
		if r.Args != "" {
			loc += "?" + r.Args
		}
		a.Header = http1.Header{{Name: "Location", Value: loc}}
		return nil, a
	case !st.Mode().IsRegular():
		a := fail(404)
		a.logf(errlog.Crit, "\"%s\" is not a regular file", path)
		return nil, a
	case r.Method == "POST":
		return nil, fail(405)
	}
	return st, nil
}

// openLogged opens path, or answers the error as nginx's static handler.
func openLogged(r *Request, path string) (*os.File, *Answer) {
	o := opener{mode: r.Files.DisableSymlinks}
	if r.Files.SymlinksFrom != nil {
		o.from = r.Files.SymlinksFrom.Eval(r.Vars)
	}
	f, err := o.open(path)
	if err == nil {
		return f, nil
	}
	oe := err.(*openError)
	status, notFound := statusOf(oe.err)
	a := fail(status)
	if !notFound || r.Files.LogNotFound {
		level := errlog.Error
		if status == 500 {
			level = errlog.Crit
		}
		a.logf(level, "%s \"%s\" failed %s", oe.op, path, ErrnoText(oe.err))
	}
	return nil, a
}

// serveFile builds the 200 answer for an open regular file and runs it
// through the not-modified and range filters.
func serveFile(r *Request, f *os.File, st os.FileInfo) *Answer {
	fc := r.Files
	mtime := st.ModTime().Unix()
	size := st.Size()
	ctype := ContentType(fc, r.URI, r.DefaultType)
	m := meta{mtime: mtime, size: size}
	if fc.ETag {
		m.etag = "\"" + strconv.FormatInt(mtime, 16) + "-" + strconv.FormatInt(size, 16) + "\""
	}
	hdr := http1.Header{{Name: "Content-Type", Value: ctype}, {Name: "Last-Modified", Value: time.Unix(mtime, 0).UTC().Format(HTTPTime)}}
	if m.etag != "" {
		hdr = append(hdr, http1.Field{Name: "ETag", Value: m.etag})
	}
	if status := notModified(r, fc, m); status != 0 {
		f.Close()
		if status == 412 {
			return fail(412)
		}
		return &Answer{Status: 304, Header: hdr[1:], Length: -1}
	}
	a := &Answer{Status: 200, Header: hdr, Length: size, Body: &fileBody{f: f, parts: []part{{start: 0, end: size}}}}
	ranges(r, fc, m, ctype, a)
	return a
}

// meta is what the conditional and range filters compare against; an
// mtime of -1 is none, as nginx's last_modified_time.
type meta struct {
	mtime, size int64
	etag        string
}

// notModified is nginx's not_modified filter: 412 when If-Unmodified-Since
// or If-Match fails, 304 when If-Modified-Since or If-None-Match says the
// client's copy is current, else 0.
func notModified(r *Request, fc *config.Files, m meta) int {
	h := r.Header
	if v, ok := get(h, "If-Unmodified-Since"); ok {
		if t, ok := parseHTTPTime(v); !ok || m.mtime == -1 || t < m.mtime {
			return 412
		}
	}
	if v, ok := get(h, "If-Match"); ok && !etagMatch(v, m.etag, false) {
		return 412
	}
	ims, hasIMS := get(h, "If-Modified-Since")
	inm, hasINM := get(h, "If-None-Match")
	if !hasIMS && !hasINM {
		return 0
	}
	if hasIMS && (m.mtime == -1 || modifiedSince(ims, fc.IfModifiedSince, m.mtime)) {
		return 0
	}
	if hasINM && !etagMatch(inm, m.etag, true) {
		return 0
	}
	return 304
}

func get(h http1.Header, name string) (string, bool) {
	for _, f := range h {
		if strings.EqualFold(f.Name, name) {
			return f.Value, true
		}
	}
	return "", false
}

func modifiedSince(v string, mode config.IMS, mtime int64) bool {
	if mode == config.IMSOff {
		return true
	}
	t, ok := parseHTTPTime(v)
	if ok && t == mtime {
		return false
	}
	return mode == config.IMSExact || !ok || t < mtime
}

// etagMatch is nginx's ngx_http_test_if_match: "*" or a list entry equal
// to etag; weak lets "W/" prefixes match (If-None-Match).
func etagMatch(list, etag string, weak bool) bool {
	if list == "*" {
		return true
	}
	if etag == "" {
		return false
	}
	for list != "" {
		if weak && strings.HasPrefix(list, "W/") {
			list = list[2:]
		}
		if strings.HasPrefix(list, etag) {
			rest := strings.TrimLeft(list[len(etag):], " \t")
			if rest == "" || rest[0] == ',' {
				return true
			}
		}
		i := strings.IndexByte(list, ',')
		if i < 0 {
			return false
		}
		list = strings.TrimLeft(list[i:], " \t,")
	}
	return false
}

// parseHTTPTime reads the three date formats of RFC 9110 as Unix seconds.
func parseHTTPTime(v string) (int64, bool) {
	for _, layout := range [...]string{HTTPTime, "Monday, 02-Jan-06 15:04:05 GMT", "Mon Jan _2 15:04:05 2006"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.Unix(), true
		}
	}
	return 0, false
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
