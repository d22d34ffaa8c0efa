package upstream

import (
	"context"
	"errors"
	"math/rand/v2"
	"sort"
	"sync"
	"time"
)

// ErrNoLivePeers is returned by Attempt.Next when no peer can be chosen: every
// peer is down, failed within its fail_timeout, unhealthy or at max_conns, or
// (on a retry) every usable peer was already tried in this attempt. On the
// first call of an attempt it means no peer is live at all, which is when the
// proxy adds Retry-After to its 502.
var ErrNoLivePeers = errors.New("upstream: no live peers")

// Method is a load-balancing method. The zero value is RoundRobin.
type Method int

// The balancing methods, named after the nginx directives that select them.
const (
	RoundRobin Method = iota // default: smooth weighted round robin
	LeastConn                // least_conn
	IPHash                   // ip_hash
	Hash                     // hash key [consistent]
	Random                   // random [two [least_conn]]
	LeastTime                // least_time header | last_byte [inflight] (nginx Plus)
)

func (m Method) String() string {
	switch m {
	case RoundRobin:
		return "round_robin"
	case LeastConn:
		return "least_conn"
	case IPHash:
		return "ip_hash"
	case Hash:
		return "hash"
	case Random:
		return "random"
	case LeastTime:
		return "least_time"
	}
	return "unknown"
}

// PeerConfig is one resolved peer of an upstream block. Zero Weight means 1
// and zero FailTimeout means nginx's 10s; MaxFails is taken literally, so the
// caller passes nginx's default of 1 when the directive omits max_fails
// (0 disables passive failure accounting, as max_fails=0 does). As in
// nginx, an upstream whose only peer has no backup ignores MaxFails and
// FailTimeout: that peer is never considered failed, though Down, MaxConns
// and an active health check still apply.
type PeerConfig struct {
	Addr        string // "ip:port", already resolved
	Name        string // as written in the config, e.g. "backend1.example.com:8080"; "" means Addr
	Weight      int
	MaxFails    int
	FailTimeout time.Duration
	Backup      bool // used only by RoundRobin and LeastConn (nginx rejects backup with the other methods)
	Down        bool
	MaxConns    int           // 0 = unlimited
	Drain       bool          // nginx Plus's drain: only requests bound to it (Attempt.Sticky); open tunnels stay
	Route       string        // nginx Plus's route=, for Attempt.Route
	SlowStart   time.Duration // RoundRobin and LeastConn only, as in nginx Plus
}

// Config describes one upstream. It is read once by New and not retained.
type Config struct {
	Name   string
	Peers  []PeerConfig
	Method Method

	// HashConsistent selects ketama consistent hashing for Method Hash.
	HashConsistent bool
	// RandomTwo makes Method Random draw two peers and keep the one with
	// fewer active connections per unit of weight ("random two" and
	// "random two least_conn" are the same thing: least_conn is nginx's only
	// and default comparison).
	RandomTwo bool

	// Queue, when above 0, lets up to Queue requests wait, each for at
	// most QueueTimeout (0: 60s), for a peer when none can take them
	// (Attempt.NextQueued).
	Queue        int
	QueueTimeout time.Duration

	// Dynamic allows SetPeers: the peer set follows DNS at run time. The
	// names of the peers (PeerConfig.Name) say which configured server
	// each came from.
	Dynamic bool

	// Health, when not nil, gives the upstream active health checks, run
	// from Start to Close; see HealthCheck.
	Health *HealthCheck

	// Learn, when not nil, makes the upstream remember sessions (Learn,
	// Attempt.Learned): nginx Plus's `sticky learn`.
	Learn *Learn

	// Now is the clock for fail_timeout and slow_start; nil means time.Now.
	// Tests inject a fake one to get exact counts without sleeping.
	Now func() time.Time
	// Logf, when not nil, receives warnings about peer state changes
	// (temporarily disabled, unhealthy, healthy again), as nginx writes
	// them to its error log at level warn.
	Logf func(format string, args ...any)
}

// weightScale multiplies configured weights internally so that slow start
// can ramp a weight-1 peer smoothly; smooth round robin is invariant under a
// common scale, so sequences stay exactly nginx's.
const weightScale = 1000

// Upstream is one upstream block's pool of peers. It is safe for concurrent
// use; the zero value is not usable, build one with New. Its life has two
// steps, so that a configuration can be built and thrown away without
// touching the one that serves: New builds it, Start makes it the live
// generation (health checks run, peer health is its to write), Close stops
// its health checkers.
type Upstream struct {
	name       string
	method     Method
	consistent bool
	two        bool
	dynamic    bool
	now        func() time.Time
	logf       func(format string, args ...any)
	randn      func(n uint64) uint64 // replaced in tests

	// mu serialises selection, which mutates the smooth round robin
	// weights of every peer it looks at (nginx's peers write lock).
	mu      sync.Mutex
	primary peerList
	backup  peerList
	all     []*Peer

	// consistent hash ring (Method Hash with HashConsistent)
	points []chashPoint

	// gone holds, for a Dynamic upstream, the state of peers that left the
	// DNS answer while requests or tunnels were still on them, by the
	// name of their server; guarded by mu.
	gone map[*peerState]string

	queueMax     int
	queueTimeout time.Duration
	q            *queue // shared with the other generations of this upstream

	health *HealthCheck // with defaults applied; nil without checks

	learned      *sessions     // sticky learn; nil without it; shared with other generations
	learnTimeout time.Duration // sticky learn's timeout=

	life    sync.Mutex // guards started, closed and cancel
	started bool
	closed  bool
	cancel  context.CancelFunc
	hctx    context.Context                   // the checkers' context, for peers added by SetPeers
	checks  map[*peerState]context.CancelFunc // Dynamic: each peer's checker
	wg      sync.WaitGroup                    // health checkers
}

type peerList struct {
	peers  []*Peer
	single bool  // exactly one peer and no backups: max_fails is ignored, as nginx
	total  int64 // sum of configured (unscaled) weights, down peers included
	tries  int   // peers not marked down
	ranges []int64
}

type peerKey struct {
	addr   string
	backup bool
}

// New builds an upstream from cfg. prev, when not nil, is the upstream of
// the same name in the previous configuration: peers with the same Addr and
// backup flag share its state (open connections, failures, health, slow
// start), so a reload changes nothing a client would notice, and tunnels
// still running on prev's peers keep counting toward max_conns and
// least_conn here.
//
// New has no side effect: it starts no goroutine and changes nothing in
// prev, whose checkers keep writing the shared health until Start. An
// upstream that is never started can simply be dropped (Close is a no-op
// for it).
func New(cfg Config, prev *Upstream) *Upstream {
	u := &Upstream{
		name:       cfg.Name,
		method:     cfg.Method,
		consistent: cfg.HashConsistent,
		two:        cfg.RandomTwo,
		dynamic:    cfg.Dynamic,
		gone:       map[*peerState]string{},
		now:        cfg.Now,
		logf:       cfg.Logf,
		randn:      rand.Uint64N,
	}
	if u.now == nil {
		u.now = time.Now
	}
	u.queueMax, u.queueTimeout = cfg.Queue, cfg.QueueTimeout
	if u.queueTimeout <= 0 {
		u.queueTimeout = 60 * time.Second
	}
	if prev != nil && prev.q != nil {
		u.q = prev.q
	} else {
		u.q = newQueue()
	}
	backupAllowed := u.method == RoundRobin || u.method == LeastConn || u.method == LeastTime

	type carried struct {
		p         *Peer
		effective int64 // snapshot: prev's selection keeps mutating it
	}
	carry := map[peerKey][]carried{}
	if prev != nil {
		prev.mu.Lock()
		for _, p := range prev.all {
			k := peerKey{p.cfg.Addr, p.cfg.Backup}
			carry[k] = append(carry[k], carried{p, p.effective})
		}
		prev.mu.Unlock()
	}

	for _, pc := range cfg.Peers {
		if pc.Backup && !backupAllowed {
			continue
		}
		if pc.Weight <= 0 {
			pc.Weight = 1
		}
		if pc.FailTimeout <= 0 {
			pc.FailTimeout = 10 * time.Second
		}
		if pc.Name == "" {
			pc.Name = pc.Addr
		}
		if pc.MaxFails < 0 {
			pc.MaxFails = 0
		}
		p := &Peer{
			cfg:    pc,
			up:     u,
			weight: int64(pc.Weight) * weightScale,
			ft:     int64(pc.FailTimeout),
			ss:     int64(pc.SlowStart),
		}
		if u.method != RoundRobin && u.method != LeastConn && u.method != LeastTime {
			p.ss = 0
		}
		p.effective = p.weight
		k := peerKey{pc.Addr, pc.Backup}
		if olds := carry[k]; len(olds) > 0 {
			old := olds[0]
			carry[k] = olds[1:]
			p.st = old.p.st
			// Keep the penalty of recent failures, not the old weight.
			p.effective = max(0, p.weight-(old.p.weight-old.effective))
		} else {
			p.st = &peerState{}
		}
		l := &u.primary
		if pc.Backup {
			l = &u.backup
		}
		p.idx = len(l.peers)
		l.peers = append(l.peers, p)
	}
	u.all = append(append(u.all, u.primary.peers...), u.backup.peers...)
	for _, l := range []*peerList{&u.primary, &u.backup} {
		for _, p := range l.peers {
			l.total += int64(p.cfg.Weight)
			if !p.cfg.Down {
				l.tries++
			}
		}
	}
	u.primary.single = len(u.primary.peers) == 1 && len(u.backup.peers) == 0
	if u.primary.single {
		u.primary.peers[0].single = true
	}
	switch {
	case u.method == Random:
		u.primary.ranges = make([]int64, len(u.primary.peers))
		var t int64
		for i, p := range u.primary.peers {
			u.primary.ranges[i] = t
			t += int64(p.cfg.Weight)
		}
	case u.method == Hash && u.consistent:
		u.buildRing()
	}

	if prev != nil && prev != u && prev.dynamic && u.dynamic {
		u.carryGone(prev, cfg.Peers)
	}
	u.learnFrom(cfg.Learn, prev)
	if cfg.Health != nil {
		hc := cfg.Health.withDefaults(u.name)
		u.health = &hc
	}
	return u
}

// Name returns the upstream's name.
func (u *Upstream) Name() string { return u.name }

// Peers returns the peers, primaries first then backups, in config order.
// The slice is a copy; the peers are shared.
func (u *Upstream) Peers() []*Peer {
	defer u.lockDynamic()()
	return append([]*Peer(nil), u.all...)
}

// Contains reports whether p, a peer of this upstream or of an earlier
// generation of it, is still part of u (its state was carried over by New).
// The reload logic drains tunnels whose peer is no longer contained. A peer
// that left a Dynamic upstream's DNS answer stays contained while its
// server is configured and something still uses it.
func (u *Upstream) Contains(p *Peer) bool {
	defer u.lockDynamic()()
	for _, q := range u.all {
		if q.st == p.st {
			return true
		}
	}
	_, gone := u.gone[p.st]
	return gone
}

// Start makes u the live generation of its upstream: it takes over the
// health state of the peers it shares with older generations (their
// checkers stop writing it) and starts its own health checks; without
// checks, its peers are healthy. Only the first call does anything, and
// none after Close.
func (u *Upstream) Start() {
	u.life.Lock()
	defer u.life.Unlock()
	if u.started || u.closed {
		return
	}
	u.started = true
	unlock := u.lockDynamic()
	defer unlock()
	u.takeHealth()
	if u.health != nil {
		u.hctx, u.cancel = context.WithCancel(context.Background())
		u.startCheckers(u.hctx, u.all)
	}
}

// Close stops the health checkers Start started and waits for them to
// return. It is safe to call more than once; peers stay usable.
func (u *Upstream) Close() {
	u.life.Lock()
	u.closed = true
	if u.cancel != nil {
		u.cancel()
	}
	u.life.Unlock()
	u.wg.Wait()
}

func (u *Upstream) warnf(format string, args ...any) {
	if u.logf != nil {
		u.logf(format, args...)
	}
}

// sortPoints orders the ring by hash, then by server so that colliding
// points resolve the same way on every run.
func sortPoints(pts []chashPoint) {
	sort.Slice(pts, func(i, j int) bool {
		if pts[i].hash != pts[j].hash {
			return pts[i].hash < pts[j].hash
		}
		return pts[i].server < pts[j].server
	})
}
