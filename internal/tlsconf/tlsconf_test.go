package tlsconf

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestLoadErrors(t *testing.T) {
	ca := newCA(t, "Test CA", nil)
	key := ecKey(t)
	good := pair(t, key, ca.leaf(t, key, ""))
	other := pair(t, ecKey(t), ca.leaf(t, ecKey(t), ""))
	missing := filepath.Join(t.TempDir(), "missing.pem")
	garbage := writeFile(t, "garbage.pem", []byte("not a PEM file\n"))
	badDER := writeFile(t, "bad.pem", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	encrypted := writeFile(t, "enc.pem", []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"))

	tests := []struct {
		name string
		pair CertPair
		want []string
	}{
		{"missing cert", CertPair{missing, good.Key}, []string{`cannot load certificate "` + missing + `"`, "no such file"}},
		{"missing key", CertPair{good.Cert, missing}, []string{`cannot load certificate key "` + missing + `"`, "no such file"}},
		{"cert not PEM", CertPair{garbage, good.Key}, []string{`cannot load certificate "` + garbage + `"`, "no PEM CERTIFICATE"}},
		{"cert bad DER", CertPair{badDER, good.Key}, []string{`cannot load certificate "` + badDER + `"`, "certificate 1"}},
		{"key not PEM", CertPair{good.Cert, garbage}, []string{`cannot load certificate key "` + garbage + `"`, "no PEM PRIVATE KEY"}},
		{"key is a cert", CertPair{good.Cert, good.Cert}, []string{`cannot load certificate key "` + good.Cert + `"`}},
		{"key encrypted", CertPair{good.Cert, encrypted}, []string{`cannot load certificate key "` + encrypted + `"`, "encrypted"}},
		{"mismatch", CertPair{good.Cert, other.Key}, []string{`cannot load certificate key "` + other.Key + `"`, "mismatch", good.Cert}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(Options{Certs: []CertPair{tt.pair}})
			if err == nil {
				c.Close()
				t.Fatal("New succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	if _, err := New(Options{}); err == nil || !strings.Contains(err.Error(), "ssl_certificate") {
		t.Errorf("no certificates: error %v", err)
	}
}

func TestOptions(t *testing.T) {
	ca := newCA(t, "Test CA", nil)
	key := ecKey(t)
	certs := []CertPair{pair(t, key, ca.leaf(t, key, ""))}
	notOCSP := writeFile(t, "notocsp.der", []byte("garbage"))

	tests := []struct {
		name    string
		o       Options
		wantErr string // empty: must succeed
		check   func(t *testing.T, c *tls.Config)
	}{
		{name: "defaults", check: func(t *testing.T, c *tls.Config) {
			if c.MinVersion != tls.VersionTLS12 || c.MaxVersion != tls.VersionTLS13 {
				t.Errorf("versions %x-%x", c.MinVersion, c.MaxVersion)
			}
			if c.CurvePreferences != nil || c.SessionTicketsDisabled || c.WrapSession == nil {
				t.Errorf("curves %v, tickets disabled %v", c.CurvePreferences, c.SessionTicketsDisabled)
			}
			if len(c.CipherSuites) != 17 {
				t.Errorf("%d suites for HIGH:!aNULL:!MD5, want 17", len(c.CipherSuites))
			}
		}},
		{name: "TLSv1 to TLSv1.2", o: Options{Protocols: []string{"TLSv1", "TLSv1.1", "TLSv1.2"}}, check: func(t *testing.T, c *tls.Config) {
			if c.MinVersion != tls.VersionTLS10 || c.MaxVersion != tls.VersionTLS12 {
				t.Errorf("versions %x-%x", c.MinVersion, c.MaxVersion)
			}
		}},
		{name: "gap", o: Options{Protocols: []string{"TLSv1", "TLSv1.3"}}, wantErr: "ssl_protocols with a gap (TLSv1 TLSv1.3 without TLSv1.1 TLSv1.2) is not supported"},
		{name: "SSLv3", o: Options{Protocols: []string{"SSLv3", "TLSv1"}}, wantErr: "Go's TLS does not implement SSLv3"},
		{name: "bad protocol", o: Options{Protocols: []string{"TLSv2"}}, wantErr: `invalid value "TLSv2"`},
		{name: "no cipher known", o: Options{Ciphers: "FOO-BAR"}, wantErr: `no ciphers left`},
		{name: "no ciphers", o: Options{Ciphers: "!ALL"}, wantErr: "no ciphers left"},
		{name: "no TLS 1.2 ciphers with TLS 1.3 only", o: Options{Ciphers: "TLS_AES_128_GCM_SHA256", Protocols: []string{"TLSv1.3"}}, check: func(t *testing.T, c *tls.Config) {
			if c.MinVersion != tls.VersionTLS13 {
				t.Errorf("min version %x", c.MinVersion)
			}
		}},
		{name: "curves", o: Options{ECDHCurve: "X25519:prime256v1:secp384r1"}, check: func(t *testing.T, c *tls.Config) {
			want := []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384}
			if len(c.CurvePreferences) != 3 || c.CurvePreferences[0] != want[0] || c.CurvePreferences[1] != want[1] || c.CurvePreferences[2] != want[2] {
				t.Errorf("curves %v, want %v", c.CurvePreferences, want)
			}
		}},
		{name: "curve auto", o: Options{ECDHCurve: "auto"}, check: func(t *testing.T, c *tls.Config) {
			if c.CurvePreferences != nil {
				t.Errorf("curves %v", c.CurvePreferences)
			}
		}},
		{name: "unknown curve", o: Options{ECDHCurve: "X25519:X448"}, wantErr: `unsupported curve "X448"`},
		{name: "tickets off, no cache", o: Options{DisableSessionTickets: true, SessionCache: "none"}, check: func(t *testing.T, c *tls.Config) {
			if !c.SessionTicketsDisabled {
				t.Error("tickets enabled")
			}
		}},
		{name: "tickets off, cache", o: Options{DisableSessionTickets: true, SessionCache: "shared:SSL:10m"}, check: func(t *testing.T, c *tls.Config) {
			if c.SessionTicketsDisabled || c.UnwrapSession == nil {
				t.Error("no server-side resumption")
			}
		}},
		{name: "bad cache", o: Options{SessionCache: "shared:SSL"}, wantErr: "shared:NAME:SIZE"},
		{name: "bad cache size", o: Options{SessionCache: "shared:SSL:10x"}, wantErr: "invalid size"},
		{name: "off combined", o: Options{SessionCache: "off builtin"}, wantErr: "cannot be combined"},
		{name: "missing trusted", o: Options{Stapling: true, TrustedCertificate: "/nonexistent/chain.pem"}, wantErr: `cannot load trusted certificate "/nonexistent/chain.pem"`},
		{name: "missing stapling file", o: Options{Stapling: true, StaplingFile: "/nonexistent/ocsp.der"}, wantErr: `cannot load OCSP stapling file "/nonexistent/ocsp.der"`},
		{name: "bad stapling file", o: Options{Stapling: true, StaplingFile: notOCSP}, wantErr: `cannot load OCSP stapling file "` + notOCSP + `"`},
		{name: "alpn", o: Options{NextProtos: []string{"h2", "http/1.1"}}, check: func(t *testing.T, c *tls.Config) {
			if strings.Join(c.NextProtos, ",") != "h2,http/1.1" {
				t.Errorf("NextProtos %v", c.NextProtos)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.o
			o.Certs = certs
			c, err := New(o)
			if tt.wantErr != "" {
				if err == nil {
					c.Close()
					t.Fatalf("New succeeded, want error containing %q", tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %q does not contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			tt.check(t, c.TLS())
		})
	}
}

// TestCertificateSelection: with RSA and ECDSA pairs, a client gets the
// one it can use, ECDSA when it can use both.
func TestCertificateSelection(t *testing.T) {
	ca := newCA(t, "Test CA", nil)
	rsaKey, ecdsaKey := rsaKeyOnce(), ecKey(t)
	rsaLeaf, ecdsaLeaf := ca.leaf(t, rsaKey, ""), ca.leaf(t, ecdsaKey, "")
	c := mustNew(t, Options{Certs: []CertPair{pair(t, rsaKey, rsaLeaf), pair(t, ecdsaKey, ecdsaLeaf)}})
	addr := serve(t, c.TLS())

	tests := []struct {
		name   string
		client *tls.Config
		want   []byte
	}{
		{"TLS 1.2 ECDSA suites", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}, ecdsaLeaf.Raw},
		{"TLS 1.2 RSA suites", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}}, rsaLeaf.Raw},
		{"TLS 1.3 prefers ECDSA", &tls.Config{}, ecdsaLeaf.Raw},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.client.Clone()
			cfg.RootCAs = pool(ca.cert)
			cfg.ServerName = "ws.example.com"
			st, err := dial(t, addr, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := st.PeerCertificates[0].Raw; !bytes.Equal(got, tt.want) {
				t.Errorf("served %s key", st.PeerCertificates[0].PublicKeyAlgorithm)
			}
		})
	}
}

// TestProtocolsAndCiphers runs real handshakes against ssl_protocols and
// ssl_ciphers settings.
func TestProtocolsAndCiphers(t *testing.T) {
	ca := newCA(t, "Test CA", nil)
	rsaKey, ecdsaKey := rsaKeyOnce(), ecKey(t)
	certs := []CertPair{pair(t, rsaKey, ca.leaf(t, rsaKey, "")), pair(t, ecdsaKey, ca.leaf(t, ecdsaKey, ""))}
	seed03 := "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"

	tests := []struct {
		name      string
		server    Options
		client    *tls.Config
		wantErr   bool
		wantVer   uint16
		wantSuite uint16
	}{
		{"TLSv1.3 only refuses a TLS 1.2 client", Options{Protocols: []string{"TLSv1.3"}}, &tls.Config{MaxVersion: tls.VersionTLS12}, true, 0, 0},
		{"TLSv1.3 only serves TLS 1.3", Options{Protocols: []string{"TLSv1.3"}}, &tls.Config{}, false, tls.VersionTLS13, 0},
		{"TLSv1.2 only caps a TLS 1.3 client", Options{Protocols: []string{"TLSv1.2"}}, &tls.Config{}, false, tls.VersionTLS12, 0},
		{"seed 03 list refuses CBC", Options{Ciphers: seed03}, &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA}}, true, 0, 0},
		{"seed 03 list refuses CHACHA20", Options{Ciphers: seed03}, &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}}, true, 0, 0},
		{"seed 03 list serves AES256-GCM", Options{Ciphers: seed03}, &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA}}, false, tls.VersionTLS12, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384},
		{"default list serves CBC", Options{}, &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA}}, false, tls.VersionTLS12, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA},
		{"CHACHA20 only", Options{Ciphers: "CHACHA20"}, &tls.Config{MaxVersion: tls.VersionTLS12}, false, tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.server
			o.Certs = certs
			addr := serve(t, mustNew(t, o).TLS())
			cfg := tt.client.Clone()
			cfg.RootCAs = pool(ca.cert)
			cfg.ServerName = "ws.example.com"
			st, err := dial(t, addr, cfg)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("handshake succeeded: version %x suite %s", st.Version, tls.CipherSuiteName(st.CipherSuite))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if st.Version != tt.wantVer {
				t.Errorf("version %x, want %x", st.Version, tt.wantVer)
			}
			if tt.wantSuite != 0 && st.CipherSuite != tt.wantSuite {
				t.Errorf("suite %s, want %s", tls.CipherSuiteName(st.CipherSuite), tls.CipherSuiteName(tt.wantSuite))
			}
		})
	}
}

// TestResumption covers ssl_session_cache with ssl_session_tickets.
func TestResumption(t *testing.T) {
	ca := newCA(t, "Test CA", nil)
	key := ecKey(t)
	certs := []CertPair{pair(t, key, ca.leaf(t, key, ""))}

	tests := []struct {
		name       string
		o          Options
		wantResume bool
		wantStored bool
	}{
		{"tickets off, shared cache", Options{DisableSessionTickets: true, SessionCache: "shared:SSL:10m", SessionTimeout: 24 * time.Hour}, true, true},
		{"tickets off, builtin cache", Options{DisableSessionTickets: true, SessionCache: "builtin:100"}, true, true},
		{"tickets off, cache off", Options{DisableSessionTickets: true, SessionCache: "off"}, false, false},
		{"tickets off, cache none", Options{DisableSessionTickets: true, SessionCache: "none"}, false, false},
		{"tickets on", Options{}, true, false},
	}
	for _, tt := range tests {
		for _, ver := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			t.Run(tt.name+"/"+tls.VersionName(ver), func(t *testing.T) {
				o := tt.o
				o.Certs = certs
				c := mustNew(t, o)
				addr := serve(t, c.TLS())
				cfg := &tls.Config{
					RootCAs:            pool(ca.cert),
					ServerName:         "ws.example.com",
					MaxVersion:         ver,
					ClientSessionCache: tls.NewLRUClientSessionCache(4),
				}
				first, err := dial(t, addr, cfg)
				if err != nil {
					t.Fatal(err)
				}
				if first.DidResume {
					t.Fatal("first connection resumed")
				}
				second, err := dial(t, addr, cfg)
				if err != nil {
					t.Fatal(err)
				}
				if second.DidResume != tt.wantResume {
					t.Errorf("second connection DidResume %v, want %v", second.DidResume, tt.wantResume)
				}
				if stored := c.store != nil && c.store.len() > 0; stored != tt.wantStored {
					t.Errorf("server-side store used %v, want %v", stored, tt.wantStored)
				}
			})
		}
	}
}

// TestSessionTimeout: expired sessions are not resumed, with tickets or
// with the server-side store.
func TestSessionTimeout(t *testing.T) {
	ca := newCA(t, "Test CA", nil)
	key := ecKey(t)
	certs := []CertPair{pair(t, key, ca.leaf(t, key, ""))}
	for _, tickets := range []bool{true, false} {
		t.Run(map[bool]string{true: "tickets", false: "cache"}[tickets], func(t *testing.T) {
			var clock atomic.Int64
			clock.Store(time.Now().UnixNano())
			now := func() time.Time { return time.Unix(0, clock.Load()) }
			c := mustNew(t, Options{Certs: certs, DisableSessionTickets: !tickets, SessionCache: "shared:SSL:1m", SessionTimeout: time.Hour, now: now})
			addr := serve(t, c.TLS())
			cfg := &tls.Config{RootCAs: pool(ca.cert), ServerName: "ws.example.com", ClientSessionCache: tls.NewLRUClientSessionCache(4)}
			if _, err := dial(t, addr, cfg); err != nil {
				t.Fatal(err)
			}
			st, err := dial(t, addr, cfg)
			if err != nil || !st.DidResume {
				t.Fatalf("within the timeout: resumed %v, err %v", st.DidResume, err)
			}
			clock.Add(int64(2 * time.Hour))
			st, err = dial(t, addr, cfg)
			if err != nil || st.DidResume {
				t.Fatalf("after the timeout: resumed %v, err %v", st.DidResume, err)
			}
		})
	}
}

func TestSessionStoreBounded(t *testing.T) {
	s := newSessionStore(3, time.Hour)
	var ids [][]byte
	for i := range 5 {
		ids = append(ids, s.put([]byte{byte(i)}))
	}
	if s.len() != 3 {
		t.Fatalf("%d entries, want 3", s.len())
	}
	if s.get(ids[0]) != nil || s.get(ids[1]) != nil {
		t.Error("oldest entries kept")
	}
	if got := s.get(ids[4]); len(got) != 1 || got[0] != 4 {
		t.Errorf("newest entry %v", got)
	}
	if len(ids[0]) != sessionIDLen {
		t.Errorf("id length %d", len(ids[0]))
	}
}

func TestParseSessionCache(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		wantErr bool
	}{
		{"", 0, false},
		{"off", 0, false},
		{"none", 0, false},
		{"builtin", builtinDefault, false},
		{"builtin:1000", 1000, false},
		{"shared:SSL:10m", 10 << 20 / bytesPerSession, false},
		{"shared:SSL:1m", 4096, false},
		{"builtin:1000 shared:SSL:1m", 4096, false},
		{"builtin:0", 0, true},
		{"shared::1m", 0, true},
		{"shared:SSL:1", 0, true},
		{"on", 0, true},
	}
	for _, tt := range tests {
		got, err := parseSessionCache(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseSessionCache(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestClosedConfigServes: Close only stops the refreshers.
func TestClosedConfigServes(t *testing.T) {
	ca := newCA(t, "Test CA", nil)
	key := ecKey(t)
	c := mustNew(t, Options{Certs: []CertPair{pair(t, key, ca.leaf(t, key, ""))}})
	c.Close()
	c.Close()
	if _, err := dial(t, serve(t, c.TLS()), &tls.Config{RootCAs: pool(ca.cert), ServerName: "ws.example.com"}); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkGetCertificate measures the per-handshake selection between an
// RSA and an ECDSA pair.
func BenchmarkGetCertificate(b *testing.B) {
	ca := newCA(b, "Test CA", nil)
	rsaKey, ecdsaKey := rsaKeyOnce(), ecKey(b)
	c, err := New(Options{Certs: []CertPair{pair(b, rsaKey, ca.leaf(b, rsaKey, "")), pair(b, ecdsaKey, ca.leaf(b, ecdsaKey, ""))}})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	// A TLS 1.2 RSA-only client: the ECDSA pair is tried and refused first.
	chi := &tls.ClientHelloInfo{
		CipherSuites:      []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256},
		SupportedVersions: []uint16{tls.VersionTLS12},
		SignatureSchemes:  []tls.SignatureScheme{tls.PSSWithSHA256, tls.PKCS1WithSHA256},
		SupportedCurves:   []tls.CurveID{tls.X25519},
		SupportedPoints:   []uint8{0},
	}
	b.ReportAllocs()
	for b.Loop() {
		cert, err := c.getCertificate(chi)
		if err != nil || cert.Leaf.PublicKeyAlgorithm != x509.RSA {
			b.Fatal("RSA pair not chosen", err)
		}
	}
}
