package server

import (
	"strconv"
	"strings"
	"sync/atomic"
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
// length is the body's length; -1 an unknown one (chunked, or delimited by
// closing the connection), -2 no body at all (204, 304, HEAD), which keeps
// the connection.
func (x *exchange) head(status int, hdr http1.Header, length int64, chunked bool) []byte {
	if x.errStatus != 0 && status != 101 {
		status = x.errStatus // error_page's status for whatever answers
	}
	x.status = status
	x.vc.Status = status
	hdr = x.withCarried(hdr)
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
	x.startResponse()
	b = http1.AppendStatusLine(b, status, "")
	if !hasField(hdr, "Server") { // a proxied Server that proxy_pass_header passes replaces ours
		b = x.appendServer(b)
	}
	if !hasField(hdr, "Date") {
		b = append(b, "Date: "...)
		b = append(b, httpDate()...)
		b = append(b, "\r\n"...)
	}
	adds := x.addHeaders(status)
	for _, f := range hdr {
		if sentField(status, f, adds) {
			b = appendField(b, f.Name, f.Value)
		}
	}
	if len(x.extra) > 0 || len(adds) > 0 {
		x.respHeader = sentHeader(status, hdr, x.extra, adds)
	}
	if length >= 0 {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, length, 10)
		b = append(b, "\r\n"...)
	} else if chunked {
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	if status != 101 {
		if x.close || x.req.Close || (length == -1 && !chunked) {
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

// sentField reports whether a handler's header field f is sent: add_header
// (adds) replaces a field of the same name, and nginx keeps Last-Modified
// and Accept-Ranges only on 200, 206 and 304 (an error_page file has its
// error's status).
func sentField(status int, f http1.Field, adds http1.Header) bool {
	if hasField(adds, f.Name) {
		return false
	}
	return status == 200 || status == 206 || status == 304 || (f.Name != "Last-Modified" && f.Name != "Accept-Ranges")
}

// sentHeader is the header fields head sends besides Server, Date and the
// framing, for $sent_http_*: the handler's kept fields, then extra and adds.
func sentHeader(status int, hdr, extra, adds http1.Header) http1.Header {
	out := make(http1.Header, 0, len(hdr)+len(extra)+len(adds))
	for _, f := range hdr {
		if sentField(status, f, adds) {
			out = append(out, f)
		}
	}
	return append(append(out, extra...), adds...)
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
		if v == "" || (x.conn.srv.h3Held.Load() && advertisesH3(h.Name, v)) {
			continue
		}
		out = append(out, http1.Field{Name: h.Name, Value: v})
	}
	return out
}

// respond writes a whole response with a body held in memory.
func (x *exchange) respond(status int, hdr http1.Header, body string) bool {
	if x.req.Method == "HEAD" || status == 204 || status == 304 {
		length := int64(len(body))
		if status == 204 || status == 304 {
			length = -2
		}
		hdr, length, _ = x.filters(status, hdr, length, false)
		return x.finish(x.head(status, hdr, length, false), "")
	}
	hdr, length, chunked := x.filters(status, hdr, int64(len(body)), false)
	b := x.head(status, hdr, length, chunked)
	if chunked || x.bodyFiltered() {
		return x.finishChunked(b, body, chunked)
	}
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
	if !x.sub {
		logAccess(x.rt, x.lc, x.vc) // subrequests are not logged, as nginx's log_subrequest off
		x.otelEnd()
	}
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

// errorPage answers an error status: through error_page when one applies,
// else with the built-in page.
func (x *exchange) errorPage(status int) bool {
	x.errStatus = status
	if ep := x.errorPageFor(status); ep != nil {
		return x.sendErrorPage(ep, status)
	}
	return x.errorPageTitled(status, "")
}

// errorPageTitled answers with nginx's style of error page.
func (x *exchange) errorPageTitled(status int, title string) bool {
	if !hasBuiltinPage(status) {
		return x.respond(status, nil, "") // nginx has no page for it: an empty body
	}
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

// hasBuiltinPage reports whether nginx has an error page for status.
func hasBuiltinPage(status int) bool {
	switch {
	case status >= 400 && status <= 416, status >= 500 && status <= 505:
		return true
	}
	switch status {
	case 301, 302, 303, 307, 308, 421, 429, 494, 495, 496, 497, 507:
		return true
	}
	return false
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
		return x.redirect(code, op.Text.Eval(x.vc))
	}
	if op.Text == nil {
		if code >= 400 || code == 204 {
			if code == 204 {
				return x.respond(204, nil, "")
			}
			return x.errorPage(code)
		}
		return x.respond(code, http1.Header{{Name: "Content-Type", Value: x.defaultType()}}, "") // an empty body, typed as nginx
	}
	return x.respond(code, http1.Header{{Name: "Content-Type", Value: x.defaultType()}}, op.Text.Eval(x.vc))
}

func (x *exchange) defaultType() string {
	if x.lc != nil && x.lc.DefaultType != "" {
		return x.lc.DefaultType
	}
	return "text/plain"
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
