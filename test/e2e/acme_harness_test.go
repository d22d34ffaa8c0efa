package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// Pebble, Let's Encrypt's ACME test server, is a tool of this module
// (go.mod's tool directive): built once per test binary from the module
// cache, so that a fresh machine needs nothing but the Go toolchain and
// the module proxy. A test that needs it fails when it cannot be built.
var pebbleBuild = builtTool{name: "pebble", pkg: "github.com/letsencrypt/pebble/v2/cmd/pebble"}

func pebbleBinary(t testing.TB) string { return pebbleBuild.get(t) }

// pebbleOpts configure one Pebble.
type pebbleOpts struct {
	alwaysValid bool              // PEBBLE_VA_ALWAYS_VALID: challenges are not checked
	httpPort    int               // where http-01 is validated (wsgate's plain listener)
	tlsPort     int               // where tls-alpn-01 is validated (wsgate's ssl listener)
	shortlived  bool              // offer a "shortlived" profile: 30-second certificates
	altRoots    int               // PEBBLE_ALTERNATE_ROOTS: chains to other roots offered too
	eab         map[string]string // kid: base64url MAC key; required when set
}

// pebble is a Pebble process with its own DNS server, which answers
// 127.0.0.1 for every name except those starting with "unresolvable".
type pebble struct {
	t          testing.TB
	dir        string
	port, mgmt int
	dnsAddr    string
	opts       pebbleOpts
	cmd        *exec.Cmd
	done       chan struct{}
	out        *syncBuffer
}

// newPebble prepares a Pebble (ports, TLS certificate, DNS) without
// starting it: start may come later, to play a CA that is down.
func newPebble(t testing.TB, o pebbleOpts) *pebble {
	t.Helper()
	p := &pebble{t: t, dir: t.TempDir(), port: freePort(t), mgmt: freePort(t), opts: o}
	p.dnsAddr = startDNS(t)
	writeLoopbackCert(t, filepath.Join(p.dir, "pebble.crt"), filepath.Join(p.dir, "pebble.key"))
	return p
}

// trusted is the file wsgate's acme_issuer trusts for Pebble's HTTPS.
func (p *pebble) trusted() string { return filepath.Join(p.dir, "pebble.crt") }

func (p *pebble) directory() string { return fmt.Sprintf("https://127.0.0.1:%d/dir", p.port) }

func (p *pebble) start() {
	t := p.t
	t.Helper()
	// Pebble picks among its profiles when an order names none: the
	// short one is offered only to tests that ask for it by name.
	profiles := map[string]any{"default": map[string]any{"description": "default", "validityPeriod": 0}}
	if p.opts.shortlived {
		profiles["shortlived"] = map[string]any{"description": "short", "validityPeriod": 30}
	}
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":                  fmt.Sprintf("127.0.0.1:%d", p.port),
		"managementListenAddress":        fmt.Sprintf("127.0.0.1:%d", p.mgmt),
		"certificate":                    p.trusted(),
		"privateKey":                     filepath.Join(p.dir, "pebble.key"),
		"httpPort":                       p.opts.httpPort,
		"tlsPort":                        p.opts.tlsPort,
		"externalAccountBindingRequired": len(p.opts.eab) > 0,
		"externalAccountMACKeys":         p.opts.eab,
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
		"keyAlgorithm":                   "ecdsa",
		"profiles":                       profiles,
	}}
	b, _ := json.Marshal(cfg)
	conf := filepath.Join(p.dir, "pebble.json")
	if err := os.WriteFile(conf, b, 0o600); err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(pebbleBinary(t), "-config", conf, "-dnsserver", p.dnsAddr)
	p.cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	if p.opts.alwaysValid {
		p.cmd.Env = append(p.cmd.Env, "PEBBLE_VA_ALWAYS_VALID=1")
	}
	if p.opts.altRoots > 0 {
		p.cmd.Env = append(p.cmd.Env, fmt.Sprintf("PEBBLE_ALTERNATE_ROOTS=%d", p.opts.altRoots))
	}
	p.out = &syncBuffer{}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(p.cmd, p.done)
	t.Cleanup(p.stop)
	waitFor(t, 60*time.Second, "pebble to listen", func() bool {
		select {
		case <-p.done:
			t.Fatalf("pebble exited before listening:\n%s", p.out)
		default:
		}
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p.mgmt))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// stop ends Pebble (its state, accounts and CA, goes with it).
func (p *pebble) stop() {
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(slow(10 * time.Second)):
		p.cmd.Process.Kill()
		<-p.done
	}
	p.cmd = nil
}

// roots returns the pool of this Pebble's root, which signs the
// certificates it issues (through an intermediate).
func (p *pebble) roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.root(0))
	return pool
}

// root returns Pebble's root number i (0 is the default chain's; others
// exist with alternateRoots).
func (p *pebble) root(i int) *x509.Certificate {
	t := p.t
	t.Helper()
	c := p.mgmtClient()
	defer c.CloseIdleConnections()
	resp, err := c.Get(fmt.Sprintf("https://127.0.0.1:%d/roots/%d", p.mgmt, i))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("pebble's root %d: %q", i, b)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// setRenewalInfo makes Pebble answer cert's renewal information with
// info (through its management interface).
func (p *pebble) setRenewalInfo(cert *x509.Certificate, info string) {
	t := p.t
	t.Helper()
	body, _ := json.Marshal(map[string]string{
		"Certificate": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})),
		"ARIResponse": info,
	})
	c := p.mgmtClient()
	defer c.CloseIdleConnections()
	resp, err := c.Post(fmt.Sprintf("https://127.0.0.1:%d/set-renewal-info/", p.mgmt), "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("set-renewal-info: %s", resp.Status)
	}
}

// mgmtClient trusts Pebble's own HTTPS certificate.
func (p *pebble) mgmtClient() *http.Client {
	ca, err := os.ReadFile(p.trusted())
	if err != nil {
		p.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	return &http.Client{Timeout: slow(10 * time.Second), Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// writeLoopbackCert writes a self-signed certificate for 127.0.0.1 and
// localhost: Pebble's own HTTPS certificate, and its trust anchor.
func writeLoopbackCert(t testing.TB, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "pebble test"},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// startDNS serves DNS on a loopback port, over UDP and TCP (Pebble asks
// over TCP): A 127.0.0.1 for every name but those starting with
// "unresolvable" (NXDOMAIN), no other records.
func startDNS(t testing.TB) string {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err != nil {
			pc.Close() // the port is taken over TCP: try another
			continue
		}
		t.Cleanup(func() { pc.Close(); ln.Close() })
		go serveDNSUDP(pc)
		go serveDNSTCP(ln)
		return pc.LocalAddr().String()
	}
	t.Fatal("no port free for DNS over both UDP and TCP")
	return ""
}

func serveDNSUDP(pc net.PacketConn) {
	buf := make([]byte, 1500)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		if resp := dnsAnswer(buf[:n]); resp != nil {
			pc.WriteTo(resp, addr)
		}
	}
}

func serveDNSTCP(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			for {
				var size [2]byte
				if _, err := io.ReadFull(c, size[:]); err != nil {
					return
				}
				req := make([]byte, int(size[0])<<8|int(size[1]))
				if _, err := io.ReadFull(c, req); err != nil {
					return
				}
				resp := dnsAnswer(req)
				if resp == nil {
					return
				}
				c.Write(append([]byte{byte(len(resp) >> 8), byte(len(resp))}, resp...))
			}
		}()
	}
}

func dnsAnswer(req []byte) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(req)
	if err != nil {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true}
	name := strings.ToLower(q.Name.String())
	if strings.HasPrefix(name, "unresolvable") {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	b.StartQuestions()
	b.Question(q)
	b.StartAnswers()
	if q.Type == dnsmessage.TypeA && rh.RCode == dnsmessage.RCodeSuccess {
		b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}, dnsmessage.AResource{A: [4]byte{127, 0, 0, 1}})
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}

// servedCert completes a handshake with wsgate at addr for name, checks
// the chain against roots, and returns the leaf; nil (and the error)
// when the handshake fails.
func servedCert(addr, name string, roots *x509.CertPool) (*x509.Certificate, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: name, RootCAs: roots})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0], nil
}

// waitServed waits until wsgate serves name a certificate that chains to
// roots and that accept takes.
func waitServed(t testing.TB, addr, name string, roots *x509.CertPool, d time.Duration, accept func(*x509.Certificate) bool) *x509.Certificate {
	t.Helper()
	var leaf *x509.Certificate
	var last error
	deadline := time.Now().Add(slow(d))
	for {
		leaf, last = servedCert(addr, name, roots)
		if last == nil && (accept == nil || accept(leaf)) {
			return leaf
		}
		if time.Now().After(deadline) {
			t.Fatalf("no acceptable certificate for %s at %s after %v (last error: %v)", name, addr, slow(d), last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
