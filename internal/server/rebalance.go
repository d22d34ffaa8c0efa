package server

import (
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
// connections do not rebalance by themselves after a peer comes back.
func (s *Server) rebalanceLoop() {
	defer s.wg.Done()
	t := time.NewTicker(rebalanceTick)
	defer t.Stop()
	credit := map[string]float64{}
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
		for _, cu := range rt.cfg.HTTP.Upstreams {
			rb := cu.Rebalance
			pool := rt.pools[cu]
			if rb == nil || pool == nil {
				continue
			}
			c := min(credit[cu.Name]+rb.Rate*rebalanceTick.Seconds(), max(rb.Rate, 1))
			n := int(c)
			if n > 0 {
				n = s.rebalanceOnce(cu, pool, rb, n, rt.log)
			}
			credit[cu.Name] = c - float64(n)
		}
	}
}

// rebalanceOnce closes up to n tunnels on the busiest peers of pool while
// the busiest peer's tunnels per weight exceed the mean by more than the
// threshold; it returns how many it closed.
func (s *Server) rebalanceOnce(cu *config.Upstream, pool *upstream.Upstream, rb *config.Rebalance, n int, log *errlog.Logger) int {
	type load struct {
		peer    *upstream.Peer
		weight  float64
		tunnels []*tunnel.Tunnel
	}
	loads := map[string]*load{}
	var order []*load
	for _, p := range pool.Peers() {
		st := p.State()
		if st.Backup || st.Down || !st.Healthy || !st.UnavailableUntil.IsZero() {
			continue
		}
		l := &load{peer: p, weight: float64(max(st.Weight, 1))}
		loads[p.Addr()] = l
		order = append(order, l)
	}
	if len(order) < 2 {
		return 0
	}
	s.mu.Lock()
	for t, ti := range s.tunnels {
		if ti.ups != cu.Name || ti.peer == nil || ti.rebalanced {
			continue
		}
		if l := loads[ti.peer.Addr()]; l != nil && pool.Contains(ti.peer) {
			l.tunnels = append(l.tunnels, t)
		}
	}
	closed := 0
	for closed < n {
		var total, weights float64
		var busiest *load
		for _, l := range order {
			total += float64(len(l.tunnels))
			weights += l.weight
			if busiest == nil || float64(len(l.tunnels))/l.weight > float64(len(busiest.tunnels))/busiest.weight {
				busiest = l
			}
		}
		mean := total / weights
		if total == 0 || float64(len(busiest.tunnels))/busiest.weight <= mean*(1+rb.Threshold) {
			break
		}
		t := busiest.tunnels[len(busiest.tunnels)-1]
		busiest.tunnels = busiest.tunnels[:len(busiest.tunnels)-1]
		s.tunnels[t].rebalanced = true
		go t.Close(tunnel.ReasonRebalance, 1012, "rebalancing")
		closed++
	}
	s.mu.Unlock()
	if closed > 0 {
		log.Printf(errlog.Info, 0, "websocket_rebalance: closed %d tunnels with 1012 in upstream \"%s\"", closed, cu.Name)
	}
	return closed
}
