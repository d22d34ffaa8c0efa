package server

import (
	"errors"
	"io"
	"io/fs"
	"mime"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/status"
	"github.com/wsgate/wsgate/internal/vars"
)

// Version is what the Server header and -v print.
const Version = "0.1.0"

var defaultLocConf = mustDefaultLocConf()

func mustDefaultLocConf() *config.LocConf {
	c, err := config.LoadBytes("default", []byte("http { server { } }"), config.Options{})
	if err != nil {
		panic(err)
	}
	return c.HTTP.Servers[0].Loc.Conf
}

func requestLine(vc *vars.Ctx) string {
	return vc.RequestLine()
}

// addHeaderStatus lists the statuses add_header applies to without
// "always", as nginx's ngx_http_headers_filter.
func addHeaderStatus(code int) bool {
	switch code {
	case 200, 201, 204, 206, 301, 302, 303, 304, 307, 308:
		return true
	}
	return false
}

type cachedDate struct {
	sec int64
	s   string
}

var dateCache atomic.Pointer[cachedDate]

func httpDate() string {
	now := time.Now()
	if d := dateCache.Load(); d != nil && d.sec == now.Unix() {
		return d.s
	}
	d := &cachedDate{sec: now.Unix(), s: now.UTC().Format(http1TimeFormat)}
	dateCache.Store(d)
	return d.s
}

const http1TimeFormat = "Mon, 02 Jan 2006 15:04:05 GMT"

// head returns a response head, which the caller writes to the client
// buffer before anything else. hdr holds the handler's headers; Server,
// Date and framing are added here, and add_header last, replacing a header
// of the same name (one Content-Type, where nginx would send two).
func (x *exchange) head(status int, hdr http1.Header, length int64, chunked bool) []byte {
	x.status = status
	x.vc.Status = status
	x.respHeader = hdr
	x.vc.RespHeader = &x.respHeader // a pointer: boxing the slice would allocate
	if (x.req.ContentLength > 0 || x.req.Chunked) && !x.bodyRead {
		// An unread body would be taken for the next request.
		x.close = true
	}
	if x.lc != nil {
		x.conn.sendTimeout = x.lc.Client.SendTimeout
	}
	// The head is built in the client buffer's free space when it has
	// room, so the callers' bw.Write(head) copies nothing (an empty
	// buffer always has room; append moves to the heap if a head
	// outgrows it).
	var b []byte
	if bw := x.conn.bw; bw != nil && bw.Available() >= 512 {
		b = bw.AvailableBuffer()
	} else {
		b = make([]byte, 0, 512)
	}
	b = http1.AppendStatusLine(b, status, "")
	if x.lc == nil || x.lc.ServerTokens {
		b = append(b, "Server: wsgate/"+Version+"\r\n"...)
	} else {
		b = append(b, "Server: wsgate\r\n"...)
	}
	b = append(b, "Date: "...)
	b = append(b, httpDate()...)
	b = append(b, "\r\n"...)
	adds := x.addHeaders(status)
	for _, f := range hdr {
		if hasField(adds, f.Name) {
			continue
		}
		b = appendField(b, f.Name, f.Value)
	}
	if length >= 0 {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, length, 10)
		b = append(b, "\r\n"...)
	} else if chunked {
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	if status != 101 {
		if x.close || x.req.Close || (length < 0 && !chunked) {
			x.close = true
			b = append(b, "Connection: close\r\n"...)
		} else {
			b = append(b, "Connection: keep-alive\r\n"...)
		}
	}
	for _, f := range x.extra {
		b = appendField(b, f.Name, f.Value)
	}
	for _, f := range adds {
		b = appendField(b, f.Name, f.Value)
	}
	b = append(b, "\r\n"...)
	return b
}

func appendField(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	b = append(b, value...)
	return append(b, "\r\n"...)
}

func hasField(h http1.Header, name string) bool {
	for _, f := range h {
		if strings.EqualFold(f.Name, name) {
			return true
		}
	}
	return false
}

func (x *exchange) addHeaders(status int) http1.Header {
	if x.lc == nil || len(x.lc.AddHeaders) == 0 {
		return nil
	}
	var out http1.Header
	ok := addHeaderStatus(status)
	for _, h := range x.lc.AddHeaders {
		if !ok && !h.Always {
			continue
		}
		v := h.Value.Eval(x.vc)
		if v == "" {
			continue
		}
		out = append(out, http1.Field{Name: h.Name, Value: v})
	}
	return out
}

// respond writes a whole response with a body held in memory.
func (x *exchange) respond(status int, hdr http1.Header, body string) bool {
	if x.req.Method == "HEAD" || status == 204 || status == 304 {
		b := x.head(status, hdr, func() int64 {
			if status == 204 || status == 304 {
				return -2
			}
			return int64(len(body))
		}(), false)
		return x.finish(b, "")
	}
	b := x.head(status, hdr, int64(len(body)), false)
	return x.finish(b, body)
}

// finish writes head and body, logs the request and reports keep-alive.
func (x *exchange) finish(head []byte, body string) bool {
	bw := x.conn.bw
	bw.Write(head)
	bw.WriteString(body)
	err := bw.Flush()
	x.sent += int64(len(head) + len(body))
	x.bodySent += int64(len(body))
	x.done()
	return err == nil && !x.close
}

// done is the log phase of a request that ends now.
func (x *exchange) done() {
	x.vc.BytesSent, x.vc.BodyBytesSent = x.sent, x.bodySent
	x.vc.End = time.Now()
	logAccess(x.rt, x.lc, x.vc)
}

// logAccess writes the request's access log lines. A WebSocket session
// is logged when its tunnel closes.
func logAccess(rt *generation, lc *config.LocConf, vc *vars.Ctx) {
	if lc == nil {
		return
	}
	for _, l := range rt.accessLogs[lc] {
		l.Write(vc)
	}
}

// stubStatus answers in nginx's exact stub_status format.
func (x *exchange) stubStatus() bool {
	st := &x.conn.srv.Stats
	active, reading, writing, waiting := st.ConnCounts()
	body := "Active connections: " + strconv.FormatInt(active, 10) + " \n" +
		"server accepts handled requests\n" +
		" " + strconv.FormatInt(st.Accepts.Load(), 10) + " " + strconv.FormatInt(st.Handled.Load(), 10) + " " + strconv.FormatInt(st.Requests.Load(), 10) + " \n" +
		"Reading: " + strconv.FormatInt(reading, 10) + " Writing: " + strconv.FormatInt(writing, 10) + " Waiting: " + strconv.FormatInt(waiting, 10) + " \n"
	if x.req.Method != "GET" && x.req.Method != "HEAD" {
		return x.errorPage(405)
	}
	return x.respond(200, http1.Header{{Name: "Content-Type", Value: "text/plain"}}, body)
}

const errorTail = "<hr><center>wsgate</center>\r\n</body>\r\n</html>\r\n"

func (x *exchange) errorPage(status int) bool {
	return x.errorPageTitled(status, "")
}

// errorPageTitled answers with nginx's style of error page.
func (x *exchange) errorPageTitled(status int, title string) bool {
	line := strconv.Itoa(status) + " " + http1.StatusText(status)
	body := "<html>\r\n<head><title>" + line + "</title></head>\r\n<body>\r\n<center><h1>" + line + "</h1></center>\r\n"
	if title != "" && title != http1.StatusText(status) {
		body += "<center>" + title + "</center>\r\n"
	}
	body += errorTail
	// nginx ends the connection after these (ngx_http_special_response_handler):
	// what follows the request on the wire cannot be trusted.
	switch status {
	case 400, 413, 414, 495, 496, 497, 500, 501:
		x.close = true
	}
	return x.respond(status, http1.Header{{Name: "Content-Type", Value: "text/html"}}, body)
}

// doReturn executes `return`.
func (x *exchange) doReturn(op config.Op) bool {
	code := op.Code
	if code == 444 {
		x.close = true
		x.vc.Status = 444
		x.done()
		return false
	}
	if code >= 301 && code <= 308 && code != 304 && op.Text != nil {
		loc := op.Text.Eval(x.vc)
		if strings.HasPrefix(loc, "/") {
			loc = x.vc.Scheme + "://" + x.hostForRedirect() + loc
		}
		line := strconv.Itoa(code) + " " + http1.StatusText(code)
		body := "<html>\r\n<head><title>" + line + "</title></head>\r\n<body>\r\n<center><h1>" + line + "</h1></center>\r\n" + errorTail
		return x.respond(code, http1.Header{{Name: "Content-Type", Value: "text/html"}, {Name: "Location", Value: loc}}, body)
	}
	if op.Text == nil {
		if code >= 400 || code == 204 {
			if code == 204 {
				return x.respond(204, nil, "")
			}
			return x.errorPage(code)
		}
		return x.respond(code, nil, "")
	}
	return x.respond(code, http1.Header{{Name: "Content-Type", Value: x.defaultType()}}, op.Text.Eval(x.vc))
}

func (x *exchange) hostForRedirect() string {
	h := x.vc.ServerName
	if h == "" {
		h = x.vc.Host
	}
	if p := x.vc.Local.Port(); p != 80 {
		h += ":" + strconv.Itoa(int(p))
	}
	return h
}

func (x *exchange) defaultType() string {
	if x.lc != nil && x.lc.DefaultType != "" {
		return x.lc.DefaultType
	}
	return "text/plain"
}

// static serves files under root for GET and HEAD, as nginx's static and
// index modules do for a location without a content handler.
func (x *exchange) static() bool {
	if x.req.Method != "GET" && x.req.Method != "HEAD" {
		return x.errorPage(405)
	}
	if x.req.ContentLength > 0 || x.req.Chunked {
		x.close = true // the body is not read: the connection cannot be reused
	}
	// The file is root followed by $uri, the normalised path that chose
	// the location, as it is: nothing here may clean it further.
	p := strings.TrimSuffix(x.rt.cfg.Abs(x.lc.Root), "/") + filepath.FromSlash(x.vc.Path)
	var st os.FileInfo
	var err error
	if strings.HasSuffix(x.vc.Path, "/") {
		p, st, err = x.index(p)
	} else if st, err = os.Stat(p); err == nil && st.IsDir() {
		x.vc.Path += "/"
		return x.respond(301, http1.Header{{Name: "Content-Type", Value: "text/html"}, {Name: "Location", Value: x.vc.Path}}, "")
	}
	if err != nil {
		return x.fileError(p, err)
	}
	f, err := os.Open(p)
	if err != nil {
		return x.errorPage(403)
	}
	defer f.Close()
	ct := mime.TypeByExtension(filepath.Ext(p))
	if ct == "" {
		ct = x.defaultType()
	}
	hdr := http1.Header{{Name: "Content-Type", Value: ct}, {Name: "Last-Modified", Value: st.ModTime().UTC().Format(http1TimeFormat)}}
	b := x.head(200, hdr, st.Size(), false)
	bw := x.conn.bw
	bw.Write(b)
	x.sent += int64(len(b))
	if x.req.Method == "GET" {
		n, err := io.Copy(bw, f)
		x.sent += n
		x.bodySent += n
		if err != nil {
			x.close = true
		}
	}
	err = bw.Flush()
	x.done()
	return err == nil && !x.close
}

// errNoIndex is a directory without an index file: 403, as nginx answers
// with autoindex off.
var errNoIndex = errors.New("directory index is forbidden")

// index finds the index file of dir, the path of a URI that ends in '/'
// and so names a directory: a file there is "not a directory" (404),
// never served under the directory's name.
func (x *exchange) index(dir string) (string, os.FileInfo, error) {
	for _, idx := range x.lc.Index {
		p := dir + idx
		st, err := os.Stat(p)
		if err == nil && st.Mode().IsRegular() {
			return p, st, nil
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return p, nil, err // not a directory, or not allowed
		}
	}
	st, err := os.Stat(dir)
	switch {
	case err != nil:
		return dir, nil, err
	case !st.IsDir():
		return dir, nil, syscall.ENOTDIR
	}
	return dir, nil, errNoIndex
}

// fileError answers a static file that cannot be served.
func (x *exchange) fileError(p string, err error) bool {
	if errors.Is(err, errNoIndex) || errors.Is(err, fs.ErrPermission) {
		return x.errorPage(403)
	}
	x.log.Printf(errlog.Error, x.conn.id, "open() \"%s\" failed %s, client: %s, server: %s, request: \"%s\"", p, errnoText(err), x.conn.remote.Addr(), x.vc.ServerName, requestLine(x.vc))
	return x.errorPage(404)
}

// errnoText renders err as nginx does in its error log: "(2: No such
// file or directory)".
func errnoText(err error) string {
	var en syscall.Errno
	if !errors.As(err, &en) {
		return "(" + err.Error() + ")"
	}
	msg := en.Error()
	if msg != "" {
		msg = strings.ToUpper(msg[:1]) + msg[1:]
	}
	return "(" + strconv.Itoa(int(en)) + ": " + msg + ")"
}

func httpField(name, value string) http1.Field { return http1.Field{Name: name, Value: value} }

// statusHandler answers metrics, api and dashboard locations.
func (x *exchange) statusHandler() bool {
	if x.lc.Status == "api" {
		return x.apiHandler()
	}
	if x.req.Method != "GET" && x.req.Method != "HEAD" {
		return x.errorPage(405)
	}
	srv := x.conn.srv
	var b strings.Builder
	ctype := "application/json"
	switch {
	case x.lc.Status == "metrics":
		ctype = status.PrometheusContentType
		if err := srv.metrics.WritePrometheus(&b, srv); err != nil {
			x.log.Printf(errlog.Warn, x.conn.id, "metrics: %v", err)
		}
	case x.lc.Status == "api" || x.req.RawQuery == "json":
		status.WriteJSON(&b, srv.Snapshot())
	default:
		ctype = "text/html; charset=utf-8"
		b.Write(status.DashboardHTML())
	}
	return x.respond(200, http1.Header{{Name: "Content-Type", Value: ctype}, {Name: "Cache-Control", Value: "no-store"}}, b.String())
}
