package acme

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/acme"
)

// Level is the severity of a log line, mapped onto the error log's.
type Level int

const (
	Notice Level = iota
	Warn
	Error
)

// Manager obtains and renews the certificates of every configuration.
// Its methods are safe for concurrent use.
type Manager struct {
	logf func(Level, string, ...any)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	accounts map[string]*account // by issuer settings
	certs    map[string]*Cert    // by order

	chal challenges

	// retryMin and retryMax bound the wait after a failed attempt: it
	// starts at retryMin and triples, up to retryMax.
	retryMin, retryMax time.Duration
}

// NewManager returns a Manager with no certificates; logf receives what
// it logs (nil discards it).
func NewManager(logf func(Level, string, ...any)) *Manager {
	if logf == nil {
		logf = func(Level, string, ...any) {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{
		logf: logf, ctx: ctx, cancel: cancel,
		accounts: map[string]*account{}, certs: map[string]*Cert{},
		retryMin: 2 * time.Second, retryMax: time.Hour,
	}
}

// Cert returns the certificate for o, started the first time it is asked
// for: a saved certificate is served at once, and a missing or due one is
// ordered in the background. The same order (same issuer settings,
// identifiers and key type) returns the same Cert, so a reload neither
// orders again nor interrupts an order under way. Errors are
// configuration errors (unreadable files, bad values).
func (m *Manager) Cert(o Order) (*Cert, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	iss := *o.Issuer
	o.Issuer = &iss
	ck := jsonKey(o)
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.certs[ck]; c != nil {
		return c, nil
	}
	ik := jsonKey(iss)
	a := m.accounts[ik]
	if a == nil {
		var err error
		if a, err = newAccount(iss, m.logf); err != nil {
			return nil, err
		}
		m.accounts[ik] = a
	}
	c := &Cert{m: m, acct: a, order: o, base: o.stateName(), done: make(chan struct{})}
	c.spec, _ = parseKeySpec(o.Key)
	if saved, err := a.state.loadCert(c.base); err != nil {
		m.logf(Warn, "acme_certificate %s: the saved certificate is ignored: %v", c.names(), err)
	} else if saved != nil && coversNames(saved, o.Names) {
		c.cur.Store(saved)
	}
	ctx, cancel := context.WithCancel(m.ctx)
	c.cancel = cancel
	m.certs[ck] = c
	m.wg.Add(1)
	go c.run(ctx)
	return c, nil
}

// Retain stops every certificate not in keep: those the running
// configuration no longer names. Their files stay in the state
// directory. A nil Manager has nothing to stop, as for Close.
func (m *Manager) Retain(keep []*Cert) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, c := range m.certs {
		if !slices.Contains(keep, c) {
			c.cancel()
			delete(m.certs, k)
		}
	}
}

// Close stops every certificate's work and waits for it.
func (m *Manager) Close() {
	if m == nil {
		return
	}
	m.cancel()
	m.wg.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, a := range m.accounts {
		a.http.CloseIdleConnections()
	}
}

func jsonKey(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// Cert is one acme_certificate's certificate.
type Cert struct {
	m      *Manager
	acct   *account
	order  Order
	spec   keySpec
	base   string // file name in the state directory, without extension
	cur    atomic.Pointer[tls.Certificate]
	cancel context.CancelFunc
	done   chan struct{}
}

// errNotIssued refuses a handshake before the first certificate arrived.
var errNotIssued = errors.New("the ACME certificate is not issued yet")

// GetCertificate serves the current certificate; until the first one
// arrives, handshakes fail.
func (c *Cert) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if cur := c.cur.Load(); cur != nil {
		return cur, nil
	}
	return nil, errNotIssued
}

func (c *Cert) names() string { return strings.Join(c.order.Names, " ") }

// run obtains the certificate when there is none, then renews it when
// due, until ctx ends. A failure is logged and tried again later; the
// certificate served meanwhile stays.
func (c *Cert) run(ctx context.Context) {
	defer c.m.wg.Done()
	defer close(c.done)
	retry := c.m.retryMin
	var planned time.Time
	for {
		if cur := c.cur.Load(); cur != nil {
			wait, at, due := c.schedule(ctx, cur)
			if !due {
				if !at.Equal(planned) {
					planned = at
					c.m.logf(Notice, "acme_certificate %s: certificate %s renewal planned at %s", c.names(), cur.Leaf.SerialNumber.Text(16), at.UTC().Format(time.RFC3339))
				}
				if !sleep(ctx, wait) {
					return
				}
				continue
			}
		}
		err := c.obtain(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			retry = c.m.retryMin
			continue
		}
		c.acct.forget(err)
		c.m.logf(Error, "acme_certificate %s from issuer %q failed: %s, next attempt in %v", c.names(), c.acct.iss.Name, describe(err), retry)
		if !sleep(ctx, retry) {
			return
		}
		retry = min(retry*3, c.m.retryMax)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// coversNames reports whether the certificate names every identifier.
func coversNames(c *tls.Certificate, names []string) bool {
	for _, n := range names {
		if c.Leaf.VerifyHostname(n) != nil {
			return false
		}
	}
	return true
}

// describe renders an error with the order's URL and the CA's problem
// document when there are any; the problem document then replaces the
// library's rendering of the same problem.
func describe(err error) string {
	var parts []string
	var oe *orderError
	if errors.As(err, &oe) {
		parts = append(parts, "order "+oe.url)
		err = oe.err
	}
	p := problems(err)
	var ae *acme.Error
	var ze *acme.AuthorizationError
	switch {
	case p == "":
		parts = append(parts, err.Error())
	case errors.As(err, &ze):
		parts = append(parts, fmt.Sprintf("authorization %s of %q failed", ze.URI, ze.Identifier))
	case errors.As(err, &ae):
		if ctx := strings.TrimSuffix(strings.TrimSuffix(err.Error(), ae.Error()), ": "); ctx != "" {
			parts = append(parts, ctx)
		}
	}
	if p != "" {
		parts = append(parts, "problem "+p)
	}
	return strings.Join(parts, ", ")
}

// challenges holds the answers to the challenges under way.
type challenges struct {
	mu   sync.RWMutex
	http map[string]string           // token: key authorization
	alpn map[string]*tls.Certificate // identifier: acme-tls/1 certificate
}

func (ch *challenges) setHTTP(token, keyAuth string) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.http == nil {
		ch.http = map[string]string{}
	}
	if keyAuth == "" {
		delete(ch.http, token)
	} else {
		ch.http[token] = keyAuth
	}
}

func (ch *challenges) setALPN(name string, cert *tls.Certificate) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.alpn == nil {
		ch.alpn = map[string]*tls.Certificate{}
	}
	if cert == nil {
		delete(ch.alpn, name)
	} else {
		ch.alpn[name] = cert
	}
}

// HTTP01Prefix is the path under which http-01 challenges are answered.
const HTTP01Prefix = "/.well-known/acme-challenge/"

// HTTP01 returns the key authorization for a request path of an http-01
// challenge under way. A nil Manager answers nothing.
func (m *Manager) HTTP01(path string) (string, bool) {
	token, ok := strings.CutPrefix(path, HTTP01Prefix)
	if m == nil || !ok {
		return "", false
	}
	m.chal.mu.RLock()
	defer m.chal.mu.RUnlock()
	v, ok := m.chal.http[token]
	return v, ok
}

// ALPNProto is the protocol of tls-alpn-01 (RFC 8737).
const ALPNProto = "acme-tls/1"

// ALPNConfig returns the configuration that answers a tls-alpn-01
// challenge under way for hello, or nil when hello is not one.
func (m *Manager) ALPNConfig(hello *tls.ClientHelloInfo) *tls.Config {
	if m == nil || !slices.Contains(hello.SupportedProtos, ALPNProto) {
		return nil
	}
	m.chal.mu.RLock()
	cert := m.chal.alpn[strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))]
	m.chal.mu.RUnlock()
	if cert == nil {
		return nil
	}
	return &tls.Config{Certificates: []tls.Certificate{*cert}, NextProtos: []string{ALPNProto}, MinVersion: tls.VersionTLS12}
}

func (c *Cert) String() string { return fmt.Sprintf("acme certificate %s", c.names()) }
