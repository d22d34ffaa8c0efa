package upstream

import (
	"testing"
	"time"
)

func TestReloadCarriesState(t *testing.T) {
	clk := newClock()
	cfg := Config{Name: "ws", Peers: []PeerConfig{peer("a", 1), peer("b", 1)}, Now: clk.Now}
	u1 := New(cfg, nil)
	_, held := open(t, u1, 1) // a: one open tunnel
	if _, err := request(u1, nil, map[string]bool{"b": true}); err != nil {
		t.Fatal(err) // b failed once: disabled for 10s
	}
	oldA, oldB := u1.Peers()[0], u1.Peers()[1]

	backupB := peer("b", 1)
	backupB.Backup = true
	tests := []struct {
		name      string
		peers     []PeerConfig
		wantA     int64 // a's active count seen through the new upstream
		bDisabled bool
		hasB      bool
	}{
		{"same peers", []PeerConfig{peer("a", 1), peer("b", 1)}, 1, true, true},
		{"weights changed and one added", []PeerConfig{peer("c", 1), peer("b", 5), peer("a", 2)}, 1, true, true},
		{"b removed", []PeerConfig{peer("a", 1), peer("c", 1)}, 1, false, false},
		{"b became a backup: fresh state", []PeerConfig{peer("a", 1), backupB}, 1, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg
			c.Peers = tt.peers
			u2 := New(c, u1)
			defer u2.Close()
			byName := map[string]*Peer{}
			for _, p := range u2.Peers() {
				byName[p.Name()] = p
			}
			if got := byName["a"].Active(); got != tt.wantA {
				t.Errorf("a active = %d, want %d", got, tt.wantA)
			}
			if got := byName["b"] != nil && !byName["b"].State().UnavailableUntil.IsZero(); got != tt.bDisabled {
				t.Errorf("b disabled = %v, want %v", got, tt.bDisabled)
			}
			if u2.Contains(oldA) != true || u2.Contains(oldB) != tt.hasB {
				t.Errorf("Contains(a)=%v Contains(b)=%v, want true %v", u2.Contains(oldA), u2.Contains(oldB), tt.hasB)
			}
			if p := byName["c"]; p != nil && (p.Active() != 0 || p.State().Picks != 0) {
				t.Errorf("new peer c has state %+v", p.State())
			}
		})
	}

	// A tunnel opened before the reload ends through its old Peer; the new
	// upstream sees the slot freed.
	u2 := New(cfg, u1)
	release(held)
	if got := u2.Peers()[0].Active(); got != 0 {
		t.Fatalf("a active = %d after the old tunnel closed", got)
	}
	// Failures recorded after the reload through the old peer count too.
	clk.Advance(11 * time.Second)
	u3 := New(cfg, u2)
	if _, err := request(u1, nil, map[string]bool{"a": true, "b": true}); !isNoLive(err) {
		t.Fatalf("err = %v", err)
	}
	if _, err := u3.NewAttempt(nil).Next(); !isNoLive(err) {
		t.Fatalf("u3 still picks peers that failed through u1: %v", err)
	}
}

func TestReloadMaxConnsAcrossGenerations(t *testing.T) {
	a := peer("a", 1)
	a.MaxConns = 2
	cfg := Config{Peers: []PeerConfig{a, peer("b", 1)}, Method: LeastConn}
	u1 := New(cfg, nil)
	_, held := open(t, u1, 4) // a, b, a, b
	u2 := New(cfg, u1)
	names, held2 := open(t, u2, 3)
	if names != "bbb" {
		t.Fatalf("a is at max_conns through old tunnels, got %s", names)
	}
	release(held)
	release(held2)
}
