package load

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"golang.org/x/net/http2"

	"github.com/wsgate/wsgate/bench/internal/wsproto"
)

// Tunnel protocols of Config.Proto: how the client opens each WebSocket.
const (
	ProtoHTTP1 = ""   // HTTP/1.1 Upgrade (RFC 6455), over TLS with Config.TLS
	ProtoH2    = "h2" // extended CONNECT over TLS HTTP/2 (RFC 8441)
	ProtoH3    = "h3" // extended CONNECT over HTTP/3 (RFC 9220)
)

// tunnelTLS is the client TLS of h2 and h3 tunnels: ClientTLS with the
// protocol's ALPN.
func tunnelTLS(proto string) *tls.Config {
	c := ClientTLS()
	c.NextProtos = []string{proto}
	return c
}

// errNoExtendedConnect reports a server whose SETTINGS do not allow
// extended CONNECT.
var errNoExtendedConnect = errors.New("load: the server does not allow extended CONNECT")

// connectRequest is the extended CONNECT that opens a WebSocket on path at
// addr: :protocol websocket, version 13, no key (RFC 8441 section 5).
func connectRequest(ctx context.Context, addr, path string, body io.ReadCloser) *http.Request {
	req := (&http.Request{
		Method: http.MethodConnect,
		URL:    &url.URL{Scheme: "https", Host: addr, Path: path},
		Host:   addr,
		Header: http.Header{"Sec-Websocket-Version": {"13"}},
		Body:   body,
	}).WithContext(ctx)
	return req
}

// h2Conn is one TLS HTTP/2 connection carrying up to Config.Streams
// tunnels; the last tunnel to close closes it.
type h2Conn struct {
	cc     *http2.ClientConn
	raw    net.Conn
	shared bool // more than one tunnel per connection
	refs   refs
}

// refs counts a connection's open tunnels and runs done when the last
// closes.
type refs struct {
	mu   sync.Mutex
	n    int
	done func()
}

func (c *refs) add() {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
}

func (c *refs) release() {
	c.mu.Lock()
	c.n--
	last := c.n == 0
	c.mu.Unlock()
	if last {
		c.done()
	}
}

// dialH2Conn opens one TLS connection speaking HTTP/2.
func (r *run) dialH2Conn(timeout time.Duration) (*h2Conn, error) {
	raw, err := r.d.dial(r.cfg.Addr, timeout)
	if err != nil {
		return nil, err
	}
	raw.SetDeadline(time.Now().Add(timeout))
	tc := tls.Client(raw, tunnelTLS(ProtoH2))
	if err := tc.Handshake(); err != nil {
		raw.Close()
		return nil, fmt.Errorf("tls: %w", err)
	}
	if p := tc.ConnectionState().NegotiatedProtocol; p != ProtoH2 {
		raw.Close()
		return nil, fmt.Errorf("load: ALPN chose %q, not h2", p)
	}
	cc, err := (&http2.Transport{}).NewClientConn(tc)
	if err != nil {
		raw.Close()
		return nil, err
	}
	raw.SetDeadline(time.Time{})
	c := &h2Conn{cc: cc, raw: raw, shared: r.cfg.Streams > 1}
	c.refs.done = func() { cc.Close(); raw.Close() }
	return c, nil
}

// dialH2 opens one WebSocket stream on an HTTP/2 connection: a new one, or
// the current one while it carries fewer than Config.Streams.
func (r *run) dialH2(timeout time.Duration) (net.Conn, error) {
	v, err := r.mux.get(func() (any, error) { return r.dialH2Conn(timeout) }, r.cfg.Streams)
	if err != nil {
		return nil, err
	}
	c := v.(*h2Conn)
	c.refs.add()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	pr, pw := io.Pipe()
	req := connectRequest(context.Background(), r.cfg.Addr, r.cfg.Path, pr)
	req.Header.Set(":protocol", "websocket")
	type answer struct {
		resp *http.Response
		err  error
	}
	got := make(chan answer, 1)
	go func() {
		resp, err := c.cc.RoundTrip(req)
		got <- answer{resp, err}
	}()
	var a answer
	select {
	case a = <-got:
	case <-ctx.Done():
		pw.CloseWithError(ctx.Err())
		c.refs.release()
		return nil, fmt.Errorf("load: no answer to extended CONNECT: %w", ctx.Err())
	}
	if a.err == nil && a.resp.StatusCode != http.StatusOK {
		a.resp.Body.Close()
		a.err = fmt.Errorf("%w: extended CONNECT answered %d", wsproto.ErrBadHandshake, a.resp.StatusCode)
	}
	if a.err != nil {
		pw.Close()
		c.refs.release()
		return nil, a.err
	}
	return &h2Stream{w: pw, body: a.resp.Body, conn: c}, nil
}

// h2Stream is one RFC 8441 WebSocket stream as a net.Conn. Alone on its
// connection, deadlines are the TCP connection's; sharing it, a deadline
// that passes ends the stream.
type h2Stream struct {
	w     *io.PipeWriter
	body  io.ReadCloser
	conn  *h2Conn
	once  sync.Once
	mu    sync.Mutex
	timer *time.Timer
}

func (s *h2Stream) Read(b []byte) (int, error)  { return s.body.Read(b) }
func (s *h2Stream) Write(b []byte) (int, error) { return s.w.Write(b) }
func (s *h2Stream) Close() error {
	s.once.Do(func() {
		s.SetDeadline(time.Time{})
		s.w.Close()
		s.body.Close()
		s.conn.refs.release()
	})
	return nil
}
func (s *h2Stream) LocalAddr() net.Addr  { return s.conn.raw.LocalAddr() }
func (s *h2Stream) RemoteAddr() net.Addr { return s.conn.raw.RemoteAddr() }
func (s *h2Stream) SetDeadline(t time.Time) error {
	if !s.conn.shared {
		return s.conn.raw.SetDeadline(t)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	if !t.IsZero() {
		s.timer = time.AfterFunc(time.Until(t), func() {
			s.w.CloseWithError(os.ErrDeadlineExceeded)
			s.body.Close()
		})
	}
	return nil
}
func (s *h2Stream) SetReadDeadline(t time.Time) error  { return s.SetDeadline(t) }
func (s *h2Stream) SetWriteDeadline(t time.Time) error { return s.SetDeadline(t) }

// mux hands out the connection that takes a run's next tunnel: the current
// one until it has carried its share of streams, then a new one.
type mux struct {
	mu     sync.Mutex
	cur    any
	opened int
}

// get returns the current connection, dialing a new one with dial when
// there is none or the current one has opened streams tunnels already.
// With one stream per connection it dials at once, so that dials run in
// parallel.
func (m *mux) get(dial func() (any, error), streams int) (any, error) {
	if streams <= 1 {
		return dial()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cur == nil || m.opened >= max(1, streams) {
		c, err := dial()
		if err != nil {
			return nil, err
		}
		m.cur, m.opened = c, 0
	}
	m.opened++
	return m.cur, nil
}

// h3KeepAlive keeps idle QUIC connections open past the idle timeout.
const h3KeepAlive = 10 * time.Second

// h3Conn is one QUIC connection carrying up to Config.Streams tunnels;
// the last tunnel to close closes it and its UDP socket.
type h3Conn struct {
	cc   *http3.ClientConn
	qc   *quic.Conn
	refs refs
}

// dialH3Conn opens one QUIC connection from a UDP socket of its own (bound
// to the next source address) and waits for the server's SETTINGS.
func (r *run) dialH3Conn(timeout time.Duration) (*h3Conn, error) {
	raddr, err := net.ResolveUDPAddr("udp4", r.cfg.Addr)
	if err != nil {
		return nil, err
	}
	laddr := &net.UDPAddr{}
	if len(r.d.srcs) > 0 {
		laddr.IP = r.d.srcs[r.d.next.Add(1)%uint64(len(r.d.srcs))].AsSlice()
	}
	udp, err := net.ListenUDP("udp4", laddr)
	if err != nil {
		return nil, err
	}
	tr := &quic.Transport{Conn: udp}
	closeAll := func() { tr.Close(); udp.Close() }
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	qc, err := tr.Dial(ctx, raddr, tunnelTLS(http3.NextProtoH3), &quic.Config{
		KeepAlivePeriod: h3KeepAlive, MaxIdleTimeout: 3 * h3KeepAlive,
		// As patient as a TCP handshake: a busy server's socket may drop
		// Initial packets, which are then sent again.
		HandshakeIdleTimeout: timeout,
	})
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("quic: %w", err)
	}
	c := &h3Conn{cc: (&http3.Transport{}).NewClientConn(qc), qc: qc}
	c.refs.done = func() { qc.CloseWithError(0, ""); closeAll() }
	select {
	case <-c.cc.ReceivedSettings():
	case <-ctx.Done():
		c.refs.done()
		return nil, fmt.Errorf("quic: no SETTINGS: %w", ctx.Err())
	}
	if !c.cc.Settings().EnableExtendedConnect {
		c.refs.done()
		return nil, errNoExtendedConnect
	}
	return c, nil
}

// dialH3 opens one WebSocket stream on a QUIC connection: a new one, or
// the current one while it carries fewer than Config.Streams.
func (r *run) dialH3(timeout time.Duration) (net.Conn, error) {
	v, err := r.mux.get(func() (any, error) { return r.dialH3Conn(timeout) }, r.cfg.Streams)
	if err != nil {
		return nil, err
	}
	c := v.(*h3Conn)
	c.refs.add()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	str, err := c.cc.OpenRequestStream(ctx)
	if err != nil {
		c.refs.release()
		return nil, err
	}
	req := connectRequest(ctx, r.cfg.Addr, r.cfg.Path, nil)
	req.Proto = "websocket" // quic-go sends a CONNECT's Proto as :protocol
	str.SetDeadline(time.Now().Add(timeout))
	err = str.SendRequestHeader(req)
	var resp *http.Response
	if err == nil {
		resp, err = str.ReadResponse()
	}
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%w: extended CONNECT answered %d", wsproto.ErrBadHandshake, resp.StatusCode)
	}
	if err != nil {
		str.CancelRead(0)
		str.Close()
		c.refs.release()
		return nil, err
	}
	str.SetDeadline(time.Time{})
	return &h3Stream{RequestStream: str, conn: c}, nil
}

// h3Stream is one RFC 9220 WebSocket stream as a net.Conn.
type h3Stream struct {
	*http3.RequestStream
	conn *h3Conn
	once sync.Once
}

func (s *h3Stream) Close() error {
	s.once.Do(func() {
		s.RequestStream.CancelRead(0)
		s.RequestStream.Close()
		s.conn.refs.release()
	})
	return nil
}
func (s *h3Stream) LocalAddr() net.Addr  { return s.conn.qc.LocalAddr() }
func (s *h3Stream) RemoteAddr() net.Addr { return s.conn.qc.RemoteAddr() }

// tunnel opens one WebSocket over r.cfg.Proto and returns its client end.
func (r *run) tunnel() (*wsproto.Client, error) {
	var conn net.Conn
	var err error
	switch r.cfg.Proto {
	case ProtoH2:
		conn, err = r.dialH2(handshakeTimeout)
	case ProtoH3:
		conn, err = r.dialH3(handshakeTimeout)
	default:
		return nil, fmt.Errorf("load: unknown tunnel protocol %q", r.cfg.Proto)
	}
	if err != nil {
		return nil, err
	}
	return wsproto.NewClient(conn), nil
}

// Probe opens one WebSocket to cfg.Addr with cfg's protocol and TLS
// settings, checks that one message echoes within timeout, and closes it.
func Probe(cfg Config, timeout time.Duration) error {
	if cfg.Path == "" {
		cfg.Path = "/ws"
	}
	r := newRun(cfg)
	c, err := r.handshake()
	if err != nil {
		return err
	}
	defer c.Close()
	c.Conn.SetDeadline(time.Now().Add(timeout))
	msg := []byte("probe")
	if err := c.WriteMessage(wsproto.OpText, msg); err != nil {
		return err
	}
	_, got, err := c.ReadMessage(make([]byte, 64))
	if err != nil {
		return err
	}
	if string(got) != string(msg) {
		return errMismatch
	}
	return nil
}
