package limit

import (
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock is a settable clock shared by the zones of a test.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// outcome renders a decision compactly: "P", "D100ms", "R", "DD100ms" (dry
// run), "RD" (dry run), "-" (no key).
func outcome(d ReqDecision) string {
	switch d.Status {
	case ReqNone:
		return "-"
	case ReqPassed:
		return "P"
	case ReqDelayed:
		return "D" + d.Delay.String()
	case ReqDelayedDryRun:
		return "DD" + d.Delay.String()
	case ReqRejected:
		return "R"
	case ReqRejectedDryRun:
		return "RD"
	}
	return "?"
}

// rep repeats s n times, space-separated.
func rep(s string, n int) string {
	return strings.TrimSpace(strings.Repeat(s+" ", n))
}

func join(parts ...string) string { return strings.Join(parts, " ") }

const mb = 1 << 20

func TestReqSingleRule(t *testing.T) {
	type step struct {
		advance time.Duration // before the step's requests; negative moves the clock back
		want    string        // one outcome per request, in order
	}
	tests := []struct {
		name   string
		rate   int64
		rule   ReqRule
		dryRun bool
		key    string
		steps  []step
	}{
		{
			name: "seed 13: 10r/s burst=20 nodelay, 40 at once then 40 a second later",
			rate: 10000, rule: ReqRule{Burst: 20, NoDelay: true}, key: "10.0.0.1",
			steps: []step{
				{0, join(rep("P", 21), rep("R", 19))},
				{time.Second, join(rep("P", 10), rep("R", 30))},
			},
		},
		{
			name: "default delays every excess request by excess/rate",
			rate: 10000, rule: ReqRule{Burst: 5}, key: "k",
			steps: []step{
				{0, "P D100ms D200ms D300ms D400ms D500ms R"},
				// 350ms drains 3.5 requests: 5000-3500+1000 = 2500.
				{350 * time.Millisecond, "D250ms D350ms D450ms R"},
			},
		},
		{
			name: "delay=2 lets the first two excess requests through",
			rate: 10000, rule: ReqRule{Burst: 5, Delay: 2}, key: "k",
			steps: []step{{0, "P P P D100ms D200ms D300ms R"}},
		},
		{
			name: "nodelay passes the whole burst at once",
			rate: 10000, rule: ReqRule{Burst: 5, NoDelay: true}, key: "k",
			steps: []step{{0, join(rep("P", 6), "R R")}},
		},
		{
			name: "burst 0: one request per 1/rate, rejections do not charge",
			rate: 10000, rule: ReqRule{}, key: "k",
			steps: []step{
				{0, "P R"},
				{100 * time.Millisecond, "P R"},
				{50 * time.Millisecond, "R"},
				{50 * time.Millisecond, "P"},
			},
		},
		{
			name: "30r/m is 500 milli-requests per second",
			rate: 500, rule: ReqRule{}, key: "k",
			steps: []step{
				{0, "P R"},
				{time.Second, "R"},
				{time.Second, "P R"},
			},
		},
		{
			name: "1r/m truncates to 16 per second as in nginx: a minute is not quite enough",
			rate: 1000 / 60, rule: ReqRule{}, key: "k",
			steps: []step{
				{0, "P"},
				{time.Minute, "R"},
				{2500 * time.Millisecond, "P"},
			},
		},
		{
			name: "a clock gone back counts as no time elapsed",
			rate: 10000, rule: ReqRule{Burst: 1, NoDelay: true}, key: "k",
			steps: []step{
				{0, "P"},
				{-5 * time.Second, "P"},
				{5 * time.Second, "R"},
			},
		},
		{
			name: "dry run charges buckets but only reports",
			rate: 10000, rule: ReqRule{Burst: 1}, dryRun: true, key: "k",
			steps: []step{
				{0, "P DD100ms RD RD"},
				{100 * time.Millisecond, "DD100ms RD"},
			},
		},
		{
			name: "an empty key is not limited",
			rate: 10000, rule: ReqRule{}, key: "",
			steps: []step{{0, "- - - -"}},
		},
		{
			name: "a key over 65535 bytes is not limited",
			rate: 10000, rule: ReqRule{}, key: strings.Repeat("x", MaxReqKeyLen+1),
			steps: []step{{0, "- - -"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			z := NewReqZone("z", mb, tt.rate, clk.Now)
			rule := tt.rule
			rule.Zone = z
			rules := []ReqRule{rule}
			keys := [][]byte{[]byte(tt.key)}
			for i, st := range tt.steps {
				clk.Advance(st.advance)
				want := strings.Fields(st.want)
				got := make([]string, len(want))
				for j := range want {
					got[j] = outcome(CheckReq(rules, keys, tt.dryRun))
				}
				if g, w := strings.Join(got, " "), strings.Join(want, " "); g != w {
					t.Errorf("step %d:\n got %s\nwant %s", i, g, w)
				}
			}
			wantLen := 1
			if tt.key == "" || len(tt.key) > MaxReqKeyLen {
				wantLen = 0
			}
			if z.Len() != wantLen {
				t.Errorf("Len() = %d, want %d", z.Len(), wantLen)
			}
		})
	}
}

func TestReqDecisionDetails(t *testing.T) {
	clk := newFakeClock()
	z := NewReqZone("perip", mb, 10000, clk.Now)
	rules := []ReqRule{{Zone: z, Burst: 2}}
	keys := [][]byte{[]byte("a")}
	CheckReq(rules, keys, false)
	d := CheckReq(rules, keys, false)
	if d.Status != ReqDelayed || d.Zone != z || d.Excess != 1000 || d.Delay != 100*time.Millisecond || d.Err != nil {
		t.Errorf("delayed: got %+v", d)
	}
	CheckReq(rules, keys, false)
	d = CheckReq(rules, keys, false)
	if d.Status != ReqRejected || d.Zone != z || d.Excess != 3000 || d.Err != nil {
		t.Errorf("rejected: got %+v", d)
	}
	if d := CheckReq(rules, [][]byte{[]byte("b")}, false); d.Status != ReqPassed || d.Zone != nil {
		t.Errorf("passed: got %+v", d)
	}
}

func TestReqSeed13Concurrent(t *testing.T) {
	// 40 handshakes at the same instant from 40 goroutines: the order is
	// up to the scheduler, the counts are not.
	clk := newFakeClock()
	z := NewReqZone("ws_limit", 10*mb, 10000, clk.Now)
	rules := []ReqRule{{Zone: z, Burst: 20, NoDelay: true}}
	count := func(n int) (passed, rejected int) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := CheckReq(rules, [][]byte{{127, 0, 0, 1}}, false)
				mu.Lock()
				defer mu.Unlock()
				switch d.Status {
				case ReqPassed:
					passed++
				case ReqRejected:
					rejected++
				default:
					t.Errorf("unexpected status %v", d.Status)
				}
			}()
		}
		wg.Wait()
		return passed, rejected
	}
	if p, r := count(40); p != 21 || r != 19 {
		t.Errorf("at once: %d passed, %d rejected; want 21, 19", p, r)
	}
	clk.Advance(time.Second)
	if p, r := count(40); p != 10 || r != 30 {
		t.Errorf("a second later: %d passed, %d rejected; want 10, 30", p, r)
	}
}

func TestReqMultipleRules(t *testing.T) {
	type rule struct {
		rate    int64
		burst   int
		delay   int
		nodelay bool
		key     string
	}
	tests := []struct {
		name  string
		rules []rule
		want  string // outcomes of successive requests at one instant
		// excess of each zone's key afterwards (milli-requests, bucket level)
		wantExcess []int64
		wantZone   int // index of the zone the last decision names, -1 for none
	}{
		{
			name:       "a strict first rule rejects; the second is not charged",
			rules:      []rule{{rate: 10000, key: "ip"}, {rate: 10000, burst: 100, nodelay: true, key: "srv"}},
			want:       "P R R",
			wantExcess: []int64{0, 0},
			wantZone:   0,
		},
		{
			name:       "a strict last rule rejects; the first rule's lookup is undone",
			rules:      []rule{{rate: 10000, burst: 100, nodelay: true, key: "srv"}, {rate: 10000, key: "ip"}},
			want:       "P R R",
			wantExcess: []int64{0, 0},
			wantZone:   1,
		},
		{
			name:       "both pass: both are charged",
			rules:      []rule{{rate: 10000, burst: 5, nodelay: true, key: "a"}, {rate: 10000, burst: 5, nodelay: true, key: "b"}},
			want:       "P P P",
			wantExcess: []int64{2000, 2000},
			wantZone:   -1,
		},
		{
			name:       "the longest delay wins and names its zone",
			rules:      []rule{{rate: 10000, burst: 5, key: "a"}, {rate: 5000, burst: 5, key: "b"}},
			want:       "P D200ms D400ms",
			wantExcess: []int64{2000, 2000},
			wantZone:   1,
		},
		{
			name:       "the longest delay wins when it is the first rule's",
			rules:      []rule{{rate: 5000, burst: 5, key: "a"}, {rate: 10000, burst: 5, key: "b"}},
			want:       "P D200ms D400ms",
			wantExcess: []int64{2000, 2000},
			wantZone:   0,
		},
		{
			name:       "nodelay on one rule, delay from the other",
			rules:      []rule{{rate: 10000, burst: 5, nodelay: true, key: "a"}, {rate: 10000, burst: 5, delay: 1, key: "b"}},
			want:       "P P D100ms",
			wantExcess: []int64{2000, 2000},
			wantZone:   1,
		},
		{
			name:       "the last rule's empty key: the first rule is still charged",
			rules:      []rule{{rate: 10000, burst: 1, nodelay: true, key: "a"}, {rate: 10000, key: ""}},
			want:       "P P R",
			wantExcess: []int64{1000, -1},
			wantZone:   0,
		},
		{
			name:       "the first rule's empty key",
			rules:      []rule{{rate: 10000, key: ""}, {rate: 10000, burst: 1, key: "b"}},
			want:       "P D100ms R",
			wantExcess: []int64{-1, 1000},
			wantZone:   1,
		},
		{
			name:       "all keys empty",
			rules:      []rule{{rate: 10000, key: ""}, {rate: 10000, key: ""}},
			want:       "- - -",
			wantExcess: []int64{-1, -1},
			wantZone:   -1,
		},
		{
			name:       "three rules, the middle one rejects",
			rules:      []rule{{rate: 10000, burst: 9, nodelay: true, key: "a"}, {rate: 10000, burst: 1, nodelay: true, key: "b"}, {rate: 10000, burst: 9, nodelay: true, key: "c"}},
			want:       "P P R R",
			wantExcess: []int64{1000, 1000, 1000},
			wantZone:   1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			var rules []ReqRule
			var keys [][]byte
			for i, r := range tt.rules {
				z := NewReqZone(fmt.Sprint("z", i), mb, r.rate, clk.Now)
				rules = append(rules, ReqRule{Zone: z, Burst: r.burst, Delay: r.delay, NoDelay: r.nodelay})
				keys = append(keys, []byte(r.key))
			}
			var got []string
			var last ReqDecision
			for range strings.Fields(tt.want) {
				last = CheckReq(rules, keys, false)
				got = append(got, outcome(last))
			}
			if g := strings.Join(got, " "); g != tt.want {
				t.Errorf("got %s, want %s", g, tt.want)
			}
			for i, r := range rules {
				ex, ok := r.Zone.Excess(keys[i])
				if !ok {
					ex = -1
				}
				if ex != tt.wantExcess[i] {
					t.Errorf("zone %d excess = %d, want %d", i, ex, tt.wantExcess[i])
				}
				if len(keys[i]) == 0 && r.Zone.Len() != 0 {
					t.Errorf("zone %d stored an empty key", i)
				}
			}
			var wantZone *ReqZone
			if tt.wantZone >= 0 {
				wantZone = rules[tt.wantZone].Zone
			}
			if last.Zone != wantZone {
				t.Errorf("last decision names zone %v, want %v", zoneName(last.Zone), zoneName(wantZone))
			}
		})
	}
}

func zoneName(z *ReqZone) string {
	if z == nil {
		return "<nil>"
	}
	return z.Name()
}

func TestReqStatusString(t *testing.T) {
	tests := []struct {
		s    ReqStatus
		want string
	}{
		{ReqNone, ""},
		{ReqPassed, "PASSED"},
		{ReqDelayed, "DELAYED"},
		{ReqRejected, "REJECTED"},
		{ReqDelayedDryRun, "DELAYED_DRY_RUN"},
		{ReqRejectedDryRun, "REJECTED_DRY_RUN"},
		{ReqStatus(200), ""},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("%d.String() = %q, want %q", tt.s, got, tt.want)
		}
	}
}

func TestReqZoneCap(t *testing.T) {
	tests := []struct {
		size int64
		want int
	}{
		{32 << 10, 256}, // nginx's smallest zone on 4k pages: 4 shards of 64
		{mb, 8192},
		{10 * mb, 81920},
		{1000, 7}, // one shard below 128 entries
		{1, 1},
		{128*64*64 + 127*64, 4096}, // rounded down to a multiple of the shards
	}
	for _, tt := range tests {
		if got := NewReqZone("z", tt.size, 1000, nil).Cap(); got != tt.want {
			t.Errorf("size %d: Cap() = %d, want %d", tt.size, got, tt.want)
		}
	}
}

func TestReqZoneEvictsLeastRecentlyUsed(t *testing.T) {
	clk := newFakeClock()
	z := NewReqZone("one", mb, 10000, clk.Now)
	if z.Cap() != 8192 {
		t.Fatalf("Cap() = %d, want 8192", z.Cap())
	}
	rules := []ReqRule{{Zone: z, Burst: 5, NoDelay: true}}
	key := make([]byte, 4)
	keys := [][]byte{key}
	hot := [][]byte{[]byte("hot")}
	const total = 1_000_000
	for i := range total {
		binary.BigEndian.PutUint32(key, uint32(i))
		if d := CheckReq(rules, keys, false); d.Status != ReqPassed {
			t.Fatalf("key %d: new keys must pass, got %v", i, d.Status)
		}
		if i%1000 == 0 {
			CheckReq(rules, hot, false)
			if n := z.Len(); n > z.Cap() {
				t.Fatalf("after %d keys Len() = %d, over Cap() %d", i+1, n, z.Cap())
			}
		}
	}
	if n := z.Len(); n != z.Cap() {
		t.Errorf("Len() = %d, want the zone full at %d", n, z.Cap())
	}
	if _, ok := z.Excess(hot[0]); !ok {
		t.Error("a recently used key was evicted")
	}
	k := make([]byte, 4)
	for i := range 1000 {
		binary.BigEndian.PutUint32(k, uint32(i))
		if _, ok := z.Excess(k); ok {
			t.Fatalf("old key %d survived", i)
		}
		binary.BigEndian.PutUint32(k, uint32(total-1-i))
		if _, ok := z.Excess(k); !ok {
			t.Fatalf("recent key %d was evicted", total-1-i)
		}
	}
}

func TestReqZoneExpiresIdleBuckets(t *testing.T) {
	tests := []struct {
		name    string
		before  int // requests for "old" at t=0 (burst 1000, nodelay)
		idle    time.Duration
		wantLen int // after a new key arrives
	}{
		{"an empty bucket idle for a minute goes", 1, 61 * time.Second, 1},
		{"a bucket idle for less than a minute stays", 1, 59 * time.Second, 2},
		{"a bucket with excess left stays", 700, 61 * time.Second, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			z := NewReqZone("z", mb, 10000, clk.Now)
			rules := []ReqRule{{Zone: z, Burst: 1000, NoDelay: true}}
			for range tt.before {
				CheckReq(rules, [][]byte{[]byte("old")}, false)
			}
			clk.Advance(tt.idle)
			// The new key must share "old"'s shard for the shard's LRU
			// tail to be "old": try keys until one does.
			st := z.st
			want := shardOf(st.seed, []byte("old"), st.mask)
			var fresh []byte
			for i := 0; ; i++ {
				fresh = []byte(fmt.Sprint("new", i))
				if shardOf(st.seed, fresh, st.mask) == want {
					break
				}
			}
			CheckReq(rules, [][]byte{fresh}, false)
			if got := z.Len(); got != tt.wantLen {
				t.Errorf("Len() = %d, want %d", got, tt.wantLen)
			}
		})
	}
}

func TestReqZonePinnedEntriesAreNotEvicted(t *testing.T) {
	// A one-entry zone whose only bucket is pinned by a check in progress
	// has no room: the check of another key fails as nginx's does.
	clk := newFakeClock()
	z := NewReqZone("tiny", EntrySize, 10000, clk.Now)
	code, _, s, idx := z.lookup([]byte("a"), 0, false)
	if code != codeAgain {
		t.Fatalf("lookup: code %d, want codeAgain", code)
	}
	d := CheckReq([]ReqRule{{Zone: z}}, [][]byte{[]byte("b")}, false)
	if d.Status != ReqRejected || d.Err != ErrZoneFull {
		t.Errorf("got %+v, want rejected with ErrZoneFull", d)
	}
	unpin(s, idx)
	if d := CheckReq([]ReqRule{{Zone: z}}, [][]byte{[]byte("b")}, false); d.Status != ReqPassed {
		t.Errorf("after unpin: got %v, want passed", d.Status)
	}
	if _, ok := z.Excess([]byte("a")); ok {
		t.Error("the unpinned bucket should have been evicted")
	}
}

func TestReqConcurrentKeysStayBounded(t *testing.T) {
	z := NewReqZone("z", 32<<10, 1000000, nil)
	rules := []ReqRule{{Zone: z, Burst: 10, NoDelay: true}}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := make([]byte, 8)
			keys := [][]byte{key}
			for i := range 5000 {
				binary.BigEndian.PutUint32(key, uint32(g))
				binary.BigEndian.PutUint32(key[4:], uint32(i%700))
				CheckReq(rules, keys, false)
			}
		}()
	}
	wg.Wait()
	if n := z.Len(); n > z.Cap() || n == 0 {
		t.Errorf("Len() = %d, want 1..%d", n, z.Cap())
	}
}

func TestLeakedSaturates(t *testing.T) {
	tests := []struct {
		rate, ms, want int64
	}{
		{10000, 1, 10},
		{500, 1, 0},
		{500, 2, 1},
		{1 << 40, 1 << 40, 1<<63 - 1},
		{0, 5, 0},
		{5, -1, 0},
	}
	for _, tt := range tests {
		if got := leaked(tt.rate, tt.ms); got != tt.want {
			t.Errorf("leaked(%d, %d) = %d, want %d", tt.rate, tt.ms, got, tt.want)
		}
	}
}

func TestReqRejectionUnpinsEarlierRules(t *testing.T) {
	// The first zone holds one bucket. A request rejected by the second
	// rule must leave that bucket unpinned, so that a new key can evict it.
	clk := newFakeClock()
	first := NewReqZone("first", EntrySize, 10000, clk.Now)
	second := NewReqZone("second", mb, 10000, clk.Now)
	rules := []ReqRule{{Zone: first, Burst: 10, NoDelay: true}, {Zone: second}}
	keys := [][]byte{[]byte("a"), []byte("ip")}
	for i, want := range []ReqStatus{ReqPassed, ReqRejected, ReqRejected} {
		if d := CheckReq(rules, keys, false); d.Status != want {
			t.Fatalf("request %d: got %v, want %v", i, d.Status, want)
		}
	}
	d := CheckReq(rules[:1], [][]byte{[]byte("b")}, false)
	if d.Status != ReqPassed || d.Err != nil {
		t.Errorf("new key in the first zone: got %+v, want passed", d)
	}
	if _, ok := first.Excess([]byte("a")); ok {
		t.Error(`"a" should have been evicted for "b"`)
	}
}
