package e2e

import (
	"bufio"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// acmeSetup is a wsgate configuration with one acme_issuer ("pebble")
// and the servers a test adds, listening on ports Pebble validates.
type acmeSetup struct {
	http, https int
	state       string // the issuer's state_path
}

func newACMESetup(t testing.TB) *acmeSetup {
	return &acmeSetup{http: freePort(t), https: freePort(t), state: filepath.Join(t.TempDir(), "acme")}
}

// conf returns the configuration: issuer settings are added to the
// acme_issuer block, servers to the http block.
func (s *acmeSetup) conf(p *pebble, issuer, servers string) string {
	return fmt.Sprintf(`error_log {{DIR}}/error.log info;
pid {{DIR}}/wsgate.pid;
events { worker_connections 256; }
http {
    acme_issuer pebble {
        uri %s;
        ssl_trusted_certificate %s;
        state_path %s;
        contact admin@example.test;
        accept_terms_of_service;
        %s
    }
    acme_shared_zone zone=ngx_acme_shared:1M;
    server {
        listen 127.0.0.1:%d;
        location / { return 404; }
    }
    %s
}
`, p.directory(), p.trusted(), s.state, issuer, s.http, servers)
}

// server is a server block on the ssl port with an acme_certificate.
func (s *acmeSetup) server(names, acmeArgs string) string {
	return fmt.Sprintf(`server {
        listen 127.0.0.1:%d ssl;
        server_name %s;
        acme_certificate pebble%s;
        ssl_certificate $acme_certificate;
        ssl_certificate_key $acme_certificate_key;
        location / { return 200 "tls $ssl_server_name\n"; }
    }`, s.https, names, acmeArgs)
}

// startACMEGate starts wsgate; a failed test shows its error log and
// Pebble's output, and a race in the ACME code detected by a -race build
// fails it.
func startACMEGate(t *testing.T, p *pebble, conf string) *gate {
	t.Helper()
	g := startGate(t, conf)
	t.Cleanup(func() {
		g.stop()
		// With WSGATE_E2E_RACE=1: a race report that involves the ACME
		// code fails the test.
		for _, r := range strings.Split(g.stderr.String(), "WARNING: DATA RACE")[1:] {
			if strings.Contains(r, "internal/acme") || strings.Contains(r, "server/acme.go") {
				t.Errorf("data race:%s", r)
			}
		}
		if t.Failed() {
			out := ""
			if p.out != nil {
				out = p.out.String()
			}
			t.Logf("error log:\n%s\npebble:\n%s", g.errorLog(), out)
		}
	})
	return g
}

func (s *acmeSetup) addr() string { return fmt.Sprintf("127.0.0.1:%d", s.https) }

func hasNames(names ...string) func(*x509.Certificate) bool {
	return func(c *x509.Certificate) bool {
		for _, n := range names {
			if c.VerifyHostname(n) != nil {
				return false
			}
		}
		return true
	}
}

// TestACMEIssueValidationSkipped: with Pebble not checking challenges,
// certificates for server_name (ECDSA by default) and for explicit
// identifiers with an RSA key are issued, served with their chain, and
// kept in the state directory with private files and a version.
func TestACMEIssueValidationSkipped(t *testing.T) {
	s := newACMESetup(t)
	p := newPebble(t, pebbleOpts{alwaysValid: true})
	p.start()
	g := startACMEGate(t, p, s.conf(p, "", s.server("one.test", "")+"\n"+
		s.server("two.test www.two.test", " two.test www.two.test key=rsa:2048")))
	roots := p.roots()
	leaf := waitServed(t, s.addr(), "one.test", roots, 60*time.Second, nil)
	if !hasNames("one.test")(leaf) || leaf.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("one.test got %v with a %v key", leaf.DNSNames, leaf.PublicKeyAlgorithm)
	}
	leaf = waitServed(t, s.addr(), "www.two.test", roots, 60*time.Second, nil)
	if _, ok := leaf.PublicKey.(*rsa.PublicKey); !ok || !hasNames("two.test", "www.two.test")(leaf) {
		t.Errorf("www.two.test got %v with a %v key", leaf.DNSNames, leaf.PublicKeyAlgorithm)
	}
	// A request over the certificate reaches the server.
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "one.test"}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("https://" + s.addr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("status %d", resp.StatusCode)
	}
	if v, err := os.ReadFile(filepath.Join(s.state, "version")); err != nil || string(v) != "1\n" {
		t.Errorf("version file: %q %v", v, err)
	}
	for _, glob := range []string{"account.key", "account.url", "one.test-*.crt", "one.test-*.key", "two.test-*.key"} {
		m, _ := filepath.Glob(filepath.Join(s.state, glob))
		if len(m) != 1 {
			t.Errorf("state %s: %v", glob, m)
			continue
		}
		if fi, err := os.Stat(m[0]); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v", m[0], fi.Mode(), err)
		}
	}
	if fi, err := os.Stat(s.state); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state_path mode: %v %v", fi.Mode(), err)
	}
	if !strings.Contains(g.errorLog(), "issued by issuer \"pebble\"") {
		t.Errorf("no issuance logged:\n%s", g.errorLog())
	}
}

// TestACMEHTTP01: Pebble validates http-01 against wsgate's plain
// listener, whose location would answer 404; a name Pebble cannot
// resolve fails, logged with the order's URL and the problem document,
// without affecting the other certificate.
func TestACMEHTTP01(t *testing.T) {
	s := newACMESetup(t)
	p := newPebble(t, pebbleOpts{httpPort: s.http})
	p.start()
	g := startACMEGate(t, p, s.conf(p, "challenge http-01;", s.server("http.test", "")+"\n"+
		s.server("unresolvable.test", "")))
	leaf := waitServed(t, s.addr(), "http.test", p.roots(), 60*time.Second, nil)
	if !hasNames("http.test")(leaf) {
		t.Errorf("names %v", leaf.DNSNames)
	}
	waitFor(t, 60*time.Second, "the failed order in the error log", func() bool {
		l := g.errorLog()
		return strings.Contains(l, `acme_certificate unresolvable.test from issuer "pebble" failed: order https://127.0.0.1:`) &&
			strings.Contains(l, `problem {"detail":`)
	})
	if _, err := servedCert(s.addr(), "unresolvable.test", p.roots()); err == nil {
		t.Error("a certificate that was never issued is served")
	}
}

// TestACMETLSALPN01: Pebble validates tls-alpn-01 in a handshake with
// wsgate's ssl listener, which serves nothing else for that name yet.
func TestACMETLSALPN01(t *testing.T) {
	s := newACMESetup(t)
	p := newPebble(t, pebbleOpts{tlsPort: s.https})
	p.start()
	g := startACMEGate(t, p, s.conf(p, "challenge tls-alpn-01;", s.server("alpn.test", "")))
	leaf := waitServed(t, s.addr(), "alpn.test", p.roots(), 60*time.Second, nil)
	if !hasNames("alpn.test")(leaf) {
		t.Errorf("names %v", leaf.DNSNames)
	}
	if strings.Contains(g.errorLog(), `from issuer "pebble" failed`) {
		t.Error("the order failed before it succeeded")
	}
}

// TestACMERenewal: a 30-second certificate is renewed before it expires
// (Pebble offers renewal information); new handshakes get the new one,
// and a connection opened before keeps working.
func TestACMERenewal(t *testing.T) {
	s := newACMESetup(t)
	p := newPebble(t, pebbleOpts{alwaysValid: true, shortlived: true})
	p.start()
	startACMEGate(t, p, s.conf(p, "profile shortlived;", s.server("renew.test", "")))
	roots := p.roots()
	first := waitServed(t, s.addr(), "renew.test", roots, 60*time.Second, nil)
	if life := first.NotAfter.Sub(first.NotBefore); life > time.Minute {
		t.Fatalf("the shortlived profile gave %v", life)
	}
	open, err := tls.Dial("tcp", s.addr(), &tls.Config{ServerName: "renew.test", RootCAs: roots})
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	next := waitServed(t, s.addr(), "renew.test", roots, 90*time.Second, func(c *x509.Certificate) bool {
		return c.SerialNumber.Cmp(first.SerialNumber) != 0
	})
	// Certificate times have a second's resolution: a renewal that Pebble's
	// renewal window placed in the second of the first issue ends when the
	// first one does.
	if next.NotAfter.Before(first.NotAfter) || time.Now().After(first.NotAfter) && next.NotBefore.After(first.NotAfter) {
		t.Errorf("renewed %v..%v after %v..%v", next.NotBefore, next.NotAfter, first.NotBefore, first.NotAfter)
	}
	if got := open.ConnectionState().PeerCertificates[0]; got.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Error("the open connection's certificate changed")
	}
	fmt.Fprintf(open, "GET / HTTP/1.1\r\nHost: renew.test\r\n\r\n")
	open.SetReadDeadline(time.Now().Add(slow(10 * time.Second)))
	line, err := bufio.NewReader(open).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Errorf("the connection opened before the renewal: %q %v", line, err)
	}
}

// TestACMERestartReusesState: after a restart the saved account and
// certificate serve at once, and nothing is ordered again.
func TestACMERestartReusesState(t *testing.T) {
	s := newACMESetup(t)
	p := newPebble(t, pebbleOpts{alwaysValid: true})
	p.start()
	conf := s.conf(p, "", s.server("restart.test", ""))
	g := startACMEGate(t, p, conf)
	roots := p.roots()
	first := waitServed(t, s.addr(), "restart.test", roots, 60*time.Second, nil)
	account, _ := os.ReadFile(filepath.Join(s.state, "account.url"))
	g.stop()
	if strings.Count(g.errorLog(), "registered") != 1 {
		t.Fatalf("first run:\n%s", g.errorLog())
	}
	askedARI, orders := strings.Count(p.out.String(), "renewalInfo"), strings.Count(p.out.String(), "Added order")
	g2 := startACMEGate(t, p, conf)
	leaf, err := servedCert(s.addr(), "restart.test", roots)
	if err != nil || leaf.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Fatalf("after the restart: %v %v", leaf, err)
	}
	if again, _ := os.ReadFile(filepath.Join(s.state, "account.url")); string(again) != string(account) || len(account) == 0 {
		t.Errorf("account URL %q then %q", account, again)
	}
	// wsgate asks for the saved certificate's renewal information, then
	// plans the renewal instead of ordering.
	waitFor(t, 30*time.Second, "the renewal to be planned", func() bool {
		return strings.Contains(g2.errorLog(), "acme_certificate restart.test: certificate "+first.SerialNumber.Text(16)+" renewal planned at")
	})
	waitFor(t, 30*time.Second, "Pebble to log the renewal information request", func() bool {
		return strings.Count(p.out.String(), "renewalInfo") > askedARI
	})
	if l := g2.errorLog(); strings.Contains(l, "issued by") || strings.Contains(l, "registered") {
		t.Errorf("the restart ordered again:\n%s", l)
	}
	if n := strings.Count(p.out.String(), "Added order"); n != orders {
		t.Errorf("%d new orders after the restart", n-orders)
	}
}

// TestACMECADownAtStart: with the CA unreachable wsgate still starts,
// serves its other servers, refuses handshakes for the certificate's
// names and logs the failure; once the CA is up the certificate arrives.
func TestACMECADownAtStart(t *testing.T) {
	s := newACMESetup(t)
	p := newPebble(t, pebbleOpts{alwaysValid: true})
	g := startACMEGate(t, p, s.conf(p, "", s.server("late.test", "")))
	waitFor(t, 30*time.Second, "the failure in the error log", func() bool {
		return strings.Contains(g.errorLog(), `acme_certificate late.test from issuer "pebble" failed`)
	})
	if _, err := servedCert(s.addr(), "late.test", nil); err == nil || !strings.Contains(err.Error(), "remote error: tls") {
		t.Errorf("handshake before issuance: %v", err)
	}
	if st, _, _ := rawRequest(t, fmt.Sprintf("127.0.0.1:%d", s.http), "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); st != 404 {
		t.Errorf("plain server: %d", st)
	}
	p.start()
	leaf := waitServed(t, s.addr(), "late.test", p.roots(), 90*time.Second, nil)
	if !hasNames("late.test")(leaf) {
		t.Errorf("names %v", leaf.DNSNames)
	}
}

// TestACMECADownAtRenewal: when the CA is down at renewal time the
// certificate in use stays served; when a new CA (which knows nothing
// of the account) comes up, the certificate is renewed.
func TestACMECADownAtRenewal(t *testing.T) {
	s := newACMESetup(t)
	p := newPebble(t, pebbleOpts{alwaysValid: true, shortlived: true})
	p.start()
	g := startACMEGate(t, p, s.conf(p, "profile shortlived;", s.server("down.test", "")))
	roots := p.roots()
	first := waitServed(t, s.addr(), "down.test", roots, 60*time.Second, nil)
	p.stop()
	waitFor(t, 60*time.Second, "a failed renewal", func() bool {
		return strings.Contains(g.errorLog(), `acme_certificate down.test from issuer "pebble" failed`)
	})
	if time.Now().Before(first.NotAfter) {
		leaf, err := servedCert(s.addr(), "down.test", roots)
		if err != nil || leaf.SerialNumber.Cmp(first.SerialNumber) != 0 {
			t.Fatalf("while the CA is down: %v %v", leaf, err)
		}
	}
	p.start()
	next := waitServed(t, s.addr(), "down.test", p.roots(), 90*time.Second, nil)
	if next.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Error("not renewed")
	}
}

// TestACMEExternalAccountBinding: a CA that requires external account
// binding registers the issuer with external_account_key, and refuses
// one without it, whose problem document is logged.
func TestACMEExternalAccountBinding(t *testing.T) {
	s := newACMESetup(t)
	const kid, mac = "kid-1", "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"
	p := newPebble(t, pebbleOpts{alwaysValid: true, eab: map[string]string{kid: mac}})
	p.start()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "eab.key")
	os.WriteFile(keyFile, []byte(mac+"\n"), 0o600)
	other := fmt.Sprintf(`acme_issuer noeab {
        uri %s;
        ssl_trusted_certificate %s;
        state_path %s;
        accept_terms_of_service;
    }
    server {
        listen 127.0.0.1:%d ssl;
        server_name noeab.test;
        acme_certificate noeab;
        ssl_certificate $acme_certificate;
        ssl_certificate_key $acme_certificate_key;
    }`, p.directory(), p.trusted(), filepath.Join(dir, "noeab"), s.https)
	g := startACMEGate(t, p, s.conf(p, "external_account_key "+kid+" "+keyFile+";", s.server("eab.test", "")+"\n"+other))
	waitServed(t, s.addr(), "eab.test", p.roots(), 60*time.Second, hasNames("eab.test"))
	waitFor(t, 30*time.Second, "the refused registration in the error log", func() bool {
		return strings.Contains(g.errorLog(), `"type":"urn:ietf:params:acme:error:externalAccountRequired"`)
	})
}

// TestACMEReloadAndConfigTest: `wsgate -t` checks an ACME configuration
// without contacting the CA or writing state; a reload that keeps an
// acme_certificate keeps its certificate without ordering again, and one
// that adds a server orders only the new certificate.
func TestACMEReloadAndConfigTest(t *testing.T) {
	s := newACMESetup(t)
	p := newPebble(t, pebbleOpts{alwaysValid: true})
	p.start()
	conf := s.conf(p, "", s.server("keep.test", ""))
	if out, ok := runTest(t, binary, conf); !ok {
		t.Fatalf("-t: %s", out)
	}
	if _, err := os.Stat(s.state); !os.IsNotExist(err) {
		t.Fatalf("-t created the state directory: %v", err)
	}
	bad := s.conf(p, "account_key "+filepath.Join(t.TempDir(), "missing.pem")+";", s.server("keep.test", ""))
	if out, ok := runTest(t, binary, bad); ok || !strings.Contains(out, "cannot load account key") {
		t.Errorf("-t with a missing account key: %s", out)
	}
	g := startACMEGate(t, p, conf)
	roots := p.roots()
	first := waitServed(t, s.addr(), "keep.test", roots, 60*time.Second, nil)
	if !g.reload(t, s.conf(p, "", s.server("keep.test", "")+"\n"+s.server("new.test", ""))) {
		t.Fatalf("reload failed:\n%s", g.errorLog())
	}
	waitServed(t, s.addr(), "new.test", roots, 60*time.Second, hasNames("new.test"))
	leaf, err := servedCert(s.addr(), "keep.test", roots)
	if err != nil || leaf.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Errorf("keep.test after the reload: %v %v", leaf, err)
	}
	if n := len(regexp.MustCompile(`acme_certificate keep\.test: certificate \w+ issued by`).FindAllString(g.errorLog(), -1)); n != 1 {
		t.Errorf("keep.test issued %d times", n)
	}
}

// TestACMERenewalInfo: a 90-day certificate is renewed at once when the
// CA's renewal information (ARI) suggests a window that has begun, as a
// CA does for a certificate it is about to revoke; wsgate reads it at
// start, where the saved certificate is served meanwhile.
func TestACMERenewalInfo(t *testing.T) {
	s := newACMESetup(t)
	p := newPebble(t, pebbleOpts{alwaysValid: true})
	p.start()
	conf := s.conf(p, "", s.server("ari.test", ""))
	g := startACMEGate(t, p, conf)
	roots := p.roots()
	first := waitServed(t, s.addr(), "ari.test", roots, 60*time.Second, nil)
	g.stop()
	now := time.Now().UTC()
	window := fmt.Sprintf(`{"suggestedWindow":{"start":%q,"end":%q}}`, now.Add(-time.Hour).Format(time.RFC3339), now.Add(-time.Hour+time.Minute).Format(time.RFC3339))
	p.setRenewalInfo(first, window)
	startACMEGate(t, p, conf)
	next := waitServed(t, s.addr(), "ari.test", roots, 60*time.Second, func(c *x509.Certificate) bool {
		return c.SerialNumber.Cmp(first.SerialNumber) != 0
	})
	if next.NotAfter.Sub(next.NotBefore) < 24*time.Hour {
		t.Errorf("renewed for %v", next.NotAfter.Sub(next.NotBefore))
	}
}

// TestACMEPreferredChain: among the chains the CA offers, the one up to
// the root preferred_chain names is served, not the default one.
func TestACMEPreferredChain(t *testing.T) {
	s := newACMESetup(t)
	p := newPebble(t, pebbleOpts{alwaysValid: true, altRoots: 1})
	p.start()
	alt := p.root(1)
	startACMEGate(t, p, s.conf(p, fmt.Sprintf("preferred_chain %q;", alt.Subject.CommonName), s.server("chain.test", "")))
	altPool := x509.NewCertPool()
	altPool.AddCert(alt)
	waitServed(t, s.addr(), "chain.test", altPool, 60*time.Second, nil)
	if _, err := servedCert(s.addr(), "chain.test", p.roots()); err == nil {
		t.Error("the default chain is served")
	}
}
