package cluster

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// Key layout. Every key carries the {wsgate} hash tag so that scripts that
// touch several of them stay on one Redis Cluster shard.
const (
	prefix       = "wsgate:{wsgate}:"
	instancesKey = prefix + "instances" // sorted set: instance id -> lease expiry (ms)
	leasePrefix  = prefix + "conn:"     // hash per instance: zone\x00key -> live connections
	reqPrefix    = prefix + "req:"      // hash per zone and key: e (excess), t (last, ms)
	openPrefix   = prefix + "open:"     // string per instance: its open WebSockets, for one lease
)

func (s *Store) leaseKey() string { return leasePrefix + s.id }

// nowMS is the server's clock in ms: every instance reads one clock.
const nowMS = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`

// reqScript is nginx's leaky bucket (ngx_http_limit_req_lookup) for
// several rules at once. KEYS are the buckets; ARGV[1] is the time in ms
// (0: the server's clock), then rate (milli-requests per second) and burst
// (milli-requests) per key. A bucket over its burst rejects the request and
// no bucket is charged: the reply is {index, excess}. Otherwise every
// bucket is charged and the reply is {0, excess...}. A bucket expires once
// it has drained and stayed idle for a minute, as nginx drops it.
var reqScript = redis.NewScript(nowMS + `
local now = tonumber(ARGV[1])
if now == 0 then now = now_ms() end
local ex, upd = {}, {}
for i, k in ipairs(KEYS) do
  local rate, burst = tonumber(ARGV[2*i]), tonumber(ARGV[2*i+1])
  local v = redis.call('HMGET', k, 'e', 't')
  local e, ms = 0, 1
  if v[1] then
    ms = now - tonumber(v[2])
    if ms < -60000 then ms = 1 elseif ms < 0 then ms = 0 end
    e = tonumber(v[1]) - math.floor(rate * ms / 1000) + 1000
    if e < 0 then e = 0 end
  end
  if e > burst then return {i, e} end
  ex[i], upd[i] = e, ms ~= 0
end
local reply = {0}
for i, k in ipairs(KEYS) do
  local rate = tonumber(ARGV[2*i])
  if upd[i] then
    redis.call('HSET', k, 'e', ex[i], 't', now)
  else
    redis.call('HSET', k, 'e', ex[i])
  end
  redis.call('PEXPIRE', k, math.floor(ex[i] * 1000 / rate) + 60000)
  reply[i+1] = ex[i]
end
return reply
`)

// heartbeatScript renews this instance's lease (KEYS[2]) and entry in the
// instance set (KEYS[1]), drops dead instances, publishes this instance's
// open WebSockets (ARGV[3], unless empty) under ARGV[4]..id for one lease,
// and returns how many instances live, the sum of the counts they
// published, how many published one and the smallest (-1: none). ARGV:
// id, lease ms, count, count key prefix.
var heartbeatScript = redis.NewScript(nowMS + `
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
if ARGV[3] ~= '' then
  redis.call('SET', ARGV[4] .. ARGV[1], ARGV[3], 'PX', ARGV[2])
end
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local sum, n, low = 0, 0, -1
for _, id in ipairs(ids) do
  local c = tonumber(redis.call('GET', ARGV[4] .. id))
  if c then
    sum = sum + c; n = n + 1
    if low < 0 or c < low then low = c end
  end
end
return {#ids, sum, n, low}
`)

// acquireScript counts one connection for a field if the live instances'
// leases together hold fewer than the limit. KEYS: instance set, own
// lease. ARGV: field, limit, id, lease ms, lease key prefix. Reply:
// {1 if counted, total after}.
var acquireScript = redis.NewScript(nowMS + `
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local sum, self = 0, false
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if id == ARGV[3] then self = true end
  sum = sum + (tonumber(redis.call('HGET', ARGV[5] .. id, ARGV[1])) or 0)
end
if not self then sum = sum + (tonumber(redis.call('HGET', KEYS[2], ARGV[1])) or 0) end
if sum >= tonumber(ARGV[2]) then return {0, sum} end
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[3])
return {1, sum + 1}
`)

// releaseScript gives one connection of a field back. KEYS: own lease.
// ARGV: field.
var releaseScript = redis.NewScript(`
if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
`)

func (s *Store) heartbeat() error {
	count := ""
	s.leasesMu.Lock()
	if s.open != nil {
		count = strconv.Itoa(s.open())
	}
	s.leasesMu.Unlock()
	ctx, cancel := s.ctx()
	defer cancel()
	v, err := heartbeatScript.Run(ctx, s.c, []string{instancesKey, s.leaseKey()}, s.id, LeaseTTL.Milliseconds(), count, openPrefix).Int64Slice()
	if err != nil {
		return err
	}
	if len(v) < 4 {
		return fmt.Errorf("cluster store: short heartbeat reply")
	}
	s.instances.Store(max(v[0], 1))
	s.load.Store(&Load{Open: v[1], Instances: int(v[2]), Lowest: v[3]})
	return nil
}

// Load is the cluster's open WebSockets at the last heartbeat: the sum of
// the counts the live instances published, how many published one, and
// the smallest (-1 when none did).
type Load struct {
	Open      int64
	Instances int
	Lowest    int64 // the smallest count an instance published
}

// ClusterLoad returns the load the last heartbeat read (zero before the
// first, or while the store is down).
func (s *Store) ClusterLoad() Load {
	if l := s.load.Load(); l != nil && s.Up() {
		return *l
	}
	return Load{}
}

// SetOpenCount installs the source of this instance's count of open
// WebSockets, which each heartbeat publishes for the lease's time, so that
// the count of an instance that died vanishes. It must not block.
func (s *Store) SetOpenCount(f func() int) {
	s.leasesMu.Lock()
	s.open = f
	s.leasesMu.Unlock()
}

// reregister replaces this instance's lease with its live local counts.
func (s *Store) reregister() error {
	s.leasesMu.Lock()
	leases := s.leases
	s.leasesMu.Unlock()
	var fields []any
	if leases != nil {
		for f, n := range leases {
			fields = append(fields, f, n)
		}
	}
	ctx, cancel := s.ctx()
	defer cancel()
	_, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.leaseKey())
		if len(fields) > 0 {
			p.HSet(ctx, s.leaseKey(), fields...)
			p.PExpire(ctx, s.leaseKey(), LeaseTTL)
		}
		for key, f := range s.sessionFields() {
			p.HSet(ctx, sessPrefix+key, f...)
			p.PExpire(ctx, sessPrefix+key, sessionTTL)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.loadBans(ctx)
}

// ReqResult is the reply of CheckReq.
type ReqResult struct {
	// Rejected is the index of the first key over its burst, or -1.
	Rejected int
	// Excess is each bucket's level in milli-requests after the charge
	// (only Excess[Rejected] when rejected).
	Excess []int64
}

// ReqKey is the store key of a limit_req_zone's bucket.
func ReqKey(zone string, key []byte) string {
	return reqPrefix + zone + "\x00" + string(key)
}

// CheckReq charges the buckets keys (from ReqKey) atomically, at rates
// and bursts in milli-requests, as nginx charges its zones: all or none.
// nowMS is the time in ms, or 0 for the store's clock. An error means
// the store failed, and it is now down.
func (s *Store) CheckReq(keys []string, rates, bursts []int64, nowMS int64) (ReqResult, error) {
	args := make([]any, 0, 1+2*len(keys))
	args = append(args, nowMS)
	for i := range keys {
		args = append(args, rates[i], bursts[i])
	}
	ctx, cancel := s.ctx()
	defer cancel()
	v, err := reqScript.Run(ctx, s.c, keys, args...).Int64Slice()
	if err != nil {
		return ReqResult{}, s.fail(err)
	}
	if len(v) == 0 {
		return ReqResult{}, s.fail(fmt.Errorf("cluster store: empty limit_req reply"))
	}
	if v[0] > 0 {
		r := ReqResult{Rejected: int(v[0]) - 1, Excess: make([]int64, len(keys))}
		if len(v) > 1 {
			r.Excess[r.Rejected] = v[1]
		}
		return r, nil
	}
	return ReqResult{Rejected: -1, Excess: v[1:]}, nil
}

// ConnField is the lease field of a limit_conn_zone's key.
func ConnField(zone string, key []byte) string {
	return zone + "\x00" + string(key)
}

// AcquireConn counts one connection for field (from ConnField) if the
// cluster holds fewer than limit; it returns whether it did. An error means
// the store failed, and it is now down.
func (s *Store) AcquireConn(field string, limit int) (bool, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	v, err := acquireScript.Run(ctx, s.c, []string{instancesKey, s.leaseKey()},
		field, limit, s.id, LeaseTTL.Milliseconds(), leasePrefix).Int64Slice()
	if err != nil {
		return false, s.fail(err)
	}
	return len(v) > 0 && v[0] == 1, nil
}

// ReleaseConn gives back a connection AcquireConn counted, with the next
// pipeline of writes: it does not wait. While the store is down it does
// nothing: the counts are written back on recovery.
func (s *Store) ReleaseConn(field string) {
	lease := s.leaseKey()
	s.later(func(ctx context.Context, p redis.Pipeliner) {
		releaseScript.EvalSha(ctx, p, []string{lease}, field)
	})
}

// ConnCount is field's count across the instances whose leases are
// live, for tests and tools.
func (s *Store) ConnCount(field string) (int, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	ids, err := s.c.ZRange(ctx, instancesKey, 0, -1).Result()
	if err != nil {
		return 0, s.fail(err)
	}
	sum := 0
	for _, id := range ids {
		n, err := s.c.HGet(ctx, leasePrefix+id, field).Int()
		if err != nil && err != redis.Nil {
			return 0, s.fail(err)
		}
		sum += n
	}
	return sum, nil
}

// ChargeReqAcquireConns is CheckReq (on the store's clock) and AcquireConn
// for each field, pipelined: one round trip. The connections are counted
// whatever the buckets decide; the caller gives them back (ReleaseConn)
// when a bucket rejected the request or another field was at its limit.
// rider, when it is a *Reservation, is written in the same round trip
// (nil or another value: nothing more is written); the caller cancels it
// when the handshake fails.
func (s *Store) ChargeReqAcquireConns(keys []string, rates, bursts []int64, fields []string, limits []int, rider any) (int, []int64, []bool, error) {
	res, _ := rider.(*Reservation)
	rej, excess, got, err := s.pipelined(keys, rates, bursts, fields, limits, res)
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		// The store restarted since the scripts were loaded.
		rej, excess, got, err = s.pipelined(keys, rates, bursts, fields, limits, res)
	}
	if err != nil {
		return 0, nil, nil, s.fail(err)
	}
	return rej, excess, got, nil
}

func (s *Store) pipelined(keys []string, rates, bursts []int64, fields []string, limits []int, res *Reservation) (int, []int64, []bool, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	var req *redis.Cmd
	conns := make([]*redis.Cmd, len(fields))
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		if len(keys) > 0 {
			args := make([]any, 0, 1+2*len(keys))
			args = append(args, 0)
			for i := range keys {
				args = append(args, rates[i], bursts[i])
			}
			req = reqScript.EvalSha(ctx, p, keys, args...)
		}
		for i, f := range fields {
			conns[i] = acquireScript.EvalSha(ctx, p, []string{instancesKey, s.leaseKey()}, f, limits[i], s.id, LeaseTTL.Milliseconds(), leasePrefix)
		}
		if res != nil {
			res.write(ctx, p)
		}
		return nil
	})
	if err != nil {
		if redis.HasErrorPrefix(err, "NOSCRIPT") {
			s.loadScripts(ctx)
		}
		return 0, nil, nil, err
	}
	rej, excess := -1, []int64(nil)
	if req != nil {
		v, err := req.Int64Slice()
		if err != nil || len(v) == 0 {
			return 0, nil, nil, fmt.Errorf("cluster store: limit_req reply: %v", err)
		}
		if v[0] > 0 {
			rej = int(v[0]) - 1
			excess = make([]int64, len(keys))
			excess[rej] = v[1]
		} else {
			excess = v[1:]
		}
	}
	got := make([]bool, len(fields))
	for i, c := range conns {
		v, err := c.Int64Slice()
		if err != nil {
			return 0, nil, nil, err
		}
		got[i] = len(v) > 0 && v[0] == 1
	}
	return rej, excess, got, nil
}

// loadScripts loads the scripts that pipelines call by their digest.
func (s *Store) loadScripts(ctx context.Context) error {
	for _, sc := range []*redis.Script{reqScript, acquireScript, releaseScript, heartbeatScript} {
		if err := sc.Load(ctx, s.c).Err(); err != nil {
			return err
		}
	}
	return nil
}
