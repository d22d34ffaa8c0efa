package tlsconf

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Certificates named with $ssl_server_name are loaded during the
// handshake for the name the client sent, and kept by
// ssl_certificate_cache.

// HasVariables reports whether an ssl_certificate or ssl_certificate_key
// path names a variable.
func HasVariables(path string) bool { return strings.Contains(path, "$") }

// expandName substitutes the SNI name into a path template. Only
// $ssl_server_name (also written ${ssl_server_name}) is known at
// handshake time.
func expandName(tmpl, name string) string {
	return strings.NewReplacer("${ssl_server_name}", name, "$ssl_server_name", name).Replace(tmpl)
}

// CheckTemplate refuses variables other than $ssl_server_name.
func CheckTemplate(path string) error {
	rest := expandName(path, "")
	if strings.Contains(rest, "$") {
		return fmt.Errorf("only $ssl_server_name can be used in %q: no other variable is known during the handshake", path)
	}
	return nil
}

// safeName admits an SNI name into a file path: letters, digits, '-',
// '_' and dots between labels. Anything else (a '/', "..", a leading
// dot) could name a file outside the intended folder.
func safeName(name string) bool {
	if name == "" || len(name) > 253 || name[0] == '.' || strings.Contains(name, "..") {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// CertCache is ssl_certificate_cache: "off" (or empty) loads on every
// handshake; otherwise up to Max certificates are kept, dropped when
// unused for Inactive, and re-read after Valid.
type CertCache struct {
	Max             int
	Inactive, Valid time.Duration
}

// ParseCertCache reads "off" or "max=N [inactive=time] [valid=time]".
func ParseCertCache(v string, parseDuration func(string) (time.Duration, error)) (CertCache, error) {
	c := CertCache{Inactive: 10 * time.Second, Valid: 60 * time.Second}
	if v == "" || v == "off" {
		return CertCache{}, nil
	}
	for _, f := range strings.Fields(v) {
		k, val, ok := strings.Cut(f, "=")
		var err error
		switch {
		case !ok:
			err = errors.New("bad argument")
		case k == "max":
			c.Max, err = strconv.Atoi(val)
			if err == nil && c.Max <= 0 {
				err = errors.New("must be positive")
			}
		case k == "inactive":
			c.Inactive, err = parseDuration(val)
		case k == "valid":
			c.Valid, err = parseDuration(val)
		default:
			err = errors.New("unknown parameter")
		}
		if err != nil {
			return CertCache{}, fmt.Errorf("ssl_certificate_cache: invalid value %q: %v", f, err)
		}
	}
	if c.Max == 0 {
		return CertCache{}, errors.New("ssl_certificate_cache: \"max\" is required")
	}
	return c, nil
}

// dynCerts loads certificate pairs named by templates.
type dynCerts struct {
	pairs     []CertPair
	passwords []string
	cache     CertCache
	now       func() time.Time

	mu      sync.Mutex
	entries map[string]*dynEntry
}

type dynEntry struct {
	certs        []*tls.Certificate
	loaded, used time.Time
}

// get returns the certificate for hello, loading (or reusing) the pairs
// its SNI name selects.
func (d *dynCerts) get(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.TrimSuffix(strings.ToLower(hello.ServerName), ".")
	if !safeName(name) {
		return nil, fmt.Errorf("no certificate for the server name %q", hello.ServerName)
	}
	certs, err := d.load(name)
	if err != nil {
		return nil, err
	}
	for _, c := range certs {
		if hello.SupportsCertificate(c) == nil {
			return c, nil
		}
	}
	return certs[0], nil
}

func (d *dynCerts) load(name string) ([]*tls.Certificate, error) {
	now := d.now()
	if d.cache.Max > 0 {
		d.mu.Lock()
		e := d.entries[name]
		if e != nil && now.Sub(e.loaded) < d.cache.Valid && now.Sub(e.used) < d.cache.Inactive {
			e.used = now
			d.mu.Unlock()
			return e.certs, nil
		}
		d.mu.Unlock()
	}
	var certs []*tls.Certificate
	for _, p := range d.pairs {
		c, _, err := loadPair(CertPair{Cert: expandName(p.Cert, name), Key: expandName(p.Key, name)}, d.passwords)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	if d.cache.Max > 0 {
		d.store(name, certs, now)
	}
	return certs, nil
}

// store keeps certs for name, evicting expired entries and then the
// least recently used one when the cache is full.
func (d *dynCerts) store(name string, certs []*tls.Certificate, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.entries == nil {
		d.entries = map[string]*dynEntry{}
	}
	if _, ok := d.entries[name]; !ok && len(d.entries) >= d.cache.Max {
		var oldest string
		for k, e := range d.entries {
			if now.Sub(e.used) >= d.cache.Inactive || now.Sub(e.loaded) >= d.cache.Valid {
				delete(d.entries, k)
				continue
			}
			if oldest == "" || e.used.Before(d.entries[oldest].used) {
				oldest = k
			}
		}
		if len(d.entries) >= d.cache.Max {
			delete(d.entries, oldest)
		}
	}
	d.entries[name] = &dynEntry{certs: certs, loaded: now, used: now}
}
