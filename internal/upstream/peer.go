package upstream

import (
	"sync"
	"sync/atomic"
	"time"
)

// Peer is one address of an upstream. Its configuration is fixed; its state
// (active count, failures, health) is shared with the peers that replace it
// on reload. All methods are safe for concurrent use.
//
// Every successful Attempt.Next must be matched by exactly one Done on the
// returned peer: Done(true) when connecting or the handshake failed,
// Done(false) when the request or tunnel ends. A tunnel calls Connected as
// soon as the upgrade succeeds, so that a recovering peer is marked live at
// once rather than when the tunnel closes hours later.
type Peer struct {
	cfg    PeerConfig // defaults applied
	up     *Upstream
	st     *peerState
	idx    int   // position in its list (the "tried" bit)
	server int32 // consistent hash: index of cfg.Name among the ring's servers
	single bool  // nginx ignores max_fails for a lone peer
	weight int64 // configured weight * weightScale
	ft     int64 // fail_timeout, ns
	ss     int64 // slow_start, ns

	// Smooth round robin state, guarded by up.mu.
	current   int64
	effective int64
}

// peerState is what a reload carries from one Peer to its successor.
type peerState struct {
	conns     atomic.Int64
	fails     atomic.Int32
	checked   atomic.Int64 // unix ns; nginx's peer->checked
	recovered atomic.Int64 // unix ns when the peer came back; 0 = not ramping
	unhealthy atomic.Bool
	picks     atomic.Uint64
	failures  atomic.Uint64
	avg       atomic.Int64 // least_time: average response time, µs; 0 before any

	mu       sync.Mutex
	accessed int64     // unix ns of the last failure; nginx's peer->accessed
	owner    *Upstream // whose health checker may write the fields below
	hcPasses int
	hcFails  int
}

// PeerState is a snapshot of a peer for status pages.
type PeerState struct {
	Addr   string
	Name   string
	Weight int
	Backup bool
	Down   bool // configured down
	Drain  bool // draining: only sticky clients reach it
	// Active counts requests and tunnels in progress, across reloads.
	Active int64
	// Fails is nginx's failure counter: failures since the last success
	// that followed a fail_timeout.
	Fails int
	// UnavailableUntil is when a peer disabled by max_fails gets its next
	// trial request; zero when the peer is not disabled.
	UnavailableUntil time.Time
	// Healthy is false while active health checks find the peer failing.
	Healthy  bool
	Picks    uint64 // times chosen
	Failures uint64 // failures reported through Done(true)
}

// Addr returns the peer's resolved "ip:port".
func (p *Peer) Addr() string { return p.cfg.Addr }

// Name returns the peer's address as written in the configuration.
func (p *Peer) Name() string { return p.cfg.Name }

// Backup reports whether p is a backup peer.
func (p *Peer) Backup() bool { return p.cfg.Backup }

// Active returns the number of requests and tunnels in progress on p.
func (p *Peer) Active() int64 { return p.st.conns.Load() }

// State returns a snapshot of p.
func (p *Peer) State() PeerState {
	s := PeerState{
		Addr:     p.cfg.Addr,
		Name:     p.cfg.Name,
		Weight:   p.cfg.Weight,
		Backup:   p.cfg.Backup,
		Down:     p.cfg.Down,
		Drain:    p.cfg.Drain,
		Active:   p.st.conns.Load(),
		Fails:    int(p.st.fails.Load()),
		Healthy:  !p.st.unhealthy.Load(),
		Picks:    p.st.picks.Load(),
		Failures: p.st.failures.Load(),
	}
	if p.failed(&instant{clock: p.up.now}) {
		s.UnavailableUntil = time.Unix(0, p.st.checked.Load()+p.ft)
	}
	return s
}

// Done ends one use of p obtained from Attempt.Next. failed reports a
// failure to connect or to get a valid response (nginx's proxy_next_upstream
// conditions); it counts toward max_fails within fail_timeout. A success
// after a fail_timeout clears the failure count, as in nginx.
func (p *Peer) Done(failed bool) {
	if failed {
		p.fail()
	} else {
		p.succeed()
	}
	p.st.conns.Add(-1)
	p.up.q.notify()
}

// Connected records a success on p without ending its use: a tunnel calls
// it when the upgrade succeeds and Done(false) when the tunnel closes.
func (p *Peer) Connected() { p.succeed() }

func (p *Peer) fail() {
	st := p.st
	st.failures.Add(1)
	if p.single {
		return
	}
	now := p.up.now().UnixNano()
	st.mu.Lock()
	fails := st.fails.Add(1)
	st.accessed = now
	st.checked.Store(now)
	st.mu.Unlock()
	if mf := p.cfg.MaxFails; mf > 0 {
		u := p.up
		u.mu.Lock()
		p.effective -= weightScale * int64(p.cfg.Weight/mf)
		if p.effective < 0 {
			p.effective = 0
		}
		u.mu.Unlock()
		if int(fails) == mf {
			u.warnf("upstream %q: server %s (%s) temporarily disabled after %d failures", u.name, p.cfg.Name, p.cfg.Addr, fails)
		}
	}
}

func (p *Peer) succeed() {
	st := p.st
	if p.single || st.fails.Load() == 0 {
		return
	}
	st.mu.Lock()
	// A success clears failures only when the peer was picked after its
	// last failure plus fail_timeout (nginx: accessed < checked).
	if st.accessed < st.checked.Load() {
		was := st.fails.Swap(0)
		if mf := p.cfg.MaxFails; mf > 0 && int(was) >= mf && p.ss > 0 {
			st.recovered.Store(p.up.now().UnixNano())
		}
	}
	st.mu.Unlock()
}

// instant reads the clock once, and only when a decision needs it: most
// picks involve no failed or ramping peer, and a clock read can cost more
// than the rest of a pick.
type instant struct {
	clock func() time.Time
	ns    int64
	read  bool
}

func (t *instant) get() int64 {
	if !t.read {
		t.ns, t.read = t.clock().UnixNano(), true
	}
	return t.ns
}

// failed reports whether max_fails failures disable p at now.
func (p *Peer) failed(now *instant) bool {
	mf := p.cfg.MaxFails
	return mf > 0 && !p.single && int(p.st.fails.Load()) >= mf && now.get()-p.st.checked.Load() <= p.ft
}

// usable reports whether the balancer may choose p at now, tried bits
// aside: a draining peer takes only requests bound to it (Sticky).
func (p *Peer) usable(now *instant) bool {
	return !p.cfg.Drain && p.takes(now)
}

// takes reports whether p may take a sticky client at now: as usable, but
// a draining peer still takes the clients bound to it.
func (p *Peer) takes(now *instant) bool {
	if p.cfg.Down || p.st.unhealthy.Load() {
		return false
	}
	if mc := p.cfg.MaxConns; mc > 0 && p.st.conns.Load() >= int64(mc) {
		return false
	}
	return !p.failed(now)
}

// acquire takes a connection slot, honouring max_conns even against a
// selection running concurrently in another generation of the upstream.
func (p *Peer) acquire() bool {
	mc := int64(p.cfg.MaxConns)
	if mc <= 0 {
		p.st.conns.Add(1)
		return true
	}
	for {
		c := p.st.conns.Load()
		if c >= mc {
			return false
		}
		if p.st.conns.CompareAndSwap(c, c+1) {
			return true
		}
	}
}

// picked records a selection: nginx moves peer->checked forward once per
// fail_timeout, which is what lets one trial request through to a disabled
// peer and lets the next success clear its failures.
//
// Without failures checked does not matter (a failure sets it, a success
// has nothing to clear), so the clock is not read.
func (p *Peer) picked(now *instant) {
	p.st.picks.Add(1)
	if p.single || p.st.fails.Load() == 0 {
		return
	}
	if c := p.st.checked.Load(); now.get()-c > p.ft {
		p.st.checked.CompareAndSwap(c, now.get())
	}
}

// slowWeight caps w while p ramps up after recovering: linear from almost
// nothing to the full weight over slow_start.
func (p *Peer) slowWeight(w int64, now *instant) int64 {
	if p.ss <= 0 {
		return w
	}
	r := p.st.recovered.Load()
	if r == 0 {
		return w
	}
	el := now.get() - r
	if el >= p.ss || el < 0 {
		return w
	}
	ramp := max(1, int64(float64(p.weight)*float64(el)/float64(p.ss)))
	return min(w, ramp)
}
