package tlsconf

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"
)

const (
	// maxOCSPResponse bounds what is read from a responder; real
	// responses are a few kilobytes.
	maxOCSPResponse = 1 << 20
	// ocspLeeway tolerates clock skew on ThisUpdate, as nginx does
	// (OCSP_check_validity with 300 seconds).
	ocspLeeway = 5 * time.Minute
)

// stapler keeps one certificate's OCSP staple fresh. Its fields are used by
// its own goroutine only (and by New before the goroutine starts); the
// staple reaches handshakes through certEntry.cur.
type stapler struct {
	entry  *certEntry
	issuer *x509.Certificate // nil when not found
	verify bool
	logf   func(format string, args ...any)
	fetch  func(context.Context) ([]byte, error)

	minRefresh, maxRefresh, retryAfter, fetchTimeout time.Duration

	expires time.Time // NextUpdate of the staple served; zero if none or open-ended
}

// run fetches after the first delay, then whenever update says, and drops
// the staple when it expires, until ctx is done.
func (s *stapler) run(ctx context.Context, wg *sync.WaitGroup, first time.Duration) {
	defer wg.Done()
	nextFetch := time.Now().Add(first)
	t := time.NewTimer(first)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if now := time.Now(); !now.Before(nextFetch) {
			fctx, cancel := context.WithTimeout(ctx, s.fetchTimeout)
			der, err := s.fetch(fctx)
			cancel()
			if ctx.Err() != nil {
				return
			}
			nextFetch = now.Add(s.update(der, err, time.Now()))
		}
		now := time.Now()
		if !s.expires.IsZero() && !now.Before(s.expires) {
			s.entry.cur.Store(s.entry.base)
			s.expires = time.Time{}
			s.logf("ssl_stapling: the OCSP response for certificate %q expired, not stapling until a new one arrives", s.entry.path)
		}
		wake := nextFetch
		if !s.expires.IsZero() && s.expires.Before(wake) {
			wake = s.expires
		}
		t.Reset(time.Until(wake))
	}
}

// update serves der if it is a good response (otherwise the previous
// staple stays) and returns the delay until the next fetch: half the
// remaining validity within [minRefresh, maxRefresh], or retryAfter after
// a failure.
func (s *stapler) update(der []byte, err error, now time.Time) time.Duration {
	var r *ocsp.Response
	if err == nil {
		r, err = s.check(der, now)
	}
	if err != nil {
		s.logf("ssl_stapling: certificate %q: %v", s.entry.path, err)
		return s.retryAfter
	}
	cert := *s.entry.base
	cert.OCSPStaple = der
	s.entry.cur.Store(&cert)
	s.expires = r.NextUpdate
	return s.delay(now, r.NextUpdate)
}

// delay is half the time left until nextUpdate, within [minRefresh,
// maxRefresh]; maxRefresh for an open-ended response.
func (s *stapler) delay(now, nextUpdate time.Time) time.Duration {
	if nextUpdate.IsZero() {
		return s.maxRefresh
	}
	return min(max(nextUpdate.Sub(now)/2, s.minRefresh), s.maxRefresh)
}

// check parses der for the leaf and accepts it only if the status is Good
// and it is current; with verify, its signature must chain to the issuer.
func (s *stapler) check(der []byte, now time.Time) (*ocsp.Response, error) {
	var issuer *x509.Certificate
	if s.verify {
		if s.issuer == nil {
			return nil, errors.New("cannot verify the OCSP response: issuer certificate not found")
		}
		issuer = s.issuer
	}
	r, err := ocsp.ParseResponseForCert(der, s.entry.chain[0], issuer)
	if err != nil {
		return nil, fmt.Errorf("invalid OCSP response: %w", err)
	}
	switch {
	case r.Status != ocsp.Good:
		return nil, fmt.Errorf("certificate status %q in the OCSP response", statusName(r.Status))
	case r.ThisUpdate.After(now.Add(ocspLeeway)):
		return nil, fmt.Errorf("OCSP response not yet valid (thisUpdate %s)", r.ThisUpdate.Format(time.RFC3339))
	case !r.NextUpdate.IsZero() && !now.Before(r.NextUpdate):
		return nil, fmt.Errorf("OCSP response expired (nextUpdate %s)", r.NextUpdate.Format(time.RFC3339))
	}
	return r, nil
}

func statusName(s int) string {
	switch s {
	case ocsp.Good:
		return "good"
	case ocsp.Revoked:
		return "revoked"
	}
	return "unknown"
}

// httpFetcher POSTs the OCSP request for s's leaf to url.
func (s *stapler) httpFetcher(client *http.Client, url string) func(context.Context) ([]byte, error) {
	reqDER, reqErr := ocsp.CreateRequest(s.entry.chain[0], s.issuer, &ocsp.RequestOptions{Hash: crypto.SHA1})
	return func(ctx context.Context) ([]byte, error) {
		if reqErr != nil {
			return nil, fmt.Errorf("creating the OCSP request: %w", reqErr)
		}
		return fetchOCSP(ctx, client, url, reqDER)
	}
}

// fetchOCSP POSTs an OCSP request to url and returns the response body.
func fetchOCSP(ctx context.Context, client *http.Client, url string, reqDER []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(reqDER))
	if err != nil {
		return nil, fmt.Errorf("OCSP responder %q: %w", url, err)
	}
	req.Header.Set("Content-Type", "application/ocsp-request")
	req.Header.Set("Accept", "application/ocsp-response")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("OCSP responder %q sent status %s", url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxOCSPResponse+1))
	if err != nil {
		return nil, fmt.Errorf("OCSP responder %q: %w", url, err)
	}
	if len(body) > maxOCSPResponse {
		return nil, fmt.Errorf("OCSP responder %q sent more than %d bytes", url, maxOCSPResponse)
	}
	return body, nil
}
