package limit

import (
	"errors"
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// ErrLimited reports that a key already holds as many connections as its
// limit_conn allows.
var ErrLimited = errors.New("limit: connection limit reached")

// ConnStatus is the outcome of AcquireConns, numbered as nginx numbers
// $limit_conn_status.
type ConnStatus uint8

// The zero ConnStatus means no rule had a key: nginx leaves
// $limit_conn_status unset.
const (
	ConnNone ConnStatus = iota
	ConnPassed
	ConnRejected
	ConnRejectedDryRun
)

var connStatusNames = [...]string{"", "PASSED", "REJECTED", "REJECTED_DRY_RUN"}

// String returns the value of $limit_conn_status ("" for ConnNone).
func (s ConnStatus) String() string {
	if int(s) < len(connStatusNames) {
		return connStatusNames[s]
	}
	return ""
}

// ConnZone is a limit_conn_zone: a count of live connections per key,
// bounded to sizeBytes/EntrySize keys across the zone. A key's entry exists
// while its count is above zero. When the zone is full a new key is refused
// (ErrZoneFull), as nginx refuses it: evicting a live count would let that
// key past its limit.
//
// A ConnZone is safe for concurrent use. Create it with NewConnZone or a
// Registry Build; the zero value is not usable.
type ConnZone struct {
	name  string
	st    *connState
	sh    Shared // set for a sync zone with a cluster store
	build *Build // the Build that made the zone, nil for NewConnZone
}

type connState struct {
	size   int64
	key    string
	limit  int64
	n      atomic.Int64 // keys held, across shards
	seed   maphash.Seed
	mask   uint64
	shards []connShard
	// shared is the cluster store that mirrors the counts, as the last
	// committed configuration says; nil when the zone is local.
	shared atomic.Pointer[sharedBox]
}

type connShard struct {
	mu sync.Mutex
	m  map[string]*connEntry
	_  [64]byte // keep neighbouring shards' locks off this cache line
}

// connEntry is never reused once its count drops to zero, so a stale lease
// copy finds count 0 and does nothing instead of releasing someone else's.
type connEntry struct {
	key   string
	count int32
}

// NewConnZone returns an empty zone named name, bounded to
// sizeBytes/EntrySize keys.
func NewConnZone(name string, sizeBytes int64) *ConnZone {
	return &ConnZone{name: name, st: newConnState(sizeBytes, "")}
}

func newConnState(sizeBytes int64, key string) *connState {
	n := maxShards
	st := &connState{
		size:   sizeBytes,
		key:    key,
		limit:  entriesFor(sizeBytes),
		seed:   maphash.MakeSeed(),
		mask:   uint64(n - 1),
		shards: make([]connShard, n),
	}
	for i := range st.shards {
		st.shards[i].m = make(map[string]*connEntry)
	}
	return st
}

// Name is the zone's name, for log lines.
func (z *ConnZone) Name() string { return z.name }

// Cap is the most keys the zone holds: sizeBytes/EntrySize, exactly (the
// bound is one atomic count shared by all shards).
func (z *ConnZone) Cap() int { return int(z.st.limit) }

// Len is the number of keys with live connections.
func (z *ConnZone) Len() int { return int(z.st.n.Load()) }

// Count is key's number of live connections.
func (z *ConnZone) Count(key []byte) int {
	st := z.st
	s := &st.shards[shardOf(st.seed, key, st.mask)]
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.m[string(key)]; e != nil {
		return int(e.count)
	}
	return 0
}

// ConnLease is one connection counted against a key. Its zero value holds
// nothing. Release gives the count back; releasing twice through the same
// variable is harmless, but a lease must not be copied and released from
// both copies, and one lease must not be released from two goroutines at
// once.
type ConnLease struct {
	st *connState
	s  *connShard
	e  *connEntry
	sh *sharedLease // the store's count, for a shared zone
}

// Held reports whether the lease still counts a connection.
func (l *ConnLease) Held() bool { return l.e != nil }

// Release gives the connection back: the count drops at once, and the key's
// entry goes when its count reaches zero.
func (l *ConnLease) Release() {
	e := l.e
	if e == nil {
		return
	}
	st, s, sh := l.st, l.s, l.sh
	*l = ConnLease{}
	if sh != nil {
		sh.release(st)
	}
	s.mu.Lock()
	if e.count > 0 {
		e.count--
		if e.count == 0 {
			delete(s.m, e.key)
			st.n.Add(-1)
		}
	}
	s.mu.Unlock()
}

// Acquire counts one more connection for key if key holds fewer than limit.
// It returns ErrLimited when key is at its limit and ErrZoneFull when key is
// new and the zone is full. An empty key, or one longer than MaxConnKeyLen,
// is not limited: Acquire returns a zero lease and no error. A shared zone
// (Share) counts the key across the cluster, and locally to this instance's
// share of limit while the store is down.
func (z *ConnZone) Acquire(key []byte, limit int) (ConnLease, error) {
	if len(key) == 0 || len(key) > MaxConnKeyLen {
		return ConnLease{}, nil
	}
	if z.sh != nil {
		return z.acquireShared(key, limit)
	}
	return z.acquireLocal(key, limit)
}

// acquireLocal is Acquire in this instance's zone.
func (z *ConnZone) acquireLocal(key []byte, limit int) (ConnLease, error) {
	st := z.st
	s := &st.shards[shardOf(st.seed, key, st.mask)]
	s.mu.Lock()
	e := s.m[string(key)]
	switch {
	case e != nil && int(e.count) >= limit, e == nil && limit <= 0:
		s.mu.Unlock()
		return ConnLease{}, ErrLimited
	case e != nil:
		e.count++
	default:
		if st.n.Add(1) > st.limit {
			st.n.Add(-1)
			s.mu.Unlock()
			return ConnLease{}, ErrZoneFull
		}
		e = &connEntry{key: string(key), count: 1}
		s.m[e.key] = e
	}
	s.mu.Unlock()
	return ConnLease{st: st, s: s, e: e}, nil
}

// ConnRule is one limit_conn directive. Zone must not be nil; Limit is the
// number of connections allowed per key (nginx: 1 to 65535).
type ConnRule struct {
	Zone  *ConnZone
	Limit int
}

// ConnDecision is what AcquireConns decided for one request.
type ConnDecision struct {
	Status ConnStatus
	// Zone is the rejecting rule's zone and Err why (ErrLimited or
	// ErrZoneFull), for nginx's log lines; both nil unless rejected.
	Zone *ConnZone
	Err  error
}

// AcquireConns applies one location's limit_conn rules to a request, as
// nginx's preaccess handler does; keys[i] is rules[i]'s zone key, evaluated.
// Rules with an empty or over-long key are skipped. Each other rule counts
// the request against its key, and the leases are appended to leases, which
// the caller keeps for the life of the request (WebSocket tunnel included)
// and releases with ReleaseAll. The first rule at its limit, or whose zone
// is full, rejects the request: the leases this call took are released, and
// leases is returned as it came. With dryRun set (limit_conn_dry_run) a
// rejection is reported as ConnRejectedDryRun and the request goes on
// uncounted, as in nginx.
func AcquireConns(rules []ConnRule, keys [][]byte, dryRun bool, leases []ConnLease) ([]ConnLease, ConnDecision) {
	start := len(leases)
	var d ConnDecision
	for i := range rules {
		key := keys[i]
		if len(key) == 0 || len(key) > MaxConnKeyLen {
			continue
		}
		d.Status = ConnPassed
		l, err := rules[i].Zone.Acquire(key, rules[i].Limit)
		if err != nil {
			ReleaseAll(leases[start:])
			d = ConnDecision{Status: ConnRejected, Zone: rules[i].Zone, Err: err}
			if dryRun {
				d.Status = ConnRejectedDryRun
			}
			return leases[:start], d
		}
		leases = append(leases, l)
	}
	return leases, d
}

// ReleaseAll releases every lease in leases.
func ReleaseAll(leases []ConnLease) {
	for i := range leases {
		leases[i].Release()
	}
}
