package server

import (
	"testing"

	"github.com/wsgate/wsgate/internal/config"
)

// TestCloseBudgetShared: websocket_rebalance and cluster_rebalance, both
// always wanting to close, together close no more than the larger rate
// allows (one second's worth of burst aside), and neither more than its
// own rate.
func TestCloseBudgetShared(t *testing.T) {
	h := &config.HTTP{
		ClusterRebalance: &config.Rebalance{Rate: 50},
		Upstreams:        []*config.Upstream{{Name: "u", Rebalance: &config.Rebalance{Rate: 30}}},
	}
	top := topRate(h)
	if top != 50 {
		t.Fatalf("topRate = %v, want 50", top)
	}
	var shared, ws, cl closeBudget
	const ticks = 100 // 10 s
	var wsTotal, clTotal int
	for range ticks {
		shared.fill(top)
		ws.fill(30)
		n := ws.allows(&shared)
		ws.spend(n, &shared)
		wsTotal += n
		cl.fill(50)
		n = cl.allows(&shared)
		cl.spend(n, &shared)
		clTotal += n
	}
	secs := float64(ticks) * rebalanceTick.Seconds()
	if total := wsTotal + clTotal; float64(total) > 50*secs+50 || float64(total) < 50*secs-50 {
		t.Fatalf("together %d closes in %v s, want about %v", total, secs, 50*secs)
	}
	if float64(wsTotal) > 30*secs+30 {
		t.Fatalf("websocket_rebalance made %d closes in %v s at 30/s", wsTotal, secs)
	}
	if wsTotal == 0 || clTotal == 0 {
		t.Fatalf("one rebalancer starved the other: %d and %d", wsTotal, clTotal)
	}
}
