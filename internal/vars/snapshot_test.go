package vars

import (
	"testing"
	"time"
)

// TestFreezeRestore: a snapshot keeps the values its variables had at the
// 101 (request headers, the upstream's address, `set` values) without the
// request, and the late variables are computed from what the session's
// end sets on the restored context.
func TestFreezeRestore(t *testing.T) {
	tab := NewTable()
	setIdx, err := tab.DefineSet("who")
	if err != nil {
		t.Fatal(err)
	}
	// Compiled before any request, as a configuration's formats are.
	var idx []int
	for _, name := range []string{"http_upgrade", "cookie_sid", "upstream_addr", "who", "status", "request_time", "websocket_close_code", "http_upgrade", "request_completion"} {
		i, ok := tab.Lookup(name)
		if !ok {
			t.Fatalf("no $%s", name)
		}
		idx = append(idx, i)
	}
	c := newCtx(tab)
	c.UpstreamAddr = "127.0.0.1:9000"
	c.Set(setIdx, "alice")
	s := c.Freeze(idx)
	if s == nil {
		t.Fatal("Freeze refused variables that are all settled or late")
	}
	kept := map[string]string{}
	s.Each(func(name, v string) { kept[name] = v })
	want := map[string]string{"http_upgrade": "websocket", "cookie_sid": "xyz", "upstream_addr": "127.0.0.1:9000", "who": "alice", "status": "101"}
	if len(kept) != len(want) {
		t.Errorf("kept %v, want %v (late ones left out, duplicates once)", kept, want)
	}
	for k, v := range want {
		if kept[k] != v {
			t.Errorf("kept $%s = %q, want %q", k, kept[k], v)
		}
	}

	r := &Ctx{}
	s.Restore(r)
	if r.Header != nil {
		t.Error("the restored context holds the request's head")
	}
	r.End = c.Start.Add(2500 * time.Millisecond)
	r.WS = WSSession{CloseCode: 1001, Closed: true}
	for name, v := range map[string]string{
		"http_upgrade": "websocket", "cookie_sid": "xyz", "upstream_addr": "127.0.0.1:9000", "who": "alice", "status": "101",
		"request_time": "2.500", "websocket_close_code": "1001", "request_completion": "OK",
	} {
		if got, _ := r.GetName(name); got != v {
			t.Errorf("restored $%s = %q, want %q", name, got, v)
		}
	}
}

// TestFreezeLateMap: a map of a late variable cannot be settled at the
// 101: Freeze returns nil and leaves the context's cache as it found it,
// so that the map is computed at the end.
func TestFreezeLateMap(t *testing.T) {
	tab := NewTable()
	compile, err := tab.DeclareMap(MapSpec{Source: "$request_time", Result: "slow", Default: "yes", Entries: []MapEntry{{Key: "0.000", Value: "no"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := compile(); err != nil {
		t.Fatal(err)
	}
	slow, _ := tab.Lookup("slow")
	ua, _ := tab.Lookup("http_upgrade")
	c := newCtx(tab)
	c.End = time.Time{}
	c.Start = time.Now().Add(-time.Hour)
	if s := c.Freeze([]int{ua, slow}); s != nil {
		t.Fatal("Freeze settled a map of $request_time at the 101")
	}
	if c.have[slow] || c.have[ua] {
		t.Error("Freeze left values it evaluated in the context's cache")
	}
	c.End = c.Start
	if got := c.Get(slow); got != "no" {
		t.Errorf("$slow at the end = %q, want %q", got, "no")
	}
}

// TestSetName: a moved tunnel's values reach a table that numbers them
// differently, and one it does not know is refused.
func TestSetName(t *testing.T) {
	tab := NewTable()
	tab.Lookup("http_upgrade")
	c := newCtx(tab)
	if !c.SetName("http_upgrade", "frozen") {
		t.Fatal("SetName refused $http_upgrade")
	}
	if got, _ := c.GetName("http_upgrade"); got != "frozen" {
		t.Errorf("$http_upgrade = %q after SetName", got)
	}
	if c.SetName("no_such_variable", "x") {
		t.Error("SetName accepted an unknown variable")
	}
}
