package upstream

import (
	"fmt"
	"net/netip"
	"testing"
)

func threePeers() []PeerConfig { return []PeerConfig{peer("a", 1), peer("b", 1), peer("c", 1)} }

func TestIPHash(t *testing.T) {
	u := New(Config{Method: IPHash, Peers: threePeers()}, nil)
	ip := func(s string) []byte { return netip.MustParseAddr(s).AsSlice() }

	// Worked by hand from nginx's formula: 89, then (h*113+octet)%6271 over
	// 192, 168, 1 gives 154, and 154 % 3 picks the second peer.
	if got := pick(t, u, ip("192.168.1.10")); got != "b" {
		t.Errorf("192.168.1.10 -> %s, want b", got)
	}

	tests := []struct {
		name string
		a, b string
		same bool
	}{
		{"same /24", "192.168.1.10", "192.168.1.250", true},
		{"v4-mapped is v4", "192.168.1.10", "::ffff:192.168.1.10", true},
		{"same address", "2001:db8::1", "2001:db8::1", true},
	}
	for _, tt := range tests {
		if got := pick(t, u, ip(tt.a)) == pick(t, u, ip(tt.b)); got != tt.same {
			t.Errorf("%s: %s and %s on the same peer = %v", tt.name, tt.a, tt.b, got)
		}
	}

	// Stable across requests.
	first := pick(t, u, ip("10.1.2.3"))
	for range 100 {
		if got := pick(t, u, ip("10.1.2.3")); got != first {
			t.Fatalf("10.1.2.3 moved from %s to %s", first, got)
		}
	}

	// Spread over /24s; IPv6 uses every byte, so the last one matters.
	v4, v6 := map[string]int{}, map[string]int{}
	for i := range 300 {
		v4[pick(t, u, ip(fmt.Sprintf("10.%d.%d.7", i/256, i%256)))]++
		v6[pick(t, u, ip(fmt.Sprintf("2001:db8::%x", i)))]++
	}
	for _, name := range []string{"a", "b", "c"} {
		if v4[name] < 60 || v4[name] > 140 {
			t.Errorf("IPv4 /24s: %s got %d of 300 (%v)", name, v4[name], v4)
		}
		if v6[name] < 60 || v6[name] > 140 {
			t.Errorf("IPv6 addresses: %s got %d of 300 (%v)", name, v6[name], v6)
		}
	}

	// Non-IP clients (nil key) all hash alike.
	if pick(t, u, nil) != pick(t, u, []byte{1, 2}) {
		t.Error("non-IP keys differ")
	}
}

func TestIPHashFailover(t *testing.T) {
	u := New(Config{Method: IPHash, Peers: threePeers(), Now: newClock().Now}, nil)
	key := netip.MustParseAddr("192.168.1.10").AsSlice() // -> b
	tried, err := request(u, key, map[string]bool{"b": true})
	if err != nil || len(tried) != 2 || tried[0] != "b" {
		t.Fatalf("tried %v err %v", tried, err)
	}
	moved := tried[1]
	for range 20 {
		if got := pick(t, u, key); got != moved {
			t.Fatalf("while b is disabled the client went to %s, then %s", moved, got)
		}
	}
}

func TestIPHashSingleAndWeights(t *testing.T) {
	u := New(Config{Method: IPHash, Peers: []PeerConfig{peer("a", 1)}}, nil)
	if got := pick(t, u, []byte{1, 2, 3, 4}); got != "a" {
		t.Fatal(got)
	}
	u = New(Config{Method: IPHash, Peers: []PeerConfig{peer("a", 3), peer("b", 1)}}, nil)
	n := map[string]int{}
	for i := range 1000 {
		n[pick(t, u, []byte{byte(i >> 8), byte(i), 0, 0})]++
	}
	if n["a"] < 650 || n["a"] > 850 {
		t.Errorf("weights 3:1 gave %v", n)
	}
}

func TestHashPlain(t *testing.T) {
	u := New(Config{Method: Hash, Peers: threePeers(), Now: newClock().Now}, nil)
	// crc32("abc") = 0x352441c2; (>>16)&0x7fff = 13604; 13604 % 3 = 2.
	if got := pick(t, u, []byte("abc")); got != "c" {
		t.Errorf(`"abc" -> %s, want c`, got)
	}
	n := map[string]int{}
	for i := range 3000 {
		k := []byte(fmt.Sprintf("/room/%d", i))
		first := pick(t, u, k)
		if again := pick(t, u, k); again != first {
			t.Fatalf("key %s moved", k)
		}
		n[first]++
	}
	for _, name := range []string{"a", "b", "c"} {
		if n[name] < 800 || n[name] > 1200 {
			t.Errorf("spread %v", n)
		}
	}
	// The rehash retry moves a failing key to another peer.
	tried, err := request(u, []byte("abc"), map[string]bool{"c": true})
	if err != nil || len(tried) != 2 || tried[0] != "c" {
		t.Fatalf("tried %v err %v", tried, err)
	}
	// An empty key falls back to round robin.
	if got := picks(t, New(Config{Method: Hash, Peers: threePeers()}, nil), 3); got != "abc" {
		t.Errorf("empty key: %s", got)
	}
}

func consistentKeys(t *testing.T, u *Upstream, n int) []string {
	out := make([]string, n)
	for i := range n {
		out[i] = pick(t, u, []byte(fmt.Sprintf("user-%d", i)))
	}
	return out
}

func TestHashConsistentRemap(t *testing.T) {
	four := []PeerConfig{peer("10.0.0.1:8080", 1), peer("10.0.0.2:8080", 1), peer("10.0.0.3:8080", 1), peer("10.0.0.4:8080", 1)}
	u4 := New(Config{Method: Hash, HashConsistent: true, Peers: four}, nil)
	u3 := New(Config{Method: Hash, HashConsistent: true, Peers: four[:3]}, nil)
	before, after := consistentKeys(t, u4, 1000), consistentKeys(t, u3, 1000)

	share := map[string]int{}
	moved := 0
	for i := range before {
		share[before[i]]++
		if before[i] != after[i] {
			moved++
			if before[i] != "10.0.0.4:8080" {
				t.Errorf("key %d moved from %s, which stayed", i, before[i])
			}
		}
	}
	if moved < 150 || moved > 350 {
		t.Errorf("removing 1 of 4 peers remapped %d of 1000 keys, want about 250", moved)
	}
	for name, n := range share {
		if n < 150 || n > 350 {
			t.Errorf("%s holds %d of 1000 keys (%v)", name, n, share)
		}
	}

	// A down peer keeps its points; only its keys move.
	down := append([]PeerConfig(nil), four...)
	down[1].Down = true
	afterDown := consistentKeys(t, New(Config{Method: Hash, HashConsistent: true, Peers: down}, nil), 1000)
	for i := range before {
		if before[i] != afterDown[i] && before[i] != "10.0.0.2:8080" {
			t.Fatalf("key %d moved from %s when another peer went down", i, before[i])
		}
	}
}

func TestHashConsistentWeightsAndNames(t *testing.T) {
	// Weight 3 gets three times the points.
	u := New(Config{Method: Hash, HashConsistent: true, Peers: []PeerConfig{peer("h1:80", 3), peer("h2:80", 1)}}, nil)
	n := map[string]int{}
	for _, p := range consistentKeys(t, u, 2000) {
		n[p]++
	}
	if n["h1:80"] < 1300 || n["h1:80"] > 1700 {
		t.Errorf("3:1 ring gave %v", n)
	}
	// Two addresses of one server name share its points, and smooth round
	// robin splits that name's keys between them.
	same := []PeerConfig{
		{Addr: "127.0.0.1:1", Name: "svc:80", Weight: 1, MaxFails: 1},
		{Addr: "127.0.0.2:1", Name: "svc:80", Weight: 1, MaxFails: 1},
		{Addr: "127.0.0.3:1", Name: "other:80", Weight: 1, MaxFails: 1},
	}
	u = New(Config{Method: Hash, HashConsistent: true, Peers: same}, nil)
	if len(u.points) != 2*pointsPerWeight {
		t.Errorf("ring has %d points, want %d (duplicates dropped)", len(u.points), 2*pointsPerWeight)
	}
	addrs := map[string]int{}
	for i := range 400 {
		p, err := u.NewAttempt([]byte(fmt.Sprint("k", i))).Next()
		if err != nil {
			t.Fatal(err)
		}
		addrs[p.Addr()]++
		p.Done(false)
	}
	if addrs["127.0.0.1:1"] == 0 || addrs["127.0.0.2:1"] == 0 || addrs["127.0.0.3:1"] == 0 {
		t.Errorf("addresses used: %v", addrs)
	}
}

func TestSplitServer(t *testing.T) {
	tests := []struct{ in, host, port string }{
		{"backend1.example.com:8080", "backend1.example.com", "8080"},
		{"10.0.0.1", "10.0.0.1", ""},
		{"unix:/tmp/s", "/tmp/s", ""},
		{"[::1]:80", "[::1]", "80"},
		{"[::1]", "[::1]", ""},
	}
	for _, tt := range tests {
		if h, p := splitServer(tt.in); h != tt.host || p != tt.port {
			t.Errorf("%s: %q %q", tt.in, h, p)
		}
	}
}
