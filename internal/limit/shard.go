package limit

import (
	"hash/maphash"
	"math"
	"math/bits"
)

// EntrySize is the number of zone bytes one key's state costs. nginx's node
// for a short key (red-black tree node, LRU links, counters, key bytes) and
// its slab rounding come to about 128 bytes on 64-bit systems, so a zone of
// the size an nginx config gives holds about as many keys here as there:
// 1m holds 8192.
const EntrySize = 128

// Key lengths past which nginx logs an error and does not limit the request;
// the caller logs, this package just lets such keys through.
const (
	MaxReqKeyLen  = 65535
	MaxConnKeyLen = 255
)

// maxShards bounds the lock striping; minShardEntries keeps small zones from
// being cut into slivers whose per-shard LRU would evict far too early.
const (
	maxShards       = 64
	minShardEntries = 64
)

// entriesFor converts a zone size into an entry bound (at least 1).
func entriesFor(sizeBytes int64) int64 {
	n := sizeBytes / EntrySize
	if n < 1 {
		n = 1
	}
	return n
}

// shardCount picks a power of two no larger than maxShards that leaves each
// shard at least minShardEntries entries when the zone is big enough.
func shardCount(entries int64) int {
	n := maxShards
	for n > 1 && entries/int64(n) < minShardEntries {
		n /= 2
	}
	return n
}

func shardOf(seed maphash.Seed, key []byte, mask uint64) uint64 {
	return maphash.Bytes(seed, key) & mask
}

// leaked is rate*ms/1000 (milli-requests drained in ms milliseconds),
// saturating instead of overflowing for zones left idle for years.
func leaked(rate, ms int64) int64 {
	if rate <= 0 || ms <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(rate), uint64(ms))
	if hi != 0 {
		return math.MaxInt64
	}
	q := lo / 1000
	if q > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(q)
}
