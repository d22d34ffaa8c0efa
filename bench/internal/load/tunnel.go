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

// dialH2 opens one TLS connection speaking HTTP/2 and one WebSocket stream
// on it. The returned conn owns the TCP connection: closing it closes both.
func (r *run) dialH2(timeout time.Duration) (net.Conn, error) {
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
	pr, pw := io.Pipe()
	req := connectRequest(context.Background(), r.cfg.Addr, r.cfg.Path, pr)
	req.Header.Set(":protocol", "websocket")
	resp, err := cc.RoundTrip(req)
	if err != nil {
		cc.Close()
		raw.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cc.Close()
		raw.Close()
		return nil, fmt.Errorf("%w: extended CONNECT answered %d", wsproto.ErrBadHandshake, resp.StatusCode)
	}
	raw.SetDeadline(time.Time{})
	return &h2Stream{w: pw, body: resp.Body, cc: cc, raw: raw}, nil
}

// h2Stream is one RFC 8441 WebSocket stream as a net.Conn. Deadlines apply
// to the whole TCP connection, which carries this stream alone.
type h2Stream struct {
	w    *io.PipeWriter
	body io.ReadCloser
	cc   *http2.ClientConn
	raw  net.Conn
}

func (s *h2Stream) Read(b []byte) (int, error)  { return s.body.Read(b) }
func (s *h2Stream) Write(b []byte) (int, error) { return s.w.Write(b) }
func (s *h2Stream) Close() error {
	s.w.Close()
	s.body.Close()
	s.cc.Close()
	return s.raw.Close()
}
func (s *h2Stream) LocalAddr() net.Addr                { return s.raw.LocalAddr() }
func (s *h2Stream) RemoteAddr() net.Addr               { return s.raw.RemoteAddr() }
func (s *h2Stream) SetDeadline(t time.Time) error      { return s.raw.SetDeadline(t) }
func (s *h2Stream) SetReadDeadline(t time.Time) error  { return s.raw.SetReadDeadline(t) }
func (s *h2Stream) SetWriteDeadline(t time.Time) error { return s.raw.SetWriteDeadline(t) }

// h3KeepAlive keeps idle QUIC connections open past the idle timeout.
const h3KeepAlive = 10 * time.Second

// dialH3 opens one QUIC connection from a UDP socket of its own (bound to
// the next source address) and one WebSocket stream on it. Closing the
// returned conn closes the connection and the socket.
func (r *run) dialH3(timeout time.Duration) (net.Conn, error) {
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
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	fail := func(err error) (net.Conn, error) {
		tr.Close()
		udp.Close()
		return nil, err
	}
	qc, err := tr.Dial(ctx, raddr, tunnelTLS(http3.NextProtoH3), &quic.Config{KeepAlivePeriod: h3KeepAlive})
	if err != nil {
		return fail(fmt.Errorf("quic: %w", err))
	}
	cc := (&http3.Transport{}).NewClientConn(qc)
	select {
	case <-cc.ReceivedSettings():
	case <-ctx.Done():
		qc.CloseWithError(0, "")
		return fail(fmt.Errorf("quic: no SETTINGS: %w", ctx.Err()))
	}
	if !cc.Settings().EnableExtendedConnect {
		qc.CloseWithError(0, "")
		return fail(errNoExtendedConnect)
	}
	str, err := cc.OpenRequestStream(ctx)
	if err != nil {
		qc.CloseWithError(0, "")
		return fail(err)
	}
	req := connectRequest(ctx, r.cfg.Addr, r.cfg.Path, nil)
	req.Proto = "websocket" // quic-go sends a CONNECT's Proto as :protocol
	str.SetDeadline(time.Now().Add(timeout))
	if err := str.SendRequestHeader(req); err != nil {
		qc.CloseWithError(0, "")
		return fail(err)
	}
	resp, err := str.ReadResponse()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%w: extended CONNECT answered %d", wsproto.ErrBadHandshake, resp.StatusCode)
	}
	if err != nil {
		qc.CloseWithError(0, "")
		return fail(err)
	}
	str.SetDeadline(time.Time{})
	return &h3Stream{RequestStream: str, qc: qc, tr: tr, udp: udp}, nil
}

// h3Stream is one RFC 9220 WebSocket stream as a net.Conn.
type h3Stream struct {
	*http3.RequestStream
	qc  *quic.Conn
	tr  *quic.Transport
	udp *net.UDPConn
}

func (s *h3Stream) Close() error {
	s.RequestStream.Close()
	s.qc.CloseWithError(0, "")
	s.tr.Close()
	return s.udp.Close()
}
func (s *h3Stream) LocalAddr() net.Addr  { return s.qc.LocalAddr() }
func (s *h3Stream) RemoteAddr() net.Addr { return s.qc.RemoteAddr() }

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
