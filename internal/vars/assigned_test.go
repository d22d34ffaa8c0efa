package vars

import "testing"

// TestAssigned: Assigned copies the values of set and capture variables,
// not those of computed ones, and Assign gives them to another Ctx.
func TestAssigned(t *testing.T) {
	tab := NewTable()
	s, _ := tab.DefineSet("mine")
	cp, _ := tab.DefineCapture("sub")
	tab.DefineSet("unset")
	f, _ := tab.DefineFunc("computed", func(*Ctx) string { return "f" })
	c := newCtx(tab)
	c.Set(s, "one")
	c.Set(cp, "two")
	c.Get(f) // cached, but computed: not assigned
	as := c.Assigned()
	if len(as) != 2 {
		t.Fatalf("assigned %v, want mine and sub", as)
	}
	d := newCtx(tab)
	d.Assign(as)
	if got := tab.MustCompile("$mine $sub").Eval(d); got != "one two" {
		t.Errorf("got %q", got)
	}
}
