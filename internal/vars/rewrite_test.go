package vars

import "testing"

type warnings []string

func (w *warnings) UninitializedVariable(name string) { *w = append(*w, name) }

// TestRewriteChangesSeen: what rewrite and internal redirects change
// ($uri, $args, captures) is read afresh, never from a cached value.
func TestRewriteChangesSeen(t *testing.T) {
	tab := NewTable()
	tpl, err := tab.Compile("$uri|$args|$is_args|$1|$arg_a")
	if err != nil {
		t.Fatal(err)
	}
	c := newCtx(tab)
	c.Captures = []string{"/ws", "one"}
	if got := tpl.Eval(c); got != "/ws|a=1&B=two|?|one|1" {
		t.Fatalf("before: %q", got)
	}
	c.Path, c.Args, c.Captures = "/new", "", []string{"/new", "two"}
	if got := tpl.Eval(c); got != "/new|||two|" {
		t.Fatalf("after a rewrite: %q", got)
	}
}

func TestSetMethodKeepsRequestLine(t *testing.T) {
	c := newCtx(NewTable())
	c.Method, c.Target = "POST", "/form"
	c.SetMethod("GET")
	c.SetMethod("GET")
	if m, _ := c.GetName("request_method"); m != "GET" {
		t.Errorf("$request_method %q", m)
	}
	if got := c.RequestLine(); got != "POST /form HTTP/1.1" {
		t.Errorf("$request %q, want the line as sent", got)
	}
}

func TestUninitializedWarn(t *testing.T) {
	tab := NewTable()
	i, err := tab.DefineSet("later")
	if err != nil {
		t.Fatal(err)
	}
	c := newCtx(tab)
	var w warnings
	c.Warn = &w
	if v := c.Get(i); v != "" || len(w) != 1 || w[0] != "later" {
		t.Fatalf("unset: %q, warnings %v", v, w)
	}
	c.Set(i, "x")
	if v := c.Get(i); v != "x" || len(w) != 1 {
		t.Fatalf("set: %q, warnings %v", v, w)
	}
	if v, _ := c.GetName("remote_addr"); v == "" || len(w) != 1 {
		t.Fatalf("a built-in variable warned: %v", w)
	}
	j, err := tab.DefineCapture("group")
	if err != nil {
		t.Fatal(err)
	}
	c = newCtx(tab)
	c.Warn = &w
	if v := c.Get(j); v != "" || len(w) != 1 {
		t.Fatalf("an unset named capture warned: %q %v", v, w)
	}
	if _, err := tab.DefineCapture("uri"); err == nil {
		t.Fatal("a named capture may not shadow $uri")
	}
}
