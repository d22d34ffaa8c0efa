package e2e

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Differential tests of proxy_cache: the same configuration under nginx
// and wsgate, the same requests, and a comparison of what the clients see
// ($upstream_cache_status in X-Cache among it) and of what the backend
// received: the backend numbers the requests it gets per proxy and path,
// and says so in the body, so a hit that should not have reached it, or a
// miss that should have, shows as a different body.

// cacheBackend answers as its query says (h=Name:Value adds a header,
// status=N, etag=E sets ETag "E" and a fixed Last-Modified and answers a
// matching If-None-Match with 304, sleep=ms waits first, size=N pads the
// body; length=1 sends a Content-Length, else a body over 2 KiB is
// chunked). Requests are counted per proxy (the X-Via header the configs set
// to $server_port) and target.
type cacheBackend struct {
	addr string
	mu   sync.Mutex
	hits map[string]int
	cond map[string]string // the conditional headers of the last request
	down atomic.Bool       // close connections without answering
	fail atomic.Bool       // answer 500
}

const cacheLastModified = "Mon, 02 Jan 2006 15:04:05 GMT"

func startCacheBackend(t testing.TB) *cacheBackend {
	t.Helper()
	b := &cacheBackend{hits: map[string]int{}, cond: map[string]string{}}
	srv := httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(srv.Close)
	b.addr = srv.Listener.Addr().String()
	return b
}

func (b *cacheBackend) serve(w http.ResponseWriter, r *http.Request) {
	if b.down.Load() {
		if c, _, err := w.(http.Hijacker).Hijack(); err == nil {
			c.Close()
		}
		return
	}
	q := r.URL.Query()
	key := r.Header.Get("X-Via") + " " + r.URL.RequestURI()
	cond := fmt.Sprintf("method=%s inm=%q ims=%q range=%q", r.Method, r.Header.Get("If-None-Match"), r.Header.Get("If-Modified-Since"), r.Header.Get("Range"))
	b.mu.Lock()
	b.hits[key]++
	n := b.hits[key]
	b.cond[key] = cond
	b.mu.Unlock()
	if ms, err := strconv.Atoi(q.Get("sleep")); err == nil {
		time.Sleep(time.Duration(ms) * time.Millisecond)
	}
	for _, h := range q["h"] {
		name, value, _ := strings.Cut(h, ":")
		w.Header().Add(name, value)
	}
	w.Header().Set("Content-Type", "text/plain")
	if e := q.Get("etag"); e != "" {
		w.Header().Set("ETag", `"`+e+`"`)
		w.Header().Set("Last-Modified", cacheLastModified)
		if r.Header.Get("If-None-Match") == `"`+e+`"` {
			w.WriteHeader(304)
			return
		}
	}
	status := 200
	if s, err := strconv.Atoi(q.Get("status")); err == nil {
		status = s
	}
	if b.fail.Load() {
		status = 500
	}
	body := fmt.Sprintf("n=%d %s\n", n, cond)
	if size, err := strconv.Atoi(q.Get("size")); err == nil {
		body += strings.Repeat("x", size)
	}
	if q.Get("length") != "" {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	}
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// count is how many requests for target the proxy on port sent.
func (b *cacheBackend) count(port, target string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.hits[port+" "+target]
}

// sameRequests fails unless both proxies sent target to the backend
// equally often and with the same conditional headers last; it returns
// those headers.
func (b *cacheBackend) sameRequests(t testing.TB, p *diffPair, target string) string {
	t.Helper()
	_, ngPort, _ := net.SplitHostPort(p.nginx)
	_, wsPort, _ := net.SplitHostPort(p.wsgate)
	b.mu.Lock()
	defer b.mu.Unlock()
	ng, ws := ngPort+" "+target, wsPort+" "+target
	if b.hits[ng] != b.hits[ws] || b.cond[ng] != b.cond[ws] {
		t.Errorf("%s reached the backend: from nginx %d times, last %s; from wsgate %d times, last %s",
			target, b.hits[ng], b.cond[ng], b.hits[ws], b.cond[ws])
	}
	return b.cond[ws]
}

// cacheConf is an http block for both servers: a cache zone c and a
// server whose locations proxy to the backend, each with its cache
// settings; X-Cache shows $upstream_cache_status.
func cacheConf(backend, zoneParams string, locations string) string {
	return fmt.Sprintf(`
proxy_cache_path {{DIR}}/cache levels=1:2 keys_zone=c:1m %s;
server {
    listen 127.0.0.1:{{PORT}};
    add_header X-Cache $upstream_cache_status always;
    proxy_set_header X-Via $server_port;
    proxy_cache c;
    %s
    location / { proxy_pass http://%s; }
}`, zoneParams, strings.ReplaceAll(locations, "BACKEND", backend), backend)
}

// cacheHeaders are the headers the cache tests compare besides the body.
var cacheHeaders = []string{"X-Cache", "Content-Type", "Content-Length", "ETag", "Last-Modified", "Vary", "Cache-Control", "Expires", "Set-Cookie"}

// cacheCompare sends req to both servers and reports the differences in
// status, body and cacheHeaders; it returns wsgate's answer.
func (p *diffPair) cacheCompare(t testing.TB, req string) rawResponse {
	t.Helper()
	ng := sendRaw(t, p.nginx, req)
	ws := sendRaw(t, p.wsgate, req)
	var diffs []string
	if ng.Status != ws.Status {
		diffs = append(diffs, fmt.Sprintf("status: nginx %d, wsgate %d", ng.Status, ws.Status))
	}
	for _, h := range cacheHeaders {
		if h == "Content-Length" && isErrorPage(ng) {
			continue // the built-in pages name their server
		}
		if nv, wv := strings.Join(ng.Header.Values(h), " | "), strings.Join(ws.Header.Values(h), " | "); nv != wv {
			diffs = append(diffs, fmt.Sprintf("%s: nginx %q, wsgate %q", h, nv, wv))
		}
	}
	if !isErrorPage(ng) && string(ng.Body) != string(ws.Body) {
		diffs = append(diffs, fmt.Sprintf("body: nginx %q, wsgate %q", clip(ng.Body), clip(ws.Body)))
	}
	if strings.Contains(p.gate.stderr.String(), "DATA RACE") { // with WSGATE_E2E_RACE=1
		diffs = append(diffs, "wsgate reported a data race:\n"+p.gate.stderr.String())
	}
	if len(diffs) > 0 {
		t.Fatalf("%q:\n  %s", firstLine(req), strings.Join(diffs, "\n  "))
	}
	return ws
}

func cget(target string, headers ...string) string {
	return "GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + strings.Join(append(headers, ""), "\r\n") + "\r\n"
}

// waitExpired waits until entries stored by the Unix second stored, with
// one second of validity, have expired: both servers count whole seconds,
// an entry being fresh while its second of validity has not passed.
func waitExpired(t testing.TB, stored int64) {
	t.Helper()
	waitFor(t, 10*time.Second, "the entries to expire", func() bool {
		return time.Now().Unix() >= stored+2
	})
}

// expectCache fails unless the answer carries the cache status want.
func expectCache(t testing.TB, r rawResponse, want string) {
	t.Helper()
	if got := r.Header.Get("X-Cache"); got != want {
		t.Errorf("X-Cache %q, want %q (status %d, body %q)", got, want, r.Status, clip(r.Body))
	}
}

// TestCacheDiffRules: hits and misses, bypass, no_cache, min_uses, the
// response headers that forbid or allow storing, Vary, conditional
// requests answered from the cache, HEAD converted to GET, and methods
// that are not cached.
func TestCacheDiffRules(t *testing.T) {
	b := startCacheBackend(t)
	p := startPair(t, diffConf{HTTP: cacheConf(b.addr, "inactive=10m", `
    proxy_cache_valid 200 10m;
    proxy_cache_bypass $http_x_bypass;
    proxy_no_cache $http_x_nocache;
    location /min/ { proxy_pass http://BACKEND; proxy_cache_min_uses 2; }
    location /ign/ { proxy_pass http://BACKEND; proxy_ignore_headers Set-Cookie Cache-Control; }
    location /off/ { proxy_pass http://BACKEND; proxy_cache off; }
    location /nobuf/ { proxy_pass http://BACKEND; proxy_buffering off; }`)})
	expectCache(t, p.cacheCompare(t, cget("/a")), "MISS")
	expectCache(t, p.cacheCompare(t, cget("/a")), "HIT")
	expectCache(t, p.cacheCompare(t, cget("/a", "X-Bypass: 1")), "BYPASS")
	expectCache(t, p.cacheCompare(t, cget("/a")), "HIT") // the bypassing answer was stored
	expectCache(t, p.cacheCompare(t, cget("/a", "X-Bypass: 0")), "HIT")

	expectCache(t, p.cacheCompare(t, cget("/nc", "X-Nocache: yes")), "MISS")
	expectCache(t, p.cacheCompare(t, cget("/nc")), "MISS")
	expectCache(t, p.cacheCompare(t, cget("/nc")), "HIT")

	for _, q := range []string{
		scripted("Cache-Control:no-store"), scripted("Cache-Control:private"), scripted("Cache-Control:no-cache"),
		scripted("Cache-Control:max-age=0"), scripted("Set-Cookie:a=b"), scripted("Vary:*"),
		scripted("X-Accel-Expires:0"), scripted("X-Accel-Expires:0", "Cache-Control:max-age=100"),
		scripted("Expires:Thu, 01 Jan 2015 00:00:00 GMT"),
		"status=404", "status=500", scripted("X-Accel-Buffering:no"),
	} {
		expectCache(t, p.cacheCompare(t, cget("/not?"+q)), "MISS")
		expectCache(t, p.cacheCompare(t, cget("/not?"+q)), "MISS")
	}
	for _, q := range []string{
		scripted("Cache-Control:max-age=100") + "&status=404",
		scripted("X-Accel-Expires:100") + "&status=404",
		scripted("X-Accel-Expires:@4102444800") + "&status=403",
		scripted("Expires:Thu, 01 Jan 2099 00:00:00 GMT") + "&status=410",
		scripted("Cache-Control:public, s-maxage=50, max-age=0"),
	} {
		expectCache(t, p.cacheCompare(t, cget("/yes?"+q)), "MISS")
		expectCache(t, p.cacheCompare(t, cget("/yes?"+q)), "HIT")
	}
	q := scripted("Set-Cookie:a=b", "Cache-Control:no-store")
	expectCache(t, p.cacheCompare(t, cget("/ign/?"+q)), "MISS")
	expectCache(t, p.cacheCompare(t, cget("/ign/?"+q)), "HIT")

	v := "/v?" + scripted("Vary:Accept-Language")
	expectCache(t, p.cacheCompare(t, cget(v, "Accept-Language: en")), "MISS")
	expectCache(t, p.cacheCompare(t, cget(v, "Accept-Language: en")), "HIT")
	expectCache(t, p.cacheCompare(t, cget(v, "Accept-Language: fr")), "MISS")
	expectCache(t, p.cacheCompare(t, cget(v, "Accept-Language: fr")), "HIT")
	expectCache(t, p.cacheCompare(t, cget(v, "Accept-Language: en")), "HIT")

	expectCache(t, p.cacheCompare(t, cget("/min/x")), "MISS")
	expectCache(t, p.cacheCompare(t, cget("/min/x")), "MISS")
	expectCache(t, p.cacheCompare(t, cget("/min/x")), "HIT")

	// A large answer, chunked by the backend: relayed while it is stored.
	expectCache(t, p.cacheCompare(t, cget("/big?size=3000000")), "MISS")
	expectCache(t, p.cacheCompare(t, cget("/big?size=3000000")), "HIT")
	expectCache(t, p.cacheCompare(t, cget("/big?size=3000000&length=1")), "MISS")
	expectCache(t, p.cacheCompare(t, cget("/big?size=3000000&length=1")), "HIT")

	// The client's validators are not passed on; the cache answers them.
	for _, c := range []struct {
		header, cache string
		status        int
	}{
		{`If-None-Match: "v1"`, "MISS", 304}, {`If-None-Match: "v1"`, "HIT", 304}, {`If-None-Match: W/"v1"`, "HIT", 304},
		{`If-None-Match: "other"`, "HIT", 200}, {"If-Modified-Since: " + cacheLastModified, "HIT", 304},
		{"If-Modified-Since: Mon, 02 Jan 2006 15:04:06 GMT", "HIT", 200},
	} {
		r := p.cacheCompare(t, cget("/e?etag=v1", c.header))
		expectCache(t, r, c.cache)
		if r.Status != c.status {
			t.Errorf("%s: status %d, want %d", c.header, r.Status, c.status)
		}
	}
	expectCache(t, p.cacheCompare(t, cget("/e?etag=v1", "Range: bytes=0-3")), "HIT")

	expectCache(t, p.cacheCompare(t, "HEAD /h HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), "MISS")
	expectCache(t, p.cacheCompare(t, cget("/h")), "HIT") // the HEAD went as a GET and was stored
	if c := b.sameRequests(t, p, "/h"); !strings.HasPrefix(c, "method=GET") {
		t.Errorf("the HEAD reached the backend as %s", c)
	}

	post := "POST /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi"
	expectCache(t, p.cacheCompare(t, post), "")
	expectCache(t, p.cacheCompare(t, cget("/off/x")), "")
	expectCache(t, p.cacheCompare(t, cget("/off/x")), "")
	expectCache(t, p.cacheCompare(t, cget("/nobuf/x")), "MISS")
	expectCache(t, p.cacheCompare(t, cget("/nobuf/x")), "MISS")
}

// TestCacheDiffExpiry: an entry expires, is revalidated with a 304, and
// is served stale while the backend fails.
func TestCacheDiffExpiry(t *testing.T) {
	b := startCacheBackend(t)
	p := startPair(t, diffConf{HTTP: cacheConf(b.addr, "", `
    proxy_cache_valid 200 1s;
    proxy_cache_use_stale error timeout http_500;
    proxy_cache_revalidate on;
    proxy_next_upstream off;`)})
	expectCache(t, p.cacheCompare(t, cget("/r?etag=x")), "MISS")
	expectCache(t, p.cacheCompare(t, cget("/s")), "MISS")
	expectCache(t, p.cacheCompare(t, cget("/f")), "MISS")
	expectCache(t, p.cacheCompare(t, cget("/s")), "HIT")
	stored := time.Now().Unix()
	waitExpired(t, stored)
	expectCache(t, p.cacheCompare(t, cget("/r?etag=x")), "REVALIDATED")
	if c := b.sameRequests(t, p, "/r?etag=x"); !strings.Contains(c, `inm="\"x\""`) || !strings.Contains(c, cacheLastModified) {
		t.Errorf("revalidation sent %s", c)
	}
	expectCache(t, p.cacheCompare(t, cget("/r?etag=x")), "HIT")
	b.down.Store(true)
	expectCache(t, p.cacheCompare(t, cget("/s")), "STALE")
	b.down.Store(false)
	b.fail.Store(true)
	expectCache(t, p.cacheCompare(t, cget("/f")), "STALE")
	b.fail.Store(false)
	expectCache(t, p.cacheCompare(t, cget("/s")), "EXPIRED")
	expectCache(t, p.cacheCompare(t, cget("/s")), "HIT")
	b.sameRequests(t, p, "/s")
	b.sameRequests(t, p, "/f")
}

// TestCacheDiffBackgroundUpdate: an expired entry is served stale while
// a background request updates it; meanwhile others get it as UPDATING.
func TestCacheDiffBackgroundUpdate(t *testing.T) {
	b := startCacheBackend(t)
	p := startPair(t, diffConf{HTTP: cacheConf(b.addr, "", `
    proxy_cache_valid 200 1s;
    proxy_cache_use_stale updating;
    proxy_cache_background_update on;`)})
	target := "/bg?sleep=1500"
	expectCache(t, p.cacheCompare(t, cget(target)), "MISS")
	stored := time.Now().Unix()
	waitExpired(t, stored)
	expectCache(t, p.cacheCompare(t, cget(target)), "STALE")
	expectCache(t, p.cacheCompare(t, cget(target)), "UPDATING")
	_, ngPort, _ := net.SplitHostPort(p.nginx)
	_, wsPort, _ := net.SplitHostPort(p.wsgate)
	waitFor(t, 10*time.Second, "both background updates", func() bool {
		return b.count(ngPort, target) == 2 && b.count(wsPort, target) == 2
	})
	waitFor(t, 10*time.Second, "the updated entries", func() bool {
		ng, ws := sendRaw(t, p.nginx, cget(target)), sendRaw(t, p.wsgate, cget(target))
		return strings.HasPrefix(string(ng.Body), "n=2") && strings.HasPrefix(string(ws.Body), "n=2")
	})
	expectCache(t, p.cacheCompare(t, cget(target)), "HIT")
}

// TestCacheDiffStaleExtensions: Cache-Control's stale-if-error and
// stale-while-revalidate allow stale answers without
// proxy_cache_use_stale.
func TestCacheDiffStaleExtensions(t *testing.T) {
	b := startCacheBackend(t)
	p := startPair(t, diffConf{HTTP: cacheConf(b.addr, "", `
    proxy_cache_background_update on;
    proxy_next_upstream off;`)})
	sie := "/sie?" + scripted("Cache-Control:max-age=1, stale-if-error=100")
	swr := "/swr?sleep=1500&" + scripted("Cache-Control:max-age=1, stale-while-revalidate=100")
	plain := "/plain?" + scripted("Cache-Control:max-age=1")
	for _, target := range []string{sie, swr, plain} {
		expectCache(t, p.cacheCompare(t, cget(target)), "MISS")
	}
	stored := time.Now().Unix()
	waitExpired(t, stored)
	b.down.Store(true)
	expectCache(t, p.cacheCompare(t, cget(sie)), "STALE")
	expectCache(t, p.cacheCompare(t, cget(plain)), "EXPIRED") // 502
	b.down.Store(false)
	b.fail.Store(true)
	expectCache(t, p.cacheCompare(t, cget(sie)), "EXPIRED") // a 500 is an answer, not a failure
	b.fail.Store(false)
	expectCache(t, p.cacheCompare(t, cget(swr)), "STALE")
	expectCache(t, p.cacheCompare(t, cget(swr)), "UPDATING")
	_, ngPort, _ := net.SplitHostPort(p.nginx)
	_, wsPort, _ := net.SplitHostPort(p.wsgate)
	waitFor(t, 10*time.Second, "both background updates", func() bool {
		return b.count(ngPort, swr) == 2 && b.count(wsPort, swr) == 2
	})
}

// TestCacheDiffLock: concurrent misses of one key under proxy_cache_lock
// send one request to the backend; the others wait for its answer.
func TestCacheDiffLock(t *testing.T) {
	b := startCacheBackend(t)
	p := startPair(t, diffConf{HTTP: cacheConf(b.addr, "", `
    proxy_cache_valid 200 10m;
    proxy_cache_lock on;
    proxy_cache_lock_timeout 30s;
    location /lt/ { proxy_pass http://BACKEND; proxy_cache_lock_timeout 1s; }`)})
	_, ngPort, _ := net.SplitHostPort(p.nginx)
	_, wsPort, _ := net.SplitHostPort(p.wsgate)
	const n = 8
	// The second target's answer varies: the waiters find it as the
	// variant the first request stored.
	for _, target := range []string{"/slow?sleep=700", "/slow?sleep=700&" + scripted("Vary:Accept-Language")} {
		for _, addr := range []string{p.nginx, p.wsgate} {
			var wg sync.WaitGroup
			bodies := make([]string, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := sendRaw(t, addr, cget(target, "Accept-Language: en"))
					bodies[i] = fmt.Sprint(r.Status, " ", string(r.Body))
				}()
			}
			wg.Wait()
			for i := range n {
				if bodies[i] != bodies[0] {
					t.Errorf("%s %s: answers differ: %q and %q", addr, target, bodies[0], bodies[i])
				}
			}
		}
		if ng, ws := b.count(ngPort, target), b.count(wsPort, target); ng != 1 || ws != 1 {
			t.Errorf("%s: backend requests for %d concurrent misses: nginx %d, wsgate %d; want 1 each", target, n, ng, ws)
		}
	}

	// After proxy_cache_lock_timeout a waiter goes to the backend, and
	// its answer is not stored: the entry stays the first request's.
	target := "/lt/x?sleep=2500"
	for _, addr := range []string{p.nginx, p.wsgate} {
		first := make(chan rawResponse)
		go func() { first <- sendRaw(t, addr, cget(target)) }()
		waitFor(t, 10*time.Second, "the first request to reach the backend", func() bool {
			_, port, _ := net.SplitHostPort(addr)
			return b.count(port, target) == 1
		})
		expectCache(t, sendRaw(t, addr, cget(target)), "MISS")
		<-first
	}
	r := p.cacheCompare(t, cget(target))
	expectCache(t, r, "HIT")
	if !strings.HasPrefix(string(r.Body), "n=1 ") {
		t.Errorf("the entry is %q, want the first request's answer", clip(r.Body))
	}
	b.sameRequests(t, p, target)
}

// gateCacheConf is a whole wsgate configuration with a cache in dir.
func gateCacheConf(port int, dir, zoneParams, backend, loc string) string {
	return fmt.Sprintf(`pid {{DIR}}/logs/wsgate.pid;
error_log {{DIR}}/error.log info;
events { worker_connections 256; }
http {
    access_log off;
    proxy_cache_path %s levels=1:2 keys_zone=c:1m %s;
    map $request_method $purge { PURGE 1; default 0; }
    server {
        listen 127.0.0.1:%d;
        add_header X-Cache $upstream_cache_status always;
        location / {
            proxy_pass http://%s;
            proxy_cache c;
            proxy_cache_valid 200 10m;
            proxy_cache_purge $purge;
            %s
        }
    }
}`, dir, zoneParams, port, backend, loc)
}

// TestCachePurge: the cache survives a reload; a request
// proxy_cache_purge selects removes the entry (204) or finds none (404).
func TestCachePurge(t *testing.T) {
	b := startCacheBackend(t)
	port := freePort(t)
	conf := gateCacheConf(port, filepath.Join(t.TempDir(), "cache"), "", b.addr, "")
	g := startGate(t, conf)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	expectCache(t, sendRaw(t, addr, cget("/p")), "MISS")
	if !g.reload(t, conf) {
		t.Fatalf("reload failed:\n%s", g.errorLog())
	}
	expectCache(t, sendRaw(t, addr, cget("/p")), "HIT") // a reload keeps the cache
	purge := "PURGE /p HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	if r := sendRaw(t, addr, purge); r.Status != 204 {
		t.Errorf("PURGE of a cached key: %d, want 204", r.Status)
	}
	if r := sendRaw(t, addr, purge); r.Status != 404 {
		t.Errorf("PURGE of a missing key: %d, want 404", r.Status)
	}
	r := sendRaw(t, addr, cget("/p"))
	expectCache(t, r, "MISS")
	if !strings.HasPrefix(string(r.Body), "n=2 ") {
		t.Errorf("after a purge the backend answers again: body %q", r.Body)
	}
}

// TestCachePurgeWildcard: a purge key ending in "*" removes every key it
// starts, as nginx Plus.
func TestCachePurgeWildcard(t *testing.T) {
	b := startCacheBackend(t)
	port := freePort(t)
	startGate(t, gateCacheConf(port, filepath.Join(t.TempDir(), "cache"), "", b.addr, "proxy_cache_key $uri;"))
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for _, target := range []string{"/w/1", "/w/2", "/x"} {
		expectCache(t, sendRaw(t, addr, cget(target)), "MISS")
	}
	if r := sendRaw(t, addr, "PURGE /w/* HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); r.Status != 204 {
		t.Errorf("PURGE /w/*: %d, want 204", r.Status)
	}
	expectCache(t, sendRaw(t, addr, cget("/w/1")), "MISS")
	expectCache(t, sendRaw(t, addr, cget("/w/2")), "MISS")
	expectCache(t, sendRaw(t, addr, cget("/x")), "HIT")
}

// TestCacheClientLeaves: a client that leaves in the middle of a large
// answer does not stop it being stored.
func TestCacheClientLeaves(t *testing.T) {
	b := startCacheBackend(t)
	port := freePort(t)
	// With the lock, the next request waits for the store instead of
	// fetching the answer anew.
	startGate(t, gateCacheConf(port, filepath.Join(t.TempDir(), "cache"), "", b.addr, "proxy_cache_lock on;"))
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	target := "/leave?size=8000000"
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, cget(target))
	if _, err := io.ReadFull(c, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	var r rawResponse
	waitFor(t, 20*time.Second, "the answer to be stored", func() bool {
		r = sendRaw(t, addr, cget(target))
		return r.Header.Get("X-Cache") == "HIT"
	})
	if len(r.Body) < 8000000 || !strings.HasPrefix(string(r.Body), "n=1 ") {
		t.Errorf("stored answer: %d bytes, starting %q", len(r.Body), clip(r.Body))
	}
}

// TestCacheRestartAndVersions: entries survive a restart; files of
// another format version are neither served nor kept.
func TestCacheRestartAndVersions(t *testing.T) {
	b := startCacheBackend(t)
	dir := filepath.Join(t.TempDir(), "cache")
	port := freePort(t)
	conf := gateCacheConf(port, dir, "", b.addr, "")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	g := startGate(t, conf)
	expectCache(t, sendRaw(t, addr, cget("/kept")), "MISS")
	g.stop()

	// A file of a future version where /alien's entry would be, and one
	// under a key nobody asks for: the first is a miss, both are removed.
	alien := cacheFile(dir, "http"+b.addr+"/alien")
	other := cacheFile(dir, "http"+b.addr+"/never-asked")
	for _, f := range []string{alien, other} {
		os.MkdirAll(filepath.Dir(f), 0o700)
		if err := os.WriteFile(f, append([]byte("WSGC\x00\x00\x00\x63"), make([]byte, 64)...), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	startGate(t, conf)
	r := sendRaw(t, addr, cget("/kept"))
	expectCache(t, r, "HIT")
	if !strings.HasPrefix(string(r.Body), "n=1 ") {
		t.Errorf("after a restart: body %q, want the stored answer", r.Body)
	}
	r = sendRaw(t, addr, cget("/alien"))
	expectCache(t, r, "MISS")
	if r.Status != 200 || !strings.HasPrefix(string(r.Body), "n=1 ") {
		t.Errorf("a file of another version was read: %d %q", r.Status, r.Body)
	}
	waitFor(t, 10*time.Second, "the loader to remove the other version's file", func() bool {
		_, err := os.Stat(other)
		return os.IsNotExist(err)
	})
}

// cacheFile is where nginx's layout with levels=1:2 keeps key.
func cacheFile(dir, key string) string {
	sum := md5.Sum([]byte(key))
	h := hex.EncodeToString(sum[:])
	return filepath.Join(dir, h[31:], h[29:31], h)
}

// TestCacheBounds: max_size keeps the files within bounds (the least
// recently used go), and inactive entries are removed.
func TestCacheBounds(t *testing.T) {
	b := startCacheBackend(t)
	dir := filepath.Join(t.TempDir(), "cache")
	port := freePort(t)
	startGate(t, gateCacheConf(port, dir, "max_size=100k inactive=3s manager_sleep=10ms", b.addr, ""))
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for i := range 20 {
		expectCache(t, sendRaw(t, addr, cget(fmt.Sprintf("/big%d?size=20000", i))), "MISS")
	}
	waitFor(t, 10*time.Second, "the manager to bring the cache within max_size", func() bool {
		return dirSize(dir) <= 100<<10
	})
	if n := dirSize(dir); n < 60<<10 {
		t.Errorf("the manager removed more than needed: %d bytes left", n)
	}
	expectCache(t, sendRaw(t, addr, cget("/big19?size=20000")), "HIT") // the most recent stays
	expectCache(t, sendRaw(t, addr, cget("/big0?size=20000")), "MISS") // the oldest went
	waitFor(t, 20*time.Second, "inactive entries to go", func() bool { return dirSize(dir) == 0 })
}

// dirSize is the bytes of the files under dir.
func dirSize(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// TestCacheWebSocketNeverCached: handshakes through a cached location
// each reach the backend.
func TestCacheWebSocketNeverCached(t *testing.T) {
	be := startBackend(t, "ws")
	port := freePort(t)
	startGate(t, gateCacheConf(port, filepath.Join(t.TempDir(), "cache"), "", be.addr, `
            proxy_http_version 1.1;
            proxy_cache_valid any 10m;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";`))
	url := fmt.Sprintf("ws://127.0.0.1:%d/ws", port)
	for range 2 {
		c, _ := dial(t, url, nil)
		echo(t, c, "hi")
		c.Close()
	}
	if n := be.upgrades.Load(); n != 2 {
		t.Errorf("backend saw %d handshakes, want 2", n)
	}
}

// TestCacheDiffMaxRangeOffset: with proxy_cache_max_range_offset, a range
// from the offset on (or from the end) goes to the backend as it came,
// Range included, and nothing is stored; a range below it and a plain
// request use the cache, as nginx.
func TestCacheDiffMaxRangeOffset(t *testing.T) {
	b := startCacheBackend(t)
	p := startPair(t, diffConf{HTTP: cacheConf(b.addr, "", `
    proxy_cache_valid 200 10m;
    location /mro/ { proxy_pass http://BACKEND; proxy_cache_max_range_offset 10; }`)})
	for _, r := range []string{"bytes=10-20", "bytes=-5", "bytes=10-20"} {
		p.cacheCompare(t, cget("/mro/far", "Range: "+r))
		if c := b.sameRequests(t, p, "/mro/far"); !strings.Contains(c, `range="`+r+`"`) {
			t.Errorf("Range %s: the backend got %s", r, c)
		}
	}
	expectCache(t, p.cacheCompare(t, cget("/mro/far")), "MISS") // nothing was stored
	expectCache(t, p.cacheCompare(t, cget("/mro/far")), "HIT")
	expectCache(t, p.cacheCompare(t, cget("/mro/near", "Range: bytes=2-5")), "MISS")
	if c := b.sameRequests(t, p, "/mro/near"); !strings.Contains(c, `range=""`) {
		t.Errorf("a range below the offset reached the backend with %s", c)
	}
}
