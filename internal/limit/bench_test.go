package limit

import (
	"encoding/binary"
	"sync/atomic"
	"testing"
)

const benchKeys = 100_000

// benchKeySet is benchKeys distinct 4-byte keys, like $binary_remote_addr.
func benchKeySet() [][]byte {
	keys := make([][]byte, benchKeys)
	for i := range keys {
		keys[i] = binary.BigEndian.AppendUint32(nil, uint32(0x0a000000+i))
	}
	return keys
}

// BenchmarkReqCheck: one limit_req rule, 100k keys already in a zone big
// enough to hold them all, checked from parallel goroutines (run with
// -cpu 2 for GOMAXPROCS 2).
func BenchmarkReqCheck(b *testing.B) {
	z := NewReqZone("bench", 16<<20, 1_000_000_000, nil)
	rules := []ReqRule{{Zone: z, Burst: 100, NoDelay: true}}
	all := benchKeySet()
	for _, k := range all {
		CheckReq(rules, [][]byte{k}, false)
	}
	var next atomic.Uint32
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(7919))
		keys := make([][]byte, 1)
		for pb.Next() {
			i++
			keys[0] = all[i%benchKeys]
			CheckReq(rules, keys, false)
		}
	})
}

// BenchmarkReqCheckTwoRules: the seed's shape with a second, per-server
// rule whose single key every request shares.
func BenchmarkReqCheckTwoRules(b *testing.B) {
	perIP := NewReqZone("perip", 16<<20, 1_000_000_000, nil)
	perSrv := NewReqZone("persrv", 1<<20, 1_000_000_000, nil)
	rules := []ReqRule{{Zone: perIP, Burst: 100, NoDelay: true}, {Zone: perSrv, Burst: 100, NoDelay: true}}
	all := benchKeySet()
	srv := []byte("example.com")
	var next atomic.Uint32
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(7919))
		keys := make([][]byte, 2)
		keys[1] = srv
		for pb.Next() {
			i++
			keys[0] = all[i%benchKeys]
			CheckReq(rules, keys, false)
		}
	})
}

// BenchmarkReqCheckNewKeys: every check brings a new key to a full 1m zone,
// evicting the least recently used.
func BenchmarkReqCheckNewKeys(b *testing.B) {
	z := NewReqZone("bench", 1<<20, 10000, nil)
	rules := []ReqRule{{Zone: z, Burst: 100, NoDelay: true}}
	var next atomic.Uint32
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		key := make([]byte, 4)
		keys := [][]byte{key}
		for pb.Next() {
			binary.BigEndian.PutUint32(key, next.Add(1))
			CheckReq(rules, keys, false)
		}
	})
}

// BenchmarkConnAcquireRelease: acquire and release on 100k keys, each
// already holding one connection, from parallel goroutines.
func BenchmarkConnAcquireRelease(b *testing.B) {
	z := NewConnZone("bench", 16<<20)
	all := benchKeySet()
	held := make([]ConnLease, len(all))
	for i, k := range all {
		l, err := z.Acquire(k, 1000)
		if err != nil {
			b.Fatal(err)
		}
		held[i] = l
	}
	var next atomic.Uint32
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(7919))
		for pb.Next() {
			i++
			l, err := z.Acquire(all[i%benchKeys], 1000)
			if err != nil {
				b.Error(err)
				return
			}
			l.Release()
		}
	})
	b.StopTimer()
	ReleaseAll(held)
}

// BenchmarkConnAcquireReleaseNewKey: the key's entry is created and removed
// on every cycle (one connection per address, the common case).
func BenchmarkConnAcquireReleaseNewKey(b *testing.B) {
	z := NewConnZone("bench", 16<<20)
	all := benchKeySet()
	var next atomic.Uint32
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(7919))
		for pb.Next() {
			i++
			l, err := z.Acquire(all[i%benchKeys], 1000)
			if err != nil {
				b.Error(err)
				return
			}
			l.Release()
		}
	})
}
