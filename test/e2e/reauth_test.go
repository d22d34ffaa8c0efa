package e2e

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// authServer is a real auth backend for auth_request: it answers 200
// with X-User for the token in the "session" cookie, 401 for a token it
// has been told to refuse, and counts the checks of each token.
type authServer struct {
	srv     *httptest.Server
	mu      sync.Mutex
	refused map[string]bool
	checks  map[string]int
}

func startAuthServer(t *testing.T) *authServer {
	t.Helper()
	a := &authServer{refused: map[string]bool{}, checks: map[string]int{}}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie("session")
		if err != nil {
			w.WriteHeader(401)
			return
		}
		a.mu.Lock()
		a.checks[c.Value]++
		n, refused := a.checks[c.Value], a.refused[c.Value]
		a.mu.Unlock()
		if refused {
			w.WriteHeader(401)
			return
		}
		w.Header().Set("X-User", fmt.Sprintf("%s-%d", c.Value, n))
		w.WriteHeader(200)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *authServer) refuse(token string) {
	a.mu.Lock()
	a.refused[token] = true
	a.mu.Unlock()
}

func (a *authServer) count(token string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.checks[token]
}

const reauthConf = `
error_log {{DIR}}/error.log info;
http {
    log_format ws '$cookie_session $websocket_close_reason $websocket_close_code $auth_user';
    access_log {{DIR}}/ws.log ws;
    server {
        listen 127.0.0.1:%d;
        location /ws {
            auth_request /auth;
            auth_request_set $auth_user $upstream_http_x_user;
            websocket_reauth_interval %dms %s;
            proxy_pass http://%s;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }
        location = /metrics { metrics; }
        location = /auth {
            internal;
            proxy_pass http://%s;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_connect_timeout 2s;
        }
    }
}`

// reauthSession is one client session of a reauth test.
type reauthSession struct {
	token string
	c     *websocket.Conn
}

// openReauthSessions opens a session per token, each checked by an echo.
func openReauthSessions(t *testing.T, port int, tokens ...string) []*reauthSession {
	t.Helper()
	var ss []*reauthSession
	for i, tok := range tokens {
		c, _ := dial(t, fmt.Sprintf("ws://127.0.0.1:%d/ws", port), http.Header{"Cookie": {"session=" + tok}})
		echo(t, c, fmt.Sprintf("hello %d", i))
		ss = append(ss, &reauthSession{token: tok, c: c})
	}
	return ss
}

// expectClose waits for the session's close frame and returns its code.
func (s *reauthSession) expectClose(t *testing.T, d time.Duration) int {
	t.Helper()
	s.c.SetReadDeadline(time.Now().Add(d))
	for {
		_, _, err := s.c.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		if err != nil {
			t.Fatalf("session %s: %v, want a close frame", s.token, err)
		}
	}
}

// TestReauthClosesRefusedSessions: once the auth backend refuses a token,
// exactly the sessions with that token get close 1008 within one interval
// and are logged with reason "reauth"; the others stay open, echo, and
// are checked again with their own cookie, auth_request_set taking the
// latest answer.
func TestReauthClosesRefusedSessions(t *testing.T) {
	auth := startAuthServer(t)
	be := startBackend(t, "ws")
	port := freePort(t)
	interval := slow(time.Second)
	g := startGate(t, fmt.Sprintf(reauthConf, port, interval.Milliseconds(), "", be.addr, auth.srv.Listener.Addr()))
	ss := openReauthSessions(t, port, "alice", "bob", "alice", "bob", "carol")
	// Every session is checked at least once after its handshake.
	waitFor(t, 3*interval, "a re-authorisation of every session", func() bool {
		return auth.count("alice") >= 4 && auth.count("bob") >= 4 && auth.count("carol") >= 2
	})
	auth.refuse("bob")
	refusedAt := time.Now()
	for _, s := range ss {
		if s.token != "bob" {
			continue
		}
		if code := s.expectClose(t, 3*interval); code != websocket.ClosePolicyViolation {
			t.Errorf("bob's session closed with %d, want 1008", code)
		}
		// One interval, and slack for the close to travel on a loaded machine.
		if took := time.Since(refusedAt); took > interval+slow(time.Second) {
			t.Errorf("bob's session closed %v after the refusal, want within the interval %v", took, interval)
		}
	}
	// The others pass another full round of checks and still echo.
	before := auth.count("alice")
	waitFor(t, 3*interval, "another round of checks for alice", func() bool { return auth.count("alice") >= before+2 })
	for i, s := range ss {
		if s.token != "bob" {
			echo(t, s.c, fmt.Sprintf("still here %d", i))
		}
	}
	for _, s := range ss {
		if s.token != "bob" {
			s.c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
			s.expectClose(t, slow(5*time.Second))
		}
	}
	var lines []string
	waitFor(t, 10*time.Second, "five sessions logged", func() bool {
		lines = strings.Split(strings.TrimSpace(readFile(g.dir+"/ws.log")), "\n")
		return len(lines) == 5
	})
	reauth := 0
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) != 4 {
			t.Fatalf("log line %q", l)
		}
		switch f[0] {
		case "bob":
			reauth++
			if f[1] != "reauth" || f[2] != "1008" {
				t.Errorf("bob's line %q, want reason reauth, code 1008", l)
			}
		default:
			if f[1] != "peer" {
				t.Errorf("line %q, want reason peer", l)
			}
			// $auth_user comes from a later check than the handshakes
			// (alice's are answered alice-1 and alice-2, carol's carol-1).
			var n int
			if _, err := fmt.Sscanf(f[3], f[0]+"-%d", &n); err != nil || n <= map[string]int{"alice": 2, "carol": 1}[f[0]] {
				t.Errorf("line %q: $auth_user is not from a re-authorisation", l)
			}
		}
	}
	if reauth != 2 {
		t.Errorf("%d sessions logged for bob, want 2:\n%s", reauth, strings.Join(lines, "\n"))
	}
	counters, _ := scrapeWS(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	byReason := map[string]float64{}
	for k, v := range counters {
		if strings.HasPrefix(k, "wsgate_websocket_location_sessions_ended_total{location=/ws,") {
			_, r, _ := strings.Cut(k, "reason=")
			r, _, _ = strings.Cut(r, ",")
			byReason[r] += v
		}
	}
	if byReason["reauth"] != 2 || byReason["peer"] != 3 {
		t.Errorf("sessions ended by reason %v, want reauth 2, peer 3", byReason)
	}
	if strings.Contains(g.stderr.String(), "DATA RACE") { // with WSGATE_E2E_RACE=1
		t.Errorf("data race:\n%s", g.stderr)
	}
	if !strings.Contains(g.errorLog(), "WebSocket session refused by re-authorization with 401") {
		t.Errorf("no refusal in the error log:\n%s", g.errorLog())
	}
}

// TestReauthAuthBackendDown: with the auth backend unreachable the checks
// fail, are logged, and the sessions stay open (fail-open); with
// on_error=close the same failure closes them with 1008.
func TestReauthAuthBackendDown(t *testing.T) {
	for _, mode := range []string{"", "on_error=close"} {
		t.Run("mode_"+strings.TrimPrefix(mode, "on_error="), func(t *testing.T) {
			auth := startAuthServer(t)
			be := startBackend(t, "ws")
			port := freePort(t)
			interval := slow(500 * time.Millisecond)
			g := startGate(t, fmt.Sprintf(reauthConf, port, interval.Milliseconds(), mode, be.addr, auth.srv.Listener.Addr()))
			ss := openReauthSessions(t, port, "alice", "bob")
			auth.srv.Close()
			if mode != "" {
				for _, s := range ss {
					if code := s.expectClose(t, 3*interval+slow(3*time.Second)); code != websocket.ClosePolicyViolation {
						t.Errorf("closed with %d, want 1008", code)
					}
				}
				waitFor(t, 10*time.Second, "the sessions logged", func() bool {
					return strings.Count(readFile(g.dir+"/ws.log"), " reauth 1008 ") == 2
				})
				return
			}
			waitFor(t, 6*interval+slow(3*time.Second), "two failed checks per session", func() bool {
				return strings.Count(g.errorLog(), "auth request unexpected status: 502 while re-authorizing a WebSocket session, keeping it") >= 4
			})
			for i, s := range ss {
				echo(t, s.c, fmt.Sprintf("still here %d", i))
			}
			if l := readFile(g.dir + "/ws.log"); l != "" {
				t.Errorf("sessions ended: %s", l)
			}
		})
	}
}

// TestReauthAcrossReload: a session that a reload keeps is still
// re-authorised afterwards, against the configuration it started under.
func TestReauthAcrossReload(t *testing.T) {
	auth := startAuthServer(t)
	be := startBackend(t, "ws")
	port := freePort(t)
	interval := slow(500 * time.Millisecond)
	conf := fmt.Sprintf(reauthConf, port, interval.Milliseconds(), "", be.addr, auth.srv.Listener.Addr())
	g := startGate(t, conf)
	ss := openReauthSessions(t, port, "dave")
	if !g.reload(t, strings.Replace(conf, "access_log {{DIR}}/ws.log ws;", "access_log {{DIR}}/ws.log ws; server_tokens off;", 1)) {
		t.Fatalf("reload failed:\n%s", g.errorLog())
	}
	before := auth.count("dave")
	waitFor(t, 4*interval, "a check after the reload", func() bool { return auth.count("dave") > before })
	echo(t, ss[0].c, "after reload")
	auth.refuse("dave")
	if code := ss[0].expectClose(t, 3*interval+slow(2*time.Second)); code != websocket.ClosePolicyViolation {
		t.Errorf("closed with %d, want 1008", code)
	}
}

// TestReauthSatisfyAny: under `satisfy any`, a session that allow lets
// in stays open when auth_request refuses its token, while a session of
// a plain location with the same token is closed.
func TestReauthSatisfyAny(t *testing.T) {
	auth := startAuthServer(t)
	be := startBackend(t, "ws")
	port := freePort(t)
	interval := slow(300 * time.Millisecond)
	conf := fmt.Sprintf(reauthConf, port, interval.Milliseconds(), "", be.addr, auth.srv.Listener.Addr())
	conf = strings.Replace(conf, "        location /ws {", fmt.Sprintf(`        location /any {
            satisfy any;
            allow 127.0.0.1;
            deny all;
            auth_request /auth;
            websocket_reauth_interval %dms;
            proxy_pass http://%s;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }
        location /ws {`, interval.Milliseconds(), be.addr), 1)
	conf = strings.Replace(conf, "error.log info;", "error.log debug;", 1)
	g := startGate(t, conf)
	plain := openReauthSessions(t, port, "erin")[0]
	anyc, _ := dial(t, fmt.Sprintf("ws://127.0.0.1:%d/any", port), http.Header{"Cookie": {"session=erin"}})
	echo(t, anyc, "hello")
	auth.refuse("erin")
	const admitted = "WebSocket session re-authorized by allow or auth_basic"
	n := strings.Count(g.errorLog(), admitted)
	if code := plain.expectClose(t, 3*interval+slow(2*time.Second)); code != websocket.ClosePolicyViolation {
		t.Fatalf("plain session closed with %d, want 1008", code)
	}
	waitFor(t, 4*interval+slow(2*time.Second), "two checks of the allowed session after the refusal", func() bool {
		return strings.Count(g.errorLog(), admitted) >= n+2
	})
	echo(t, anyc, "allowed by address")
}
