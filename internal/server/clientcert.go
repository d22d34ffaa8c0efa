package server

import (
	"context"
	"crypto/tls"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/tlsconf"
	"github.com/wsgate/wsgate/internal/vars"
)

// The checks nginx makes on a TLS connection when a request arrives: a
// plain HTTP request on an ssl port (497), a Host naming another server
// than the one SNI chose while client certificates are checked (421), and
// the client certificate itself (495, 496).

// sslPages are nginx's special pages, sent with status 400.
var sslPages = map[int]string{
	495: "The SSL certificate error",
	496: "No required SSL certificate was sent",
	497: "The plain HTTP request was sent to HTTPS port",
}

// connSSL is a TLS connection's $ssl_* values and what the check of its
// client certificate found.
type connSSL struct {
	vars.SSL
	client tlsconf.ClientResult
}

// sslInfo computes what a finished handshake on local shows in $ssl_*
// variables, checking the client certificate once for the connection
// with the settings of the server SNI chose.
func (rt *generation) sslInfo(local netip.AddrPort, st *tls.ConnectionState) *connSSL {
	if st == nil {
		return nil
	}
	info := &connSSL{SSL: vars.SSL{State: st, Cipher: tlsconf.CipherName(st.CipherSuite), Verify: "NONE", EarlyData: !st.HandshakeComplete}}
	if tc := rt.tlsServerFor(local, st.ServerName); tc != nil && tc.VerifiesClients() {
		info.client = tc.VerifyClient(st)
		info.Verify = info.client.Verify
	} else {
		info.client = tlsconf.ClientResult{Verify: "NONE", Presented: len(st.PeerCertificates) > 0}
	}
	return info
}

// tlsServerFor is the TLS configuration a handshake on local with this
// SNI name gets: the server the name selects, else the default server.
func (rt *generation) tlsServerFor(local netip.AddrPort, sni string) *tlsconf.Config {
	v := rt.vhostsFor(local)
	if v == nil {
		return nil
	}
	srv, _ := v.find(strings.TrimSuffix(strings.ToLower(sni), "."))
	if tc := rt.tlsServers[srv]; tc != nil {
		return tc
	}
	return rt.tlsServers[v.def]
}

// checkSSL runs nginx's TLS checks on a request; when one fails it has
// answered, and keep says whether the connection may go on.
func (x *exchange) checkSSL(host string) (ok, keep bool) {
	c := x.conn
	if c.plainOnTLS {
		x.logRequest(errlog.Info, "", "client sent plain HTTP request to HTTPS port while reading client request headers")
		return false, x.sslPage(497)
	}
	if c.ssl == nil {
		return true, true
	}
	mode := x.srv.Loc.Conf.SSL.VerifyClient
	if sni := c.tls.ServerName; mode != "" && sni != "" && host != "" && !strings.EqualFold(strings.TrimSuffix(sni, "."), host) {
		x.logRequest(errlog.Info, "", "client attempted to request the server name different from the one that was negotiated while reading client request headers")
		return false, x.errorPage(421)
	}
	switch c.ssl.client.StatusUnder(mode) {
	case 495:
		reason := strings.TrimPrefix(c.ssl.Verify, "FAILED:")
		if code := c.ssl.client.Code; code != 0 {
			reason = "(" + strconv.Itoa(code) + ":" + reason + ")"
		}
		x.logRequest(errlog.Info, "", "client SSL certificate verify error: %s while reading client request headers", reason)
		return false, x.sslPage(495)
	case 496:
		x.logRequest(errlog.Info, "", "client sent no required SSL certificate while reading client request headers")
		return false, x.sslPage(496)
	}
	return true, true
}

// sslPage answers 495, 496 or 497 as nginx does: status 400 with the
// page naming the reason, and the connection closed.
func (x *exchange) sslPage(code int) bool {
	x.close = true
	if x.errorPageFor(code) != nil {
		return x.errorPage(code) // error_page 497 https://$host$request_uri, say
	}
	reason := sslPages[code]
	body := "<html>\r\n<head><title>400 " + reason + "</title></head>\r\n<body>\r\n" +
		"<center><h1>400 Bad Request</h1></center>\r\n<center>" + reason + "</center>\r\n" + errorTail
	x.close = true
	return x.respond(400, http1.Header{{Name: "Content-Type", Value: "text/html"}}, body)
}

// plainHTTP reports whether the client's first byte, peeked without
// consuming it, cannot start a TLS record (a handshake record is 0x16)
// but can start an HTTP request. False when nothing arrives by deadline
// or the peek fails: the handshake then reports the error.
func plainHTTP(tcp *net.TCPConn, deadline time.Time) bool {
	if tcp == nil {
		return false
	}
	raw, err := tcp.SyscallConn()
	if err != nil {
		return false
	}
	tcp.SetReadDeadline(deadline)
	defer tcp.SetReadDeadline(time.Time{})
	var b [1]byte
	n := 0
	rerr := raw.Read(func(fd uintptr) bool {
		var err error
		n, _, err = unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK)
		return err != unix.EAGAIN
	})
	return rerr == nil && n == 1 && b[0] >= 'A' && b[0] <= 'Z'
}

// helloVars records the client's offer for $ssl_ciphers and $ssl_curves:
// the suites and groups as sent, which the variables print when asked.
type helloVars struct {
	ciphers []uint16
	curves  []tls.CurveID
}

// helloKey marks, in a handshake's context, the helloVars that records its
// ClientHello.
type helloKey struct{}

// context is the context of the handshake h records. It has no Done
// channel: crypto/tls starts no goroutine to watch it.
func (h *helloVars) context() context.Context {
	return context.WithValue(context.Background(), helloKey{}, h)
}

// recordOffer keeps the ClientHello's offer in the helloVars of the
// handshake's context, if it has one. It runs in the listener's shared
// GetConfigForClient: a connection holds no tls.Config of its own (one
// would also derive a session ticket key of its own, kept by the
// connection for its life and never used).
func recordOffer(hello *tls.ClientHelloInfo) {
	if h, ok := hello.Context().Value(helloKey{}).(*helloVars); ok {
		h.ciphers, h.curves = slices.Clone(hello.CipherSuites), slices.Clone(hello.SupportedCurves)
	}
}

// h3SSLKey marks, in a QUIC connection's context, the holder of what its
// first request found: the client certificate is checked once per
// connection over HTTP/3 too.
type h3SSLKey struct{}

type h3SSL struct {
	once sync.Once
	v    *connSSL
}

// withH3SSL is the HTTP/3 server's ConnContext.
func withH3SSL(ctx context.Context, _ *quic.Conn) context.Context {
	return context.WithValue(ctx, h3SSLKey{}, &h3SSL{})
}

// h3SSLInfo is sslInfo for an HTTP/3 request: the connection's check is
// made by its first request and reused; the state and $ssl_early_data are
// the request's own (a request may arrive in 0-RTT data, the next not).
func (rt *generation) h3SSLInfo(ctx context.Context, local netip.AddrPort, st *tls.ConnectionState) *connSSL {
	h, ok := ctx.Value(h3SSLKey{}).(*h3SSL)
	if !ok || st == nil {
		return rt.sslInfo(local, st)
	}
	h.once.Do(func() { h.v = rt.sslInfo(local, st) })
	c := *h.v
	c.State, c.EarlyData = st, !st.HandshakeComplete
	return &c
}
