package acme

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

const stateVersion = "1"

// stateDir is an issuer's state_path; "" keeps nothing on disk.
type stateDir string

// prepare creates the directory (0700) and its version file, or checks
// the version of an existing one.
func (d stateDir) prepare() error {
	if d == "" {
		return nil
	}
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return fmt.Errorf("cannot create state_path: %v", err)
	}
	v, err := os.ReadFile(d.path("version"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return d.write("version", []byte(stateVersion+"\n"))
	case err != nil:
		return fmt.Errorf("cannot read state_path: %v", err)
	case strings.TrimSpace(string(v)) != stateVersion:
		return fmt.Errorf("state_path %q holds layout version %q, this wsgate reads version %s", string(d), strings.TrimSpace(string(v)), stateVersion)
	}
	return nil
}

func (d stateDir) path(name string) string { return filepath.Join(string(d), name) }

// read returns a file's contents; nil when there is no state directory
// or no such file.
func (d stateDir) read(name string) ([]byte, error) {
	if d == "" {
		return nil, nil
	}
	b, err := os.ReadFile(d.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// write replaces a file whole (0600): a crash leaves the old or the new
// contents, never a mix.
func (d stateDir) write(name string, data []byte) error {
	if d == "" {
		return nil
	}
	f, err := os.CreateTemp(string(d), "."+name+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o600)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, d.path(name))
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// loadCert reads a certificate and its key saved by saveCert; nil when
// there is none. A pair that does not parse or match is an error.
func (d stateDir) loadCert(base string) (*tls.Certificate, error) {
	certPEM, err := d.read(base + ".crt")
	if err != nil || certPEM == nil {
		return nil, err
	}
	keyPEM, err := d.read(base + ".key")
	if err != nil || keyPEM == nil {
		return nil, err
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", d.path(base+".crt"), err)
	}
	return &c, nil
}

// saveCert writes the key first, then the chain, so that a chain on disk
// always has its key.
func (d stateDir) saveCert(base string, chain [][]byte, key crypto.Signer) error {
	keyPEM, err := marshalKey(key)
	if err != nil {
		return err
	}
	var certPEM []byte
	for _, der := range chain {
		certPEM = append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	if err := d.write(base+".key", keyPEM); err != nil {
		return err
	}
	return d.write(base+".crt", certPEM)
}

// certificate builds the served certificate from a chain and its key.
func certificate(chain [][]byte, key crypto.Signer) (*tls.Certificate, error) {
	if len(chain) == 0 {
		return nil, errors.New("the CA returned no certificate")
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}, nil
}
