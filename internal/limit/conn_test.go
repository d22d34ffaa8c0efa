package limit

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func TestConnAcquire(t *testing.T) {
	type op struct {
		release bool   // release lease number lease instead of acquiring
		lease   int    // index of a granted lease, in acquisition order
		key     string // key to acquire
		wantErr error
	}
	acq := func(k string, err error) op { return op{key: k, wantErr: err} }
	rel := func(i int) op { return op{release: true, lease: i} }
	tests := []struct {
		name      string
		size      int64
		limit     int
		ops       []op
		wantCount map[string]int
		wantLen   int
	}{
		{
			name: "the 6th concurrent connection of limit 5 is refused",
			size: mb, limit: 5,
			ops: []op{
				acq("ip", nil), acq("ip", nil), acq("ip", nil), acq("ip", nil), acq("ip", nil),
				acq("ip", ErrLimited),
			},
			wantCount: map[string]int{"ip": 5}, wantLen: 1,
		},
		{
			name: "a release frees a slot at once",
			size: mb, limit: 2,
			ops: []op{
				acq("ip", nil), acq("ip", nil), acq("ip", ErrLimited),
				rel(0), acq("ip", nil), acq("ip", ErrLimited),
			},
			wantCount: map[string]int{"ip": 2}, wantLen: 1,
		},
		{
			name: "keys are counted apart",
			size: mb, limit: 1,
			ops: []op{
				acq("a", nil), acq("b", nil), acq("a", ErrLimited), acq("b", ErrLimited),
			},
			wantCount: map[string]int{"a": 1, "b": 1}, wantLen: 2,
		},
		{
			name: "an entry goes when its count reaches zero",
			size: mb, limit: 3,
			ops: []op{
				acq("a", nil), acq("a", nil), acq("b", nil), rel(0), rel(1),
			},
			wantCount: map[string]int{"a": 0, "b": 1}, wantLen: 1,
		},
		{
			name: "a full zone refuses new keys, not known ones",
			size: 3 * EntrySize, limit: 2,
			ops: []op{
				acq("a", nil), acq("b", nil), acq("c", nil),
				acq("d", ErrZoneFull), acq("a", nil), acq("a", ErrLimited),
			},
			wantCount: map[string]int{"a": 2, "b": 1, "c": 1, "d": 0}, wantLen: 3,
		},
		{
			name: "a full zone takes a new key once a key has gone",
			size: 2 * EntrySize, limit: 2,
			ops: []op{
				acq("a", nil), acq("b", nil), acq("c", ErrZoneFull),
				rel(1), acq("c", nil),
			},
			wantCount: map[string]int{"a": 1, "b": 0, "c": 1}, wantLen: 2,
		},
		{
			name: "empty and over-long keys are not limited or stored",
			size: mb, limit: 1,
			ops: []op{
				acq("", nil), acq("", nil), acq(strings.Repeat("k", MaxConnKeyLen+1), nil),
			},
			wantCount: map[string]int{"": 0}, wantLen: 0,
		},
		{
			name: "a limit of 0 refuses even a new key",
			size: mb, limit: 0,
			ops:       []op{acq("a", ErrLimited)},
			wantCount: map[string]int{"a": 0}, wantLen: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			z := NewConnZone("conn", tt.size)
			var leases []ConnLease
			for i, o := range tt.ops {
				if o.release {
					leases[o.lease].Release()
					continue
				}
				l, err := z.Acquire([]byte(o.key), tt.limit)
				if !errors.Is(err, o.wantErr) {
					t.Fatalf("op %d: Acquire(%q) error %v, want %v", i, o.key, err, o.wantErr)
				}
				if err == nil {
					leases = append(leases, l)
				} else if l.Held() {
					t.Fatalf("op %d: a refused Acquire returned a held lease", i)
				}
			}
			for k, want := range tt.wantCount {
				if got := z.Count([]byte(k)); got != want {
					t.Errorf("Count(%q) = %d, want %d", k, got, want)
				}
			}
			if got := z.Len(); got != tt.wantLen {
				t.Errorf("Len() = %d, want %d", got, tt.wantLen)
			}
			ReleaseAll(leases)
			if got := z.Len(); got != 0 {
				t.Errorf("after ReleaseAll: Len() = %d, want 0", got)
			}
		})
	}
}

func TestConnLeaseReleaseIsGuarded(t *testing.T) {
	z := NewConnZone("conn", mb)
	key := []byte("ip")
	a, err := z.Acquire(key, 5)
	if err != nil {
		t.Fatal(err)
	}
	b, err := z.Acquire(key, 5)
	if err != nil {
		t.Fatal(err)
	}
	a.Release()
	a.Release() // through the same variable: a no-op
	if got := z.Count(key); got != 1 {
		t.Fatalf("after a double release Count = %d, want 1", got)
	}
	if a.Held() {
		t.Error("a released lease reports Held")
	}
	stale := b // a copy: a caller bug, but it must not push a count below zero
	b.Release()
	c, err := z.Acquire(key, 5) // a new entry for the same key
	if err != nil {
		t.Fatal(err)
	}
	stale.Release()
	if got := z.Count(key); got != 1 {
		t.Errorf("a stale copy released a new connection: Count = %d, want 1", got)
	}
	c.Release()
	var zero ConnLease
	zero.Release()
	if z.Len() != 0 || z.Count(key) != 0 {
		t.Errorf("Len() = %d, Count = %d, want 0, 0", z.Len(), z.Count(key))
	}
}

func TestConnConcurrentCycles(t *testing.T) {
	// Many goroutines acquire and release on a few keys; the tight key's
	// live count never exceeds its limit, and everything ends at zero.
	z := NewConnZone("conn", mb)
	const (
		goroutines = 50
		cycles     = 200
		tight      = 3
	)
	var held atomic.Int32 // leases of the tight key currently held
	var granted, refused atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loose := []byte(fmt.Sprint("loose", g%7))
			for range cycles {
				l1, err := z.Acquire(loose, 1000)
				if err != nil {
					t.Errorf("loose key refused: %v", err)
					return
				}
				l2, err := z.Acquire([]byte("tight"), tight)
				switch {
				case err == nil:
					granted.Add(1)
					if n := held.Add(1); n > tight {
						t.Errorf("%d leases of a key limited to %d", n, tight)
					}
					held.Add(-1)
					l2.Release()
				case errors.Is(err, ErrLimited):
					refused.Add(1)
				default:
					t.Errorf("tight key: %v", err)
				}
				l1.Release()
			}
		}()
	}
	wg.Wait()
	if granted.Load()+refused.Load() != goroutines*cycles || granted.Load() == 0 {
		t.Errorf("granted %d + refused %d, want %d with some granted", granted.Load(), refused.Load(), goroutines*cycles)
	}
	if z.Len() != 0 || z.Count([]byte("tight")) != 0 || z.Count([]byte("loose0")) != 0 {
		t.Errorf("Len() = %d, tight %d, loose0 %d; want all 0", z.Len(), z.Count([]byte("tight")), z.Count([]byte("loose0")))
	}
}

func TestAcquireConns(t *testing.T) {
	type rule struct {
		limit int
		key   string
	}
	tests := []struct {
		name       string
		rules      []rule
		dryRun     bool
		requests   int
		wantStatus []ConnStatus // per request
		wantZone   int          // zone named by the last decision, -1 for none
		wantErr    error        // of the last decision
		wantCounts []int        // per rule's key, after the requests
	}{
		{
			name:       "one rule: limit 5",
			rules:      []rule{{5, "ip"}},
			requests:   6,
			wantStatus: []ConnStatus{ConnPassed, ConnPassed, ConnPassed, ConnPassed, ConnPassed, ConnRejected},
			wantZone:   0, wantErr: ErrLimited,
			wantCounts: []int{5},
		},
		{
			name:       "a later rule rejects: the earlier rule's count is given back",
			rules:      []rule{{10, "srv"}, {1, "ip"}},
			requests:   3,
			wantStatus: []ConnStatus{ConnPassed, ConnRejected, ConnRejected},
			wantZone:   1, wantErr: ErrLimited,
			wantCounts: []int{1, 1},
		},
		{
			name:       "dry run reports and counts nothing for the rejected request",
			rules:      []rule{{10, "srv"}, {1, "ip"}},
			dryRun:     true,
			requests:   3,
			wantStatus: []ConnStatus{ConnPassed, ConnRejectedDryRun, ConnRejectedDryRun},
			wantZone:   1, wantErr: ErrLimited,
			wantCounts: []int{1, 1},
		},
		{
			name:       "empty keys: no status, nothing counted",
			rules:      []rule{{1, ""}, {1, ""}},
			requests:   3,
			wantStatus: []ConnStatus{ConnNone, ConnNone, ConnNone},
			wantZone:   -1,
			wantCounts: []int{0, 0},
		},
		{
			name:       "one empty key: the other rule limits",
			rules:      []rule{{1, ""}, {2, "ip"}},
			requests:   3,
			wantStatus: []ConnStatus{ConnPassed, ConnPassed, ConnRejected},
			wantZone:   1, wantErr: ErrLimited,
			wantCounts: []int{0, 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rules []ConnRule
			var keys [][]byte
			for i, r := range tt.rules {
				rules = append(rules, ConnRule{Zone: NewConnZone(fmt.Sprint("z", i), mb), Limit: r.limit})
				keys = append(keys, []byte(r.key))
			}
			var all [][]ConnLease
			var d ConnDecision
			for i := range tt.requests {
				var leases []ConnLease
				leases, d = AcquireConns(rules, keys, tt.dryRun, leases)
				if d.Status != tt.wantStatus[i] {
					t.Errorf("request %d: status %v, want %v", i, d.Status, tt.wantStatus[i])
				}
				if d.Status != ConnPassed && len(leases) != 0 {
					t.Errorf("request %d: %v with %d leases held", i, d.Status, len(leases))
				}
				all = append(all, leases)
			}
			var wantZone *ConnZone
			if tt.wantZone >= 0 {
				wantZone = rules[tt.wantZone].Zone
			}
			if d.Zone != wantZone || !errors.Is(d.Err, tt.wantErr) {
				t.Errorf("last decision: zone %v err %v, want zone %v err %v", d.Zone, d.Err, wantZone, tt.wantErr)
			}
			for i, r := range rules {
				if got := r.Zone.Count(keys[i]); got != tt.wantCounts[i] {
					t.Errorf("rule %d: Count = %d, want %d", i, got, tt.wantCounts[i])
				}
			}
			for _, l := range all {
				ReleaseAll(l)
			}
			for i, r := range rules {
				if r.Zone.Len() != 0 {
					t.Errorf("rule %d: Len() = %d after ReleaseAll", i, r.Zone.Len())
				}
			}
		})
	}
}

func TestAcquireConnsKeepsCallerLeases(t *testing.T) {
	// Leases appended to a caller's buffer: a rejection drops only its own.
	a := NewConnZone("a", mb)
	b := NewConnZone("b", mb)
	buf := make([]ConnLease, 0, 4)
	buf, d := AcquireConns([]ConnRule{{Zone: a, Limit: 1}}, [][]byte{[]byte("x")}, false, buf)
	if d.Status != ConnPassed || len(buf) != 1 {
		t.Fatalf("first: %v with %d leases", d.Status, len(buf))
	}
	rules := []ConnRule{{Zone: b, Limit: 5}, {Zone: a, Limit: 1}}
	buf, d = AcquireConns(rules, [][]byte{[]byte("y"), []byte("x")}, false, buf)
	if d.Status != ConnRejected || len(buf) != 1 || b.Count([]byte("y")) != 0 {
		t.Errorf("second: %v with %d leases, b count %d; want rejected, 1, 0", d.Status, len(buf), b.Count([]byte("y")))
	}
	ReleaseAll(buf)
	if a.Len()+b.Len() != 0 {
		t.Errorf("Len() = %d, %d after ReleaseAll", a.Len(), b.Len())
	}
}

func TestConnZoneFullInAcquireConns(t *testing.T) {
	z := NewConnZone("small", EntrySize)
	leases, d := AcquireConns([]ConnRule{{Zone: z, Limit: 5}}, [][]byte{[]byte("a")}, false, nil)
	if d.Status != ConnPassed {
		t.Fatalf("first key: %v", d.Status)
	}
	_, d = AcquireConns([]ConnRule{{Zone: z, Limit: 5}}, [][]byte{[]byte("b")}, false, nil)
	if d.Status != ConnRejected || !errors.Is(d.Err, ErrZoneFull) || d.Zone != z {
		t.Errorf("second key: %+v, want rejected with ErrZoneFull", d)
	}
	ReleaseAll(leases)
}

func TestConnStatusString(t *testing.T) {
	tests := []struct {
		s    ConnStatus
		want string
	}{
		{ConnNone, ""},
		{ConnPassed, "PASSED"},
		{ConnRejected, "REJECTED"},
		{ConnRejectedDryRun, "REJECTED_DRY_RUN"},
		{ConnStatus(9), ""},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("%d.String() = %q, want %q", tt.s, got, tt.want)
		}
	}
}

func TestConnZoneCap(t *testing.T) {
	tests := []struct {
		size int64
		want int
	}{
		{mb, 8192},
		{10 * mb, 81920},
		{1000, 7},
		{0, 1},
	}
	for _, tt := range tests {
		if got := NewConnZone("z", tt.size).Cap(); got != tt.want {
			t.Errorf("size %d: Cap() = %d, want %d", tt.size, got, tt.want)
		}
	}
}
