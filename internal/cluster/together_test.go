package cluster

import (
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/limit"
)

// A shared limit_req and limit_conn are decided in one pipelined call: a
// request rejected by its bucket holds no connection, one rejected by the
// connection limit keeps its bucket's charge, and passed ones hold a lease
// counted in the store and locally.
func TestCheckTogether(t *testing.T) {
	r := startRedis(t)
	s := openStore(t, r.url(), nil)
	rz := limit.NewReqZone("rt", 1<<20, 1, nil) // 1 per 1000 s: no draining during the test
	cz := limit.NewConnZone("ct", 1<<20)
	rz.Share(s)
	cz.Share(s)
	req := []limit.ReqRule{{Zone: rz, Burst: 2, NoDelay: true}}
	conn := []limit.ConnRule{{Zone: cz, Limit: 2}}
	if !limit.Together(req, conn) {
		t.Fatal("Together is false for shared zones with the store up")
	}
	key := [][]byte{[]byte("k")}
	field := ConnField("ct", []byte("k"))
	var held []limit.ConnLease
	for i := range 2 {
		rd, leases, cd := limit.CheckTogether(req, key, false, conn, key, false, nil)
		if rd.Status != limit.ReqPassed || cd.Status != limit.ConnPassed || len(leases) != 1 {
			t.Fatalf("request %d: %v %v %d leases", i, rd.Status, cd.Status, len(leases))
		}
		held = append(held, leases...)
	}
	// Third: the bucket passes (burst 2), the connection limit rejects.
	rd, leases, cd := limit.CheckTogether(req, key, false, conn, key, false, nil)
	if rd.Status != limit.ReqPassed || cd.Status != limit.ConnRejected || len(leases) != 0 {
		t.Fatalf("third: %v %v %d leases, want passed, conn rejected", rd.Status, cd.Status, len(leases))
	}
	if n, _ := s.ConnCount(field); n != 2 || cz.Count([]byte("k")) != 2 {
		t.Fatalf("counts: store %d, local %d, want 2", n, cz.Count([]byte("k")))
	}
	held[0].Release()
	// Fourth: the bucket is now over its burst: rejected, nothing counted.
	rd, leases, cd = limit.CheckTogether(req, key, false, conn, key, false, nil)
	if rd.Status != limit.ReqRejected || cd.Status != limit.ConnNone || len(leases) != 0 {
		t.Fatalf("fourth: %v %v %d leases, want rejected by limit_req", rd.Status, cd.Status, len(leases))
	}
	// Releases go with the next pipeline of writes.
	waitFor(t, "the store count to drop to 1 (nothing kept for the rejected request)", func() bool {
		n, _ := s.ConnCount(field)
		return n == 1
	})
	limit.ReleaseAll(held)
	if cz.Count([]byte("k")) != 0 {
		t.Fatalf("local count after release: %d", cz.Count([]byte("k")))
	}
	waitFor(t, "the store count to drop to 0", func() bool {
		n, _ := s.ConnCount(field)
		return n == 0
	})
}

// A shared zone delays as nginx does: with delay=2, the requests past the
// first two excess ones wait (excess - 2) / rate.
func TestSharedDelay(t *testing.T) {
	r := startRedis(t)
	s := openStore(t, r.url(), nil)
	z := limit.NewReqZone("d", 1<<20, 1000, nil) // 1 r/s: a millisecond drains 1/1000 of a request
	z.Share(s)
	rules := []limit.ReqRule{{Zone: z, Burst: 5, Delay: 2}}
	key := [][]byte{[]byte("k")}
	var got []limit.ReqDecision
	for range 7 {
		got = append(got, limit.CheckReq(rules, key, false))
	}
	for i, d := range got[:3] {
		if d.Status != limit.ReqPassed {
			t.Fatalf("request %d: %v, want passed", i, d.Status)
		}
	}
	// The fifth request stands at excess 4 (less what drained since the
	// first): (4 - 2) / 1 r/s = 2 s.
	if d := got[4]; d.Status != limit.ReqDelayed || d.Delay > 2*time.Second || d.Delay < 1500*time.Millisecond || d.Zone != z {
		t.Fatalf("fifth request: %+v, want delayed about 2s", d)
	}
	if d := got[6]; d.Status != limit.ReqRejected {
		t.Fatalf("seventh request: %+v, want rejected (burst 5)", d)
	}
}
