package limit

import (
	"strings"
	"testing"
	"time"
)

func TestRegistryReqZones(t *testing.T) {
	clk := newFakeClock()
	reg := NewRegistry(clk.Now)
	key := []byte("ip")

	b := reg.Begin()
	z1, err := b.ReqZone("perip", "$binary_remote_addr", mb, 10000)
	if err != nil {
		t.Fatal(err)
	}
	b.Commit()
	rules := []ReqRule{{Zone: z1, Burst: 2, NoDelay: true}}
	for range 3 {
		CheckReq(rules, [][]byte{key}, false)
	}

	tests := []struct {
		name       string
		zone       string
		key        string
		size       int64
		rate       int64
		commit     bool
		wantErr    string
		wantShared bool // the buckets carried over from the running zone
	}{
		{name: "same name, size and key: buckets carry over, rate is new", zone: "perip", key: "$binary_remote_addr", size: mb, rate: 5000, commit: true, wantShared: true},
		{name: "a new size starts empty, but an uncommitted build changes nothing", zone: "perip", key: "$binary_remote_addr", size: 2 * mb, rate: 10000, wantShared: false},
		{name: "after the failed build the zone is still there", zone: "perip", key: "$binary_remote_addr", size: mb, rate: 10000, commit: true, wantShared: true},
		{name: "a new key with the same size is refused", zone: "perip", key: "$remote_addr", size: mb, rate: 10000, wantErr: `uses the "$remote_addr" key while previously it used the "$binary_remote_addr" key`},
		{name: "a new size may change the key", zone: "perip", key: "$remote_addr", size: 2 * mb, rate: 10000, wantShared: false},
		{name: "a new name starts empty", zone: "other", key: "$binary_remote_addr", size: mb, rate: 10000, wantShared: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := reg.Begin()
			z, err := b.ReqZone(tt.zone, tt.key, tt.size, tt.rate)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if z.Rate() != tt.rate || z.Name() != tt.zone {
				t.Errorf("zone %q rate %d, want %q rate %d", z.Name(), z.Rate(), tt.zone, tt.rate)
			}
			if shared := z.st == z1.st; shared != tt.wantShared {
				t.Errorf("shared state = %v, want %v", shared, tt.wantShared)
			}
			_, held := z.Excess(key)
			if held != tt.wantShared {
				t.Errorf("bucket carried over = %v, want %v", held, tt.wantShared)
			}
			if tt.commit {
				b.Commit()
			}
		})
	}
}

func TestRegistryRateChangeKeepsBucket(t *testing.T) {
	clk := newFakeClock()
	reg := NewRegistry(clk.Now)
	b := reg.Begin()
	old, _ := b.ReqZone("z", "$k", mb, 10000)
	b.Commit()
	key := [][]byte{[]byte("a")}
	for range 3 {
		CheckReq([]ReqRule{{Zone: old, Burst: 5, NoDelay: true}}, key, false)
	}
	// Bucket at 2000. Reload at 1r/s: after 500ms, 2000-500+1000 = 2500.
	b = reg.Begin()
	z, err := b.ReqZone("z", "$k", mb, 1000)
	if err != nil {
		t.Fatal(err)
	}
	b.Commit()
	clk.Advance(500 * time.Millisecond)
	d := CheckReq([]ReqRule{{Zone: z, Burst: 5}}, key, false)
	if d.Status != ReqDelayed || d.Excess != 2500 || d.Delay != 2500*time.Millisecond {
		t.Errorf("got %+v, want delayed 2.5s at excess 2500", d)
	}
}

func TestRegistryDuplicatesInOneBuild(t *testing.T) {
	reg := NewRegistry(nil)
	b := reg.Begin()
	if _, err := b.ReqZone("z", "$a", mb, 1000); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ReqZone("z", "$b", mb, 1000); err == nil || !strings.Contains(err.Error(), "already bound") {
		t.Errorf("second limit_req_zone z: error %v, want already bound", err)
	}
	if _, err := b.ReqZone("r", "$a", mb, 0); err == nil {
		t.Error("a zero rate was accepted")
	}
	if _, err := b.ConnZone("z", "$a", mb); err != nil {
		t.Errorf("a conn zone may share a req zone's name here (the config layer decides): %v", err)
	}
	if _, err := b.ConnZone("z", "$a", mb); err == nil || !strings.Contains(err.Error(), "already bound") {
		t.Errorf("second limit_conn_zone z: error %v, want already bound", err)
	}
}

func TestRegistryConnZones(t *testing.T) {
	reg := NewRegistry(nil)
	key := []byte("ip")
	b := reg.Begin()
	old, err := b.ConnZone("addr", "$binary_remote_addr", mb)
	if err != nil {
		t.Fatal(err)
	}
	b.Commit()
	lease, err := old.Acquire(key, 5)
	if err != nil {
		t.Fatal(err)
	}

	// Reload with the same zone: the open connection is still counted, and
	// releasing it through the old snapshot's lease frees it in the new.
	b = reg.Begin()
	z, err := b.ConnZone("addr", "$binary_remote_addr", mb)
	if err != nil {
		t.Fatal(err)
	}
	b.Commit()
	if got := z.Count(key); got != 1 {
		t.Errorf("after reload Count = %d, want 1", got)
	}
	if _, err := b.ConnZone("addr", "$other", 2*mb); err == nil {
		t.Error("a second zone of the same name in one build was accepted")
	}
	lease.Release()
	if got := z.Count(key); got != 0 || z.Len() != 0 {
		t.Errorf("after release Count = %d, Len = %d, want 0, 0", got, z.Len())
	}

	b = reg.Begin()
	if _, err := b.ConnZone("addr", "$remote_addr", mb); err == nil || !strings.Contains(err.Error(), "previously") {
		t.Errorf("key change: error %v, want a refusal", err)
	}
	// A build without the zone forgets it once committed.
	reg.Begin().Commit()
	b = reg.Begin()
	fresh, err := b.ConnZone("addr", "$remote_addr", mb)
	if err != nil || fresh.st == z.st {
		t.Errorf("after the zone was dropped: err %v, shared %v; want a new zone", err, fresh.st == z.st)
	}
}
