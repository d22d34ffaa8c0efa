package server

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/tunnel"
	"github.com/wsgate/wsgate/internal/upstream"
)

// rebalanceTick is how often the spread is looked at; each upstream's own
// rate decides how many tunnels one look may close.
const rebalanceTick = 100 * time.Millisecond

// rebalanceLoop closes tunnels on overloaded peers with 1012 (service
// restart) so that their clients reconnect to the least loaded ones: long
// connections do not rebalance by themselves after a peer comes back
// (websocket_rebalance). With cluster_rebalance, it also closes the
// tunnels this instance holds above the cluster's mean, so that clients
// reconnect through the L4 balancer to the other instances. Both draw on
// one close budget, filled at the largest rate configured: together they
// close no faster than that.
func (s *Server) rebalanceLoop() {
	defer s.wg.Done()
	t := time.NewTicker(rebalanceTick)
	defer t.Stop()
	credit := map[string]*closeBudget{}
	var shared closeBudget
	var shed clusterShed
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		rt := s.rt.Load()
		if rt == nil || rt.cfg.HTTP == nil {
			continue
		}
		top := topRate(rt.cfg.HTTP)
		if top == 0 {
			continue
		}
		shared.fill(top)
		for _, cu := range rt.cfg.HTTP.Upstreams {
			rb := cu.Rebalance
			pool := rt.pools[cu]
			if rb == nil || pool == nil {
				continue
			}
			c := credit[cu.Name]
			if c == nil {
				c = &closeBudget{}
				credit[cu.Name] = c
			}
			c.fill(rb.Rate)
			if n := c.allows(&shared); n > 0 {
				c.spend(s.rebalanceOnce(cu, pool, rb, n, rt.log), &shared)
			}
		}
		if rb := rt.cfg.HTTP.ClusterRebalance; rb != nil {
			shed.credit.fill(rb.Rate)
			if n := shed.credit.allows(&shared); n > 0 {
				shed.credit.spend(s.clusterRebalanceOnce(&shed, rb, n, rt.log), &shared)
			}
		}
	}
}

// closeBudget is how many closes a rebalancer may make now: it fills at
// its rate each tick, up to one second's worth (at least one close).
type closeBudget struct{ left float64 }

// fill adds one tick's worth of closes at rate.
func (b *closeBudget) fill(rate float64) {
	b.left = min(b.left+rate*rebalanceTick.Seconds(), max(rate, 1))
}

// allows is how many closes both b and the instance's shared budget allow.
func (b *closeBudget) allows(shared *closeBudget) int {
	return int(min(b.left, shared.left))
}

// spend takes n closes from b and from the shared budget.
func (b *closeBudget) spend(n int, shared *closeBudget) {
	b.left -= float64(n)
	shared.left -= float64(n)
}

// topRate is the largest rate of websocket_rebalance and
// cluster_rebalance in h; 0 when neither is on.
func topRate(h *config.HTTP) float64 {
	var top float64
	if rb := h.ClusterRebalance; rb != nil {
		top = rb.Rate
	}
	for _, cu := range h.Upstreams {
		if rb := cu.Rebalance; rb != nil {
			top = max(top, rb.Rate)
		}
	}
	return top
}

// clusterShed is cluster_rebalance's state between ticks.
type clusterShed struct {
	credit closeBudget // closes its rate allows now
	active bool        // above the mean by more than the threshold, and not yet back at the mean

	// Whether closing helps: this instance's count when the current
	// check began, the closes since, when it began, and the pause after
	// a check that found the clients coming back here.
	checkOpen   float64
	checkClosed int
	checkFrom   time.Time
	pausedTill  time.Time
	backoff     time.Duration
}

// A check of whether closing helps spans at least futileCloses closes and
// futileWait, time for the clients to reconnect. Closing that lowered
// this instance's count by less than half the closes is futile: the
// balancer sends the clients back here (the instances below the mean are
// not in its rotation, or it does not balance by connections). The
// instance then stops closing for futilePause, doubled after each futile
// check up to futileMaxPause, rather than closing at its rate for ever.
const (
	futileCloses   = 20
	futileWait     = 2 * time.Second
	futilePause    = 10 * time.Second
	futileMaxPause = 5 * time.Minute
)

// futile ends the current check if it is complete, and reports whether it
// found closing futile; then the instance is paused. mine is this
// instance's count now.
func (sh *clusterShed) futile(now time.Time, mine float64) bool {
	if sh.checkFrom.IsZero() {
		sh.checkFrom, sh.checkOpen, sh.checkClosed = now, mine, 0
		return false
	}
	if sh.checkClosed < futileCloses || now.Sub(sh.checkFrom) < futileWait {
		return false
	}
	futile := sh.checkOpen-mine < float64(sh.checkClosed)/2
	sh.checkFrom, sh.checkOpen, sh.checkClosed = now, mine, 0
	if !futile {
		sh.backoff = 0
		return false
	}
	sh.backoff = min(max(2*sh.backoff, futilePause), futileMaxPause)
	sh.pausedTill = now.Add(sh.backoff)
	sh.checkFrom = time.Time{}
	sh.active = false
	return true
}

// idle ends an episode of closing (the instance is back at the mean, or
// alone): the next one starts a check afresh, its first pause short.
func (sh *clusterShed) idle() {
	sh.active = false
	sh.checkFrom = time.Time{}
	sh.backoff = 0
}

// clusterRebalanceOnce closes up to n of this instance's oldest tunnels
// with 1012 when the cluster is out of balance (see unbalanced), and then
// until it is back at the mean; it returns how many it closed. The mean is
// of the counts the live instances published at the last heartbeat:
// clients that reconnect elsewhere keep it steady. Closing that does not
// lower this instance's count pauses it (futile).
func (s *Server) clusterRebalanceOnce(shed *clusterShed, rb *config.Rebalance, n int, log *errlog.Logger) int {
	st := s.cluster.Load()
	now := time.Now()
	if st == nil || now.Before(shed.pausedTill) {
		return 0
	}
	load := st.ClusterLoad()
	if load.Instances < 2 {
		shed.idle()
		return 0
	}
	mean := float64(load.Open) / float64(load.Instances)
	mine := float64(s.openTunnels())
	if !shed.active && !unbalanced(mine, mean, float64(load.Lowest), rb.Threshold) {
		return 0
	}
	excess := int(mine - math.Ceil(mean))
	if excess <= 0 {
		shed.idle()
		return 0
	}
	shed.active = true
	if closed := shed.checkClosed; shed.futile(now, mine) {
		log.Printf(errlog.Warn, 0, "cluster_rebalance: %d tunnels closed with 1012, but %d are open here again (cluster mean %.0f): the load balancer sends their clients back to this instance; not closing for %v (does it balance by connections, over every instance?)", closed, int(mine), mean, shed.backoff)
		return 0
	}
	closed := s.closeOldest(min(n, excess))
	shed.checkClosed += closed
	if closed > 0 {
		log.Printf(errlog.Info, 0, "cluster_rebalance: closed %d tunnels with 1012 (%d open here, cluster mean %.0f)", closed, int(mine), mean)
	}
	return closed
}

// unbalanced reports whether an instance holding mine tunnels starts
// closing, in a cluster whose mean is mean and whose least loaded instance
// holds low (negative: unknown): when it holds more than the mean by more
// than the threshold, or more than the mean while an instance holds less
// than the mean by more than the threshold. The second case is a new
// instance that the clients closed elsewhere did not fill: the instances
// above the mean may each be within the threshold, and then only they can
// even it out.
func unbalanced(mine, mean, low, threshold float64) bool {
	if mine > mean*(1+threshold) {
		return true
	}
	return low >= 0 && low < mean*(1-threshold) && mine > math.Ceil(mean)
}

// closeOldest asks the n oldest tunnels that no rebalancer has asked yet
// to close with 1012; it returns how many it asked.
func (s *Server) closeOldest(n int) int {
	type aged struct {
		t       *tunnel.Tunnel
		started int64
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	all := make([]aged, 0, len(s.tunnels))
	for t, ti := range s.tunnels {
		if !ti.rebalanced {
			all = append(all, aged{t, ti.started})
		}
	}
	slices.SortFunc(all, func(a, b aged) int { return cmp.Compare(a.started, b.started) })
	all = all[:min(n, len(all))]
	for _, a := range all {
		s.markRebalanced(a.t)
		go a.t.Close(tunnel.ReasonRebalance, 1012, "rebalancing")
	}
	return len(all)
}

// markRebalanced records that a rebalancer asked t to close; s.mu is held.
func (s *Server) markRebalanced(t *tunnel.Tunnel) {
	s.tunnels[t].rebalanced = true
	s.leaving.Add(1)
}

// rebalanceOnce closes up to n tunnels on the busiest peers of pool while
// the busiest peer's connections per weight exceed the mean by more than
// the threshold, and its connections its share of them rounded up; it
// returns how many it closed. A peer's connections are those least_conn
// weighs, its active count (tunnels, handshakes and requests in
// progress), less its tunnels already asked to close: a handshake burst
// that least_conn spread evenly is even, though the peers that answer
// their 101 sooner hold more tunnels for a moment.
func (s *Server) rebalanceOnce(cu *config.Upstream, pool *upstream.Upstream, rb *config.Rebalance, n int, log *errlog.Logger) int {
	order, loads := peerLoads(pool)
	if len(order) < 2 {
		return 0
	}
	s.mu.Lock()
	for t, ti := range s.tunnels {
		if ti.ups != cu.Name || ti.peer == nil {
			continue
		}
		if l := loads[ti.peer.Addr()]; l != nil && pool.Contains(ti.peer) {
			l.add(t, ti.rebalanced)
		}
	}
	closed := 0
	for closed < n {
		busiest := overloaded(order, rb.Threshold)
		if busiest == nil {
			break
		}
		t := busiest.take()
		s.markRebalanced(t)
		go t.Close(tunnel.ReasonRebalance, 1012, "rebalancing")
		closed++
	}
	s.mu.Unlock()
	if closed > 0 {
		log.Printf(errlog.Info, 0, "websocket_rebalance: closed %d tunnels with 1012 in upstream \"%s\"", closed, cu.Name)
	}
	return closed
}

// peerLoad is one live primary peer's load, as websocket_rebalance
// judges it.
type peerLoad struct {
	weight  float64
	active  int64            // the peer's active count, read before the tunnels
	leaving int64            // its tunnels asked to close, which active still counts
	tunnels []*tunnel.Tunnel // open, not yet asked to close
}

// conns is the peer's connections less those leaving. The active count
// was read first: tunnels that opened since count too.
func (l *peerLoad) conns() float64 {
	return float64(max(l.active-l.leaving, int64(len(l.tunnels))))
}

// peerLoads returns the live primary peers of pool, in order and by
// address, each with its active connections.
func peerLoads(pool *upstream.Upstream) ([]*peerLoad, map[string]*peerLoad) {
	loads := map[string]*peerLoad{}
	var order []*peerLoad
	for _, p := range pool.Peers() {
		st := p.State()
		if st.Backup || st.Down || !st.Healthy || !st.UnavailableUntil.IsZero() {
			continue
		}
		l := &peerLoad{weight: float64(max(st.Weight, 1)), active: st.Active}
		loads[p.Addr()] = l
		order = append(order, l)
	}
	return order, loads
}

// add counts t, a tunnel on l's peer: one to close if it is not leaving
// already, one leaving if it is (least_conn counts it until it ends).
func (l *peerLoad) add(t *tunnel.Tunnel, leaving bool) {
	if leaving {
		l.leaving++
		return
	}
	l.tunnels = append(l.tunnels, t)
}

// take removes l's newest tunnel, to be closed, and returns it.
func (l *peerLoad) take() *tunnel.Tunnel {
	t := l.tunnels[len(l.tunnels)-1]
	l.tunnels = l.tunnels[:len(l.tunnels)-1]
	l.leaving++
	return t
}

// overloaded returns the busiest peer of order when it has a tunnel to
// close, its connections per weight exceed the mean by more than
// threshold, and its connections exceed its share rounded up: counts are
// whole connections, so a spread such as 2/2/1 is as even as it can be,
// and closing one there would only move it. It returns nil otherwise.
func overloaded(order []*peerLoad, threshold float64) *peerLoad {
	var total, weights float64
	var busiest *peerLoad
	for _, l := range order {
		total += l.conns()
		weights += l.weight
		if busiest == nil || l.conns()/l.weight > busiest.conns()/busiest.weight {
			busiest = l
		}
	}
	mean := total / weights
	have := busiest.conns()
	if total <= 0 || len(busiest.tunnels) == 0 || have/busiest.weight <= mean*(1+threshold) || have <= math.Ceil(mean*busiest.weight) {
		return nil
	}
	return busiest
}
