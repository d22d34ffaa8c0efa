package acme

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
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

// TestManagerCloseLeavesNothing: a certificate whose CA refuses
// connections keeps trying in the background; Retain and Close stop it,
// and no goroutine is left.
func TestManagerCloseLeavesNothing(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "https://" + ln.Addr().String() + "/dir"
	ln.Close() // nothing listens there now: every attempt is refused
	var mu sync.Mutex
	var logged []string
	m := NewManager(func(_ Level, format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		logged = append(logged, fmt.Sprintf(format, args...))
	})
	iss := &Issuer{Name: "down", URI: url, StatePath: filepath.Join(t.TempDir(), "st")}
	a, err := m.Cert(Order{Issuer: iss, Names: []string{"a.test"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Cert(Order{Issuer: iss, Names: []string{"b.test"}})
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := m.Cert(Order{Issuer: iss, Names: []string{"a.test"}}); again != a {
		t.Error("the same order made a second certificate")
	}
	if _, err := a.GetCertificate(nil); err == nil {
		t.Error("a certificate before issuance")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(logged)
		mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no failure logged")
		}
		time.Sleep(10 * time.Millisecond)
	}
	m.Retain([]*Cert{a})
	<-b.done // stopped by Retain
	m.Close()
	<-a.done
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logged[0], `from issuer "down" failed`) {
		t.Errorf("logged %q", logged[0])
	}
}
