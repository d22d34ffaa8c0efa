package tlsconf

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"
)

// ssl_ocsp: OCSP checks of client certificates, wsgate's own (crypto/tls
// has none for clients). They run once per connection right after the
// handshake, before its first request is served.

// Reasons nginx gives in $ssl_client_verify for OCSP (ngx_ssl_ocsp_get_status).
const (
	reasonOCSPFailed  = "certificate status request failed"
	reasonOCSPUnknown = "certificate status unknown"
)

// OCSP modes of ssl_ocsp.
const (
	OCSPOff  = ""
	OCSPOn   = "on"
	OCSPLeaf = "leaf"
)

// ocspChecker asks responders about client certificates and caches the
// answers (ssl_ocsp_cache) until their nextUpdate.
type ocspChecker struct {
	leafOnly  bool
	responder string // ssl_ocsp_responder; "" uses each certificate's URL
	client    *http.Client
	wait      time.Duration // cap on one connection's OCSP checks
	now       func() time.Time
	logf      func(format string, args ...any)

	mu       sync.Mutex
	cache    map[string]ocspEntry // nil: ssl_ocsp_cache off
	capacity int
}

type ocspEntry struct {
	status int
	until  time.Time
}

// ParseOCSPCache reads ssl_ocsp_cache: "off" (or empty), or
// "[shared:]name:size"; it returns how many answers to keep (a size of
// 1m holds about 4000, as nginx's shared zone would), 0 for off.
func ParseOCSPCache(v string, parseSize func(string) (int64, error)) (int, error) {
	if v == "" || v == "off" {
		return 0, nil
	}
	parts := strings.Split(strings.TrimPrefix(v, "shared:"), ":")
	if len(parts) != 2 || parts[0] == "" {
		return 0, fmt.Errorf("ssl_ocsp_cache: invalid value %q, it must be \"off\" or \"[shared:]name:size\"", v)
	}
	n, err := parseSize(parts[1])
	if err != nil || n < 8192 {
		return 0, fmt.Errorf("ssl_ocsp_cache: invalid size %q", parts[1])
	}
	return int(n / 256), nil
}

// check asks about every certificate of chain but the root (the leaf
// only with ssl_ocsp leaf) within the capped wait; it returns nginx's
// reason for a failure, or "".
func (o *ocspChecker) check(chain []*x509.Certificate) string {
	ctx, cancel := context.WithTimeout(context.Background(), o.wait)
	defer cancel()
	n := len(chain) - 1
	if o.leafOnly {
		n = min(n, 1)
	}
	for i := 0; i < n; i++ {
		status, err := o.status(ctx, chain[i], chain[i+1])
		if err != nil {
			o.logf("OCSP check of client certificate %q failed: %v", chain[i].Subject.String(), err)
			return reasonOCSPFailed
		}
		switch status {
		case ocsp.Good:
		case ocsp.Revoked:
			return reasonRevoked
		default:
			return reasonOCSPUnknown
		}
	}
	return ""
}

// status returns cert's OCSP status, from the cache or its responder.
func (o *ocspChecker) status(ctx context.Context, cert, issuer *x509.Certificate) (int, error) {
	key := string(issuer.RawSubjectPublicKeyInfo) + "\x00" + cert.SerialNumber.String()
	now := o.now()
	o.mu.Lock()
	if e, ok := o.cache[key]; ok && now.Before(e.until) {
		o.mu.Unlock()
		return e.status, nil
	}
	o.mu.Unlock()
	url := o.responder
	if url == "" && len(cert.OCSPServer) > 0 {
		url = cert.OCSPServer[0]
	}
	if url == "" {
		return 0, errors.New("no OCSP responder URL in the certificate")
	}
	reqDER, err := ocsp.CreateRequest(cert, issuer, &ocsp.RequestOptions{Hash: crypto.SHA1})
	if err != nil {
		return 0, err
	}
	der, err := fetchOCSP(ctx, o.client, url, reqDER)
	if err != nil {
		return 0, err
	}
	r, err := ocsp.ParseResponseForCert(der, cert, issuer)
	if err != nil {
		return 0, fmt.Errorf("invalid OCSP response: %w", err)
	}
	if r.ThisUpdate.After(now.Add(ocspLeeway)) || !r.NextUpdate.IsZero() && !now.Before(r.NextUpdate) {
		return 0, errors.New("OCSP response not current")
	}
	o.store(key, r, now)
	return r.Status, nil
}

// store caches an answer until its nextUpdate (an hour without one),
// dropping expired answers, then an arbitrary one, when full.
func (o *ocspChecker) store(key string, r *ocsp.Response, now time.Time) {
	if o.capacity == 0 {
		return
	}
	until := r.NextUpdate
	if until.IsZero() {
		until = now.Add(time.Hour)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.cache) >= o.capacity {
		for k, e := range o.cache {
			if !now.Before(e.until) {
				delete(o.cache, k)
			}
		}
		for k := range o.cache {
			if len(o.cache) < o.capacity {
				break
			}
			delete(o.cache, k)
		}
	}
	o.cache[key] = ocspEntry{status: r.Status, until: until}
}
