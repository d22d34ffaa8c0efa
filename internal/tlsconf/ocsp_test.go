package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// logRecorder collects Logf lines.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (l *logRecorder) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logRecorder) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, substr) {
			n++
		}
	}
	return n
}

// responder is an OCSP responder on 127.0.0.1 answering for one issuer.
type responder struct {
	url      string
	srv      *httptest.Server
	requests atomic.Int64
	status   atomic.Int64 // ocsp.Good, ocsp.Revoked
	validity atomic.Int64 // NextUpdate - now, in nanoseconds
	signer   atomic.Pointer[authority]
}

func newResponder(t *testing.T, issuer *authority) *responder {
	t.Helper()
	r := &responder{}
	r.validity.Store(int64(time.Hour))
	r.signer.Store(issuer)
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		body, err := io.ReadAll(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		oreq, err := ocsp.ParseRequest(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		signer := r.signer.Load()
		der, err := ocsp.CreateResponse(issuer.cert, signer.cert, ocsp.Response{
			Status:       int(r.status.Load()),
			SerialNumber: oreq.SerialNumber,
			ThisUpdate:   time.Now().Add(-time.Minute),
			NextUpdate:   time.Now().Add(time.Duration(r.validity.Load())),
			RevokedAt:    time.Now().Add(-time.Hour),
		}, signer.key)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write(der)
	}))
	r.url = r.srv.URL + "/ocsp"
	t.Cleanup(r.srv.Close)
	return r
}

// staple returns the OCSP response a handshake with addr carries.
func staple(t *testing.T, addr string, ca *x509.Certificate) []byte {
	t.Helper()
	st, err := dial(t, addr, &tls.Config{RootCAs: pool(ca), ServerName: "ws.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	return st.OCSPResponse
}

// waitStaple polls handshakes until one carries a staple.
func waitStaple(t *testing.T, addr string, ca *x509.Certificate) []byte {
	t.Helper()
	var got []byte
	if err := waitFor(func() bool { got = staple(t, addr, ca); return got != nil }); err != nil {
		t.Fatal("no staple:", err)
	}
	return got
}

func TestStaplingFetch(t *testing.T) {
	root := newCA(t, "Test Root", nil)
	inter := newCA(t, "Test Intermediate", root)
	key := ecKey(t)

	tests := []struct {
		name   string
		issuer *authority
		setup  func(t *testing.T, url string) Options
	}{
		{"issuer from the chain file", inter, func(t *testing.T, url string) Options {
			return Options{Certs: []CertPair{pair(t, key, inter.leaf(t, key, url), inter.cert)}}
		}},
		{"issuer from ssl_trusted_certificate", root, func(t *testing.T, url string) Options {
			return Options{
				Certs:              []CertPair{pair(t, key, root.leaf(t, key, url))},
				TrustedCertificate: writeFile(t, "trusted.pem", certsPEM(inter.cert, root.cert)),
			}
		}},
		{"ssl_stapling_responder", root, func(t *testing.T, url string) Options {
			return Options{
				Certs:              []CertPair{pair(t, key, root.leaf(t, key, ""), root.cert)},
				StaplingResponder:  url,
				TrustedCertificate: writeFile(t, "trusted.pem", certsPEM(root.cert)),
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newResponder(t, tt.issuer)
			o := tt.setup(t, r.url)
			o.Stapling, o.StaplingVerify = true, true
			var log logRecorder
			o.Logf = log.logf
			c := mustNew(t, o)
			addr := serve(t, c.TLS())
			got := waitStaple(t, addr, root.cert)
			leaf := c.certs[0].chain[0]
			resp, err := ocsp.ParseResponseForCert(got, leaf, tt.issuer.cert)
			if err != nil {
				t.Fatal("staple does not verify:", err)
			}
			if resp.Status != ocsp.Good {
				t.Errorf("status %d", resp.Status)
			}
			if log.count("") != 0 {
				t.Errorf("warnings: %q", log.lines)
			}
		})
	}
}

// TestStaplingRejected: a response that fails the checks is not served.
func TestStaplingRejected(t *testing.T) {
	ca := newCA(t, "Test CA", nil)
	stranger := newCA(t, "Stranger", nil)
	key := ecKey(t)

	tests := []struct {
		name      string
		verify    bool
		signer    *authority
		status    int
		wantLog   string
		wantServe bool
	}{
		{"wrong key, verify on", true, stranger, ocsp.Good, "invalid OCSP response", false},
		{"wrong key, verify off", false, stranger, ocsp.Good, "", true},
		{"revoked, verify off", false, ca, ocsp.Revoked, `certificate status "revoked"`, false},
		{"revoked, verify on", true, ca, ocsp.Revoked, `certificate status "revoked"`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newResponder(t, ca)
			r.signer.Store(tt.signer)
			r.status.Store(int64(tt.status))
			var log logRecorder
			c := mustNew(t, Options{
				Certs:    []CertPair{pair(t, key, ca.leaf(t, key, r.url), ca.cert)},
				Stapling: true, StaplingVerify: tt.verify, Logf: log.logf,
			})
			addr := serve(t, c.TLS())
			if tt.wantServe {
				waitStaple(t, addr, ca.cert)
				return
			}
			if err := waitFor(func() bool { return log.count(tt.wantLog) > 0 }); err != nil {
				t.Fatalf("no %q warning: %q", tt.wantLog, log.lines)
			}
			if got := staple(t, addr, ca.cert); got != nil {
				t.Error("rejected response stapled")
			}
		})
	}
}

// TestStaplingResponderDown: the last good staple outlives its responder
// until it expires.
func TestStaplingResponderDown(t *testing.T) {
	ca := newCA(t, "Test CA", nil)
	key := ecKey(t)
	r := newResponder(t, ca)
	r.validity.Store(int64(3 * time.Second))
	var log logRecorder
	c := mustNew(t, Options{
		Certs:    []CertPair{pair(t, key, ca.leaf(t, key, r.url), ca.cert)},
		Stapling: true, StaplingVerify: true, Logf: log.logf,
		minRefresh: 10 * time.Millisecond, maxRefresh: 20 * time.Millisecond, retryAfter: 10 * time.Millisecond,
	})
	addr := serve(t, c.TLS())
	waitStaple(t, addr, ca.cert)
	if err := waitFor(func() bool { return r.requests.Load() >= 2 }); err != nil {
		t.Fatal("never refreshed")
	}
	r.srv.Close()
	if err := waitFor(func() bool { return log.count(r.srv.URL) >= 2 }); err != nil {
		t.Fatalf("no fetch failure logged: %q", log.lines)
	}
	got := staple(t, addr, ca.cert)
	if got == nil {
		t.Fatal("the last good staple is no longer served")
	}
	if _, err := ocsp.ParseResponseForCert(got, c.certs[0].chain[0], ca.cert); err != nil {
		t.Fatal("served staple does not verify:", err)
	}
	// It goes when it expires (NextUpdate has second precision).
	if err := waitFor(func() bool { return staple(t, addr, ca.cert) == nil }); err != nil {
		t.Fatal("expired staple still served")
	}
	if log.count("expired") == 0 {
		t.Errorf("expiry not logged: %q", log.lines)
	}
}

// TestStaplingNeverBlocks: a responder that does not answer delays
// neither handshakes nor Close.
func TestStaplingNeverBlocks(t *testing.T) {
	ca := newCA(t, "Test CA", nil)
	key := ecKey(t)
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-req.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	c, err := New(Options{
		Certs:    []CertPair{pair(t, key, ca.leaf(t, key, srv.URL), ca.cert)},
		Stapling: true, StaplingVerify: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, c.TLS())
	<-arrived
	if got := staple(t, addr, ca.cert); got != nil {
		t.Error("unexpected staple")
	}
	done := make(chan struct{})
	go func() { c.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waits for the responder")
	}
}

func TestStaplingFile(t *testing.T) {
	ca := newCA(t, "Test CA", nil)
	stranger := newCA(t, "Stranger", nil)
	key := ecKey(t)
	leaf := ca.leaf(t, key, "")
	certs := []CertPair{pair(t, key, leaf, ca.cert)}
	response := func(signer *authority, next time.Duration) string {
		der, err := ocsp.CreateResponse(ca.cert, signer.cert, ocsp.Response{
			Status: ocsp.Good, SerialNumber: leaf.SerialNumber,
			ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(next),
		}, signer.key)
		if err != nil {
			t.Fatal(err)
		}
		return writeFile(t, "ocsp.der", der)
	}

	tests := []struct {
		name      string
		file      string
		verify    bool
		wantServe bool
	}{
		{"good", response(ca, time.Hour), true, true},
		{"wrong signer, verify on", response(stranger, time.Hour), true, false},
		{"wrong signer, verify off", response(stranger, time.Hour), false, true},
		{"expired", response(ca, -time.Second), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log logRecorder
			c := mustNew(t, Options{Certs: certs, Stapling: true, StaplingVerify: tt.verify, StaplingFile: tt.file, Logf: log.logf})
			// The file is served from the first handshake on.
			got := staple(t, serve(t, c.TLS()), ca.cert)
			if (got != nil) != tt.wantServe {
				t.Fatalf("stapled %v, want %v (log %q)", got != nil, tt.wantServe, log.lines)
			}
			if !tt.wantServe && log.count(certs[0].Cert) == 0 {
				t.Errorf("rejection not logged")
			}
		})
	}
}

// TestStaplingIgnored: like nginx, stapling without an issuer or a
// responder is a warning, not an error.
func TestStaplingIgnored(t *testing.T) {
	ca := newCA(t, "Test CA", nil)
	key := ecKey(t)
	tests := []struct {
		name    string
		pair    CertPair
		wantLog string
	}{
		{"no issuer", pair(t, key, ca.leaf(t, key, "http://127.0.0.1:1/")), "issuer certificate not found"},
		{"no responder", pair(t, key, ca.leaf(t, key, ""), ca.cert), "no OCSP responder URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log logRecorder
			c := mustNew(t, Options{Certs: []CertPair{tt.pair}, Stapling: true, Logf: log.logf})
			if log.count(tt.wantLog) != 1 {
				t.Errorf("log %q, want %q", log.lines, tt.wantLog)
			}
			if got := staple(t, serve(t, c.TLS()), ca.cert); got != nil {
				t.Error("unexpected staple")
			}
		})
	}
}

// TestRefreshDelay checks the refresh schedule.
func TestRefreshDelay(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	s := &stapler{
		entry:      &certEntry{},
		logf:       func(string, ...any) {},
		minRefresh: time.Minute, maxRefresh: time.Hour, retryAfter: 5 * time.Minute,
	}
	tests := []struct {
		next time.Duration
		want time.Duration
	}{
		{4 * time.Hour, time.Hour},
		{40 * time.Minute, 20 * time.Minute},
		{30 * time.Second, time.Minute},
	}
	for _, tt := range tests {
		if got := s.delay(now, now.Add(tt.next)); got != tt.want {
			t.Errorf("NextUpdate in %v: refresh in %v, want %v", tt.next, got, tt.want)
		}
	}
	if got := s.delay(now, time.Time{}); got != time.Hour {
		t.Errorf("no NextUpdate: refresh in %v, want 1h", got)
	}
}
