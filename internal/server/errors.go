package server

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"syscall"

	"github.com/wsgate/wsgate/internal/backend"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/tlsconf"
)

// logRequest writes a line with nginx's request suffix (requestSuffix):
// client, server, request, upstream when addr (a peer's address or the
// upstream's name) is not empty, and host.
func (x *exchange) logRequest(level errlog.Level, addr, format string, args ...any) {
	if !x.log.Enabled(level) {
		return
	}
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	x.log.Printf(level, x.conn.id, "%s%s", msg, x.requestSuffix(addr))
}

// logSuffix is the end of an error-log line about the request, as nginx
// writes it: ", client: ..., server: ..., request: \"...\", host: \"...\"".
func (x *exchange) logSuffix() string { return x.requestSuffix("") }

// requestSuffix is logSuffix with the upstream named when addr is not
// empty. Every log line about a request that names these is built here.
func (x *exchange) requestSuffix(addr string) string {
	s := ", client: " + clientName(x.vc.Remote) + ", server: " + x.vc.ServerName + requestField(x.vc)
	if addr != "" {
		s += ", upstream: \"" + x.upstreamURL(addr) + "\""
	}
	return s + ", host: \"" + x.req.Host + "\""
}

// clientName is the client's address in a log line; a client of a unix
// socket has none and is "unix:", as nginx writes it.
func clientName(ap netip.AddrPort) string {
	if !ap.IsValid() {
		return "unix:"
	}
	return ap.Addr().String()
}

// upstreamURL is the upstream as nginx names it in a log line:
// "https://10.0.0.1:443/uri", or "http://unix:/run/app.sock:/uri".
func (x *exchange) upstreamURL(addr string) string {
	scheme := "http"
	if pp := x.proxyPass(); pp != nil {
		scheme = pp.Scheme
	}
	if strings.HasPrefix(addr, "unix:") {
		addr += ":"
	}
	return scheme + "://" + addr + x.vc.RequestURI
}

// upstreamError logs a peer's failure as nginx does, naming the phase it
// failed in.
func (x *exchange) upstreamError(err error, addr string) {
	phase := backend.Reading
	var be *backend.Error
	if errors.As(err, &be) {
		phase = be.Phase
	}
	var se *http1.StatusError
	var msg string
	switch {
	case errors.As(err, &se):
		msg = se.Detail
	case phase == backend.Reading && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)):
		msg = "upstream prematurely closed connection"
	case phase == backend.Handshaking:
		msg = tlsconf.HandshakeMessage(err)
	default:
		msg = describe(err, syscallOf[phase])
	}
	x.logRequest(errlog.Error, addr, "%s while %s", msg, phase)
}

var syscallOf = [...]string{backend.Connecting: "connect()", backend.Sending: "send()", backend.Reading: "recv()", backend.Handshaking: "SSL_do_handshake()"}

// describe renders a socket error as nginx does: "connect() failed (111:
// Connection refused)" or "upstream timed out (110: Connection timed out)".
func describe(err error, op string) string {
	if isTimeout(err) {
		return "upstream timed out (110: Connection timed out)"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return fmt.Sprintf("%s failed (%d: %s)", op, int(errno), capitalize(errno.Error()))
	}
	return fmt.Sprintf("%s failed (%v)", op, err)
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
