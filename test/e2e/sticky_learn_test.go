package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// startSessionBackend is a backend named name that creates a session
// (Set-Cookie: sid=NAME-N) on /login, names itself in X-Backend on every
// answer and echoes WebSocket messages.
func startSessionBackend(t *testing.T, name string) string {
	t.Helper()
	var n atomic.Int64
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if websocket.IsWebSocketUpgrade(r) {
			c, err := up.Upgrade(w, r, http.Header{"X-Backend": {name}})
			if err != nil {
				return
			}
			defer c.Close()
			for {
				mt, msg, err := c.ReadMessage()
				if err != nil || c.WriteMessage(mt, msg) != nil {
					return
				}
			}
		}
		if r.URL.Path == "/login" {
			http.SetCookie(w, &http.Cookie{Name: "sid", Value: fmt.Sprintf("%s-%d", name, n.Add(1))})
		}
		w.Header().Set("X-Backend", name)
		io.WriteString(w, name)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// sessionGet fetches url with cookie sid=sid (none when empty) and returns
// the answering backend and the session it created, if any.
func sessionGet(t *testing.T, url, sid string) (backend, created string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if sid != "" {
		req.AddCookie(&http.Cookie{Name: "sid", Value: sid})
	}
	c := &http.Client{Timeout: slow(5 * time.Second), Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == "sid" {
			created = ck.Value
		}
	}
	return resp.Header.Get("X-Backend"), created
}

// TestUpstreamStickyLearn: nginx Plus's `sticky learn`: the session a
// backend creates (its Set-Cookie, read by create=) is remembered with that
// backend; requests and WebSocket handshakes carrying it (lookup=) go back
// there, where round robin alone would alternate, also after a reload; an
// unknown session is balanced; a session unused for timeout= is forgotten.
func TestUpstreamStickyLearn(t *testing.T) {
	a, b := startSessionBackend(t, "a"), startSessionBackend(t, "b")
	port := freePort(t)
	timeout := slow(2 * time.Second)
	conf := upConf(port, fmt.Sprintf("sticky learn create=$upstream_cookie_sid lookup=$cookie_sid zone=sessions:1m timeout=%dms;\nserver %s;\nserver %s;",
		timeout.Milliseconds(), a, b), "")
	g := startGate(t, conf)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	sids := map[string]string{}
	for range 2 {
		be, sid := sessionGet(t, base+"/login", "")
		if sid == "" {
			t.Fatalf("backend %q created no session", be)
		}
		sids[be] = sid
	}
	if sids["a"] == "" || sids["b"] == "" {
		t.Fatalf("round robin did not reach both backends: %v", sids)
	}
	for be, sid := range sids {
		for i := range 3 { // in a row: round robin alone would alternate
			if got, _ := sessionGet(t, base+"/page", sid); got != be {
				t.Fatalf("request %d with session %s of %s went to %q", i, sid, be, got)
			}
		}
	}
	ws, resp := dial(t, fmt.Sprintf("ws://127.0.0.1:%d/ws", port), http.Header{"Cookie": {"sid=" + sids["b"]}})
	if got := resp.Header.Get("X-Backend"); got != "b" {
		t.Fatalf("a WebSocket with b's session went to %q", got)
	}
	echo(t, ws, "learned")
	ws.Close()

	// A reload keeps the zone's sessions.
	if !g.reload(t, conf+"\n# reloaded\n") {
		t.Fatal("reload failed")
	}
	for i := range 3 {
		if got, _ := sessionGet(t, base+"/page", sids["b"]); got != "b" {
			t.Fatalf("request %d with b's session after a reload went to %q", i, got)
		}
	}

	seen := map[string]bool{}
	for range 4 {
		be, _ := sessionGet(t, base+"/page", "unknown-session")
		seen[be] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Fatalf("an unknown session was not balanced: %v", seen)
	}

	// Expiry is a matter of time passing unused: any request with the
	// session would renew it, so this waits without polling.
	time.Sleep(timeout + timeout/2)
	seen = map[string]bool{}
	for range 4 {
		be, _ := sessionGet(t, base+"/page", sids["a"])
		seen[be] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Fatalf("a session unused for timeout= still routes: %v", seen)
	}
}
