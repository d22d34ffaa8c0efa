package limit

import (
	"math"
	"time"
)

// Shared is a cluster-wide store for the zones declared with sync
// (internal/cluster implements it). Its calls are bounded in time; an
// error means the store failed and is now down. While it is down (Up
// false) zones are not shared: each instance limits locally to its share,
// the limit divided by Instances.
type Shared interface {
	Up() bool
	Instances() int
	// ReqKey and ConnField name a zone's key in the store.
	ReqKey(zone string, key []byte) string
	ConnField(zone string, key []byte) string
	// ChargeReq charges the buckets atomically as nginx's leaky bucket, at
	// rates and bursts in milli-requests: all of them, or, when one is over
	// its burst, none. It returns the index of the rejecting bucket (-1 if
	// none) and the buckets' levels.
	ChargeReq(keys []string, rates, bursts []int64) (rejected int, excess []int64, err error)
	// AcquireConn counts one connection for field if the cluster holds
	// fewer than limit; ReleaseConn gives it back.
	AcquireConn(field string, limit int) (bool, error)
	ReleaseConn(field string)
	// ChargeReqAcquireConns is ChargeReq and AcquireConn for each field in
	// one round trip; the fields are counted whatever the buckets decide,
	// and acquired reports which were. rider is a write of the store's own
	// kind sent in the same round trip (a session's registration), or nil.
	ChargeReqAcquireConns(keys []string, rates, bursts []int64, fields []string, limits []int, rider any) (rejected int, excess []int64, acquired []bool, err error)
}

// Share makes z cluster-wide through sh (limit_req_zone ... sync).
func (z *ReqZone) Share(sh Shared) { z.sh = sh }

// Shared reports whether z is shared and its store answers now.
func (z *ReqZone) Shared() bool { return z.sh != nil && z.sh.Up() }

// fallback is z as this instance limits while the store is down: the same
// buckets, draining at the instance's share of the rate.
func (z *ReqZone) fallback() *ReqZone {
	n := int64(max(z.sh.Instances(), 1))
	return &ReqZone{name: z.name, rate: max(z.rate/n, 1), st: z.st}
}

// checkShared is CheckReq when a rule's zone is shared: the shared rules
// are charged in one call to the store, then the local ones. A request
// rejected by a local rule has already charged the shared buckets (nginx,
// with all zones in one place, charges none).
func checkShared(rules []ReqRule, keys [][]byte, dryRun bool) ReqDecision {
	var sh Shared
	var local []ReqRule
	var lkeys [][]byte
	var skeys []string
	var rates, bursts []int64
	var idx []int
	for i, r := range rules {
		k := keys[i]
		if len(k) == 0 || len(k) > MaxReqKeyLen {
			continue
		}
		if r.Zone.sh == nil || !r.Zone.sh.Up() {
			if r.Zone.sh != nil {
				r.Zone = r.Zone.fallback()
			}
			local, lkeys = append(local, r), append(lkeys, k)
			continue
		}
		sh = r.Zone.sh
		skeys = append(skeys, sh.ReqKey(r.Zone.name, k))
		rates, bursts = append(rates, r.Zone.rate), append(bursts, int64(r.Burst)*1000)
		idx = append(idx, i)
	}
	var d ReqDecision
	if len(skeys) > 0 {
		rej, excess, err := sh.ChargeReq(skeys, rates, bursts)
		if err != nil {
			return checkLocal(fallbackRules(rules), keys, dryRun)
		}
		if rej >= 0 {
			d = ReqDecision{Status: ReqRejected, Excess: excess[rej], Zone: rules[idx[rej]].Zone}
			if dryRun {
				d.Status = ReqRejectedDryRun
			}
			return d
		}
		d = sharedDelay(rules, idx, excess, dryRun)
	}
	if len(local) == 0 {
		return d
	}
	ld := checkLocal(local, lkeys, dryRun)
	if ld.Status == ReqRejected || ld.Status == ReqRejectedDryRun || ld.Delay > d.Delay || d.Status == ReqNone {
		return ld
	}
	return d
}

// sharedDelay is the decision for charged shared buckets: the longest
// delay among them, as nginx holds a request for its slowest rule.
func sharedDelay(rules []ReqRule, idx []int, excess []int64, dryRun bool) ReqDecision {
	d := ReqDecision{Status: ReqPassed}
	var maxDelay int64
	for j, i := range idx {
		r := &rules[i]
		dm := r.delayMilli()
		if excess[j] <= dm {
			continue
		}
		if ms := (excess[j] - dm) * 1000 / r.Zone.rate; ms > maxDelay {
			maxDelay = ms
			d = ReqDecision{Status: ReqDelayed, Delay: time.Duration(ms) * time.Millisecond, Excess: excess[j], Zone: r.Zone}
		}
	}
	if dryRun && d.Status == ReqDelayed {
		d.Status = ReqDelayedDryRun
	}
	return d
}

// fallbackRules replaces shared zones with their local fallbacks.
func fallbackRules(rules []ReqRule) []ReqRule {
	out := make([]ReqRule, len(rules))
	for i, r := range rules {
		if r.Zone.sh != nil {
			r.Zone = r.Zone.fallback()
		}
		out[i] = r
	}
	return out
}

// Share makes z cluster-wide through sh (limit_conn_zone ... sync). The
// zone's counts are mirrored in sh once the Build that made z commits (at
// once for a zone made by NewConnZone).
func (z *ConnZone) Share(sh Shared) {
	z.sh = sh
	if z.build != nil {
		z.build.connShared[z.st] = &sharedBox{sh}
		return
	}
	z.st.shared.Store(&sharedBox{sh})
}

type sharedBox struct{ sh Shared }

// sharedLease is what a lease of a shared zone gives back to the store:
// the store the zone is shared through when the lease ends, which after a
// reload that changed cluster_store is the new one (where the instance's
// live counts were written), or none.
type sharedLease struct{ field string }

func (l *sharedLease) release(st *connState) {
	if b := st.shared.Load(); b != nil {
		b.sh.ReleaseConn(l.field)
	}
}

// acquireShared counts key in the store and locally: the local count is
// what the instance writes back when the store returns after an outage.
// While the store is down, or when the call fails, the local zone limits
// to this instance's share of limit.
func (z *ConnZone) acquireShared(key []byte, limit int) (ConnLease, error) {
	sh := z.sh
	field := sh.ConnField(z.name, key)
	localLimit, counted := max(limit/max(sh.Instances(), 1), 1), false
	if sh.Up() {
		ok, err := sh.AcquireConn(field, limit)
		switch {
		case err == nil && !ok:
			return ConnLease{}, ErrLimited
		case err == nil:
			localLimit, counted = math.MaxInt32, true
		}
	}
	l, err := z.acquireLocal(key, localLimit)
	if err != nil {
		if counted {
			sh.ReleaseConn(field)
		}
		return l, err
	}
	l.sh = &sharedLease{field: field}
	return l, nil
}

// SharedConns yields the live counts of the committed shared zones, by
// store field: what an instance writes back when the store returns.
func (r *Registry) SharedConns(yield func(field string, n int) bool) {
	r.mu.Lock()
	zones := make(map[string]*connState, len(r.conn))
	for name, st := range r.conn {
		if st.shared.Load() != nil {
			zones[name] = st
		}
	}
	sh := r.shared
	r.mu.Unlock()
	if sh == nil {
		return
	}
	for name, st := range zones {
		for i := range st.shards {
			s := &st.shards[i]
			s.mu.Lock()
			pairs := make([]connEntry, 0, len(s.m))
			for _, e := range s.m {
				pairs = append(pairs, connEntry{key: e.key, count: e.count})
			}
			s.mu.Unlock()
			for _, e := range pairs {
				if !yield(sh.ConnField(name, []byte(e.key)), int(e.count)) {
					return
				}
			}
		}
	}
}

// SetShared names the store that this Build's zones declared with sync
// use (nil: none); Commit makes it the one SharedConns reports for.
func (b *Build) SetShared(sh Shared) { b.shared = sh }

// Shared is the store set by SetShared.
func (b *Build) Shared() Shared { return b.shared }
