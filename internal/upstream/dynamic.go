package upstream

// Peers that change at run time: `server name resolve` re-resolved as its
// DNS records change.

// SetPeers replaces the peers of an upstream built with Config.Dynamic, as
// New would build them with u as the previous generation: a peer whose
// address stays keeps its state. A peer that leaves takes no new
// connections; requests and tunnels already on it go on, and Contains
// keeps reporting it, so that a reload does not drain tunnels that DNS,
// not the configuration, moved away from. Attempts already running may
// skip or repeat a peer across the change; none fails because of it.
func (u *Upstream) SetPeers(peers []PeerConfig) {
	u.setPeers(peers)
	u.checkNewPeers()
}

func (u *Upstream) setPeers(peers []PeerConfig) {
	fresh := New(Config{
		Name: u.name, Peers: peers, Method: u.method, HashConsistent: u.consistent,
		RandomTwo: u.two, Now: u.now, Logf: u.logf, Dynamic: true,
		Queue: u.queueMax, QueueTimeout: u.queueTimeout,
	}, u)
	u.mu.Lock()
	defer u.mu.Unlock()
	kept := make(map[*peerState]bool, len(fresh.all))
	for _, p := range fresh.all {
		p.up = u
		kept[p.st] = true
	}
	for _, p := range u.all {
		if !kept[p.st] {
			u.gone[p.st] = p.cfg.Name
		}
	}
	for st := range u.gone {
		if kept[st] || st.conns.Load() == 0 {
			delete(u.gone, st) // back in the answer, or nothing left on it
		}
	}
	u.primary, u.backup, u.all, u.points = fresh.primary, fresh.backup, fresh.all, fresh.points
	u.q.notify() // a new address may take a queued request
}

// checkNewPeers gives the peers SetPeers added health checkers, once the
// upstream is started with checks, and stops the checkers of the peers that
// left.
func (u *Upstream) checkNewPeers() {
	u.life.Lock()
	defer u.life.Unlock()
	if !u.started || u.closed || u.health == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	current := map[*peerState]bool{}
	var fresh []*Peer
	for _, p := range u.all {
		current[p.st] = true
		if _, checked := u.checks[p.st]; !checked && !p.cfg.Down {
			fresh = append(fresh, p)
		}
	}
	for st, stop := range u.checks {
		if !current[st] {
			stop()
			delete(u.checks, st)
		}
	}
	for _, p := range fresh {
		p.st.mu.Lock()
		p.st.owner = u
		p.st.mu.Unlock()
	}
	u.startCheckers(u.hctx, fresh)
}

// carryGone keeps prev's departed peers that still carry tunnels and whose
// server is still configured in u (a peer's Name is its server's).
func (u *Upstream) carryGone(prev *Upstream, peers []PeerConfig) {
	names := map[string]bool{}
	for _, pc := range peers {
		names[pc.Name] = true
	}
	prev.mu.Lock()
	defer prev.mu.Unlock()
	for st, name := range prev.gone {
		if names[name] && st.conns.Load() > 0 {
			u.gone[st] = name
		}
	}
}

// lockDynamic takes u.mu for readers of the peer lists when they can
// change (Config.Dynamic); it returns the matching unlock.
func (u *Upstream) lockDynamic() func() {
	if !u.dynamic {
		return func() {}
	}
	u.mu.Lock()
	return u.mu.Unlock
}
