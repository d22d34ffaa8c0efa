package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultTimeout bounds every call to the store when cluster_store names
// no timeout.
const DefaultTimeout = 50 * time.Millisecond

// Lease timing: an instance renews its keys every HeartbeatInterval; keys
// of an instance that stopped renewing expire after LeaseTTL.
const (
	HeartbeatInterval = time.Second
	LeaseTTL          = 5 * time.Second
)

// Config is a cluster_store directive.
type Config struct {
	// URL is redis://, rediss:// (TLS), redis+sentinel:// or
	// redis+cluster:// with one or more comma-separated hosts.
	URL      string
	Timeout  time.Duration
	Password string // overrides one given in the URL
}

// String is the configuration with its secrets replaced by "xxxxx", for
// logs and -T.
func (c Config) String() string {
	s := RedactURL(c.URL)
	if c.Timeout > 0 {
		s += " timeout=" + c.Timeout.String()
	}
	if c.Password != "" {
		s += " password=xxxxx"
	}
	return s
}

// RedactURL returns raw with the password of its user information
// replaced by "xxxxx"; text that is not a URL with a password comes back
// unchanged.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); !ok {
		return raw
	}
	u.User = url.UserPassword(u.User.Username(), "xxxxx")
	return u.String()
}

// options checks c and returns the client options it stands for. Errors
// never include the password.
func (c Config) options() (*redis.UniversalOptions, error) {
	u, err := url.Parse(c.URL)
	if err != nil {
		return nil, fmt.Errorf("invalid cluster store address %q", RedactURL(c.URL))
	}
	o := &redis.UniversalOptions{}
	switch u.Scheme {
	case "redis", "rediss":
		if strings.Contains(u.Host, ",") {
			return nil, fmt.Errorf("cluster store %q: several hosts need redis+cluster:// or redis+sentinel://", RedactURL(c.URL))
		}
	case "redis+sentinel":
		// redis+sentinel://[:password@]host:port[,host:port]/master[/db]
		parts := strings.Split(strings.Trim(u.Path, "/"), "/")
		if parts[0] == "" {
			return nil, fmt.Errorf("cluster store %q: a Sentinel address names its master: redis+sentinel://HOST:PORT/MASTER", RedactURL(c.URL))
		}
		o.MasterName = parts[0]
		u.Path = "/" + strings.Join(parts[1:], "/")
	case "redis+cluster":
		o.IsClusterMode = true
	default:
		return nil, fmt.Errorf("cluster store %q: the scheme must be redis, rediss, redis+sentinel or redis+cluster", RedactURL(c.URL))
	}
	if u.Host == "" {
		return nil, fmt.Errorf("cluster store %q has no host", RedactURL(c.URL))
	}
	o.Addrs = strings.Split(u.Host, ",")
	for _, a := range o.Addrs {
		if !strings.Contains(a, ":") {
			return nil, fmt.Errorf("cluster store %q: %q has no port", RedactURL(c.URL), a)
		}
	}
	if db := strings.Trim(u.Path, "/"); db != "" {
		n, err := strconv.Atoi(db)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("cluster store %q: invalid database %q", RedactURL(c.URL), db)
		}
		o.DB = n
	}
	if u.User != nil {
		o.Username = u.User.Username()
		o.Password, _ = u.User.Password()
	}
	if c.Password != "" {
		o.Password = c.Password
	}
	if u.Scheme == "rediss" {
		o.TLSConfig = tlsConfig(o.Addrs[0])
	}
	t := c.Timeout
	if t <= 0 {
		t = DefaultTimeout
	}
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = t, t, t, t
	o.ContextTimeoutEnabled = true
	o.MaxRetries = -1 // one try: the timeout is the whole budget
	o.DisableIdentity = true
	return o, nil
}

// Check reports whether c is a valid cluster_store, for -t.
func (c Config) Check() error {
	_, err := c.options()
	return err
}

// Store is a connection to the cluster store, shared by the zones of every
// configuration generation. Its methods are safe for concurrent use.
type Store struct {
	cfg     Config
	timeout time.Duration
	c       redis.UniversalClient
	id      string
	logf    func(format string, args ...any)

	up        atomic.Bool
	instances atomic.Int64 // live instances at the last heartbeat, at least 1
	fallbacks atomic.Int64 // times the store went down
	trips     atomic.Int64 // round trips, see RoundTrips
	downMu    sync.Mutex   // serializes the down/up log lines

	leasesMu sync.Mutex
	leases   func(yield func(field string, n int) bool) // live local connection counts
	open     func() int                                 // open WebSockets, published by the heartbeat
	load     atomic.Pointer[Load]

	sess *sessions
	w    *writer
	ups  upstreamWatch

	stop  chan struct{}
	loops sync.WaitGroup // heartbeat, command and write loops
}

// Open starts a store for cfg and tries it once (bounded by the timeout);
// a store that does not answer yet is returned down, and the heartbeat
// keeps trying. logf receives the warnings: the store going down (once per
// outage) and coming back.
func Open(cfg Config, logf func(format string, args ...any)) (*Store, error) {
	o, err := cfg.options()
	if err != nil {
		return nil, err
	}
	quietLibrary()
	id := make([]byte, 8)
	rand.Read(id)
	s := &Store{
		cfg:     cfg,
		timeout: o.ReadTimeout,
		c:       redis.NewUniversalClient(o),
		id:      hex.EncodeToString(id),
		logf:    logf,
		sess:    newSessions(),
		w:       newWriter(),
		stop:    make(chan struct{}),
	}
	s.instances.Store(1)
	s.c.AddHook(tripCounter{&s.trips})
	if err := s.heartbeat(); err != nil {
		s.markDown(err)
	} else {
		ctx, cancel := s.ctx()
		s.loadScripts(ctx)
		cancel()
		s.up.Store(true)
	}
	s.loops.Add(3)
	go s.loop()
	go s.commandLoop()
	go s.writeLoop()
	return s, nil
}

// Config is what the store was opened with.
func (s *Store) Config() Config { return s.cfg }

// ID names this instance in the store.
func (s *Store) ID() string { return s.id }

// Up reports whether the store answered its last call. While it is down,
// callers use local state and do not call it.
func (s *Store) Up() bool { return s.up.Load() }

// Instances is the number of live instances the last heartbeat saw (at
// least 1): a local fallback zone gets 1/Instances of a shared limit.
func (s *Store) Instances() int { return int(s.instances.Load()) }

// Fallbacks counts the outages since the store was opened.
func (s *Store) Fallbacks() int64 { return s.fallbacks.Load() }

// SetLeases installs the source of this instance's live connection
// counts, which the store writes back when it returns after an outage.
func (s *Store) SetLeases(f func(yield func(field string, n int) bool)) {
	s.leasesMu.Lock()
	s.leases = f
	s.leasesMu.Unlock()
}

// Close stops the heartbeat, removes this instance's keys (best effort,
// bounded by the timeout) and closes the connections.
func (s *Store) Close() error {
	close(s.stop)
	s.loops.Wait()
	if s.up.Load() {
		ctx, cancel := s.ctx()
		s.c.Del(ctx, s.leaseKey(), openPrefix+s.id)
		s.c.ZRem(ctx, instancesKey, s.id)
		cancel()
	}
	s.up.Store(false) // later writes are dropped, not queued for ever
	return s.c.Close()
}

// WriteBack replaces this instance's lease and sessions in the store with
// its live local state, as recovery does: for a store that a reload put in
// place of another while connections were open.
func (s *Store) WriteBack() {
	if s.Up() {
		s.fail(s.reregister())
	}
}

func (s *Store) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.timeout)
}

// fail records the outcome of a call: any error but a script's own reply
// marks the store down.
func (s *Store) fail(err error) error {
	if err != nil && !errors.Is(err, redis.Nil) {
		s.markDown(err)
	}
	return err
}

func (s *Store) markDown(err error) {
	s.downMu.Lock()
	defer s.downMu.Unlock()
	if !s.up.Load() && s.fallbacks.Load() > 0 {
		return
	}
	s.up.Store(false)
	s.fallbacks.Add(1)
	s.logf("cluster store %s failed (%v): sync zones fall back to local zones sized to 1/%d of their limits", RedactURL(s.cfg.URL), redactErr(err, s.cfg), s.Instances())
}

// redactErr keeps a password out of an error text.
func redactErr(err error, c Config) string {
	msg := err.Error()
	if c.Password != "" {
		msg = strings.ReplaceAll(msg, c.Password, "xxxxx")
	}
	if u, e := url.Parse(c.URL); e == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			msg = strings.ReplaceAll(msg, p, "xxxxx")
		}
	}
	return msg
}

func (s *Store) loop() {
	defer s.loops.Done()
	t := time.NewTicker(HeartbeatInterval)
	defer t.Stop()
	refresh := time.NewTicker(sessionRefresh)
	defer refresh.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-refresh.C:
			s.refreshSessions()
			continue
		case <-t.C:
		}
		if s.up.Load() {
			s.fail(s.heartbeat())
		} else {
			s.recover()
		}
		s.pollUpstreams()
	}
}

// recover writes this instance's live counts and sessions back, reloads
// the ban list and, once that worked, trusts the store again.
func (s *Store) recover() {
	if err := s.heartbeat(); err != nil {
		return
	}
	if err := s.reregister(); err != nil {
		return
	}
	ctx, cancel := s.ctx()
	err := s.loadScripts(ctx)
	cancel()
	if err != nil {
		return
	}
	s.downMu.Lock()
	s.up.Store(true)
	s.downMu.Unlock()
	s.logf("cluster store %s is back: sync zones are shared again (%d instances)", RedactURL(s.cfg.URL), s.Instances())
}
