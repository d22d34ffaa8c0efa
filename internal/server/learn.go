package server

import (
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/upstream"
)

// `sticky learn`: sessions a backend creates are remembered with the peer
// that answered, and requests naming them go back to it.

// learnConfig is the upstream package's view of cu's `sticky learn`, nil
// without one.
func learnConfig(cu *config.Upstream) *upstream.Learn {
	sl := cu.StickyLearn
	if sl == nil {
		return nil
	}
	return &upstream.Learn{Zone: sl.Zone, Entries: int(sl.Size / config.EntryBytes), Timeout: sl.Timeout}
}

// learned is the peer that created the session the request names by its
// first non-empty lookup= variable, when that peer can take it now.
func (x *exchange) learned(att *upstream.Attempt, sl *config.StickyLearn) *upstream.Peer {
	return att.Learned(firstNonEmpty(sl.Lookup, x.vc))
}

// learnSession remembers, once peer's response head is in, the session its
// first non-empty create= variable names (a Set-Cookie of the answer, for
// $upstream_cookie_NAME). With or without the header parameter this
// happens on the head, before the body is relayed.
func (x *exchange) learnSession(peer *upstream.Peer) {
	if sl := x.proxyPass().Upstream.StickyLearn; sl != nil {
		x.pool().Learn(firstNonEmpty(sl.Create, x.vc), peer)
	}
}
