package acme

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/crypto/acme"
)

// orderError is a failure once the CA created the order.
type orderError struct {
	url string
	err error
}

func (e *orderError) Error() string { return "order " + e.url + ": " + e.err.Error() }
func (e *orderError) Unwrap() error { return e.err }

// obtain orders, validates and downloads a new certificate, saves it and
// serves it for new handshakes.
func (c *Cert) obtain(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	client, _, err := c.acct.ready(ctx)
	if err != nil {
		return err
	}
	key, err := c.spec.generate()
	if err != nil {
		return err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, c.csrTemplate(), key)
	if err != nil {
		return err
	}
	var opts []acme.OrderOption
	if p := c.acct.iss.Profile; p != "" {
		opts = append(opts, acme.WithOrderIssuanceProfile(acme.ProfileName(p)))
	}
	order, err := client.AuthorizeOrder(ctx, c.authzIDs(), opts...)
	if err != nil {
		return err
	}
	fail := func(err error) error { return &orderError{url: order.URI, err: err} }
	for _, u := range order.AuthzURLs {
		if err := c.authorize(ctx, client, u); err != nil {
			return fail(err)
		}
	}
	if order, err = client.WaitOrder(ctx, order.URI); err != nil {
		return fail(err)
	}
	chain, certURL, err := client.CreateCertFromOrder(ctx, order, csr, true)
	if err != nil {
		return fail(err)
	}
	chain = c.preferredChain(ctx, client, chain, certURL)
	cert, err := certificate(chain, key)
	if err != nil {
		return fail(err)
	}
	if err := c.acct.state.saveCert(c.base, chain, key); err != nil {
		c.m.logf(Warn, "acme_certificate %s: cannot save the certificate in state_path: %v", c.names(), err)
	}
	c.cur.Store(cert)
	c.m.logf(Notice, "acme_certificate %s: certificate %s issued by issuer %q, valid until %s (order %s)",
		c.names(), cert.Leaf.SerialNumber.Text(16), c.acct.iss.Name, cert.Leaf.NotAfter.UTC().Format(time.RFC3339), order.URI)
	return nil
}

func (c *Cert) csrTemplate() *x509.CertificateRequest {
	t := &x509.CertificateRequest{Subject: pkix.Name{CommonName: c.order.Names[0]}}
	for _, n := range c.order.Names {
		if ip := net.ParseIP(n); ip != nil {
			t.IPAddresses = append(t.IPAddresses, ip)
		} else {
			t.DNSNames = append(t.DNSNames, n)
		}
	}
	if len(t.Subject.CommonName) > 64 || t.DNSNames == nil {
		t.Subject.CommonName = ""
	}
	return t
}

func (c *Cert) authzIDs() []acme.AuthzID {
	var ids []acme.AuthzID
	for _, n := range c.order.Names {
		if net.ParseIP(n) != nil {
			ids = append(ids, acme.IPIDs(n)...)
		} else {
			ids = append(ids, acme.DomainIDs(n)...)
		}
	}
	return ids
}

// authorize answers one authorization's challenge of the issuer's type
// and waits for the CA's verdict.
func (c *Cert) authorize(ctx context.Context, client *acme.Client, url string) error {
	z, err := client.GetAuthorization(ctx, url)
	if err != nil || z.Status == acme.StatusValid {
		return err
	}
	typ := c.acct.iss.Challenge
	if typ == "" {
		typ = "http-01"
	}
	var chal *acme.Challenge
	for _, ch := range z.Challenges {
		if ch.Type == typ {
			chal = ch
		}
	}
	if chal == nil {
		return fmt.Errorf("the CA offers no %s challenge for %q", typ, z.Identifier.Value)
	}
	switch typ {
	case "http-01":
		ka, err := client.HTTP01ChallengeResponse(chal.Token)
		if err != nil {
			return err
		}
		c.m.chal.setHTTP(chal.Token, ka)
		defer c.m.chal.setHTTP(chal.Token, "")
	case "tls-alpn-01":
		cert, err := client.TLSALPN01ChallengeCert(chal.Token, z.Identifier.Value)
		if err != nil {
			return err
		}
		c.m.chal.setALPN(z.Identifier.Value, &cert)
		defer c.m.chal.setALPN(z.Identifier.Value, nil)
	}
	if _, err := client.Accept(ctx, chal); err != nil {
		return err
	}
	_, err = client.WaitAuthorization(ctx, z.URI)
	return err
}

// preferredChain returns the first chain (the default, then the
// alternates) whose topmost certificate is issued by preferred_chain's
// common name; the default when none is.
func (c *Cert) preferredChain(ctx context.Context, client *acme.Client, chain [][]byte, certURL string) [][]byte {
	want := c.acct.iss.PreferredChain
	if want == "" || chainIssuedBy(chain, want) {
		return chain
	}
	alts, err := client.ListCertAlternates(ctx, certURL)
	if err != nil {
		c.m.logf(Warn, "acme_certificate %s: cannot list alternate chains: %v", c.names(), err)
		return chain
	}
	for _, u := range alts {
		alt, err := client.FetchCert(ctx, u, true)
		if err == nil && chainIssuedBy(alt, want) {
			return alt
		}
	}
	c.m.logf(Warn, "acme_certificate %s: no chain issued by %q, the default chain is used", c.names(), want)
	return chain
}

func chainIssuedBy(chain [][]byte, cn string) bool {
	top, err := x509.ParseCertificate(chain[len(chain)-1])
	return err == nil && (top.Issuer.CommonName == cn || top.Subject.CommonName == cn)
}

// problems renders the CA's problem documents in err as JSON, "" when
// there are none.
func problems(err error) string {
	var docs []any
	var ae *acme.Error
	var oe *acme.OrderError
	var ze *acme.AuthorizationError
	switch {
	case errors.As(err, &ze):
		for _, e := range ze.Errors {
			if errors.As(e, &ae) {
				docs = append(docs, problemDoc(ae))
			}
		}
	case errors.As(err, &oe) && oe.Problem != nil:
		docs = append(docs, problemDoc(oe.Problem))
	case errors.As(err, &ae):
		docs = append(docs, problemDoc(ae))
	}
	if len(docs) == 0 {
		return ""
	}
	var v any = docs
	if len(docs) == 1 {
		v = docs[0]
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func problemDoc(e *acme.Error) map[string]any {
	d := map[string]any{"type": e.ProblemType, "detail": e.Detail}
	if e.StatusCode != 0 {
		d["status"] = e.StatusCode
	}
	if len(e.Subproblems) > 0 {
		var subs []map[string]any
		for _, s := range e.Subproblems {
			subs = append(subs, map[string]any{"type": s.Type, "detail": s.Detail, "identifier": s.Identifier})
		}
		d["subproblems"] = subs
	}
	return d
}
