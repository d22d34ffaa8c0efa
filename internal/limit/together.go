package limit

import "math"

// Together reports whether a request's limit_req and limit_conn rules can
// be decided in one call to the cluster store: there is at least one,
// every zone is shared through the same store, and it is up. Otherwise the
// caller applies CheckReq, then AcquireConns.
func Together(req []ReqRule, conn []ConnRule) bool {
	sh := sharedOf(req, conn)
	if sh == nil || !sh.Up() {
		return false
	}
	for i := range req {
		if req[i].Zone.sh != sh {
			return false
		}
	}
	for i := range conn {
		if conn[i].Zone.sh != sh {
			return false
		}
	}
	return true
}

// sharedBatch is what CheckTogether sends the store.
type sharedBatch struct {
	rkeys         []string
	rates, bursts []int64
	ridx          []int
	fields        []string
	limits        []int
	cidx          []int
}

func batchOf(sh Shared, req []ReqRule, reqKeys [][]byte, conn []ConnRule, connKeys [][]byte) sharedBatch {
	var b sharedBatch
	for i, r := range req {
		if k := reqKeys[i]; len(k) > 0 && len(k) <= MaxReqKeyLen {
			b.rkeys = append(b.rkeys, sh.ReqKey(r.Zone.name, k))
			b.rates, b.bursts = append(b.rates, r.Zone.rate), append(b.bursts, int64(r.Burst)*1000)
			b.ridx = append(b.ridx, i)
		}
	}
	for i, r := range conn {
		if k := connKeys[i]; len(k) > 0 && len(k) <= MaxConnKeyLen {
			b.fields = append(b.fields, sh.ConnField(r.Zone.name, k))
			b.limits = append(b.limits, r.Limit)
			b.cidx = append(b.cidx, i)
		}
	}
	return b
}

// CheckTogether is CheckReq followed by AcquireConns, for rules where
// Together holds, in one round trip to the store: the buckets are charged
// and the connections counted at once. A request that a bucket rejects
// holds no connection (what was counted is given back), and one that a
// connection limit rejects keeps its charge, as in nginx, where limit_req
// runs first. Unlike nginx, a delayed request holds its connection slots
// during its delay. When the store fails, the request is decided locally
// as CheckReq and AcquireConns decide then.
func CheckTogether(req []ReqRule, reqKeys [][]byte, reqDry bool, conn []ConnRule, connKeys [][]byte, connDry bool, leases []ConnLease) (ReqDecision, []ConnLease, ConnDecision) {
	rd, leases, cd, _ := CheckTogetherWith(req, reqKeys, reqDry, conn, connKeys, connDry, leases, nil)
	return rd, leases, cd
}

// sharedOf is the store of the first rule.
func sharedOf(req []ReqRule, conn []ConnRule) Shared {
	switch {
	case len(req) > 0:
		return req[0].Zone.sh
	case len(conn) > 0:
		return conn[0].Zone.sh
	}
	return nil
}

// CheckTogetherWith is CheckTogether that also sends rider (see
// Shared.ChargeReqAcquireConns) in the same round trip; sent reports
// whether the store took it.
func CheckTogetherWith(req []ReqRule, reqKeys [][]byte, reqDry bool, conn []ConnRule, connKeys [][]byte, connDry bool, leases []ConnLease, rider any) (rd ReqDecision, _ []ConnLease, cd ConnDecision, sent bool) {
	sh := sharedOf(req, conn)
	b := batchOf(sh, req, reqKeys, conn, connKeys)
	if len(b.rkeys) == 0 && len(b.fields) == 0 {
		return ReqDecision{}, leases, ConnDecision{}, false
	}
	rej, excess, got, err := sh.ChargeReqAcquireConns(b.rkeys, b.rates, b.bursts, b.fields, b.limits, rider)
	if err != nil {
		rd := CheckReq(req, reqKeys, reqDry)
		if rd.Status == ReqRejected {
			return rd, leases, ConnDecision{}, false
		}
		leases, cd := AcquireConns(conn, connKeys, connDry, leases)
		return rd, leases, cd, false
	}
	if rej >= 0 {
		releaseGot(sh, b.fields, got)
		rd = ReqDecision{Status: ReqRejected, Excess: excess[rej], Zone: req[b.ridx[rej]].Zone}
		if !reqDry {
			return rd, leases, ConnDecision{}, true
		}
		rd.Status = ReqRejectedDryRun
	} else if len(b.rkeys) > 0 {
		rd = sharedDelay(req, b.ridx, excess, reqDry)
	}
	leases, cd = b.countLocally(sh, conn, connKeys, got, connDry, leases)
	return rd, leases, cd, true
}

// countLocally turns the store's counts into leases, each also counted in
// its local zone (what the instance writes back after an outage), or gives
// them all back when one rule was at its limit or its local zone is full.
func (b *sharedBatch) countLocally(sh Shared, conn []ConnRule, connKeys [][]byte, got []bool, dry bool, leases []ConnLease) ([]ConnLease, ConnDecision) {
	if len(b.fields) == 0 {
		return leases, ConnDecision{}
	}
	start := len(leases)
	for j, i := range b.cidx {
		err := ErrLimited
		if got[j] {
			var l ConnLease
			if l, err = conn[i].Zone.acquireLocal(connKeys[i], math.MaxInt32); err == nil {
				l.sh = &sharedLease{field: b.fields[j]}
				leases = append(leases, l)
				got[j] = false // now the lease's to give back
				continue
			}
		}
		releaseGot(sh, b.fields, got)
		ReleaseAll(leases[start:])
		d := ConnDecision{Status: ConnRejected, Zone: conn[i].Zone, Err: err}
		if dry {
			d.Status = ConnRejectedDryRun
		}
		return leases[:start], d
	}
	return leases, ConnDecision{Status: ConnPassed}
}

func releaseGot(sh Shared, fields []string, got []bool) {
	for j, ok := range got {
		if ok {
			sh.ReleaseConn(fields[j])
		}
	}
}
