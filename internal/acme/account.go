package acme

import (
	"context"
	"crypto"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/acme"
)

// account is an issuer's ACME account, shared by its certificates.
type account struct {
	iss   Issuer
	state stateDir
	key   crypto.Signer
	http  *http.Client
	logf  func(Level, string, ...any)

	mu     sync.Mutex
	client *acme.Client // registered; nil until then
	ari    string       // the directory's renewalInfo URL, "" without ARI
}

// newAccount loads or creates the account key (saving a new one in the
// state directory) and prepares the HTTP client; nothing is sent yet.
func newAccount(iss Issuer, logf func(Level, string, ...any)) (*account, error) {
	a := &account{iss: iss, state: stateDir(iss.StatePath), logf: logf}
	if err := a.state.prepare(); err != nil {
		return nil, fmt.Errorf("acme_issuer %q: %v", iss.Name, err)
	}
	roots, err := iss.rootCAs()
	if err != nil {
		return nil, err
	}
	a.http = &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: roots, InsecureSkipVerify: iss.NoVerify},
			TLSHandshakeTimeout: 10 * time.Second,
			IdleConnTimeout:     30 * time.Second,
		},
	}
	if a.key, err = a.loadKey(); err != nil {
		return nil, fmt.Errorf("acme_issuer %q: %v", iss.Name, err)
	}
	return a, nil
}

// loadKey returns account_key's file, else the state directory's key,
// else a new key of account_key's type, saved there.
func (a *account) loadKey() (crypto.Signer, error) {
	if k, err := a.iss.loadAccountKeyFile(); k != nil || err != nil {
		return k, err
	}
	data, err := a.state.read("account.key")
	if err != nil {
		return nil, err
	}
	if data != nil {
		k, err := parsePrivateKey(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", a.state.path("account.key"), err)
		}
		return k, nil
	}
	spec, err := parseKeySpec(a.iss.AccountKey)
	if err != nil {
		return nil, err
	}
	k, err := spec.generate()
	if err != nil {
		return nil, err
	}
	pemKey, err := marshalKey(k)
	if err == nil {
		err = a.state.write("account.key", pemKey)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot save the account key: %v", err)
	}
	return k, nil
}

// ready returns a client for a registered account: the saved account URL
// is reused, else the account is registered (with external account
// binding when configured) and its URL saved.
func (a *account) ready(ctx context.Context) (*acme.Client, string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.client != nil {
		return a.client, a.ari, nil
	}
	c := &acme.Client{Key: a.key, HTTPClient: a.http, DirectoryURL: a.iss.URI, UserAgent: "wsgate"}
	ari, err := a.directory(ctx)
	if err != nil {
		return nil, "", err
	}
	url, err := a.state.read("account.url")
	if err != nil {
		return nil, "", err
	}
	if u := strings.TrimSpace(string(url)); u != "" {
		c.KID = acme.KeyID(u)
		a.client, a.ari = c, ari
		return c, ari, nil
	}
	acct := &acme.Account{Contact: a.iss.contacts()}
	if key, _ := a.iss.eabKey(); key != nil {
		acct.ExternalAccountBinding = &acme.ExternalAccountBinding{KID: a.iss.EABKeyID, Key: key}
	}
	acct, err = c.Register(ctx, acct, a.acceptTerms)
	if errors.Is(err, acme.ErrAccountAlreadyExists) {
		acct, err = c.GetReg(ctx, "")
	}
	if err != nil {
		return nil, "", fmt.Errorf("account registration failed: %w", err)
	}
	if err := a.state.write("account.url", []byte(acct.URI+"\n")); err != nil {
		a.logf(Warn, "acme_issuer %q: cannot save the account URL: %v", a.iss.Name, err)
	}
	c.KID = acme.KeyID(acct.URI)
	a.logf(Notice, "acme_issuer %q: account %s registered", a.iss.Name, acct.URI)
	a.client, a.ari = c, ari
	return c, ari, nil
}

func (a *account) acceptTerms(url string) bool {
	if !a.iss.AcceptTOS {
		a.logf(Warn, "acme_issuer %q: the CA's terms of service (%s) are not accepted: add accept_terms_of_service", a.iss.Name, url)
	}
	return a.iss.AcceptTOS
}

// directory reads the renewalInfo URL from the CA's directory, which
// x/crypto/acme does not expose.
func (a *account) directory(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.iss.URI, nil)
	if err != nil {
		return "", err
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("directory %s: status %d", a.iss.URI, resp.StatusCode)
	}
	var dir struct {
		RenewalInfo string `json:"renewalInfo"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 1<<20)).Decode(&dir); err != nil {
		return "", fmt.Errorf("directory %s: %v", a.iss.URI, err)
	}
	return dir.RenewalInfo, nil
}

// forget drops the registered client after the CA said the account does
// not exist (a CA that lost its state): the next attempt registers anew.
func (a *account) forget(err error) {
	var ae *acme.Error
	if !errors.As(err, &ae) || ae.ProblemType != "urn:ietf:params:acme:error:accountDoesNotExist" {
		return
	}
	a.mu.Lock()
	a.client = nil
	a.mu.Unlock()
	if err := a.state.write("account.url", nil); err != nil {
		a.logf(Warn, "acme_issuer %q: cannot clear the account URL: %v", a.iss.Name, err)
	}
}
