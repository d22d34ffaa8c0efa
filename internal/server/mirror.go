package server

import (
	"bufio"
	"io"
	"net"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/proxy"
	"github.com/wsgate/wsgate/internal/vars"
)

// mirror starts, for a main request, one background subrequest per
// `mirror` URI of the location, as nginx's mirror module in the
// precontent phase. Their answers are read and dropped; the request
// goes on without waiting for them. The subrequests carry the request's
// method, headers and arguments, and with mirror_request_body on its
// body: the body is then read whole first (as nginx), kept for the
// request's own handler. ok false means the body could not be read and
// the answer is sent.
func (x *exchange) mirror() (ok, keep bool) {
	if x.sub || len(x.lc.Mirrors) == 0 {
		return true, true
	}
	var body []byte
	if (x.req.ContentLength > 0 || x.req.Chunked) && !x.lc.MirrorNoBody {
		data, status := x.prereadBody()
		if status != 0 {
			return false, x.bodyFailed(status)
		}
		body = data
	}
	req := cloneRequest(x.req, int64(len(body)))
	for _, uri := range x.lc.Mirrors {
		path, args, _ := strings.Cut(uri, "?")
		if args == "" {
			args = x.vc.Args
		}
		go x.runMirror(req, body, path, args)
	}
	return true, true
}

// prereadBody reads the request body whole before the content handler,
// which then sends it from x.preread, and returns it for the mirrors. A
// body too large for client_body_buffer_size (kept in a file) is read
// into memory for them once.
func (x *exchange) prereadBody() ([]byte, int) {
	b := new(requestBody)
	n, status := x.bufferBody(b)
	if status != 0 {
		b.close()
		return nil, status
	}
	x.bodyRead = true
	b.framing = proxy.Body{Length: n}
	x.keepBody(b)
	x.preread = b
	if b.file == nil {
		return b.mem, 0
	}
	data, err := io.ReadAll(b.reader())
	if err != nil {
		x.logRequest(errlog.Crit, "", "read() of client body temporary file failed (%v)", err)
		return nil, 500
	}
	return data, 0
}

// runMirror serves one mirror subrequest to a connection that drops what
// it is sent.
func (x *exchange) runMirror(req *http1.Request, body []byte, path, args string) {
	c := &conn{srv: x.conn.srv, c: sinkConn{}, id: x.conn.id, tls: x.conn.tls, ssl: x.conn.ssl,
		bw: bufio.NewWriter(io.Discard), remote: x.conn.remote, local: x.conn.local, bind: x.conn.bind, proxyAddr: x.conn.proxyAddr}
	s := &exchange{conn: c, rt: x.rt, req: req, srv: x.srv, close: true, sub: true}
	if len(body) > 0 {
		s.preread = &requestBody{mem: body, framing: proxy.Body{Length: int64(len(body))}}
		s.bodyRead, s.bodyMem = true, body
	}
	s.vc = new(vars.Ctx)
	s.vc.Reset(x.rt.cfg.Vars)
	s.fillVars(nil)
	s.vc.Path, s.vc.Args = path, args
	s.internal, s.vc.URIChanged = true, true
	s.uriChanges = maxURIChanges + 1
	s.phased = true
	s.serverPhases()
}

// cloneRequest copies r's head so that a subrequest outliving the main
// request never sees its buffers reused; length is the body it carries.
func cloneRequest(r *http1.Request, length int64) *http1.Request {
	c := *r
	c.Header = make(http1.Header, 0, len(r.Header))
	for _, f := range r.Header {
		if strings.EqualFold(f.Name, "Content-Length") || strings.EqualFold(f.Name, "Transfer-Encoding") {
			continue
		}
		c.Header = append(c.Header, http1.Field{Name: strings.Clone(f.Name), Value: strings.Clone(f.Value)})
	}
	c.ContentLength, c.Chunked = -1, false
	if length > 0 {
		c.ContentLength = length
	}
	for _, p := range []*string{&c.Method, &c.Target, &c.RequestURI, &c.Proto, &c.Host, &c.HostName, &c.Path, &c.RawQuery, &c.URI} {
		*p = strings.Clone(*p)
	}
	return &c
}

// sinkConn is the client side of a mirror subrequest: writes vanish,
// reads end at once.
type sinkConn struct{}

func (sinkConn) Read([]byte) (int, error)         { return 0, io.EOF }
func (sinkConn) Write(b []byte) (int, error)      { return len(b), nil }
func (sinkConn) Close() error                     { return nil }
func (sinkConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (sinkConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (sinkConn) SetDeadline(time.Time) error      { return nil }
func (sinkConn) SetReadDeadline(time.Time) error  { return nil }
func (sinkConn) SetWriteDeadline(time.Time) error { return nil }
