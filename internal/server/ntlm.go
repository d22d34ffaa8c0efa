package server

import (
	"cmp"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/backend"
	"github.com/wsgate/wsgate/internal/upstream"
)

// `ntlm`: a client connection whose request carried NTLM or Negotiate
// credentials keeps the backend connection that served it: the backend
// authenticated that connection, not the client. The connection waits
// between requests in the client connection's own one-connection pool
// instead of the upstream's shared one, the client connection's later
// requests to the upstream go to the same peer over it, and it is closed
// when the client connection ends.

// ntlmBinding is a client connection's bound backend connection.
type ntlmBinding struct {
	ups  string        // the upstream's name
	idle *backend.Pool // the bound connection between requests; one at most
	peer string        // the StickyID of the peer it goes to; "" until one answered
}

// close closes the bound connection; b may be nil.
func (b *ntlmBinding) close() {
	if b != nil {
		b.idle.Close()
	}
}

// idlePool is where the request's backend connection comes from and goes
// back to: the client connection's binding with `ntlm` once bound (or on
// the request that binds it), else the upstream's keepalive cache. A
// subrequest (mirror, background update), whose connection never serves
// another request, and an HTTP/2 or HTTP/3 stream never bind.
func (x *exchange) idlePool() *backend.Pool {
	cu := x.proxyPass().Upstream
	shared := x.rt.idle[cu]
	if !cu.NTLM || shared == nil || x.sub || x.conn.h2 || x.conn.virtual {
		return shared
	}
	if b := x.conn.ntlm; b != nil && b.ups == cu.Name {
		return b.idle
	}
	if !ntlmAuth(x.req.Header.Get("Authorization")) {
		return shared
	}
	x.conn.ntlm.close() // bound to another upstream until now
	b := &ntlmBinding{ups: cu.Name, idle: backend.NewPool((*slots)(x.conn.srv), 1, cu.KeepaliveTimeout, cu.KeepaliveRequests)}
	b.idle.SetMaxAge(cmp.Or(cu.KeepaliveTime, time.Hour))
	x.conn.ntlm = b
	return b.idle
}

// ntlmAuth reports whether an Authorization value starts an NTLM or
// Negotiate exchange.
func ntlmAuth(v string) bool {
	scheme, _, _ := strings.Cut(v, " ")
	return strings.EqualFold(scheme, "NTLM") || strings.EqualFold(scheme, "Negotiate")
}

// ntlmPeer is the peer the client connection is bound to for the
// request's upstream, when it can take the request now; nil otherwise.
func (x *exchange) ntlmPeer(att *upstream.Attempt) *upstream.Peer {
	b := x.conn.ntlm
	if cu := x.proxyPass().Upstream; b == nil || b.peer == "" || b.ups != cu.Name || !cu.NTLM {
		return nil
	}
	return att.Sticky(b.peer)
}

// ntlmAnswered records that peer answered over the client connection's
// bound connection: the next request goes to it.
func (x *exchange) ntlmAnswered(peer *upstream.Peer) {
	if b := x.conn.ntlm; b != nil && b.ups == x.proxyPass().Upstream.Name {
		b.peer = peer.StickyID()
	}
}

// answered notes, once peer's response head is in, what `sticky learn`
// and `ntlm` remember of it.
func (x *exchange) answered(peer *upstream.Peer) {
	x.learnSession(peer)
	x.ntlmAnswered(peer)
}
