package acme

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// schedule says how long to wait before looking again, or that the
// certificate is due for renewal now. With ACME Renewal Information the
// CA's suggested window decides (a random moment in it, as RFC 9773
// asks, but not in the last quarter of the lifetime); without, renewal
// comes at two thirds of the lifetime.
func (c *Cert) schedule(ctx context.Context, cur *tls.Certificate) (wait time.Duration, at time.Time, due bool) {
	leaf := cur.Leaf
	at = leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) * 2 / 3)
	recheck := time.Duration(0)
	if start, end, retry, ok := c.renewalInfo(ctx, leaf); ok {
		// A window that runs into the last quarter of the lifetime is
		// cut there, so that an order has time to finish before expiry.
		if last := leaf.NotAfter.Add(-leaf.NotAfter.Sub(leaf.NotBefore) / 4); end.After(last) && last.After(start) {
			end = last
		}
		at, recheck = start, retry
		if span := end.Sub(start); span > 0 {
			at = start.Add(rand.N(span))
		}
	}
	wait = time.Until(at)
	if wait <= 0 {
		return 0, at, true
	}
	if recheck == 0 {
		recheck = 6 * time.Hour // the CA may start offering renewal information, or be reachable again
	}
	if recheck < wait {
		wait = recheck
	}
	return wait, at, false
}

// renewalInfo asks the CA for the certificate's renewal window; ok is
// false when the CA offers none or cannot be asked.
func (c *Cert) renewalInfo(ctx context.Context, leaf *x509.Certificate) (start, end time.Time, retry time.Duration, ok bool) {
	_, ari, err := c.acct.ready(ctx)
	if err != nil || ari == "" || len(leaf.AuthorityKeyId) == 0 {
		return
	}
	serial, err := asn1.Marshal(leaf.SerialNumber)
	if err != nil || len(serial) < 2 {
		return
	}
	id := base64.RawURLEncoding.EncodeToString(leaf.AuthorityKeyId) + "." + base64.RawURLEncoding.EncodeToString(serial[2:])
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(ari, "/")+"/"+id, nil)
	if err != nil {
		return
	}
	resp, err := c.acct.http.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return
	}
	var info struct {
		SuggestedWindow struct {
			Start, End time.Time
		} `json:"suggestedWindow"`
		ExplanationURL string `json:"explanationURL"`
	}
	if json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 1<<16)).Decode(&info) != nil || !info.SuggestedWindow.End.After(info.SuggestedWindow.Start) {
		return
	}
	retry = time.Hour
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		retry = min(max(time.Duration(s)*time.Second, time.Minute), 24*time.Hour)
	}
	return info.SuggestedWindow.Start, info.SuggestedWindow.End, retry, true
}
