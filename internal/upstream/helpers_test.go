package upstream

import (
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeClock is a settable clock for exact fail_timeout and slow_start tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// peer is a PeerConfig with nginx's defaults and Addr == Name.
func peer(name string, weight int) PeerConfig {
	return PeerConfig{Addr: name, Name: name, Weight: weight, MaxFails: 1, FailTimeout: 10 * time.Second}
}

// pick runs one request: Next then Done(false). It fails the test when no
// peer is available.
func pick(t testing.TB, u *Upstream, key []byte) string {
	t.Helper()
	p, err := u.NewAttempt(key).Next()
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	p.Done(false)
	return p.Name()
}

// picks returns the names of n successive successful requests, concatenated.
func picks(t testing.TB, u *Upstream, n int) string {
	t.Helper()
	b := make([]byte, 0, n)
	for range n {
		b = append(b, pick(t, u, nil)...)
	}
	return string(b)
}

func counts(s string) map[rune]int {
	m := map[rune]int{}
	for _, r := range s {
		m[r]++
	}
	return m
}

// request runs one request that retries like the proxy: every peer whose
// name is in dead fails. It returns the names tried, in order, and the
// final error (nil when a live peer answered).
func request(u *Upstream, key []byte, dead map[string]bool) (tried []string, err error) {
	a := u.NewAttempt(key)
	for {
		p, err := a.Next()
		if err != nil {
			return tried, err
		}
		tried = append(tried, p.Name())
		if !dead[p.Name()] {
			p.Done(false)
			return tried, nil
		}
		p.Done(true)
	}
}

func isNoLive(err error) bool { return errors.Is(err, ErrNoLivePeers) }
