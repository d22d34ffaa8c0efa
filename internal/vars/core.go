package vars

import (
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/proxyproto"
)

// CoreInfo answers the variables of ngx_http_core_module that only the
// server knows. The server sets Ctx.Core; without it these variables are
// empty ($pipe is ".").
type CoreInfo interface {
	// ConnStart is when the client connection was accepted; zero when
	// unknown.
	ConnStart() time.Time
	// Pipelined reports that the request had arrived, whole or in part,
	// before the previous response on the connection was finished.
	Pipelined() bool
	// Completed reports that the request reached its end with its
	// response sent: no write to the client failed.
	Completed() bool
	// RequestBody is the request body when it was read whole into
	// memory; "" when it was streamed, spilled to a file or not read.
	RequestBody() string
	// ProxyProtocolServer is the destination of a PROXY protocol header.
	ProxyProtocolServer() netip.AddrPort
	// ProxyProtocolTLVs is the TLV section of a v2 PROXY protocol header.
	ProxyProtocolTLVs() []byte
	// TCPInfo reads the client socket's TCP_INFO; false when there is no
	// TCP socket of its own (a unix socket, an HTTP/2 or HTTP/3 stream).
	TCPInfo() (TCPInfo, bool)
}

// TCPInfo is what $tcpinfo_* show of the kernel's TCP_INFO: times in
// microseconds, sizes in segments and bytes, as Linux reports them.
type TCPInfo struct {
	RTT, RTTVar, SndCwnd, RcvSpace uint32
}

// ServerVersion is $nginx_version: wsgate's own version, which the server
// sets once at start (the Server header shows the same).
var ServerVersion = ""

func init() {
	for name, f := range coreBuiltins {
		builtins[name] = f
	}
	// As in nginx, these are read afresh at each use; $request_completion
	// and $request_body keep the value of their first use in a request
	// (read in a handler, $request_completion stays empty in the log).
	for _, name := range []string{"connection_time", "tcpinfo_rtt", "tcpinfo_rttvar", "tcpinfo_snd_cwnd", "tcpinfo_rcv_space"} {
		volatile[name] = true
	}
}

var coreBuiltins = map[string]func(*Ctx) string{
	"connection_time": func(c *Ctx) string {
		if c.Core == nil || c.Core.ConnStart().IsZero() {
			return ""
		}
		return seconds(time.Since(c.Core.ConnStart()))
	},
	"pipe": (*Ctx).Pipe,
	"request_completion": func(c *Ctx) string {
		if c.Core != nil && c.Core.Completed() {
			return "OK"
		}
		return ""
	},
	"request_body": func(c *Ctx) string {
		if c.Core == nil {
			return ""
		}
		return c.Core.RequestBody()
	},
	// A request body is never kept in a named file: the spill-over file
	// is unlinked as soon as it is created.
	"request_body_file": func(*Ctx) string { return "" },
	"request_id":        func(*Ctx) string { return newRequestID() },
	"nginx_version":     func(*Ctx) string { return ServerVersion },
	"proxy_protocol_server_addr": func(c *Ctx) string {
		if c.Core == nil {
			return ""
		}
		return addrString(c.Core.ProxyProtocolServer())
	},
	"proxy_protocol_server_port": func(c *Ctx) string {
		if c.Core == nil {
			return ""
		}
		return portString(c.Core.ProxyProtocolServer().Port())
	},
	"tcpinfo_rtt":       tcpinfo(func(i TCPInfo) uint32 { return i.RTT }),
	"tcpinfo_rttvar":    tcpinfo(func(i TCPInfo) uint32 { return i.RTTVar }),
	"tcpinfo_snd_cwnd":  tcpinfo(func(i TCPInfo) uint32 { return i.SndCwnd }),
	"tcpinfo_rcv_space": tcpinfo(func(i TCPInfo) uint32 { return i.RcvSpace }),
}

// Pipe is $pipe: "p" for a pipelined request, else ".".
func (c *Ctx) Pipe() string {
	if c.Core != nil && c.Core.Pipelined() {
		return "p"
	}
	return "."
}

func tcpinfo(field func(TCPInfo) uint32) func(*Ctx) string {
	return func(c *Ctx) string {
		if c.Core == nil {
			return ""
		}
		ti, ok := c.Core.TCPInfo()
		if !ok {
			return ""
		}
		return strconv.FormatUint(uint64(field(ti)), 10)
	}
}

// newRequestID is $request_id: 16 random bytes in hexadecimal. Variables
// are evaluated once per request, so the value is fixed for the request.
func newRequestID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// corePrefixed serves the core module's prefix families:
// $proxy_protocol_tlv_NAME (a NAME proxyproto.ParseTLVName does not know
// is an unknown variable) and $sent_trailer_NAME, which is empty: wsgate
// sends no trailers, and the family exists so that configurations using
// it load.
func corePrefixed(name string) func(*Ctx) string {
	if strings.HasPrefix(name, "sent_trailer_") {
		return func(*Ctx) string { return "" }
	}
	if tlv, ok := strings.CutPrefix(name, "proxy_protocol_tlv_"); ok {
		key, ok := proxyproto.ParseTLVName(tlv)
		if !ok {
			return nil
		}
		return func(c *Ctx) string {
			if c.Core == nil {
				return ""
			}
			v, _ := proxyproto.Lookup(c.Core.ProxyProtocolTLVs(), key)
			return v
		}
	}
	return nil
}
