package upstream

import (
	"crypto/md5"
	"encoding/hex"
)

// StickyID is p's route for `sticky cookie`: the MD5 of its address in hex,
// as nginx Plus computes it, so that a route outlives reloads and restarts
// for as long as the peer's address does.
func (p *Peer) StickyID() string {
	sum := md5.Sum([]byte(p.cfg.Addr))
	return hex.EncodeToString(sum[:])
}

// Sticky picks the peer whose StickyID is id when it can take a request now
// (not down, failed, unhealthy or full; draining is fine), taking a slot as Next does and
// counting as this attempt's first try. It returns nil when no such peer is
// usable; the caller then falls back to Next, and a later Next skips the
// sticky peer only if Sticky took it.
func (a *Attempt) Sticky(id string) *Peer { return a.bound(id, (*Peer).StickyID) }

// Route is Sticky for nginx Plus's `sticky route`: it picks the peer
// whose Route is route.
func (a *Attempt) Route(route string) *Peer { return a.bound(route, (*Peer).Route) }

// Route returns p's route= parameter, or its StickyID without one, as
// nginx Plus names a server's route.
func (p *Peer) Route() string {
	if p.cfg.Route != "" {
		return p.cfg.Route
	}
	return p.StickyID()
}

func (a *Attempt) bound(id string, idOf func(*Peer) string) *Peer {
	u := a.u
	if u == nil || a.tries <= 0 || id == "" {
		return nil
	}
	now := &instant{clock: u.now}
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, list := range []*peerList{&u.primary, &u.backup} {
		for _, p := range list.peers {
			if idOf(p) != id {
				continue
			}
			if list == &u.backup && !a.inBackup {
				// A backup takes sticky traffic only while it would take
				// any: when no primary is usable.
				for _, q := range u.primary.peers {
					if q.usable(now) {
						return nil
					}
				}
			}
			if !p.takes(now) || !p.acquire() {
				return nil
			}
			p.picked(now)
			if p.single {
				a.tries = 0
			} else {
				a.tries--
				if list == a.list() {
					a.setTried(p.idx)
				}
			}
			return p
		}
	}
	return nil
}
