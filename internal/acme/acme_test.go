package acme

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/acme"
)

// TestKeySpec: nginx's key types and sizes, and nothing else.
func TestKeySpec(t *testing.T) {
	for in, want := range map[string]string{"": "ecdsa:256", "ecdsa": "ecdsa:256", "ecdsa:384": "ecdsa:384", "rsa": "rsa:2048", "rsa:4096": "rsa:4096"} {
		k, err := parseKeySpec(in)
		if err != nil || k.String() != want {
			t.Errorf("%q: %v %v", in, k, err)
		}
	}
	for _, bad := range []string{"ecdsa:255", "rsa:1024", "ed25519", "rsa:x"} {
		if _, err := parseKeySpec(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	k, _ := parseKeySpec("ecdsa:384")
	if s, err := k.generate(); err != nil || s.(*ecdsa.PrivateKey).Curve.Params().BitSize != 384 {
		t.Errorf("ecdsa:384 generated %T %v", s, err)
	}
	k, _ = parseKeySpec("rsa:2048")
	if s, err := k.generate(); err != nil || s.(*rsa.PrivateKey).N.BitLen() != 2048 {
		t.Errorf("rsa:2048 generated %T %v", s, err)
	}
}

// TestStateLayout: a new state directory gets the version file and
// private modes; one with another version is refused; saved pairs load.
func TestStateLayout(t *testing.T) {
	d := stateDir(filepath.Join(t.TempDir(), "st"))
	if err := d.prepare(); err != nil {
		t.Fatal(err)
	}
	if v, _ := os.ReadFile(d.path("version")); string(v) != "1\n" {
		t.Errorf("version %q", v)
	}
	if fi, _ := os.Stat(string(d)); fi.Mode().Perm() != 0o700 {
		t.Errorf("mode %v", fi.Mode())
	}
	a, err := newAccount(Issuer{Name: "t", URI: "https://ca.invalid/dir", StatePath: string(d)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newAccount(Issuer{Name: "t", URI: "https://ca.invalid/dir", StatePath: string(d)}, nil)
	if err != nil || !a.key.(*ecdsa.PrivateKey).Equal(b.key) {
		t.Errorf("the saved account key was not reused: %v", err)
	}
	if fi, _ := os.Stat(d.path("account.key")); fi.Mode().Perm() != 0o600 {
		t.Errorf("account.key mode %v", fi.Mode())
	}
	if c, err := d.loadCert("none"); c != nil || err != nil {
		t.Errorf("missing pair: %v %v", c, err)
	}
	os.WriteFile(d.path("version"), []byte("2\n"), 0o600)
	if err := d.prepare(); err == nil || !strings.Contains(err.Error(), `layout version "2"`) {
		t.Errorf("version 2: %v", err)
	}
}

// TestStateName: different identifier sets or key types never share
// files; the order of identifiers does not matter.
func TestStateName(t *testing.T) {
	a := Order{Names: []string{"a.test", "b.test"}}.stateName()
	b := Order{Names: []string{"a.test", "b.test"}, Key: "rsa"}.stateName()
	c := Order{Names: []string{"a.test"}}.stateName()
	if a == b || a == c || !strings.HasPrefix(a, "a.test-") {
		t.Errorf("%s %s %s", a, b, c)
	}
	if d := (Order{Names: []string{"b.test", "a.test"}}).stateName(); strings.TrimPrefix(d, "b.test") != strings.TrimPrefix(a, "a.test") {
		t.Errorf("%s vs %s", d, a)
	}
}

// TestDescribe: the order's URL and the CA's problem document are in the
// logged error.
func TestDescribe(t *testing.T) {
	p := &acme.Error{StatusCode: 403, ProblemType: "urn:ietf:params:acme:error:unauthorized", Detail: "no"}
	err := &orderError{url: "https://ca.test/order/1", err: &acme.AuthorizationError{URI: "https://ca.test/authz/1", Errors: []error{p}}}
	got := describe(err)
	for _, want := range []string{"order https://ca.test/order/1, authorization https://ca.test/authz/1", `problem {"detail":"no","status":403,"type":"urn:ietf:params:acme:error:unauthorized"}`} {
		if !strings.Contains(got, want) {
			t.Errorf("%s\nlacks %s", got, want)
		}
	}
	if got := describe(errors.New("dial tcp: refused")); got != "dial tcp: refused" {
		t.Errorf("plain error: %s", got)
	}
	if got := describe(fmt.Errorf("account registration failed: %w", p)); !strings.HasPrefix(got, "account registration failed, problem {") {
		t.Errorf("registration: %s", got)
	}
}

// TestValidate: errors name what is wrong before anything is sent.
func TestValidate(t *testing.T) {
	iss := &Issuer{Name: "i", URI: "https://ca.test/dir"}
	cases := map[string]Order{
		"no identifiers":            {Issuer: iss},
		`invalid identifier "*.x"`:  {Issuer: iss, Names: []string{"*.x"}},
		"unsupported key algorithm": {Issuer: iss, Names: []string{"a.test"}, Key: "dsa"},
		"cannot load account key":   {Issuer: &Issuer{Name: "i", URI: "https://x/", AccountKey: "/nonexistent/key.pem"}, Names: []string{"a.test"}},
		"not base64url":             {Issuer: &Issuer{Name: "i", URI: "https://x/", EABKeyID: "k", EABKey: "data:%%%"}, Names: []string{"a.test"}},
		"cannot load trusted":       {Issuer: &Issuer{Name: "i", URI: "https://x/", TrustedCertificate: "/nonexistent.pem"}, Names: []string{"a.test"}},
	}
	for want, o := range cases {
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", want, err)
		}
	}
	if err := (Order{Issuer: iss, Names: []string{"a.test", "192.0.2.1"}, Key: "rsa:3072"}).Validate(); err != nil {
		t.Error(err)
	}
}
