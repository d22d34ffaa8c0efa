package server

import (
	"bufio"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/limit"
	"github.com/wsgate/wsgate/internal/proxy"
	"github.com/wsgate/wsgate/internal/tunnel"
	"github.com/wsgate/wsgate/internal/upstream"
	"github.com/wsgate/wsgate/internal/vars"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// What follows a backend's choice and answer: the peer a request is
// steered to (hash keys, sticky routes) and the tunnel a 101 starts.

// startTunnel answers the client's upgrade and joins the connections.
func (x *exchange) startTunnel(peer *upstream.Peer, bc *net.TCPConn, br *bufio.Reader, resp *http1.Response, start time.Time) {
	c := x.conn
	bc.SetReadDeadline(time.Time{})
	// The tunnel manages its own deadlines: none from an earlier response
	// on this keep-alive connection may linger.
	c.c.SetWriteDeadline(time.Time{})
	c.c.SetReadDeadline(time.Time{})
	// Record the success before the client sees its 101: its next
	// handshake must find a recovering peer live again.
	peer.Connected()
	hdr := proxy.ResponseHeader(resp.Header, true)
	h := x.head(101, hdr, -2, false)
	c.bw.Write(h)
	x.sent += int64(len(h))
	if err := c.bw.Flush(); err != nil {
		bc.Close()
		c.srv.release(1)
		peer.Done(false)
		x.done()
		return
	}
	// Bytes that arrived behind either head belong to the tunnel; Start
	// copies them before the buffers go back to their pools.
	clientPending, _ := c.br.Peek(c.br.Buffered())
	backendPending, _ := br.Peek(br.Buffered())
	isWS := strings.EqualFold(x.req.Header.Get("Upgrade"), "websocket")
	srv, rt, lc, vc, log, id := c.srv, x.rt, x.lc, x.vc, x.log, c.id
	virtual := c.virtual
	remote := vc.Remote.Addr()
	// The request's variables are kept until the tunnel closes only when a
	// log line needs them then; otherwise they go back to the pool now, so
	// an idle tunnel does not hold its request.
	keepCtx := len(rt.accessLogs[lc]) > 0
	x.ctxKept = keepCtx
	headBytes := x.sent
	leases := slices.Clone(x.leases)
	upsName := lc.Proxy.Upstream.Name
	srv.metrics.Handshake("upgraded")
	var t *tunnel.Tunnel
	ready := make(chan struct{})
	cfg := tunnel.Config{
		Frames:           isWS && lc.WebSocketFrames,
		IdleTimeout:      lc.ReadTimeout,
		SendTimeout:      lc.SendTimeout,
		PingInterval:     lc.WS.PingInterval,
		PingTimeout:      lc.WS.PingTimeout,
		MaxFrameSize:     lc.WS.MaxFrameSize,
		MaxMessageSize:   lc.WS.MaxMessageSize,
		MessageRate:      lc.WS.MessageRate,
		MessageBurst:     lc.WS.MessageBurst,
		RateLimitBackend: lc.WS.RateBoth,
		OnClose: func(r tunnel.Result) {
			<-ready
			if virtual {
				srv.release(1) // the client's TCP connection is its HTTP/2 conn's
			} else {
				srv.release(2)
				srv.Stats.Active.Add(-1)
			}
			srv.Stats.Writing.Add(-1)
			peer.Done(false)
			limit.ReleaseAll(leases)
			if log.Enabled(errlog.Debug) {
				log.Printf(errlog.Debug, id, "tunnel closed by %s, code %d, %d bytes from client, %d from upstream, err %v", r.ClosedBy, r.CloseCode, r.FromClient, r.FromBackend, r.Err)
			}
			srv.metrics.TunnelClosed(upsName, peer.Addr(), r.End.Sub(r.Start), r.FromClient, r.FromBackend, r.CloseCode, r.ClosedBy.String())
			srv.metrics.Messages(r.MessagesFromClient, r.MessagesFromBackend)
			if r.Err != nil && log.Enabled(errlog.Info) {
				log.Printf(errlog.Info, id, "WebSocket closed by wsgate: %v (%s side), client: %s, upstream: \"%s\"", r.Err, r.DeadSide, remote, peer.Addr())
			}
			if keepCtx {
				// The session's log line: $request_time and
				// $upstream_response_time span the whole tunnel, and the
				// byte counts include what it carried to the client.
				vc.BytesSent, vc.BodyBytesSent = headBytes+r.FromBackend, r.FromBackend
				vc.End = r.End
				vc.UpstreamRespTime = vars.Seconds(r.End.Sub(start))
				vc.WS = vars.WSSession{MessagesIn: r.MessagesFromClient, MessagesOut: r.MessagesFromBackend, CloseCode: r.CloseCode, ClosedBy: r.ClosedBy.String(), Closed: true}
				logAccess(rt, lc, vc)
				ctxPool.Put(vc)
			}
			srv.removeTunnel(t)
		},
	}
	c.hijacked = true
	t = tunnel.Start(c.c, bc, clientPending, backendPending, cfg)
	if !srv.addTunnel(t, newTunnelInfo(x.srv, x.loc, lc, peer)) {
		// Shutting down: the tunnel still closes properly, and its OnClose
		// must not unregister what was never registered.
		srv.wg.Add(1)
		srv.Stats.Tunnels.Add(1)
		close(ready)
		go t.Shutdown(1001, "going away")
	} else {
		close(ready)
	}
	x.status = 101
	x.vc.Status = 101
}

// hashKey is what ip_hash and hash balance on: the client address, or the
// evaluated key.
func (x *exchange) hashKey() []byte {
	cu := x.lc.Proxy.Upstream
	switch cu.Method {
	case "ip_hash":
		return x.vc.Remote.Addr().Unmap().AsSlice() // the address realip settled on
	case "hash":
		return []byte(cu.HashKey.Eval(x.vc))
	}
	return nil
}

// setRoute gives the client a sticky cookie for peer unless it already
// carries that route.
func (x *exchange) setRoute(sc *config.StickyCookie, route string, peer *upstream.Peer) {
	x.extra = slices.DeleteFunc(x.extra, func(f http1.Field) bool { return f.Name == "Set-Cookie" })
	id := peer.StickyID()
	if id == route {
		return
	}
	v := sc.Name + "=" + id
	switch {
	case sc.Expires < 0:
		v += "; expires=Thu, 31-Dec-37 23:55:55 GMT; max-age=315360000"
	case sc.Expires > 0:
		v += "; expires=" + time.Now().Add(sc.Expires).UTC().Format(http1TimeFormat) + "; max-age=" + strconv.FormatInt(int64(sc.Expires/time.Second), 10)
	}
	if sc.Domain != "" {
		v += "; domain=" + sc.Domain
	}
	if sc.Path != "" {
		v += "; path=" + sc.Path
	}
	if sc.HTTPOnly {
		v += "; httponly"
	}
	if sc.Secure {
		v += "; secure"
	}
	if sc.SameSite != "" {
		v += "; samesite=" + sc.SameSite
	}
	x.extra = append(x.extra, http1.Field{Name: "Set-Cookie", Value: v})
}
