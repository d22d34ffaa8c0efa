package e2e

import (
	"fmt"
	"io"
	"net/http"
	"testing"
)

// routingConf is one instance of a cluster with no shared state: two
// upstreams over the same three backends, one by consistent hash of
// $arg_user, one with a sticky cookie. Arguments: port, then the
// backends twice.
const routingConf = `
error_log {{DIR}}/error.log info;
http {
    upstream byhash {
        hash $arg_user consistent;
        server %[2]s;
        server %[3]s;
        server %[4]s;
    }
    upstream bycookie {
        sticky cookie srv_id;
        server %[2]s;
        server %[3]s;
        server %[4]s;
    }
    server {
        listen 127.0.0.1:%[1]d;
        location /hash { proxy_pass http://byhash; }
        location /sticky { proxy_pass http://bycookie; }
    }
}`

// TestClusterConsistentRouting: three instances with the same
// configuration send each user to the same backend by consistent hash, and
// honour each other's sticky cookies.
func TestClusterConsistentRouting(t *testing.T) {
	var bes []*backend
	for i := range 3 {
		bes = append(bes, startBackend(t, fmt.Sprintf("b%d", i)))
	}
	var addrs []string
	for range 3 {
		port := freePort(t)
		startGate(t, fmt.Sprintf(routingConf, port, bes[0].addr, bes[1].addr, bes[2].addr))
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", port))
	}
	get := func(addr, path, cookie string) (string, string) {
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		c := ""
		if cs := resp.Cookies(); len(cs) > 0 {
			c = cs[0].Name + "=" + cs[0].Value
		}
		return resp.Header.Get("X-Backend"), c
	}
	used := map[string]bool{}
	for u := range 60 {
		path := fmt.Sprintf("/hash?user=u%d", u)
		first, _ := get(addrs[0], path, "")
		used[first] = true
		for _, a := range addrs[1:] {
			if got, _ := get(a, path, ""); got != first {
				t.Fatalf("user u%d: %s through the first instance, %s through %s", u, first, got, a)
			}
		}
	}
	if len(used) != 3 {
		t.Errorf("60 users reached backends %v, want all three", used)
	}
	for range 6 {
		first, cookie := get(addrs[0], "/sticky", "")
		if cookie == "" {
			t.Fatal("no sticky cookie")
		}
		for _, a := range addrs[1:] {
			if got, _ := get(a, "/sticky", cookie); got != first {
				t.Fatalf("cookie %s: %s through the first instance, %s through %s", cookie, first, got, a)
			}
		}
	}
}
