package server

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go/http3"
	"golang.org/x/net/http2"

	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/tunnel"
)

// HTTP/2 is served by x/net's server. Each stream is carried into wsgate's
// HTTP/1.1 pipeline over an in-memory connection (a bridge), so phases,
// limits, logs, the proxy and the tunnel are the same code for both
// protocols. The request is rendered once as an HTTP/1.1 head, which the
// pipeline reads as it reads any client's, followed by the stream's body:
// translating it into the pipeline's request directly would duplicate the
// parser's checks (header limits, invalid headers, the 4xx and their log
// lines) for the one head a stream has, to save a few microseconds per
// stream. A response goes back through the bridge's pipe, which a second
// goroutine (respond) reads and writes to the stream, started by the
// pipeline's first write.
//
// A WebSocket over HTTP/2 (RFC 8441: CONNECT with :protocol websocket)
// becomes a GET with Upgrade: websocket and a fresh key. Once the backend
// has answered 101, the pipeline writes no HTTP/1.1: the bridge's upgrade
// writes the 101's head to the stream as a 200, and the tunnel's client
// leg is the stream itself (h2Conn, h3Conn: streamconn.go), without the
// pipe, its copy or respond's goroutine. An open WebSocket holds one
// goroutine, the one that reads the client: over HTTP/2 the stream's
// handler, which x/net needs alive for the stream anyway, runs the
// tunnel's client direction and then waits for the tunnel's end; over
// HTTP/3 the tunnel's own, the handler having handed the stream over. A
// WebSocket the pipeline refuses is answered through the bridge, as any
// request.

// ExtendedConnectEnv is what Go's HTTP/2 needs in the environment when the
// process starts to offer RFC 8441; cmd/wsgate re-executes itself with it.
const ExtendedConnectEnv = "http2xconnect=1"

// ExtendedConnectEnabled reports whether this process offers RFC 8441.
func ExtendedConnectEnabled() bool {
	return strings.Contains(os.Getenv("GODEBUG"), ExtendedConnectEnv)
}

// serveH2 runs an HTTP/2 connection until the client or wsgate ends it.
// x/net's server is per connection so that what it reports (h2Report)
// carries the connection's number.
func (c *conn) serveH2() {
	c.h2 = true
	srv := &http2.Server{IdleTimeout: 3 * time.Minute, CountError: c.h2CountError}
	srv.ServeConn(c.c, &http2.ServeConnOpts{
		Handler:    http.HandlerFunc(c.h2Stream),
		BaseConfig: &http.Server{ErrorLog: log.New(h2Report{c}, "", 0)},
	})
}

// h2CountError receives x/net's count of each protocol error. An error
// that ends the connection (a GOAWAY: rapid reset, a flood of early
// resets, a malformed frame) or a lost PING is logged at info; one that
// only resets a stream, at debug.
func (c *conn) h2CountError(errType string) {
	lg := c.srv.rt.Load().log
	level := errlog.Info
	if strings.HasPrefix(errType, "stream_") {
		level = errlog.Debug
	}
	if lg.Enabled(level) {
		lg.Printf(level, c.id, "client HTTP/2 error %s, connection %s, client: %s", errType, h2Outcome(errType), c.remote.Addr())
	}
}

func h2Outcome(errType string) string {
	switch {
	case strings.HasPrefix(errType, "stream_"):
		return "kept, stream reset"
	case errType == "conn_close_lost_ping":
		return "closed"
	}
	return "closed with GOAWAY"
}

// h2Report writes the lines x/net's HTTP/2 server logs (connection
// errors, GOAWAY received with an error, panics) to the error log at info.
type h2Report struct{ c *conn }

func (r h2Report) Write(p []byte) (int, error) {
	msg := strings.TrimRight(string(p), "\n")
	r.c.srv.rt.Load().log.Printf(errlog.Info, r.c.id, "%s, client: %s", msg, r.c.remote.Addr())
	return len(p), nil
}

// h2Stream carries one HTTP/2 stream through the pipeline.
func (c *conn) h2Stream(w http.ResponseWriter, r *http.Request) {
	c.streams.Add(1)
	defer c.streams.Add(-1)
	ws := r.Method == "CONNECT" && strings.EqualFold(r.Header.Get(":protocol"), "websocket")
	c.srv.serveStream(w, r, ws, "HTTP/2.0", c.bind, c.ssl, c.c.LocalAddr(), c.c.RemoteAddr())
}

// serveStream carries one HTTP/2 or HTTP/3 stream through the HTTP/1.1
// pipeline over a bridge.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request, ws bool, proto string, bind netip.AddrPort, ssl *connSSL, local, remote net.Addr) {
	head, body := h2RequestHead(r, ws)
	b := newBridge(local, remote, head, body)
	vc := &conn{srv: s, c: b, id: s.connID.Add(1), ssl: ssl, bind: bind, virtual: true, proto: proto}
	if ssl != nil {
		vc.tls = ssl.State
	}
	b.w, b.r, b.ws, b.log, b.id = w, r, ws, s.log.Load(), vc.id
	b.h3 = proto == "HTTP/3.0"
	if !s.addConn(vc) {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if ws {
		// The pipeline's deep stack is left on a goroutine of its own
		// that ends at the 101, so the handler, which lives as long as
		// the tunnel, keeps a small one.
		onOwnGoroutine(vc.serve)
	} else {
		vc.serve()
	}
	b.Close()
	if c, ok := b.tunnel.(*h2Conn); ok {
		b.relay.RunClient()
		c.wait() // x/net ends the stream when its handler returns
		return
	}
	// A response is over when respond has written it. An HTTP/3 tunnel
	// owns its stream: the handler returns.
	b.started.Do(func() {})
	if b.done != nil {
		<-b.done
	}
}

// onOwnGoroutine runs f on a new goroutine and waits for it. A panic in f
// is raised again on the caller's goroutine, where x/net's handler
// recovers it (the stream is reset, the server goes on).
func onOwnGoroutine(f func()) {
	var p any
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { p = recover() }()
		f()
	}()
	<-done
	if p != nil {
		panic(p)
	}
}

// h2RequestHead renders the stream's request as HTTP/1.1.
func h2RequestHead(r *http.Request, ws bool) ([]byte, io.Reader) {
	var h strings.Builder
	method, uri := r.Method, r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	if ws {
		method = "GET"
	}
	h.WriteString(method + " " + uri + " HTTP/1.1\r\nHost: " + r.Host + "\r\n")
	for k, vs := range r.Header {
		if strings.HasPrefix(k, ":") {
			continue
		}
		switch http.CanonicalHeaderKey(k) {
		case "Connection", "Upgrade", "Transfer-Encoding", "Content-Length", "Host", "Keep-Alive", "Proxy-Connection":
			continue
		case "Sec-Websocket-Key", "Sec-Websocket-Version":
			if ws {
				continue
			}
		}
		for _, v := range vs {
			h.WriteString(k + ": " + v + "\r\n")
		}
	}
	var body io.Reader = r.Body
	switch {
	case ws:
		var key [16]byte
		rand.Read(key[:])
		h.WriteString("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(key[:]) + "\r\n")
	case r.ContentLength > 0:
		h.WriteString("Content-Length: " + strconv.FormatInt(r.ContentLength, 10) + "\r\n")
	case r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody:
		h.WriteString("Transfer-Encoding: chunked\r\n")
		pr, pw := io.Pipe()
		go func() {
			cw := http1.NewChunkedWriter(pw)
			_, err := io.Copy(cw, r.Body)
			if err == nil {
				err = cw.Close()
			}
			pw.CloseWithError(err)
		}()
		body = pr
	default:
		body = http.NoBody
	}
	h.WriteString("\r\n")
	return []byte(h.String()), body
}

// bridge is the in-memory connection between an HTTP/2 or HTTP/3 stream
// and the HTTP/1.1 pipeline: reads give the request head then the
// stream's body; writes are the HTTP/1.1 response that respond turns back
// into the stream's. The pipeline runs on the stream's handler goroutine,
// so the fields set by serveStream and upgrade need no lock.
type bridge struct {
	local  net.Addr
	remote net.Addr
	in     io.Reader
	pr     *io.PipeReader
	pw     *io.PipeWriter
	once   sync.Once
	closed atomic.Bool

	w       http.ResponseWriter
	r       *http.Request
	ws      bool // a WebSocket's extended CONNECT
	h3      bool
	log     *errlog.Logger
	id      uint64
	started sync.Once      // starts respond, at the first write
	done    chan struct{}  // closed when respond returns; nil until it starts
	legConn net.Conn       // the stream as the tunnel's client leg (leg)
	tunnel  net.Conn       // legConn once upgrade has answered the stream
	relay   *tunnel.Tunnel // an HTTP/2 tunnel, whose client direction the handler runs
}

func newBridge(local, remote net.Addr, head []byte, body io.Reader) *bridge {
	pr, pw := io.Pipe()
	return &bridge{local: local, remote: remote, in: io.MultiReader(strings.NewReader(string(head)), body), pr: pr, pw: pw}
}

func (b *bridge) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, net.ErrClosed
	}
	return b.in.Read(p)
}

func (b *bridge) Write(p []byte) (int, error) {
	b.started.Do(func() {
		b.done = make(chan struct{})
		go func() {
			defer close(b.done)
			b.respond()
		}()
	})
	return b.pw.Write(p)
}

func (b *bridge) Close() error {
	b.once.Do(func() {
		b.closed.Store(true)
		b.pw.Close()
		if c, ok := b.in.(io.Closer); ok {
			c.Close()
		}
	})
	return nil
}

// leg is the stream as the tunnel's client leg; usable once upgrade has
// answered the stream.
func (b *bridge) leg() net.Conn {
	if b.h3 {
		b.legConn = &h3Conn{local: b.local, remote: b.remote}
	} else {
		b.legConn = newH2Conn(b.w, b.r, b.local, b.remote)
	}
	return b.legConn
}

// upgrade answers the WebSocket stream with the pipeline's 101 head as
// the protocol's 200: the pipeline calls it instead of writing head to
// the bridge, after leg. On an error the stream is not upgraded, and the
// handler returns as for any request.
func (b *bridge) upgrade(head []byte) error {
	err := b.answer(head)
	if err == nil {
		b.tunnel = b.legConn
	}
	return err
}

func (b *bridge) answer(head []byte) error {
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(bytes.NewReader(head))
	resp, err := http1.ReadResponse(br, "GET", 64<<10)
	br.Reset(nil)
	readerPool.Put(br)
	if err != nil {
		return err
	}
	writeStreamHead(b.w, resp, true)
	switch c := b.legConn.(type) {
	case *h3Conn:
		hs, ok := b.w.(http3.HTTPStreamer)
		if !ok {
			return errors.New("HTTP/3 stream cannot be taken over")
		}
		c.str, err = hs.HTTPStream()
		return err
	case *h2Conn:
		if c.fl != nil {
			return c.fl.FlushError()
		}
	}
	return nil
}

func (b *bridge) LocalAddr() net.Addr                { return b.local }
func (b *bridge) RemoteAddr() net.Addr               { return b.remote }
func (b *bridge) SetDeadline(t time.Time) error      { return nil }
func (b *bridge) SetReadDeadline(t time.Time) error  { return nil }
func (b *bridge) SetWriteDeadline(t time.Time) error { return nil }

// hopByHop are HTTP/1.1 response headers that HTTP/2 forbids or that the
// translation re-creates.
var hopByHop = []string{"Connection", "Keep-Alive", "Transfer-Encoding", "Upgrade", "Proxy-Connection", "Sec-WebSocket-Accept"}

// respond reads the pipeline's HTTP/1.1 response and writes it to the
// stream.
func (b *bridge) respond() {
	defer b.pr.Close()
	br := bufio.NewReaderSize(b.pr, http1.ReaderSize)
	resp, err := http1.ReadResponse(br, "GET", 64<<10)
	if err != nil {
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrClosedPipe) {
			b.log.Printf(errlog.Info, b.id, "HTTP/2 and HTTP/3 bridge: %v", err)
		}
		return
	}
	if !writeStreamHead(b.w, resp, b.ws) {
		return
	}
	w := b.w
	fl, _ := w.(http.Flusher)
	if fl != nil {
		fl.Flush()
	}
	var src io.Reader = br // a 101 written here (upgrade is the way): the rest as it comes
	if resp.Status != 101 {
		src = resp.Body(br)
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				b.Close()
				return
			}
			if fl != nil {
				fl.Flush()
			}
		}
		if err != nil {
			return
		}
	}
}

// writeStreamHead writes resp's status and headers to w: hop-by-hop
// fields are left out, and a WebSocket's 101 becomes RFC 8441's (and RFC
// 9220's) 200. It reports false, writing nothing, for a 101 that does not
// answer a WebSocket: the pipeline never switches other requests.
func writeStreamHead(w http.ResponseWriter, resp *http1.Response, ws bool) bool {
	status := resp.Status
	if status == 101 && !ws {
		return false
	}
	h := w.Header()
	for _, f := range resp.Header {
		skip := false
		for _, n := range hopByHop {
			if strings.EqualFold(n, f.Name) {
				skip = true
			}
		}
		if !skip {
			h.Add(f.Name, f.Value)
		}
	}
	if status == 101 {
		status = 200
		h.Del("Content-Length")
	}
	w.WriteHeader(status)
	return true
}
