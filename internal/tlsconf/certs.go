package tlsconf

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/youmark/pkcs8"
)

// readCertChain reads a PEM file of certificates, leaf first (nginx's
// ssl_certificate: the leaf followed by intermediates).
func readCertChain(path string) ([]*x509.Certificate, [][]byte, error) {
	data, err := readSource(path)
	if err != nil {
		return nil, nil, err
	}
	var (
		certs []*x509.Certificate
		ders  [][]byte
	)
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("certificate %d in the file: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
		ders = append(ders, b.Bytes)
	}
	if len(certs) == 0 {
		return nil, nil, errors.New("no PEM CERTIFICATE block found")
	}
	return certs, ders, nil
}

// readSource reads a file, or the text after "data:" (nginx's way of
// writing a certificate or key inline).
func readSource(path string) ([]byte, error) {
	if v, ok := strings.CutPrefix(path, "data:"); ok {
		return []byte(v), nil
	}
	return os.ReadFile(path)
}

// readKey reads the first PEM private key in path. An encrypted one is
// tried with each pass phrase in turn, as nginx does with
// ssl_password_file.
func readKey(path string, passwords []string) (crypto.Signer, error) {
	data, err := readSource(path)
	if err != nil {
		return nil, err
	}
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no PEM PRIVATE KEY block found")
		}
		if !strings.HasSuffix(b.Type, "PRIVATE KEY") {
			continue
		}
		// Legacy OpenSSL encryption marks the block with a Proc-Type header.
		if b.Headers["Proc-Type"] != "" || b.Type == "ENCRYPTED PRIVATE KEY" {
			return decryptKey(b, passwords)
		}
		return parseKey(b.Bytes)
	}
}

// decryptKey decrypts a PKCS#8 encrypted key (PBES2: PBKDF2 or scrypt,
// AES or 3DES) or a legacy OpenSSL-encrypted PEM key.
func decryptKey(b *pem.Block, passwords []string) (crypto.Signer, error) {
	if len(passwords) == 0 {
		return nil, errors.New("the key is encrypted and no \"ssl_password_file\" is set")
	}
	for _, pw := range passwords {
		if b.Type == "ENCRYPTED PRIVATE KEY" {
			k, err := pkcs8.ParsePKCS8PrivateKey(b.Bytes, []byte(pw))
			if err != nil {
				continue
			}
			if s, ok := k.(crypto.Signer); ok {
				return parseSigner(s)
			}
			return nil, fmt.Errorf("unsupported key type %T", k)
		}
		//lint:ignore SA1019 legacy PEM encryption is what OpenSSL wrote for years; nginx reads it.
		der, err := x509.DecryptPEMBlock(b, []byte(pw)) //nolint:staticcheck
		if err != nil {
			continue
		}
		// A wrong pass phrase passes the padding check about once in 256
		// tries and yields garbage: only a key that parses is the key.
		if k, err := parseKey(der); err == nil {
			return k, nil
		}
	}
	return nil, errors.New("bad decrypt: no pass phrase in \"ssl_password_file\" opens the key")
}

// parseSigner admits the key types crypto/tls can serve with.
func parseSigner(s crypto.Signer) (crypto.Signer, error) {
	switch s.(type) {
	case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
		return s, nil
	}
	return nil, fmt.Errorf("unsupported key type %T", s)
}

// readPasswords reads ssl_password_file: one pass phrase a line.
func readPasswords(path string) ([]string, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open %q: %w", path, err)
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSuffix(l, "\r"); l != "" {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty file %q in \"ssl_password_file\"", path)
	}
	return out, nil
}

func parseKey(der []byte) (crypto.Signer, error) {
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		switch k := k.(type) {
		case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
			return k.(crypto.Signer), nil
		default:
			return nil, fmt.Errorf("unsupported key type %T", k)
		}
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	return nil, errors.New("cannot parse the private key (PKCS#8, PKCS#1 or SEC 1 expected)")
}

// loadPair loads one ssl_certificate/ssl_certificate_key pair, with
// nginx's wording for errors.
func loadPair(p CertPair, passwords []string) (*tls.Certificate, []*x509.Certificate, error) {
	chain, ders, err := readCertChain(p.Cert)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot load certificate %q: %w", p.Cert, err)
	}
	key, err := readKey(p.Key, passwords)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot load certificate key %q: %w", p.Key, err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(chain[0].PublicKey) {
		return nil, nil, fmt.Errorf("cannot load certificate key %q: key values mismatch with certificate %q", p.Key, p.Cert)
	}
	return &tls.Certificate{Certificate: ders, PrivateKey: key, Leaf: chain[0]}, chain, nil
}

// readPool reads a PEM bundle (ssl_trusted_certificate).
func readPool(path string) ([]*x509.Certificate, error) {
	certs, _, err := readCertChain(path)
	if err != nil {
		return nil, fmt.Errorf("cannot load trusted certificate %q: %w", path, err)
	}
	return certs, nil
}

// findIssuer looks for leaf's issuer as nginx does: the certificate after
// it in the chain file, then the trusted bundle.
func findIssuer(chain, trusted []*x509.Certificate) *x509.Certificate {
	leaf := chain[0]
	for _, c := range append(append([]*x509.Certificate(nil), chain[1:]...), trusted...) {
		if leaf.CheckSignatureFrom(c) == nil {
			return c
		}
	}
	return nil
}
