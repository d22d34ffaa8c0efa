package server

import (
	"bufio"
	"io"
	"net"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/vars"
)

// mirror starts, for a main request, one background subrequest per
// `mirror` URI of the location, as nginx's mirror module in the
// precontent phase. Their answers are read and dropped; the request
// goes on at once. The subrequests carry the request's method, headers
// and arguments but no body: a request with one is mirrored only when
// mirror_request_body is off (nginx would read the body first).
func (x *exchange) mirror() {
	if x.sub || len(x.lc.Mirrors) == 0 {
		return
	}
	if (x.req.ContentLength > 0 || x.req.Chunked) && !x.lc.MirrorNoBody {
		x.logRequest(errlog.Info, "", "mirror skipped: the request has a body and mirror_request_body is on")
		return
	}
	req := cloneRequest(x.req)
	for _, uri := range x.lc.Mirrors {
		path, args, _ := strings.Cut(uri, "?")
		if args == "" {
			args = x.vc.Args
		}
		go x.runMirror(req, path, args)
	}
}

// runMirror serves one mirror subrequest to a connection that drops what
// it is sent.
func (x *exchange) runMirror(req *http1.Request, path, args string) {
	c := &conn{srv: x.conn.srv, c: sinkConn{}, id: x.conn.id, tls: x.conn.tls, ssl: x.conn.ssl,
		bw: bufio.NewWriter(io.Discard), remote: x.conn.remote, local: x.conn.local, bind: x.conn.bind, proxyAddr: x.conn.proxyAddr}
	s := &exchange{conn: c, rt: x.rt, req: req, srv: x.srv, close: true, sub: true}
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
// request never sees its buffers reused; the body is left behind.
func cloneRequest(r *http1.Request) *http1.Request {
	c := *r
	c.Header = make(http1.Header, 0, len(r.Header))
	for _, f := range r.Header {
		if strings.EqualFold(f.Name, "Content-Length") || strings.EqualFold(f.Name, "Transfer-Encoding") {
			continue
		}
		c.Header = append(c.Header, http1.Field{Name: strings.Clone(f.Name), Value: strings.Clone(f.Value)})
	}
	c.ContentLength, c.Chunked = -1, false
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
