package upstream

import (
	"fmt"
	"testing"
)

func benchUpstream(m Method, n int, consistent bool) *Upstream {
	var ps []PeerConfig
	for i := range n {
		ps = append(ps, PeerConfig{Addr: fmt.Sprintf("127.0.0.1:%d", 9000+i), Weight: 1 + i%3, MaxFails: 1})
	}
	return New(Config{Name: "bench", Method: m, HashConsistent: consistent, RandomTwo: m == Random, Peers: ps}, nil)
}

var benchMethods = []struct {
	name       string
	m          Method
	consistent bool
}{
	{"round_robin", RoundRobin, false},
	{"least_conn", LeastConn, false},
	{"ip_hash", IPHash, false},
	{"hash", Hash, false},
	{"hash_consistent", Hash, true},
	{"random_two", Random, false},
}

// BenchmarkNextDone measures one pick and release on a reused Attempt, as
// the proxy does per request.
func BenchmarkNextDone(b *testing.B) {
	key := []byte("203.0.113.7")
	ip := []byte{203, 0, 113, 7}
	for _, bm := range benchMethods {
		for _, n := range []int{3, 30} {
			b.Run(fmt.Sprintf("%s/%d", bm.name, n), func(b *testing.B) {
				u := benchUpstream(bm.m, n, bm.consistent)
				k := key
				if bm.m == IPHash {
					k = ip
				}
				var a Attempt
				b.ReportAllocs()
				for b.Loop() {
					a.Reset(u, k)
					p, err := a.Next()
					if err != nil {
						b.Fatal(err)
					}
					p.Done(false)
				}
			})
		}
	}
}

// BenchmarkNextDoneParallel measures contention on one upstream's lock.
func BenchmarkNextDoneParallel(b *testing.B) {
	for _, bm := range []struct {
		name string
		m    Method
	}{{"round_robin", RoundRobin}, {"least_conn", LeastConn}} {
		b.Run(bm.name+"/30", func(b *testing.B) {
			u := benchUpstream(bm.m, 30, false)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var a Attempt
				for pb.Next() {
					a.Reset(u, nil)
					p, err := a.Next()
					if err != nil {
						b.Error(err)
						return
					}
					p.Done(false)
				}
			})
		})
	}
}

func BenchmarkNewAttempt(b *testing.B) {
	u := benchUpstream(RoundRobin, 3, false)
	b.ReportAllocs()
	for b.Loop() {
		p, err := u.NewAttempt(nil).Next()
		if err != nil {
			b.Fatal(err)
		}
		p.Done(false)
	}
}
