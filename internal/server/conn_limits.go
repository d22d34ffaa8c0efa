package server

import (
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/http1"
)

// connLimits is the per-connection state of limit_rate, lingering_close
// and keepalive_time.
type connLimits struct {
	started time.Time // accept time, for keepalive_time

	rate      int64 // limit_rate of the response being written; 0: none
	rateAfter int64
	rateSent  int64 // bytes of this response written so far
	rateStart time.Time

	linger        bool // close with a lingering read (lingering_close)
	lingerTime    time.Duration
	lingerTimeout time.Duration
}

// startResponse applies the location's connection settings to the
// response about to be written: keepalive_time and keepalive_disable may
// close the connection after it, limit_rate paces it, lingering_close
// decides how the connection ends.
func (x *exchange) startResponse() {
	c, lc := x.conn, x.lc
	if lc == nil {
		c.rate = 0
		return
	}
	if !c.started.IsZero() && lc.KeepaliveTime > 0 && time.Since(c.started) > lc.KeepaliveTime {
		x.close = true
	}
	if lc.KeepaliveTimeout <= 0 || c.reqs >= lc.KeepaliveRequests {
		x.close = true // the location's settings, as nginx reads them
	}
	if m := lc.KeepaliveDisable; m&config.KeepaliveDisableSafari != 0 || m&config.KeepaliveDisableMSIE6 != 0 && x.req.Method == "POST" {
		// The User-Agent is looked up only when a browser could matter.
		if keepaliveDisabled(m, x.req.Method, x.req.Header.Get("User-Agent")) {
			x.close = true
		}
	}
	c.startRate(x)
	unread := (x.req.ContentLength > 0 || x.req.Chunked) && !x.bodyRead
	pipelined := c.br != nil && c.br.Buffered() > 0
	c.linger = (x.close || x.req.Close) && !c.virtual && c.tcp != nil &&
		(lc.LingeringClose == config.LingerAlways || lc.LingeringClose == config.LingerOn && (unread || pipelined))
	c.lingerTime, c.lingerTimeout = lc.LingeringTime, lc.LingeringTimeout
}

// startRate arms limit_rate and limit_rate_after for this response; `set
// $limit_rate` overrides the directive, as in nginx.
func (c *conn) startRate(x *exchange) {
	lc, vc := x.lc, x.vc
	rate := lc.LimitRate.Eval(vc)
	if cfg := x.rt.cfg; cfg.LimitRateSet {
		vc.LimitRate = rate
		if n, err := config.ParseSize(vc.Get(cfg.LimitRateVar)); err == nil {
			rate = n
		}
	}
	if x.upstreamOut.rateSet {
		rate = x.upstreamOut.rate // X-Accel-Limit-Rate before an X-Accel-Redirect
	}
	vc.LimitRate = rate
	c.rate, c.rateSent = rate, 0
	if rate > 0 {
		c.rateStart = time.Now()
		c.rateAfter = lc.LimitRateAfter.Eval(vc)
	}
}

// keepaliveDisabled reports whether keepalive_disable lists the browser
// that ua names, recognised as nginx does: msie6 is MSIE 4, 5 and 6
// (without SV1) and applies to POST requests only; safari is Safari on
// macOS and iOS (not Chrome).
func keepaliveDisabled(mask uint8, method, ua string) bool {
	if mask&config.KeepaliveDisableMSIE6 != 0 && method == "POST" && isMSIE6(ua) {
		return true
	}
	return mask&config.KeepaliveDisableSafari != 0 &&
		strings.Contains(ua, "Safari/") && strings.Contains(ua, "Mac OS X") && !strings.Contains(ua, "Chrome/")
}

func isMSIE6(ua string) bool {
	i := strings.Index(ua, "MSIE ")
	if i < 0 || i+7 >= len(ua) || ua[i+6] != '.' {
		return false
	}
	switch ua[i+5] {
	case '4', '5':
		return true
	case '6':
		return !strings.Contains(ua[i+8:], "SV1")
	}
	return false
}

// writeLimited writes p to the client at most at limit_rate: the first
// limit_rate_after bytes at once, then one second's worth per second, the
// current second counted as whole (nginx's arithmetic).
func (c *conn) writeLimited(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		elapsed := time.Since(c.rateStart)
		secs := int64(elapsed / time.Second)
		allowed := c.rateAfter + c.rate*(secs+1) - c.rateSent
		if allowed <= 0 {
			time.Sleep(time.Duration(secs+1)*time.Second - elapsed)
			continue
		}
		n := min(int64(len(p)), allowed)
		if d := c.sendTimeout; d > 0 {
			c.c.SetWriteDeadline(time.Now().Add(d))
		}
		m, err := c.c.Write(p[:n])
		written += m
		c.rateSent += int64(m)
		if err != nil {
			return written, err
		}
		p = p[m:]
	}
	return written, nil
}

var lingerBufs = sync.Pool{New: func() any { return new([4096]byte) }}

// lingerClose reads and discards what the client still sends, after the
// response, before the socket closes: the close then does not reset a
// connection whose client has unread data, which would destroy the
// response it has not read yet. Each read waits at most lingering_timeout,
// all of them together lingering_time.
func (c *conn) lingerClose() {
	if !c.linger || c.hijacked {
		return
	}
	if err := c.tcp.CloseWrite(); err != nil {
		return
	}
	buf := lingerBufs.Get().(*[4096]byte)
	defer lingerBufs.Put(buf)
	end := time.Now().Add(c.lingerTime)
	for {
		t := time.Now().Add(c.lingerTimeout)
		if t.After(end) {
			t = end
		}
		c.tcp.SetReadDeadline(t)
		if _, err := c.tcp.Read(buf[:]); err != nil {
			return
		}
	}
}

// dropInvalidHeaders removes header fields whose name holds an underscore
// when underscores_in_headers is off and ignore_invalid_headers on (both
// defaults), as nginx ignores them, logging each at info. The settings are
// those of the address's default server: nginx reads headers before it
// knows the server.
func (c *conn) dropInvalidHeaders(rt *generation, req *http1.Request, cc *config.LocConf) {
	if cc.UnderscoresInHeaders || !cc.IgnoreInvalidHeaders {
		return
	}
	kept := req.Header[:0]
	for _, f := range req.Header {
		if strings.IndexByte(f.Name, '_') >= 0 {
			rt.log.Printf(errlog.Info, c.id, "client sent invalid header line: \"%s: %s\" while reading client request headers, client: %s", f.Name, f.Value, c.remote.Addr())
			continue
		}
		kept = append(kept, f)
	}
	clear(req.Header[len(kept):])
	req.Header = kept
}

// appendServer appends the Server header that server_tokens asks for.
func (x *exchange) appendServer(b []byte) []byte {
	lc := x.lc
	switch {
	case lc == nil || lc.ServerTokens && !lc.ServerTokensBuild:
		return append(b, "Server: wsgate/"+Version+"\r\n"...)
	case lc.ServerTokensBuild:
		return append(b, "Server: wsgate/"+Version+" ("+buildInfo+")\r\n"...)
	case lc.ServerTokensText != nil:
		v := lc.ServerTokensText.Eval(x.vc)
		if v == "" {
			return b
		}
		return appendField(b, "Server", v)
	}
	return append(b, "Server: wsgate\r\n"...)
}

// buildInfo is what server_tokens build adds: the source revision wsgate
// was built from when known, else the Go version.
var buildInfo = func() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown build"
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return s.Value[:12]
		}
	}
	return bi.GoVersion
}()
