package limit

import (
	"errors"
	"hash/maphash"
	"math"
	"sync"
	"time"
)

// ErrZoneFull reports that a zone had no room for a new key: a limit_conn
// zone whose every entry holds live connections, or (practically never) a
// limit_req shard whose every entry is in use by requests being checked at
// that instant. nginx answers the limit's status code and logs an error.
var ErrZoneFull = errors.New("limit: zone is full")

// ReqStatus is the outcome of a limit_req check, numbered as nginx numbers
// $limit_req_status.
type ReqStatus uint8

// The zero ReqStatus means no rule had a key: nginx leaves $limit_req_status
// unset.
const (
	ReqNone ReqStatus = iota
	ReqPassed
	ReqDelayed
	ReqRejected
	ReqDelayedDryRun
	ReqRejectedDryRun
)

var reqStatusNames = [...]string{"", "PASSED", "DELAYED", "REJECTED", "DELAYED_DRY_RUN", "REJECTED_DRY_RUN"}

// String returns the value of $limit_req_status ("" for ReqNone).
func (s ReqStatus) String() string {
	if int(s) < len(reqStatusNames) {
		return reqStatusNames[s]
	}
	return ""
}

// ReqZone is a limit_req_zone: a bounded set of leaky buckets, one per key,
// draining at the zone's rate. When a shard of the zone is full, its least
// recently used bucket is evicted; new keys are never refused and the zone
// never holds more than Cap entries. Buckets idle for a minute with nothing
// left in them are dropped as nginx drops them, while new keys arrive.
//
// A ReqZone is safe for concurrent use. Create it with NewReqZone or a
// Registry Build; the zero value is not usable.
type ReqZone struct {
	name string
	rate int64 // milli-requests per second, as nginx stores it
	st   *reqState
	sh   Shared // set for a sync zone with a cluster store
}

// reqState is what survives a reload: the buckets, not the rate, which the
// new configuration may change as nginx lets it.
type reqState struct {
	size   int64
	key    string
	clock  func() time.Time
	base   time.Time
	seed   maphash.Seed
	mask   uint64
	limit  int64 // total entry bound: per-shard bound times shards
	shards []reqShard
}

const nilIdx = -1

type reqEntry struct {
	key        string
	prev, next int32 // LRU links: prev towards the most recently used
	pins       int32 // checks between lookup and accounting; pinned entries are never evicted
	fresh      bool  // created by a check that has not accounted yet: nginx's last=0
	last       int64 // ms on the zone's clock
	excess     int64 // milli-requests
}

type reqShard struct {
	mu    sync.Mutex
	index map[string]int32
	ents  []reqEntry
	head  int32 // most recently used
	tail  int32 // least recently used
	free  int32 // entries dropped by idle expiry, linked through next
	n     int32 // live entries
	limit int32
	_     [64]byte // keep neighbouring shards' locks off this cache line
}

// NewReqZone returns an empty zone named name, bounded to
// sizeBytes/EntrySize entries, draining rateMilli milli-requests per second
// (nginx's rate*1000/scale: 10r/s is 10000, 30r/m is 500). clock may be nil
// for time.Now; tests pass a fake one. rateMilli must be positive.
func NewReqZone(name string, sizeBytes, rateMilli int64, clock func() time.Time) *ReqZone {
	return &ReqZone{name: name, rate: checkRate(rateMilli), st: newReqState(sizeBytes, "", clock)}
}

func checkRate(rateMilli int64) int64 {
	if rateMilli <= 0 {
		panic("limit: limit_req_zone rate must be positive")
	}
	return rateMilli
}

func newReqState(sizeBytes int64, key string, clock func() time.Time) *reqState {
	if clock == nil {
		clock = time.Now
	}
	entries := entriesFor(sizeBytes)
	n := shardCount(entries)
	per := entries / int64(n)
	if per > math.MaxInt32 {
		per = math.MaxInt32
	}
	st := &reqState{
		size:   sizeBytes,
		key:    key,
		clock:  clock,
		base:   clock(),
		seed:   maphash.MakeSeed(),
		mask:   uint64(n - 1),
		limit:  per * int64(n),
		shards: make([]reqShard, n),
	}
	for i := range st.shards {
		s := &st.shards[i]
		s.index = make(map[string]int32)
		s.head, s.tail, s.free = nilIdx, nilIdx, nilIdx
		s.limit = int32(per)
	}
	return st
}

// Name is the zone's name, for log lines.
func (z *ReqZone) Name() string { return z.name }

// Rate is the zone's rate in milli-requests per second.
func (z *ReqZone) Rate() int64 { return z.rate }

// Cap is the most entries the zone holds: sizeBytes/EntrySize rounded down
// to a multiple of the shard count, since each shard has its own bound and
// its own LRU order (so eviction is least recently used per shard, which is
// close to, not exactly, least recently used in the zone).
func (z *ReqZone) Cap() int { return int(z.st.limit) }

// Len is the number of keys the zone holds now.
func (z *ReqZone) Len() int {
	n := 0
	for i := range z.st.shards {
		s := &z.st.shards[i]
		s.mu.Lock()
		n += int(s.n)
		s.mu.Unlock()
	}
	return n
}

func (st *reqState) now() int64 { return st.clock().Sub(st.base).Milliseconds() }

// excessAt is the bucket's level if one more request arrived now, and the
// elapsed ms nginx would use (clamped as nginx clamps a clock gone back).
func (e *reqEntry) excessAt(now, rate int64) (excess, ms int64) {
	if e.fresh {
		// nginx's last=0 makes the elapsed time huge: the bucket is empty.
		return 0, 1
	}
	ms = now - e.last
	if ms < -60000 {
		ms = 1
	} else if ms < 0 {
		ms = 0
	}
	excess = e.excess - leaked(rate, ms) + 1000
	if excess < 0 {
		excess = 0
	}
	return excess, ms
}

func (s *reqShard) unlink(i int32) {
	e := &s.ents[i]
	if e.prev != nilIdx {
		s.ents[e.prev].next = e.next
	} else {
		s.head = e.next
	}
	if e.next != nilIdx {
		s.ents[e.next].prev = e.prev
	} else {
		s.tail = e.prev
	}
}

func (s *reqShard) pushFront(i int32) {
	e := &s.ents[i]
	e.prev, e.next = nilIdx, s.head
	if s.head != nilIdx {
		s.ents[s.head].prev = i
	} else {
		s.tail = i
	}
	s.head = i
}

func (s *reqShard) touch(i int32) {
	if s.head == i {
		return
	}
	s.unlink(i)
	s.pushFront(i)
}

// drop removes entry i and puts its slot on the free list.
func (s *reqShard) drop(i int32) {
	s.unlink(i)
	e := &s.ents[i]
	delete(s.index, e.key)
	*e = reqEntry{next: s.free}
	s.free = i
	s.n--
}

// expireIdle drops up to two least recently used buckets that have been idle
// for a minute and are empty, as nginx does before each new key.
func (s *reqShard) expireIdle(now, rate int64) {
	for range 2 {
		i := s.tail
		if i == nilIdx {
			return
		}
		e := &s.ents[i]
		if e.pins > 0 {
			return
		}
		if !e.fresh {
			ms := now - e.last
			if ms < 0 {
				ms = -ms
			}
			if ms < 60000 || e.excess-leaked(rate, ms) > 0 {
				return
			}
		}
		s.drop(i)
	}
}

// slot returns an entry index for a new key: a free one, a new one below the
// bound, or the least recently used unpinned one, reused in place. nginx
// gives up when its oldest node is pinned; walking past pinned entries only
// ever finds more room than nginx would.
func (s *reqShard) slot() (int32, bool) {
	if s.free != nilIdx {
		i := s.free
		s.free = s.ents[i].next
		s.n++
		return i, true
	}
	if s.n < s.limit {
		s.ents = append(s.ents, reqEntry{})
		s.n++
		return int32(len(s.ents) - 1), true
	}
	for i := s.tail; i != nilIdx; i = s.ents[i].prev {
		if s.ents[i].pins == 0 {
			s.unlink(i)
			delete(s.index, s.ents[i].key)
			return i, true
		}
	}
	return nilIdx, false
}

type lookupCode uint8

const (
	codeDeclined lookupCode = iota // no key: nothing looked up
	codeAgain                      // within burst, pinned for accounting
	codeOK                         // within burst, accounted
	codeBusy                       // over burst
	codeError                      // no room for the key
)

// lookup is nginx's ngx_http_limit_req_lookup: it checks key's bucket
// against burst (milli-requests) and, when account is set (the last rule),
// charges it; otherwise it pins the bucket for accountPinned.
func (z *ReqZone) lookup(key []byte, burst int64, account bool) (code lookupCode, excess int64, s *reqShard, idx int32) {
	st := z.st
	s = &st.shards[shardOf(st.seed, key, st.mask)]
	now := st.now()
	s.mu.Lock()
	defer s.mu.Unlock()

	if i, ok := s.index[string(key)]; ok {
		s.touch(i)
		e := &s.ents[i]
		excess, ms := e.excessAt(now, z.rate)
		if excess > burst {
			return codeBusy, excess, nil, nilIdx
		}
		if account {
			e.excess = excess
			if ms != 0 {
				e.last = now
			}
			e.fresh = false
			return codeOK, excess, nil, nilIdx
		}
		e.pins++
		return codeAgain, excess, s, i
	}

	s.expireIdle(now, z.rate)
	i, ok := s.slot()
	if !ok {
		return codeError, 0, nil, nilIdx
	}
	e := &s.ents[i]
	*e = reqEntry{key: string(key), last: now}
	s.index[e.key] = i
	s.pushFront(i)
	if account {
		return codeOK, 0, nil, nilIdx
	}
	e.fresh = true
	e.pins = 1
	return codeAgain, 0, s, i
}

// accountPinned is nginx's second pass over an earlier rule: it recomputes
// the bucket at the current time, charges it and unpins it.
func (z *ReqZone) accountPinned(s *reqShard, i int32) int64 {
	now := z.st.now()
	s.mu.Lock()
	e := &s.ents[i]
	excess, ms := e.excessAt(now, z.rate)
	if ms != 0 {
		e.last = now
	}
	e.excess = excess
	e.fresh = false
	e.pins--
	s.mu.Unlock()
	return excess
}

func unpin(s *reqShard, i int32) {
	s.mu.Lock()
	s.ents[i].pins--
	s.mu.Unlock()
}

// Excess reports key's bucket level in milli-requests as it stands now,
// without charging it, and whether the zone holds the key. For tests and
// status pages.
func (z *ReqZone) Excess(key []byte) (int64, bool) {
	st := z.st
	s := &st.shards[shardOf(st.seed, key, st.mask)]
	now := st.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.index[string(key)]
	if !ok {
		return 0, false
	}
	e := &s.ents[i]
	if e.fresh {
		return 0, true
	}
	ex, _ := e.excessAt(now, z.rate)
	ex -= 1000
	if ex < 0 {
		ex = 0
	}
	return ex, true
}

// ReqRule is one limit_req directive: its zone and parameters as written.
// Zone must not be nil.
type ReqRule struct {
	Zone    *ReqZone
	Burst   int  // burst=N, in requests
	Delay   int  // delay=N: the first N excess requests are not delayed
	NoDelay bool // nodelay: no excess request within burst is delayed
}

// delayMilli is nginx's limit->delay: excess (milli-requests) below which a
// request is not delayed.
func (r *ReqRule) delayMilli() int64 {
	if r.NoDelay {
		return math.MaxInt64
	}
	return int64(r.Delay) * 1000
}

// ReqDecision is what CheckReq decided for one request.
type ReqDecision struct {
	Status ReqStatus
	// Delay is how long to hold the request before going on (ReqDelayed
	// only; ReqDelayedDryRun reports it but the request goes on at once).
	Delay time.Duration
	// Excess is the deciding bucket's level in milli-requests, and Zone its
	// zone, for nginx's log lines ("excess: %d.%03d by zone %q"). Zone is
	// nil when the request passed.
	Excess int64
	Zone   *ReqZone
	// Err is ErrZoneFull when a rule rejected because its zone had no room;
	// nginx logs "could not allocate node" instead of "limiting requests".
	Err error
}

type pinned struct {
	rule int
	s    *reqShard
	idx  int32
}

// CheckReq applies one location's limit_req rules to a request, as nginx's
// preaccess handler does; keys[i] is rules[i]'s zone key, evaluated. Rules
// are looked up in order: a rule whose key is empty (or longer than
// MaxReqKeyLen) is skipped; the first rule over its burst rejects the
// request and stops, and no bucket is charged (earlier rules' lookups are
// undone); otherwise every rule's bucket is charged and the request is held
// for the longest of the rules' delays. With dryRun set
// (limit_req_dry_run), buckets are charged the same way but the statuses are
// the _DRY_RUN ones and the caller neither rejects nor delays.
//
// CheckReq allocates nothing for keys the zones already hold (up to eight
// rules). When a zone is shared (Share), its rules are decided by the
// cluster store, or by a local fallback while the store is down.
func CheckReq(rules []ReqRule, keys [][]byte, dryRun bool) ReqDecision {
	for i := range rules {
		if rules[i].Zone.sh != nil {
			return checkShared(rules, keys, dryRun)
		}
	}
	return checkLocal(rules, keys, dryRun)
}

// checkLocal is CheckReq for zones held by this instance.
func checkLocal(rules []ReqRule, keys [][]byte, dryRun bool) ReqDecision {
	var buf [8]pinned
	pins := buf[:0]
	code := codeDeclined
	var excess int64
	n := 0
	for ; n < len(rules); n++ {
		key := keys[n]
		if len(key) == 0 || len(key) > MaxReqKeyLen {
			continue
		}
		r := &rules[n]
		var s *reqShard
		var idx int32
		code, excess, s, idx = r.Zone.lookup(key, int64(r.Burst)*1000, n == len(rules)-1)
		if code != codeAgain {
			break
		}
		pins = append(pins, pinned{rule: n, s: s, idx: idx})
	}

	switch code {
	case codeDeclined:
		return ReqDecision{}
	case codeBusy, codeError:
		for _, p := range pins {
			unpin(p.s, p.idx)
		}
		d := ReqDecision{Status: ReqRejected, Excess: excess, Zone: rules[n].Zone}
		if code == codeError {
			d.Err = ErrZoneFull
		}
		if dryRun {
			d.Status = ReqRejectedDryRun
		}
		return d
	}

	limit := n
	if limit == len(rules) {
		// The last rule's key was empty; its zone only names the log line.
		limit--
	}
	if code == codeAgain {
		excess = 0
	}
	var maxDelay int64
	if dm := rules[limit].delayMilli(); excess > dm {
		maxDelay = (excess - dm) * 1000 / rules[limit].Zone.rate
	}
	for j := len(pins) - 1; j >= 0; j-- {
		p := pins[j]
		r := &rules[p.rule]
		ex := r.Zone.accountPinned(p.s, p.idx)
		dm := r.delayMilli()
		if ex <= dm {
			continue
		}
		if d := (ex - dm) * 1000 / r.Zone.rate; d > maxDelay {
			maxDelay, excess, limit = d, ex, p.rule
		}
	}
	if maxDelay == 0 {
		return ReqDecision{Status: ReqPassed}
	}
	d := ReqDecision{
		Status: ReqDelayed,
		Delay:  time.Duration(maxDelay) * time.Millisecond,
		Excess: excess,
		Zone:   rules[limit].Zone,
	}
	if dryRun {
		d.Status = ReqDelayedDryRun
	}
	return d
}
