package acme

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Issuer is one acme_issuer block, as plain values.
type Issuer struct {
	Name string
	// URI is the CA's directory URL.
	URI string
	// AccountKey is "alg[:size]" (ecdsa:256 when empty) or the path of a
	// PEM key file.
	AccountKey string
	// Challenge is "http-01" (when empty) or "tls-alpn-01".
	Challenge string
	// Contact lists contact URLs; "mailto:" is added to those without a
	// scheme.
	Contact []string
	// EABKeyID and EABKey are external_account_key: the key identifier
	// and a file (or "data:...") holding the base64url MAC key.
	EABKeyID, EABKey string
	// PreferredChain picks, among the chains the CA offers, the first
	// whose topmost certificate is issued by (or is) this common name.
	PreferredChain string
	// Profile is the issuance profile asked for; the CA must list it.
	Profile string
	// TrustedCertificate is a PEM bundle of the CAs trusted for the ACME
	// server's certificate; empty means the system's.
	TrustedCertificate string
	// NoVerify is "ssl_verify off".
	NoVerify bool
	// StatePath is the state directory; empty keeps nothing on disk.
	StatePath string
	// AcceptTOS is accept_terms_of_service.
	AcceptTOS bool
}

// Order is one acme_certificate: the identifiers (DNS names or IP
// addresses) and the type of the certificate's key.
type Order struct {
	Issuer *Issuer
	Names  []string
	// Key is "alg[:size]"; empty means ecdsa:256.
	Key string
}

// Validate checks everything that can be checked without the network or
// writing anything: key types, challenge, files that must be readable.
func (o Order) Validate() error {
	iss := o.Issuer
	if iss == nil || iss.URI == "" {
		return errors.New(`"uri" is missing in the acme_issuer block`)
	}
	if len(o.Names) == 0 {
		return errors.New("acme_certificate has no identifiers: name them, or give the server a server_name without wildcards or regular expressions")
	}
	for _, n := range o.Names {
		if !validIdentifier(n) {
			return fmt.Errorf("acme_certificate: invalid identifier %q", n)
		}
	}
	if _, err := parseKeySpec(o.Key); err != nil {
		return fmt.Errorf("acme_certificate: %v", err)
	}
	switch iss.Challenge {
	case "", "http-01", "tls-alpn-01":
	default:
		return fmt.Errorf("acme_issuer %q: unsupported challenge %q", iss.Name, iss.Challenge)
	}
	if _, err := iss.loadAccountKeyFile(); err != nil {
		return err
	}
	if _, err := iss.eabKey(); err != nil {
		return err
	}
	if _, err := iss.rootCAs(); err != nil {
		return err
	}
	return nil
}

// validIdentifier admits IP addresses and DNS names without wildcards.
func validIdentifier(n string) bool {
	if _, err := netip.ParseAddr(n); err == nil {
		return true
	}
	if n == "" || len(n) > 253 || strings.HasPrefix(n, ".") || strings.HasSuffix(n, ".") || strings.Contains(n, "..") {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// keySpec is a key algorithm and size, such as ecdsa:256.
type keySpec struct {
	alg  string
	size int
}

var keySizes = map[string][]int{"ecdsa": {256, 384, 521}, "rsa": {2048, 3072, 4096}}

// parseKeySpec reads "ecdsa[:256|384|521]" or "rsa[:2048|3072|4096]";
// empty means ecdsa:256.
func parseKeySpec(s string) (keySpec, error) {
	if s == "" {
		return keySpec{"ecdsa", 256}, nil
	}
	alg, size, hasSize := strings.Cut(s, ":")
	sizes, ok := keySizes[alg]
	if !ok {
		return keySpec{}, fmt.Errorf("unsupported key algorithm %q (ecdsa or rsa)", alg)
	}
	k := keySpec{alg, sizes[0]}
	if hasSize {
		n, err := strconv.Atoi(size)
		if err != nil || !slices.Contains(sizes, n) {
			return keySpec{}, fmt.Errorf("unsupported key size %q for %s (%v)", size, alg, sizes)
		}
		k.size = n
	}
	return k, nil
}

func (k keySpec) String() string { return k.alg + ":" + strconv.Itoa(k.size) }

func (k keySpec) generate() (crypto.Signer, error) {
	if k.alg == "rsa" {
		return rsa.GenerateKey(rand.Reader, k.size)
	}
	curve := map[int]elliptic.Curve{256: elliptic.P256(), 384: elliptic.P384(), 521: elliptic.P521()}[k.size]
	return ecdsa.GenerateKey(curve, rand.Reader)
}

// isKeyFile reports whether account_key names a file rather than a type.
func (iss *Issuer) isKeyFile() bool {
	_, err := parseKeySpec(iss.AccountKey)
	return iss.AccountKey != "" && err != nil
}

// loadAccountKeyFile reads account_key when it names a file; nil
// otherwise.
func (iss *Issuer) loadAccountKeyFile() (crypto.Signer, error) {
	if !iss.isKeyFile() {
		return nil, nil
	}
	data, err := os.ReadFile(iss.AccountKey)
	if err != nil {
		return nil, fmt.Errorf("acme_issuer %q: cannot load account key: %v", iss.Name, err)
	}
	k, err := parsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("acme_issuer %q: cannot load account key %q: %v", iss.Name, iss.AccountKey, err)
	}
	return k, nil
}

// eabKey decodes external_account_key's MAC key; nil without one.
func (iss *Issuer) eabKey() ([]byte, error) {
	if iss.EABKeyID == "" {
		return nil, nil
	}
	var data []byte
	if v, ok := strings.CutPrefix(iss.EABKey, "data:"); ok {
		data = []byte(v)
	} else {
		var err error
		if data, err = os.ReadFile(iss.EABKey); err != nil {
			return nil, fmt.Errorf("acme_issuer %q: cannot read external_account_key: %v", iss.Name, err)
		}
	}
	key, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(strings.TrimSpace(string(data)), "="))
	if err != nil || len(key) == 0 {
		return nil, fmt.Errorf("acme_issuer %q: external_account_key is not base64url", iss.Name)
	}
	return key, nil
}

// rootCAs reads ssl_trusted_certificate; nil means the system's roots.
func (iss *Issuer) rootCAs() (*x509.CertPool, error) {
	if iss.TrustedCertificate == "" {
		return nil, nil
	}
	data, err := os.ReadFile(iss.TrustedCertificate)
	if err != nil {
		return nil, fmt.Errorf("acme_issuer %q: cannot load trusted certificate: %v", iss.Name, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("acme_issuer %q: no certificate in %q", iss.Name, iss.TrustedCertificate)
	}
	return pool, nil
}

// contacts returns Contact with "mailto:" added where no scheme is given.
func (iss *Issuer) contacts() []string {
	var out []string
	for _, c := range iss.Contact {
		if !strings.Contains(c, ":") {
			c = "mailto:" + c
		}
		out = append(out, c)
	}
	return out
}

// stateName is the base name of the order's files in the state directory.
func (o Order) stateName() string {
	names := slices.Clone(o.Names)
	slices.Sort(names)
	k, _ := parseKeySpec(o.Key)
	sum := sha256.Sum256([]byte(strings.Join(names, ",") + ";" + k.String()))
	return strings.ReplaceAll(o.Names[0], ":", "_") + "-" + hex.EncodeToString(sum[:4])
}

// parsePrivateKey reads the first PEM private key: PKCS#8, SEC 1 or
// PKCS#1, RSA or ECDSA.
func parsePrivateKey(data []byte) (crypto.Signer, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no PEM PRIVATE KEY block found")
		}
		if !strings.HasSuffix(b.Type, "PRIVATE KEY") {
			continue
		}
		if k, err := x509.ParsePKCS8PrivateKey(b.Bytes); err == nil {
			switch k := k.(type) {
			case *ecdsa.PrivateKey:
				return k, nil
			case *rsa.PrivateKey:
				return k, nil
			}
			return nil, fmt.Errorf("unsupported key type %T (ecdsa or rsa)", k)
		}
		if k, err := x509.ParseECPrivateKey(b.Bytes); err == nil {
			return k, nil
		}
		if k, err := x509.ParsePKCS1PrivateKey(b.Bytes); err == nil {
			return k, nil
		}
		return nil, errors.New("cannot parse the private key (PKCS#8, SEC 1 or PKCS#1 expected)")
	}
}

func marshalKey(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
