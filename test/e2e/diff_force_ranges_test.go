package e2e

import (
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"testing"
)

// rangeBackend serves /fixed (26 bytes with a length, an ETag, a
// Last-Modified and "Accept-Ranges: none", in two writes), /chunked (the same bytes
// without a length) and /missing (a 404).
func rangeBackend(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const body = "abcdefghijklmnopqrstuvwxyz"
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/plain")
		switch r.URL.Path {
		case "/fixed":
			h.Set("ETag", `"e1"`)
			h.Set("Last-Modified", "Mon, 02 Jan 2006 15:04:05 GMT")
			h.Set("Accept-Ranges", "none")
			h.Set("Content-Length", "26")
			io.WriteString(w, body[:3])
			w.(http.Flusher).Flush() // the cut spans two reads
			io.WriteString(w, body[3:])
		case "/chunked":
			io.WriteString(w, body[:10])
			w.(http.Flusher).Flush()
			io.WriteString(w, body[10:])
		default:
			w.WriteHeader(404)
			io.WriteString(w, "missing")
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// TestDiffProxyForceRanges: proxy_force_ranges against nginx: a 200 of
// known length gets "Accept-Ranges: bytes" instead of the backend's, one
// byte range (plain, open, suffix) gives a 206 with Content-Range and the
// cut body, an unsatisfiable or malformed one a 416, two ranges the whole
// body, If-Range by entity tag and by date is honoured; a body without a
// length, a 404, and the directive off leave the answer as the backend
// sent it. Both buffered and unbuffered relays are cut.
func TestDiffProxyForceRanges(t *testing.T) {
	b := rangeBackend(t)
	p := startPair(t, diffConf{HTTP: `
log_format r '$request_method $uri|$status|$body_bytes_sent|$sent_http_content_range|$upstream_response_length';
server {
    access_log {{DIR}}/logs/r.log r;
    listen 127.0.0.1:{{PORT}};
    location /on/ { proxy_pass http://` + b + `/; proxy_force_ranges on; }
    location /unbuf/ { proxy_pass http://` + b + `/; proxy_force_ranges on; proxy_buffering off; }
    location /off/ { proxy_pass http://` + b + `/; }
}`})
	reqs := []string{
		proxyGet("/on/fixed"),
		proxyGet("/on/fixed", "Range: bytes=2-5"),
		proxyGet("/unbuf/fixed", "Range: bytes=2-5"),
		proxyGet("/on/fixed", "Range: bytes=20-"),
		proxyGet("/on/fixed", "Range: bytes=-3"),
		proxyGet("/on/fixed", "Range: bytes=10-100"),
		proxyGet("/on/fixed", "Range: bytes=30-"),
		proxyGet("/on/fixed", "Range: bytes=x-y"),
		proxyGet("/on/fixed", "Range: bytes=0-1,4-5"),
		proxyGet("/on/fixed", "Range: items=0-1"),
		proxyGet("/on/fixed", "Range: bytes=1-2", `If-Range: "e1"`),
		proxyGet("/on/fixed", "Range: bytes=1-2", `If-Range: "e2"`),
		proxyGet("/on/fixed", "Range: bytes=1-2", "If-Range: Mon, 02 Jan 2006 15:04:05 GMT"),
		proxyGet("/on/fixed", "Range: bytes=1-2", "If-Range: Tue, 03 Jan 2006 15:04:05 GMT"),
		proxyGet("/on/chunked", "Range: bytes=2-5"),
		proxyGet("/on/missing", "Range: bytes=2-5"),
		proxyGet("/off/fixed", "Range: bytes=2-5"),
		"HEAD /on/fixed HTTP/1.1\r\nHost: {{HOST}}\r\nRange: bytes=2-5\r\nConnection: close\r\n\r\n",
	}
	for i, r := range reqs {
		p.compareHeaders(t, r)
		// Each answer is logged after its last byte leaves: the next
		// request waits for the line, to keep the log in request order.
		logLines(t, p.ng.dir, "r.log", i+1)
		logLines(t, p.gate.dir, "r.log", i+1)
	}
	// $body_bytes_sent and $sent_http_content_range are those of the range
	// sent (the 416's Content-Range included; its page's size is each
	// server's own), and of the chunked answer, framing included.
	ng := logLines(t, p.ng.dir, "r.log", len(reqs))
	ws := logLines(t, p.gate.dir, "r.log", len(reqs))
	page := regexp.MustCompile(`^([^|]*\|416)\|\d+`)
	// A chunked answer's framing follows how its body was read, which
	// the machine's load decides: that count is checked to hold the
	// payload and a framing, not compared.
	chunked := regexp.MustCompile(`^(GET /on/chunked\|200)\|(\d+)`)
	mask := func(l string) string { return framedCount(page.ReplaceAllString(l, "$1|page"), chunked, 26) }
	for i := range reqs {
		if n, w := mask(ng[i]), mask(ws[i]); n != w {
			t.Errorf("log line %d: nginx %q, wsgate %q", i, n, w)
		}
	}
}

// framedCount replaces, in a log line that re matches (group 1 what
// precedes the count, group 2 a chunked answer's $body_bytes_sent), a
// count over payload with "framed": the chunk framing follows how the
// body was read, which the machine's load decides. A count without
// framing stays, so that a comparison shows it.
func framedCount(l string, re *regexp.Regexp, payload int) string {
	m := re.FindStringSubmatch(l)
	if m == nil {
		return l
	}
	if n, _ := strconv.Atoi(m[2]); n <= payload {
		return l
	}
	return re.ReplaceAllString(l, "$1|framed")
}
