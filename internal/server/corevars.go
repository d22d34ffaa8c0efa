package server

import (
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/internal/vars"
)

// The exchange answers the core module's variables that need the
// connection (vars.CoreInfo); fillVars hands it to the request's Ctx.

func init() { vars.ServerVersion = Version }

// ConnStart is when the connection was accepted; zero for an HTTP/2 or
// HTTP/3 stream, whose bridged connection keeps no accept time.
func (x *exchange) ConnStart() time.Time { return x.conn.started }

// Pipelined reports that bytes of this request were already read when
// the previous response on the connection was finished.
func (x *exchange) Pipelined() bool { return x.conn.pipelined }

// Completed reports that the response went out: the request has reached
// its log phase and no write to the client failed. As in nginx, a body
// its source (the upstream) cut short still completes the request.
func (x *exchange) Completed() bool {
	return !x.vc.End.IsZero() && !x.conn.sendFailed
}

// RequestBody is the body read whole into memory before proxying.
func (x *exchange) RequestBody() string { return string(x.bodyMem) }

// keepBody keeps a buffered body for $request_body unless part of it went
// to a temporary file (nginx leaves the variable empty then too).
func (x *exchange) keepBody(b *requestBody) {
	if b.file == nil && b.stream == nil {
		x.bodyMem = b.mem
	}
}

// ProxyProtocolServer is the destination address of the PROXY header.
func (x *exchange) ProxyProtocolServer() netip.AddrPort { return x.conn.proxyDest }

// ProxyProtocolTLVs is the TLV section of a v2 PROXY header.
func (x *exchange) ProxyProtocolTLVs() []byte { return x.conn.proxyTLVs }

// TCPInfo reads TCP_INFO from the client socket, at each use.
func (x *exchange) TCPInfo() (vars.TCPInfo, bool) {
	c := x.conn
	if c.virtual || c.tcp == nil {
		return vars.TCPInfo{}, false
	}
	rc, err := c.tcp.SyscallConn()
	if err != nil {
		return vars.TCPInfo{}, false
	}
	var ti *unix.TCPInfo
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		ti, gerr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil || gerr != nil {
		return vars.TCPInfo{}, false
	}
	return vars.TCPInfo{RTT: ti.Rtt, RTTVar: ti.Rttvar, SndCwnd: ti.Snd_cwnd, RcvSpace: ti.Rcv_space}, true
}

// coreState is what a connection records for the core variables.
type coreState struct {
	pipelined  bool           // $pipe: the current request was pipelined
	proxyDest  netip.AddrPort // $proxy_protocol_server_addr and _port
	proxyTLVs  []byte         // $proxy_protocol_tlv_*
	sendFailed bool           // a write to the client failed: no $request_completion
}

// coreExchange is what a request records for the core variables.
type coreExchange struct {
	bodyMem []byte // $request_body
}

// noteSend remembers a failed write to the client.
func (c *conn) noteSend(err *error) {
	if *err != nil {
		c.sendFailed = true
	}
}
