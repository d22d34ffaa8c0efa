package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// upstreamsConf is an instance whose upstream "app" has a zone and a state
// file, changed through a writable api. Arguments: cluster_store line,
// listening port, state file.
const upstreamsConf = `
error_log {{DIR}}/error.log info;
http {
    %s
    upstream app {
        zone app 64k;
        state %[3]s;
    }
    server {
        listen 127.0.0.1:%[2]d;
        location /api/ {
            allow 127.0.0.1;
            deny all;
            api write=on;
        }
        location /ro/ { api; }
        location / {
            websocket_drain_period 200ms;
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }
    }
}`

type apiServerDoc struct {
	ID     int    `json:"id"`
	Server string `json:"server"`
	Weight int    `json:"weight"`
	Down   bool   `json:"down"`
	Drain  bool   `json:"drain"`
}

// apiSend sends method url with body (JSON, or none) and returns the
// status and body.
func apiSend(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, r)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// listServers reads an instance's servers of app.
func listServers(t *testing.T, addr string) []apiServerDoc {
	t.Helper()
	code, body := apiSend(t, "GET", "http://"+addr+"/api/9/http/upstreams/app/servers", "")
	if code != 200 {
		t.Fatalf("GET servers on %s: %d %s", addr, code, body)
	}
	var list []apiServerDoc
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatalf("servers list %q: %v", body, err)
	}
	return list
}

func serverSet(list []apiServerDoc) string {
	var s []string
	for _, a := range list {
		s = append(s, fmt.Sprintf("%d=%s", a.ID, a.Server))
	}
	return strings.Join(s, ",")
}

// TestClusterUpstreamAPI: three instances share one upstream through
// Redis. A POST on one is seen by all three within a second and reaches
// the state files; all three restarted keep it; a DELETE on one drains the
// tunnels of the removed server, on another instance, with 1001; the
// read-only api refuses writes.
func TestClusterUpstreamAPI(t *testing.T) {
	r := startRedis(t)
	b1, b2 := startBackend(t, "b1"), startBackend(t, "b2")
	store := fmt.Sprintf("cluster_store redis://%s timeout=1s;", r.addr())
	var confs, addrs, states []string
	for range 3 {
		state := filepath.Join(t.TempDir(), "app.state")
		os.WriteFile(state, []byte("server "+b1.addr+";\n"), 0o644)
		port := freePort(t)
		confs = append(confs, fmt.Sprintf(upstreamsConf, store, port, state))
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", port))
		states = append(states, state)
	}
	var gates []*gate
	for _, c := range confs {
		gates = append(gates, startGate(t, c))
	}
	for _, a := range addrs {
		if got := serverSet(listServers(t, a)); got != "0="+b1.addr {
			t.Fatalf("%s starts with %s, want 0=%s", a, got, b1.addr)
		}
	}
	ws, _ := dial(t, "ws://"+addrs[0]+"/", nil)
	echo(t, ws, "before")

	if code, body := apiSend(t, "POST", "http://"+addrs[1]+"/ro/9/http/upstreams/app/servers", `{"server":"`+b2.addr+`"}`); code != 405 {
		t.Fatalf("POST on the read-only api: %d %s", code, body)
	}
	code, body := apiSend(t, "POST", "http://"+addrs[1]+"/api/9/http/upstreams/app/servers", `{"server":"`+b2.addr+`","weight":2}`)
	if code != 201 || !strings.Contains(body, `"id":1`) || !strings.Contains(body, `"weight":2`) {
		t.Fatalf("POST: %d %s", code, body)
	}
	want := "0=" + b1.addr + ",1=" + b2.addr
	waitFor(t, time.Second, "every instance to list the new server", func() bool {
		for _, a := range addrs {
			if serverSet(listServers(t, a)) != want {
				return false
			}
		}
		return true
	})
	for _, st := range states {
		waitFor(t, time.Second, "the state file to name the new server", func() bool {
			b, _ := os.ReadFile(st)
			return strings.Contains(string(b), "server "+b2.addr+" weight=2 ")
		})
	}
	if code, body := apiSend(t, "POST", "http://"+addrs[0]+"/api/9/http/upstreams/app/servers", `{"server":"x","bogus":1}`); code != 400 {
		t.Fatalf("POST with an unknown field: %d %s", code, body)
	}

	// A reload keeps the store's list.
	if !gates[1].reload(t, confs[1]) {
		t.Fatalf("reload failed:\n%s", gates[1].errorLog())
	}
	waitFor(t, time.Second, "the reloaded instance to list the store's servers", func() bool {
		return serverSet(listServers(t, addrs[1])) == want
	})

	// DELETE b1 on the third instance: the first one's tunnel to b1 drains.
	if code, body := apiSend(t, "DELETE", "http://"+addrs[2]+"/api/9/http/upstreams/app/servers/0", ""); code != 200 || strings.Contains(body, b1.addr) {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	ws.SetReadDeadline(time.Now().Add(slow(5 * time.Second)))
	_, _, err := ws.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 1001 {
		t.Fatalf("the tunnel to the deleted server ended with %v, want close 1001", err)
	}
	// New tunnels go to b2 only.
	ws2, resp := dial(t, "ws://"+addrs[0]+"/", nil)
	if resp.Header.Get("X-Backend") != "b2" {
		t.Fatalf("a new tunnel went to %q", resp.Header.Get("X-Backend"))
	}
	echo(t, ws2, "after")
	ws2.Close()

	if code, _ := apiSend(t, "PUT", "http://"+addrs[0]+"/api/9/http/upstreams/app/servers/1", "{}"); code != 405 {
		t.Fatalf("PUT on a server: %d, want 405", code)
	}
	code, body = apiSend(t, "PATCH", "http://"+addrs[0]+"/api/9/http/upstreams/app/servers/1", `{"weight":0}`)
	if code != 400 || !strings.Contains(body, "UpstreamConfFormatError") {
		t.Fatalf("PATCH weight=0: %d %s", code, body)
	}

	// All three restarted: the list is the store's.
	for _, g := range gates {
		g.stop()
	}
	for i, c := range confs {
		startGate(t, c)
		if got := serverSet(listServers(t, addrs[i])); got != "1="+b2.addr {
			waitFor(t, time.Second, "the restarted instance to list the store's servers", func() bool {
				return serverSet(listServers(t, addrs[i])) == "1="+b2.addr
			})
		}
	}

	// Without the store, a change is refused and nothing changes.
	r.stop()
	if code, body := apiSend(t, "POST", "http://"+addrs[0]+"/api/9/http/upstreams/app/servers", `{"server":"`+b1.addr+`"}`); code != 503 {
		t.Fatalf("POST with the store down: %d %s", code, body)
	}
	if got := serverSet(listServers(t, addrs[0])); got != "1="+b2.addr {
		t.Fatalf("a refused change changed the list: %s", got)
	}
}

// TestUpstreamAPIStateFile: without a cluster store, a change reaches the
// state file and survives a restart; PATCH marks a server down; an
// upstream without a zone refuses changes.
func TestUpstreamAPIStateFile(t *testing.T) {
	b1, b2 := startBackend(t, "b1"), startBackend(t, "b2")
	state := filepath.Join(t.TempDir(), "app.state")
	port := freePort(t)
	conf := fmt.Sprintf(upstreamsConf, "upstream static { server "+b1.addr+"; }", port, state)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	g := startGate(t, conf)
	if got := listServers(t, addr); len(got) != 0 {
		t.Fatalf("an upstream whose state file does not exist yet has servers: %v", got)
	}
	if code, _ := apiSend(t, "GET", "http://"+addr+"/", ""); code != 502 {
		t.Fatalf("a request to an upstream without servers: %d, want 502", code)
	}
	for _, b := range []*backend{b1, b2} {
		if code, body := apiSend(t, "POST", "http://"+addr+"/api/9/http/upstreams/app/servers", `{"server":"`+b.addr+`"}`); code != 201 {
			t.Fatalf("POST: %d %s", code, body)
		}
	}
	code, body := apiSend(t, "PATCH", "http://"+addr+"/api/9/http/upstreams/app/servers/0", `{"down":true}`)
	if code != 200 || !strings.Contains(body, `"down":true`) {
		t.Fatalf("PATCH: %d %s", code, body)
	}
	for range 4 {
		_, resp := dial(t, "ws://"+addr+"/", nil)
		if resp.Header.Get("X-Backend") != "b2" {
			t.Fatalf("a tunnel went to %q, a server marked down", resp.Header.Get("X-Backend"))
		}
	}
	if code, body := apiSend(t, "POST", "http://"+addr+"/api/9/http/upstreams/static/servers", `{"server":"`+b2.addr+`"}`); code != 400 || !strings.Contains(body, "UpstreamStatic") {
		t.Fatalf("POST to an upstream without a zone: %d %s", code, body)
	}
	if code, _ := apiSend(t, "GET", "http://"+addr+"/api/9/http/upstreams/app/servers/7", ""); code != 404 {
		t.Fatalf("GET of an unknown server: %d", code)
	}
	g.stop()
	b, _ := os.ReadFile(state)
	if want := "server " + b1.addr + " weight=1 max_fails=1 fail_timeout=10s down;\nserver " + b2.addr + " weight=1 max_fails=1 fail_timeout=10s;\n"; string(b) != want {
		t.Fatalf("state file:\n%s\nwant:\n%s", b, want)
	}
	startGate(t, conf)
	list := listServers(t, addr)
	if len(list) != 2 || !list[0].Down || list[1].Server != b2.addr {
		t.Fatalf("after a restart: %+v", list)
	}
}
