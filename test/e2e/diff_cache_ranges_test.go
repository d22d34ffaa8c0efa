package e2e

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestDiffCacheRanges: nginx's range filter on answers served from
// proxy_cache: a hit with one satisfiable byte range is a 206 with
// Content-Range and the cut body, an unsatisfiable range a 416, several
// ranges multipart/byteranges, a stale If-Range the whole body; the miss
// that stores the entry is cut to one range (416 when unsatisfiable), and
// max_ranges bounds the ranges of a hit. Ranges apply only to answers
// whose backend sent Accept-Ranges (dropped; "bytes" instead). A hit for a range from proxy_cache_max_range_offset
// on is cut from the entry too. $body_bytes_sent and
// $sent_http_content_range are those of the range sent.
func TestDiffCacheRanges(t *testing.T) {
	b := rangeBackend(t)
	p := startPair(t, diffConf{HTTP: `
log_format r '$uri|$status|$body_bytes_sent|$sent_http_content_range|$upstream_cache_status';
proxy_cache_path {{DIR}}/cache levels=1:2 keys_zone=c:1m;
proxy_cache_path {{DIR}}/cache2 levels=1:2 keys_zone=c2:1m;
proxy_cache_path {{DIR}}/cache3 levels=1:2 keys_zone=c3:1m;
server {
    access_log {{DIR}}/logs/r.log r;
    listen 127.0.0.1:{{PORT}};
    proxy_cache c;
    proxy_cache_valid 200 10m;
    add_header X-Cache $upstream_cache_status always;
    location /c/ { proxy_pass http://` + b + `/; }
    location /one/ { proxy_pass http://` + b + `/; proxy_cache c3; max_ranges 1; }
    location /mro/ { proxy_pass http://` + b + `/; proxy_cache c2; proxy_cache_max_range_offset 10; }
}`})
	reqs := []string{
		proxyGet("/c/fixed", "Range: bytes=2-5"), // the miss being stored: cut
		proxyGet("/c/fixed"),
		proxyGet("/c/fixed", "Range: bytes=2-5"),
		proxyGet("/c/fixed", "Range: bytes=20-"),
		proxyGet("/c/fixed", "Range: bytes=-3"),
		proxyGet("/c/fixed", "Range: bytes=10-100"),
		proxyGet("/c/fixed", "Range: bytes=30-"),
		proxyGet("/c/fixed", "Range: bytes=x-y"),
		proxyGet("/c/fixed", "Range: items=0-1"),
		proxyGet("/c/fixed", "Range: bytes=1-2", `If-Range: "e1"`),
		proxyGet("/c/fixed", "Range: bytes=1-2", `If-Range: "e2"`),
		proxyGet("/c/fixed", "Range: bytes=1-2", "If-Range: Mon, 02 Jan 2006 15:04:05 GMT"),
		proxyGet("/c/fixed", "Range: bytes=1-2", "If-Range: Tue, 03 Jan 2006 15:04:05 GMT"),
		"HEAD /c/fixed HTTP/1.1\r\nHost: {{HOST}}\r\nRange: bytes=2-5\r\nConnection: close\r\n\r\n",
		proxyGet("/c/chunked"),
		proxyGet("/c/chunked", "Range: bytes=2-5"),
		proxyGet("/one/fixed", "Range: bytes=30-"), // a miss being stored: 416
		proxyGet("/one/fixed", "Range: bytes=0-1,4-5"),
		proxyGet("/one/fixed", "Range: bytes=1-2"),
		proxyGet("/mro/fixed"),
		proxyGet("/mro/fixed", "Range: bytes=12-15"), // a hit: cut from the entry
		proxyGet("/mro/fixed", "Range: bytes=-4"),
	}
	for i, r := range reqs {
		p.compareHeaders(t, r, "Content-Range", "Accept-Ranges")
		// Each answer is logged after its last byte leaves: the next
		// request waits for the line, to keep the log in request order.
		logLines(t, p.ng.dir, "r.log", i+1)
		logLines(t, p.gate.dir, "r.log", i+1)
	}
	// Several ranges of a hit: multipart/byteranges, each server numbering
	// its own boundaries.
	multi := proxyGet("/c/fixed", "Range: bytes=0-1,4-5,-2")
	boundary := regexp.MustCompile(`\b\d{20}\b`)
	ngm, wsm := sendRaw(t, p.nginx, strings.ReplaceAll(multi, "{{HOST}}", p.nginx)), sendRaw(t, p.wsgate, strings.ReplaceAll(multi, "{{HOST}}", p.wsgate))
	for _, d := range [][2]string{
		{strconv.Itoa(ngm.Status), strconv.Itoa(wsm.Status)},
		{ngm.Header.Get("Content-Type"), wsm.Header.Get("Content-Type")},
		{ngm.Header.Get("Content-Length"), wsm.Header.Get("Content-Length")},
		{string(ngm.Body), string(wsm.Body)},
	} {
		if n, w := boundary.ReplaceAllString(d[0], "B"), boundary.ReplaceAllString(d[1], "B"); n != w || n == "" {
			t.Errorf("several ranges: nginx %q, wsgate %q", n, w)
		}
	}
	reqs = append(reqs, multi)
	ng := logLines(t, p.ng.dir, "r.log", len(reqs))
	ws := logLines(t, p.gate.dir, "r.log", len(reqs))
	page := regexp.MustCompile(`^([^|]*\|416)\|\d+`) // the 416 page's size is each server's own
	for i := range reqs {
		if strings.HasPrefix(ng[i], "/c/chunked|") && strings.HasSuffix(ng[i], "|MISS") {
			continue // the chunks of an answer being stored follow the backend's reads, nginx's its buffers
		}
		if n, w := page.ReplaceAllString(ng[i], "$1|page"), page.ReplaceAllString(ws[i], "$1|page"); n != w {
			t.Errorf("log line %d: nginx %q, wsgate %q", i, n, w)
		}
	}
}
