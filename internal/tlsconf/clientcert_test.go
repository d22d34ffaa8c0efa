package tlsconf

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"
)

func clientLeaf(t *testing.T, a *authority, nb, na time.Time) *x509.Certificate {
	t.Helper()
	key := ecKey(t)
	tmpl := &x509.Certificate{SerialNumber: nextSerial(), Subject: pkix.Name{CommonName: "device"},
		NotBefore: nb, NotAfter: na, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, key.Public(), a.key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func crlPEM(t *testing.T, a *authority, next time.Time, revoked ...*x509.Certificate) []byte {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, c := range revoked {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: time.Now()})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1),
		ThisUpdate: time.Now().Add(-2 * time.Hour), NextUpdate: next, RevokedCertificateEntries: entries}, a.cert, a.key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}

// TestVerifyClient covers what the differential test against nginx does
// not: intermediates and ssl_verify_depth, CRLs for every CA, expired
// CRLs, and the statuses of each mode.
func TestVerifyClient(t *testing.T) {
	root := newCA(t, "root", nil)
	inter := newCA(t, "inter", root)
	key := ecKey(t)
	p := pair(t, key, root.leaf(t, key, ""))
	now := time.Now()
	direct := clientLeaf(t, root, now.Add(-time.Hour), now.Add(time.Hour))
	viaInter := clientLeaf(t, inter, now.Add(-time.Hour), now.Add(time.Hour))
	future := clientLeaf(t, root, now.Add(time.Hour), now.Add(2*time.Hour))
	rootFile := writeFile(t, "root.pem", certsPEM(root.cert))
	rootCRL := crlPEM(t, root, now.Add(time.Hour))
	interCRL := crlPEM(t, inter, now.Add(time.Hour), viaInter)

	tests := []struct {
		name       string
		o          Options
		peer       []*x509.Certificate
		want       string
		wantStatus int
	}{
		{"none, on", Options{VerifyClient: VerifyOn}, nil, "NONE", 496},
		{"none, optional", Options{VerifyClient: VerifyOptional}, nil, "NONE", 0},
		{"direct", Options{VerifyClient: VerifyOn}, []*x509.Certificate{direct}, "SUCCESS", 0},
		{"not yet valid", Options{VerifyClient: VerifyOn}, []*x509.Certificate{future}, "FAILED:certificate is not yet valid", 495},
		{"intermediate, depth 1", Options{VerifyClient: VerifyOn}, []*x509.Certificate{viaInter, inter.cert}, "FAILED:certificate chain too long", 495},
		{"intermediate, depth 2", Options{VerifyClient: VerifyOn, VerifyDepth: 2}, []*x509.Certificate{viaInter, inter.cert}, "SUCCESS", 0},
		{"intermediate not sent", Options{VerifyClient: VerifyOptionalNoCA, VerifyDepth: 2}, []*x509.Certificate{viaInter}, "FAILED:unable to verify the first certificate", 0},
		{"trusted via ssl_trusted_certificate", Options{VerifyClient: VerifyOn, ClientCertificate: "", TrustedCertificate: rootFile}, []*x509.Certificate{direct}, "SUCCESS", 0},
		{"CRL of the root only", Options{VerifyClient: VerifyOn, VerifyDepth: 2, CRL: writeFile(t, "crl", rootCRL)}, []*x509.Certificate{viaInter, inter.cert}, "FAILED:unable to get certificate CRL", 495},
		{"revoked by the intermediate", Options{VerifyClient: VerifyOn, VerifyDepth: 2, CRL: writeFile(t, "crl", append(append([]byte{}, rootCRL...), interCRL...))}, []*x509.Certificate{viaInter, inter.cert}, "FAILED:certificate revoked", 495},
		{"expired CRL", Options{VerifyClient: VerifyOn, CRL: writeFile(t, "crl", crlPEM(t, root, now.Add(-time.Hour)))}, []*x509.Certificate{direct}, "FAILED:CRL has expired", 495},
	}
	for _, tt := range tests {
		if tt.o.ClientCertificate == "" && tt.o.TrustedCertificate == "" {
			tt.o.ClientCertificate = rootFile
		}
		tt.o.Certs = []CertPair{p}
		c := mustNew(t, tt.o)
		r := c.VerifyClient(&tls.ConnectionState{PeerCertificates: tt.peer})
		if r.Verify != tt.want || r.Status != tt.wantStatus {
			t.Errorf("%s: %q %d, want %q %d", tt.name, r.Verify, r.Status, tt.want, tt.wantStatus)
		}
	}
	if _, err := New(Options{Certs: []CertPair{p}, VerifyClient: VerifyOn}); err == nil {
		t.Error("ssl_verify_client on without a CA file was accepted")
	}
}
