package server

import (
	"net"
	"slices"
	"strings"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/wsdeflate"
)

// Compression offload (websocket_compression): wsgate speaks
// permessage-deflate with one leg and plain WebSocket with the other.

const extHeader = "Sec-WebSocket-Extensions"

// offloads reports whether the exchange's WebSocket handshake is one whose
// compression wsgate offloads.
func (x *exchange) offloads() bool {
	return x.lc.WS.Compression.Mode != "" && x.lc.WebSocketFrames && x.upgrade() &&
		strings.EqualFold(x.req.Header.Get("Upgrade"), "websocket")
}

func compressOptions(c *config.Compression) wsdeflate.Options {
	return wsdeflate.Options{ContextTakeover: c.ContextTakeover, WindowBits: c.WindowBits}
}

// backendRequest is req as its head goes to the backend: under
// offload the client's extension offers are not passed on, and with
// `websocket_compression backend` wsgate's own offer takes their place.
func (x *exchange) backendRequest(req *http1.Request) *http1.Request {
	if !x.offloads() {
		return req
	}
	r := *req
	r.Header = slices.DeleteFunc(slices.Clone(req.Header), func(f http1.Field) bool {
		return strings.EqualFold(f.Name, extHeader)
	})
	if c := &x.lc.WS.Compression; c.Mode == "backend" {
		r.Header.Add(extHeader, wsdeflate.Offer(compressOptions(c)))
	}
	return &r
}

// checkOffload refuses a backend's 101 whose extensions do not answer
// wsgate's offer.
func (x *exchange) checkOffload(resp *http1.Response) error {
	if !x.offloads() || x.lc.WS.Compression.Mode != "backend" {
		return nil
	}
	_, _, err := wsdeflate.Accept(resp.Header.Join(extHeader, ","), compressOptions(&x.lc.WS.Compression))
	return err
}

// offload settles the tunnel's compression from the handshake: hdr, the
// 101's headers for the client, gets wsgate's answer to the client's offer
// (or loses the backend's answer to wsgate's), and the leg that speaks
// permessage-deflate is wrapped, taking its pending bytes. ok is false
// when the peer did not take permessage-deflate: the tunnel is plain.
func (x *exchange) offload(resp *http1.Response, hdr *http1.Header, client, backend *net.Conn, clientPending, backendPending *[]byte) (ok bool) {
	if !x.offloads() {
		return false
	}
	c := &x.lc.WS.Compression
	o := compressOptions(c)
	hdr.Del(extHeader)
	cfg := wsdeflate.Config{MaxFrameSize: x.lc.WS.MaxFrameSize, MaxMessageSize: x.lc.WS.MaxMessageSize, Level: c.Level}
	if c.Mode == "on" {
		answer, p, ok := wsdeflate.Negotiate(x.req.Header.Join(extHeader, ","), o)
		if !ok {
			return false
		}
		hdr.Add(extHeader, answer)
		cfg.Params, cfg.Client = p, true
		*client = wsdeflate.Wrap(*client, *clientPending, cfg)
		*clientPending = nil
		return true
	}
	p, ok, err := wsdeflate.Accept(resp.Header.Join(extHeader, ","), o)
	if !ok || err != nil {
		return false
	}
	cfg.Params = p
	*backend = wsdeflate.Wrap(*backend, *backendPending, cfg)
	*backendPending = nil
	return true
}
