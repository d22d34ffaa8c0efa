package server

import (
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/tunnel"
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

// TestOverloaded: websocket_rebalance judges the connections least_conn
// weighs, not only the tunnels open: peers whose handshakes are still in
// progress are as loaded as least_conn made them.
func TestOverloaded(t *testing.T) {
	peer := func(conns, tunnels int) *peerLoad {
		return &peerLoad{weight: 1, active: int64(conns), tunnels: make([]*tunnel.Tunnel, tunnels)}
	}
	cases := []struct {
		name  string
		peers []*peerLoad
		want  int // index of the peer to close on, -1 for none
	}{
		{"even", []*peerLoad{peer(30, 30), peer(30, 30), peer(30, 30)}, -1},
		{"as even as whole tunnels", []*peerLoad{peer(2, 2), peer(2, 2), peer(1, 1)}, -1},
		{"one peer back", []*peerLoad{peer(45, 45), peer(45, 45), peer(0, 0)}, 0},
		{"handshakes in progress elsewhere", []*peerLoad{peer(10, 10), peer(10, 0), peer(10, 0)}, -1},
		{"busiest only handshaking", []*peerLoad{peer(2, 2), peer(20, 0), peer(2, 2)}, -1},
		{"over the threshold by weight", []*peerLoad{{weight: 2, active: 20, tunnels: make([]*tunnel.Tunnel, 20)}, peer(20, 20)}, 1},
	}
	for _, c := range cases {
		got := overloaded(c.peers, 0.1)
		want := (*peerLoad)(nil)
		if c.want >= 0 {
			want = c.peers[c.want]
		}
		if got != want {
			t.Errorf("%s: overloaded picked %p, want %p", c.name, got, want)
		}
	}
}

// TestPeerLoadLeaving: a tunnel already asked to close is not closed
// again and no longer counts, though the peer's active count still holds
// it.
func TestPeerLoadLeaving(t *testing.T) {
	l := &peerLoad{weight: 1, active: 3}
	l.add(nil, true)
	l.add(new(tunnel.Tunnel), false)
	l.add(new(tunnel.Tunnel), false)
	if l.conns() != 2 || len(l.tunnels) != 2 {
		t.Fatalf("conns %v, tunnels %d; want 2 and 2", l.conns(), len(l.tunnels))
	}
	// A tunnel that registered after the active count was read.
	l.add(new(tunnel.Tunnel), false)
	if l.conns() != 3 {
		t.Fatalf("conns %v after a late tunnel, want 3", l.conns())
	}
	// The same, with the leaving tunnel met after the open ones: the
	// order of the registry's map changes nothing.
	l = &peerLoad{weight: 1, active: 2}
	for range 3 {
		l.add(new(tunnel.Tunnel), false)
	}
	l.add(nil, true)
	if l.conns() != 3 {
		t.Fatalf("conns %v with the leaving tunnel last, want 3", l.conns())
	}
	// A tunnel taken to close leaves the count.
	l.take()
	if l.conns() != 2 || len(l.tunnels) != 2 {
		t.Fatalf("after take: conns %v, tunnels %d; want 2 and 2", l.conns(), len(l.tunnels))
	}
}

// TestClusterShedFutile: closing that lowers the instance's count by less
// than half the closes, over at least futileCloses closes and futileWait,
// pauses it, for longer after each futile check; closing that helps
// resets the pause; too few closes are not judged.
func TestClusterShedFutile(t *testing.T) {
	var sh clusterShed
	t0 := time.Unix(1000, 0)
	check := func(at time.Duration, mine float64, closes int, want bool) {
		t.Helper()
		if got := sh.futile(t0.Add(at), mine); got != want {
			t.Fatalf("at %v with %v open: futile %v, want %v", at, mine, got, want)
		}
		sh.checkClosed += closes
	}
	check(0, 1000, 30, false)          // the check begins
	check(time.Second, 990, 0, false)  // too soon to judge
	check(2*time.Second, 990, 0, true) // 10 fewer for 30 closes
	if sh.backoff != futilePause || !sh.pausedTill.Equal(t0.Add(2*time.Second+futilePause)) || sh.active {
		t.Fatalf("after a futile check: backoff %v, paused till %v, active %v", sh.backoff, sh.pausedTill, sh.active)
	}
	check(20*time.Second, 1000, 40, false) // a new check begins
	check(23*time.Second, 1000, 0, true)   // nothing gained again: a longer pause
	if sh.backoff != 2*futilePause {
		t.Fatalf("second futile check: backoff %v, want %v", sh.backoff, 2*futilePause)
	}
	check(60*time.Second, 1000, 30, false)
	check(63*time.Second, 980, 0, false) // 20 fewer for 30 closes: it helps
	if sh.backoff != 0 {
		t.Fatalf("closing helped, but the backoff is still %v", sh.backoff)
	}
	check(63*time.Second, 980, futileCloses-1, false) // the next check begins
	check(80*time.Second, 980, 0, false)              // too few closes to judge
	for range 20 {
		sh.backoff = futileMaxPause
		sh.checkFrom = time.Time{}
		check(100*time.Second, 1000, futileCloses, false)
		check(110*time.Second, 1000, 0, true)
	}
	if sh.backoff != futileMaxPause {
		t.Fatalf("backoff %v over its ceiling %v", sh.backoff, futileMaxPause)
	}
}

// TestUnbalanced: an instance closes when it holds more than the mean by
// more than the threshold, or more than the mean while another holds less
// than the mean by more than the threshold; not when every instance is
// within it, when it is at or below the mean, or when the lowest count is
// unknown.
func TestUnbalanced(t *testing.T) {
	tests := []struct {
		mine, mean, low float64
		want            bool
	}{
		{826, 750, 700, true},  // above the threshold itself
		{825, 750, 700, false}, // everyone within 10%
		{815, 750, 663, true},  // within, but an instance is short: the case of three instances and a new fourth
		{783, 750, 663, true},
		{750, 750, 663, false}, // at the mean: it has nothing to hand over
		{739, 750, 663, false},
		{815, 750, -1, false},  // no count known
		{815, 750, 675, false}, // the lowest exactly at the threshold
	}
	for _, tt := range tests {
		if got := unbalanced(tt.mine, tt.mean, tt.low, 0.10); got != tt.want {
			t.Errorf("unbalanced(%v, mean %v, low %v) = %v, want %v", tt.mine, tt.mean, tt.low, got, tt.want)
		}
	}
}
