package tunnel

import (
	"errors"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Parking: an idle tunnel holds no goroutine.
//
// A relay goroutine waiting in the runtime's poller keeps its stack (2 KiB
// at least), and every tunnel has two: about 40% of an idle tunnel's memory.
// So a direction whose source has sent nothing for a sweep period stops
// waiting there: its goroutine registers the source with one of wsgate's
// own epoll instances and returns. The parser state lives in the dir, not
// on the stack. An idle direction pays one epoll_ctl to park.
//
// A direction that the dispatcher can relay for (loopable, loop.go) is
// registered edge-triggered, for every arrival, and stays so: when its
// source becomes readable the dispatcher relays the bytes in place and the
// direction stays parked, with no goroutine and no buffer, and no system
// call beyond its recv and send. With earlyPark, such a direction also
// parks as soon as its reads keep emptying its socket (parkEarly), not only
// after a sweep.
// Any other parked direction is registered for one event (one-shot), and
// the event starts a new goroutine, which picks the direction up where it
// left it and relays until it parks again; so does a close (unpark).
//
// Whoever clears parked (a CAS from true) owns the direction: the
// dispatcher while it relays in place, a new goroutine, or Detach. Setting
// parked hands the direction back; a close sets closing before it unparks,
// and a direction checks closing after it sets parked, so that one of the
// two sees the other.
//
// The epoll instances (one per P, each with its dispatcher; a source's
// descriptor picks one) are waited on through the runtime's poller, so
// parking needs no extra thread. The sweeper and the dispatchers run only
// while tunnels exist.

// parkAfter is the sweep period: a direction parks after one to two
// periods without reading a byte. A variable for tests.
var parkAfter = time.Second

type parking struct {
	mu      sync.Mutex
	head    *Tunnel // registered tunnels, a list through Tunnel.next/prev
	n       int
	running bool
	epfds   []int         // the epoll instances, one per dispatcher; a source's descriptor picks one
	files   []*os.File    // the same, as files
	wake    chan struct{} // a sweep now, for tests that change parkAfter
	slots   []*dir        // epoll event data indexes this; nil when free
	gens    []uint32      // bumped as a slot is freed, so stale events miss
	free    []int32
}

// dispatcher is the state of one dispatch goroutine: a new one can start
// before the last one has returned.
type dispatcher struct {
	woken []woken // the directions an epoll_wait reported
	buf   *[]byte // the read buffer of relaying in place (loop.go)
}

// woken is a direction that an event names: readable, or (hup) ended;
// events are the event's.
type woken struct {
	d      *dir
	hup    bool
	events uint32
}

var parker parking

// sweptIdleMin is the shortest IdleTimeout that the sweep checks instead of
// a timer. The sweep sees a read up to a period after it, and checks once a
// period, so a swept tunnel closes up to two periods (2 s) after its
// timeout: 3% at most of 60 s, nginx's default proxy_read_timeout. A
// variable for tests.
var sweptIdleMin = time.Minute

// errNoParking: parking could not start (no epoll); tunnels then wait in
// the runtime's poller as before.
var errNoParking = errors.New("tunnel: parking unavailable")

// register adds t to the sweep. A tunnel none of whose sources can be
// waited on through a socket has nothing to park and is not registered.
func (p *parking) register(t *Tunnel) {
	if t.dirs[c2b].waitRC == nil && t.dirs[b2c].waitRC == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running && p.start() != nil {
		return
	}
	t.next = p.head
	if p.head != nil {
		p.head.prev = t
	}
	p.head = t
	p.n++
	t.registered = true
}

// unregister removes t once both its relays have ended for good.
func (p *parking) unregister(t *Tunnel) {
	if !t.registered {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if t.prev != nil {
		t.prev.next = t.next
	} else {
		p.head = t.next
	}
	if t.next != nil {
		t.next.prev = t.prev
	}
	t.next, t.prev = nil, nil
	p.n--
	for i := range t.dirs {
		if d := &t.dirs[i]; d.slot > 0 {
			s := d.slot - 1
			p.slots[s] = nil
			p.gens[s]++
			p.free = append(p.free, s)
			d.slot = 0
		}
	}
}

// shardCount is how many epoll instances, each with its dispatcher, parking
// runs: one per P, so that relaying in place (loop.go) is spread as the
// relay goroutines would be. A variable for measurements.
var shardCount = func() int { return min(runtime.GOMAXPROCS(0), 64) }

// start creates the epoll instances and the goroutines. p.mu is held.
func (p *parking) start() error {
	n := max(shardCount(), 1)
	rcs := make([]syscall.RawConn, 0, n)
	for range n {
		fd, f, rc, err := newEpoll()
		if err != nil {
			for _, f := range p.files {
				f.Close()
			}
			p.files, p.epfds = nil, nil
			return err
		}
		p.files = append(p.files, f)
		p.epfds = append(p.epfds, fd)
		rcs = append(rcs, rc)
	}
	p.running = true
	p.wake = make(chan struct{}, 1)
	for _, rc := range rcs {
		go p.dispatch(rc)
	}
	go p.sweep(p.wake)
	return nil
}

// newEpoll creates an epoll instance that the runtime's poller waits on.
func newEpoll() (int, *os.File, syscall.RawConn, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return -1, nil, nil, errNoParking
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, nil, nil, errNoParking
	}
	// Non-blocking, so os.NewFile hands it to the runtime's poller.
	f := os.NewFile(uintptr(fd), "wsgate-park")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return -1, nil, nil, errNoParking
	}
	return fd, f, rc, nil
}

// dispatch relays for, or wakes, parked directions whose source became
// readable (loop.go), and reports watched sources' ends (skip.go). It runs
// inside one RawConn.Read on the epoll descriptor, and waits only after an
// epoll_wait that emptied the ready list, so no readiness is lost; it ends
// when the descriptor is closed.
func (p *parking) dispatch(rc syscall.RawConn) {
	events := make([]unix.EpollEvent, 128)
	var l dispatcher
	rc.Read(func(fd uintptr) bool {
		for {
			n, err := epollWait(int(fd), events)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return true
			}
			if n == 0 {
				return false
			}
			l.woken = p.collect(l.woken[:0], events[:n])
			// Outside p.mu: relaying in place arms sources again.
			for k, w := range l.woken {
				if w.hup {
					w.d.hangUp()
				} else {
					l.wake(w.d, w.events)
				}
				l.woken[k] = woken{}
			}
			if n < len(events) {
				// Every registration is edge-triggered or one-shot,
				// so the call emptied the ready list: an event from
				// then on makes the descriptor readable anew, which
				// the poller keeps for the wait. A system call saved
				// per wake-up.
				return false
			}
		}
	})
}

// collect appends to out the directions that events name, dropping stale
// events (a slot freed or reused since).
func (p *parking) collect(out []woken, events []unix.EpollEvent) []woken {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ev := range events {
		s := ev.Fd &^ watchKind
		if s < 0 || int(s) >= len(p.slots) || p.gens[s] != uint32(ev.Pad) {
			continue
		}
		d := p.slots[s]
		switch {
		case d == nil:
		case ev.Fd&watchKind == 0:
			out = append(out, woken{d: d, events: ev.Events})
		case ev.Events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0:
			out = append(out, woken{d: d, hup: true})
		}
	}
	return out
}

// wake starts parked direction d: relayed in place when it can be
// (loop.go), else by a new goroutine.
func (l *dispatcher) wake(d *dir, events uint32) {
	if d.flags.Load()&fNew != 0 {
		// A tunnel's first bytes: it is likely busy, and a busy
		// direction is cheaper on its goroutine (see earlyPark).
		d.t.unpark(int(d.idx))
		return
	}
	if !loopOff.Load() {
		l.relay(d.t, int(d.idx), events)
		return
	}
	d.t.unpark(int(d.idx))
}

// sweep asks directions that read nothing for a period to park, and tears
// parking down once no tunnel is left.
func (p *parking) sweep(wake <-chan struct{}) {
	tick := time.NewTicker(parkAfter)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-wake:
		}
		p.mu.Lock()
		if p.n == 0 {
			p.running = false
			files := p.files
			p.files, p.epfds = nil, nil
			p.mu.Unlock()
			// Outside p.mu: Close waits for a dispatcher's callback,
			// which may be waiting for p.mu.
			for _, f := range files {
				f.Close() // ends its dispatcher
			}
			return
		}
		now := time.Now()
		var idle, old []*Tunnel
		for t := p.head; t != nil; t = t.next {
			if t.closing.Load() {
				continue
			}
			read := false
			for i := range t.dirs {
				read = t.dirs[i].askPark() || read
			}
			if t.swept && t.idleFor(now, read) {
				idle = append(idle, t)
			} else if t.cfg.MaxSession > 0 && now.Sub(t.start) >= t.cfg.MaxSession {
				old = append(old, t)
			}
		}
		p.mu.Unlock()
		// Outside p.mu: closing a tunnel unregisters it.
		for _, t := range idle {
			go t.idleClose()
		}
		for _, t := range old {
			go t.lifetimeClose()
		}
	}
}

// idleFor reports whether swept tunnel t has read nothing for its
// IdleTimeout, as of the sweep at now; read tells that it has read since
// the last sweep (askPark). Under parker.mu.
func (t *Tunnel) idleFor(now time.Time, read bool) bool {
	at := int64(now.Sub(t.start))
	if read {
		t.last.Store(at)
		return false
	}
	return at-t.last.Load() >= int64(t.cfg.IdleTimeout)
}

// askPark runs on the sweeper, for every direction of a tunnel that is not
// closing, and reports whether the direction has read since the last
// sweep; one that has not, and waits in the runtime's poller, is asked to
// park, by a past read deadline that ends its wait.
func (d *dir) askPark() (read bool) {
	n := d.n.Load()
	read, d.seen = n != d.seen, n
	if read || d.waitRC == nil || d.parked.Load() || d.parkReq.Load() {
		return read
	}
	d.parkReq.Store(true)
	d.src.SetReadDeadline(aLongTimeAgo)
	return false
}

// aLongTimeAgo is a deadline that has passed.
var aLongTimeAgo = time.Unix(1, 0)

// park runs on direction i's relay goroutine after a read ended with a
// deadline error (the sweeper's request), or when it parks early
// (parkEarly). It reports whether the direction is now parked, in which
// case the goroutine must return without exiting the tunnel; false means
// go on relaying (the deadline was the sweeper's, but parking is off now).
func (t *Tunnel) park(i int) bool {
	d := &t.dirs[i]
	// Before the source is armed: from then on, the next goroutine may
	// be running. An idle tunnel holds two descriptors, no buffer and no
	// relayState; the next run takes another, with a buffer (generic
	// path) and a pipe (splice) as it needs them.
	d.dropState()
	// arm replaces the watch registration, if any.
	d.watching = false
	// parked first: from here the sweeper leaves the direction alone,
	// and an event that fires as soon as the source is armed finds it
	// parked.
	d.parked.Store(true)
	d.parkReq.Store(false)
	t.clearReadDeadline(d) // the sweeper's; a close's grace deadline stays
	if t.closing.Load() {
		// A lost race means closeWith's unpark has already started
		// the direction's next goroutine.
		return !d.parked.CompareAndSwap(true, false)
	}
	if err := parker.arm(d); err != nil {
		return !d.parked.CompareAndSwap(true, false)
	}
	if t.closing.Load() && d.parked.CompareAndSwap(true, false) {
		// closeWith ran meanwhile and may have missed the park.
		return false
	}
	return true
}

// arm registers d's source with the epoll instance for its readiness: one
// event, or, when the dispatcher can relay for d (loop.go), every arrival
// (edge-triggered), so that it stays registered while the dispatcher
// relays. Either way the change reports data already queued. Control
// keeps the descriptor from being closed (and its number reused) while it
// is used.
func (p *parking) arm(d *dir) error {
	// fNew first: a starting direction's fields are not read (see
	// startParked).
	if d.flags.Load()&fNew == 0 && d.t.loopable(d) {
		d.flags.Or(fEdge)
		return p.register1(d, unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLET, 0)
	}
	d.flags.And(^fEdge)
	return p.register1(d, unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLONESHOT, 0)
}

// disarm takes d's source out of the epoll set; nobody runs d.
func (p *parking) disarm(d *dir) {
	if d.flags.Load()&fArmed == 0 {
		return
	}
	p.mu.Lock()
	epfds := p.epfds
	p.mu.Unlock()
	if len(epfds) == 0 {
		return // parking stopped: its instances are closed
	}
	c := getRawCall(opDisarm)
	c.epfds = epfds
	d.waitRC.Control(c.fn)
	c.put()
	d.flags.And(^(fArmed | fEdge))
}

// quiet stops an edge-triggered registration's readiness events when a
// goroutine takes the direction over, leaving it as watch does.
func (p *parking) quiet(d *dir) {
	if d.flags.Load()&fEdge != 0 {
		d.flags.And(^fEdge)
		p.register1(d, unix.EPOLLRDHUP|unix.EPOLLET, watchKind)
	}
}

// watchKind marks the events of a watched direction's registration (see
// skip.go) in their slot number: they report the source's end, and never
// wake a parked direction.
const watchKind = 1 << 30

// watch registers d's source for its end (or failure) only, edge-triggered,
// replacing a one-shot registration that has fired.
func (p *parking) watch(d *dir) error {
	return p.register1(d, unix.EPOLLRDHUP|unix.EPOLLET, watchKind)
}

// register1 puts d's source in the epoll set, or changes its registration,
// with events, the event data naming d's slot and kind.
func (p *parking) register1(d *dir, events uint32, kind int32) error {
	p.mu.Lock()
	if !p.running {
		p.mu.Unlock()
		return errNoParking
	}
	if d.slot == 0 {
		var s int32
		if k := len(p.free); k > 0 {
			s = p.free[k-1]
			p.free = p.free[:k-1]
		} else {
			s = int32(len(p.slots))
			p.slots = append(p.slots, nil)
			p.gens = append(p.gens, 0)
		}
		p.slots[s] = d
		d.slot = s + 1
	}
	ev := unix.EpollEvent{
		Events: events,
		Fd:     (d.slot - 1) | kind,
		Pad:    int32(p.gens[d.slot-1]),
	}
	epfds := p.epfds
	p.mu.Unlock()
	c := getRawCall(opArm)
	c.d, c.epfds, c.ev = d, epfds, ev
	cerr := d.waitRC.Control(c.fn)
	err := c.err
	c.put()
	if cerr != nil {
		return cerr
	}
	return err
}

// unpark hands a parked direction i to a new relay goroutine; it is a no-op
// unless the direction is parked (the dispatcher may be relaying for it:
// then it sees the close when it is done, and hands it over).
func (t *Tunnel) unpark(i int) {
	if t.dirs[i].parked.CompareAndSwap(true, false) {
		t.dirs[i].flags.And(^fNew)
		go t.run(i)
	}
}

// parkState is the part of a dir that parking uses.
type parkState struct {
	// waitRC is the socket whose readability means src has data: src's
	// own, or the one beneath a TLS connection. A TLS read that timed out
	// leaves no whole record buffered (crypto/tls reads the socket only
	// when it lacks one, and a timeout does not break the connection), so
	// a quiet socket means a quiet TLS source. nil: the source (an HTTP/2
	// stream) cannot park.
	waitRC  syscall.RawConn
	parked  atomic.Bool // no goroutine: the dispatcher relays for it or starts one
	parkReq atomic.Bool // the sweeper asked the relay to park
	seen    int64       // bytes read at the last sweep; the sweeper's
	slot    int32       // 1 + index in parker.slots; 0 for none; under parker.mu

	// Skipping the read that would say EAGAIN (skip.go); the relay's.
	watching bool  // the source is in the epoll set for its end only
	short    bool  // the last read left the socket empty (counted before watching)
	shorts   uint8 // short reads before watching; noWatch: never
}

// waitRawConn returns the RawConn whose readability tells that c has data
// (see parkState.waitRC), or nil.
func waitRawConn(c net.Conn) syscall.RawConn {
	if rc := rawConn(c); rc != nil {
		return rc
	}
	// A TLS connection, or a wrapper (compression offload) that reads
	// its connection only once it has used what it holds.
	if nc, ok := c.(interface{ NetConn() net.Conn }); ok {
		return waitRawConn(nc.NetConn())
	}
	return nil
}
