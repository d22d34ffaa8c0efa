package selfsigned

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"testing"
	"time"
)

func TestGenerate(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		hosts   []string
		ips     int
		dns     int
		wantErr bool
	}{
		{"ip and name", []string{"127.0.0.1", "localhost"}, 1, 1, false},
		{"name only", []string{"localhost"}, 0, 1, false},
		{"none", nil, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, k, err := Generate(tt.hosts, now)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v", err)
			}
			if tt.wantErr {
				return
			}
			if _, err := tls.X509KeyPair(c, k); err != nil {
				t.Fatalf("certificate and key do not pair: %v", err)
			}
			b, _ := pem.Decode(c)
			if b == nil || b.Type != "CERTIFICATE" {
				t.Fatal("no CERTIFICATE block")
			}
			cert, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
			if !ok || pub.Curve != elliptic.P256() {
				t.Fatalf("key is %T, want ECDSA P-256", cert.PublicKey)
			}
			if len(cert.IPAddresses) != tt.ips || len(cert.DNSNames) != tt.dns {
				t.Fatalf("SANs %v %v", cert.IPAddresses, cert.DNSNames)
			}
			if !cert.NotBefore.Before(now) || !cert.NotAfter.After(now.Add(24*time.Hour)) {
				t.Fatalf("validity %v - %v", cert.NotBefore, cert.NotAfter)
			}
			for _, h := range tt.hosts {
				if err := cert.VerifyHostname(h); err != nil {
					t.Errorf("VerifyHostname(%s): %v", h, err)
				}
			}
			if kb, _ := pem.Decode(k); kb == nil || kb.Type != "PRIVATE KEY" {
				t.Fatal("key is not a PKCS #8 PRIVATE KEY block")
			}
		})
	}
}

// TestServerConfig completes a real TLS 1.3 handshake on loopback with the
// generated certificate, verifying it against itself as the root.
func TestServerConfig(t *testing.T) {
	sc, err := ServerConfig()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp4", "127.0.0.1:0", sc)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		done <- c.(*tls.Conn).Handshake()
	}()
	roots := x509.NewCertPool()
	roots.AddCert(sc.Certificates[0].Leaf)
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp4", ln.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if v := conn.ConnectionState().Version; v != tls.VersionTLS13 {
		t.Errorf("version %x, want TLS 1.3", v)
	}
	conn.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestGenerateRSA(t *testing.T) {
	c, k, err := GenerateKind([]string{"127.0.0.1", "localhost"}, time.Now(), RSA)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatalf("certificate and key do not pair: %v", err)
	}
	if pub, ok := pair.Leaf.PublicKey.(*rsa.PublicKey); !ok || pub.N.BitLen() != 2048 {
		t.Fatalf("key is %T, want RSA 2048", pair.Leaf.PublicKey)
	}
	if _, _, err := GenerateKind([]string{"localhost"}, time.Now(), "dsa"); err == nil {
		t.Error("an unknown key kind was accepted")
	}
}
