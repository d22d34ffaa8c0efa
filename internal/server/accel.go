package server

import (
	"strconv"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/http1"
)

// upstreamOut is what a proxied response's headers set for the exchange.
type upstreamOut struct {
	buffer int8 // X-Accel-Buffering: 1 yes, -1 no, 0 as proxy_buffering says
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
