package server

import (
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/vars"
)

// upstreamOut is what a proxied response's headers set for the exchange.
type upstreamOut struct {
	buffer int8   // X-Accel-Buffering: 1 yes, -1 no, 0 as proxy_buffering says
	method string // the method sent upstream (proxy_method)

	ups        vars.Upstream // the tries, for $upstream_*
	relayStart time.Time     // when the response's relay began
	bodyRead   int64         // response body bytes read from the backend
	streamed   bool          // the request body streams from the client while it is sent
	queued     time.Duration // the wait in the upstream's queue before the first try
}

// accel acts on the backend's X-Accel-Buffering and X-Accel-Limit-Rate, as
// nginx does unless proxy_ignore_headers names them. It runs after the
// head is built, which armed the location's limit_rate. X-Accel-Redirect,
// X-Accel-Expires and X-Accel-Charset are hidden and not acted on.
func (x *exchange) accel(h http1.Header) {
	ign := x.lc.ProxyRest.IgnoreHeaders
	if ign&config.IgnoreXAccelBuffering == 0 {
		switch v := h.Get("X-Accel-Buffering"); {
		case strings.EqualFold(v, "no"):
			x.upstreamOut.buffer = -1
		case strings.EqualFold(v, "yes"):
			x.upstreamOut.buffer = 1
		}
	}
	if ign&config.IgnoreXAccelLimitRate == 0 {
		v := h.Get("X-Accel-Limit-Rate")
		if v == "" {
			return
		}
		c := x.conn
		if strings.EqualFold(v, "off") {
			c.rate = 0
			return
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return // nginx logs an invalid value and ignores it
		}
		if c.rate == 0 && n > 0 {
			c.rateStart, c.rateSent = time.Now(), 0
			c.rateAfter = x.lc.LimitRateAfter.Eval(x.vc)
		}
		c.rate = n
		x.vc.LimitRate = n
	}
}

// buffering reports whether the response is copied through the client
// buffer (proxy_buffering, unless X-Accel-Buffering said otherwise).
func (x *exchange) buffering() bool {
	if b := x.upstreamOut.buffer; b != 0 {
		return b > 0
	}
	return x.lc.Buffering
}

// pacedReader reads from the backend at most rate bytes a second on
// average (proxy_limit_rate): a read that is ahead waits until the bytes
// so far are due.
type pacedReader struct {
	r     io.Reader
	rate  int64
	start time.Time
	n     int64
}

func (p *pacedReader) Read(b []byte) (int, error) {
	if max := int(p.rate); len(b) > max {
		b = b[:max] // at most a second's worth at a time
	}
	n, err := p.r.Read(b)
	p.n += int64(n)
	due := p.start.Add(time.Duration(p.n * int64(time.Second) / p.rate))
	if wait := time.Until(due); wait > 0 {
		time.Sleep(wait)
	}
	return n, err
}

// bindAddr is proxy_bind's address for this request; nil without one (or
// when its variables give an empty value, as nginx).
func (x *exchange) bindAddr() *net.TCPAddr {
	b := x.lc.ProxyRest.Bind
	if b == nil {
		return nil
	}
	v := b.Addr.Eval(x.vc)
	if v == "" {
		return nil
	}
	ap, err := config.ParseBindAddr(v)
	if err != nil {
		x.logRequest(errlog.Error, "", "invalid local address \"%s\"", v)
		return nil
	}
	return net.TCPAddrFromAddrPort(ap)
}

// size is the body's length as sent, for $upstream_bytes_sent; -1 when
// unknown (chunked) or absent.
func (b *requestBody) size() int64 {
	if b == nil {
		return -1
	}
	return b.framing.Length
}
