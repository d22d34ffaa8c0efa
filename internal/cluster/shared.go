package cluster

import "github.com/wsgate/wsgate/internal/limit"

var _ limit.Shared = (*Store)(nil)

// ReqKey is the store key of a limit_req_zone's bucket.
func (s *Store) ReqKey(zone string, key []byte) string { return ReqKey(zone, key) }

// ConnField is the lease field of a limit_conn_zone's key.
func (s *Store) ConnField(zone string, key []byte) string { return ConnField(zone, key) }

// ChargeReq is CheckReq on the store's clock.
func (s *Store) ChargeReq(keys []string, rates, bursts []int64) (int, []int64, error) {
	r, err := s.CheckReq(keys, rates, bursts, 0)
	return r.Rejected, r.Excess, err
}
