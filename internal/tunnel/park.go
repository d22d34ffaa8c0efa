package tunnel

import (
	"errors"
	"net"
	"os"
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
// waiting there: its goroutine registers the source with wsgate's own epoll
// instance (one-shot) and returns. When the source becomes readable, or the
// tunnel is closing, a new goroutine picks the direction up where it left
// it; the parser state lives in the dir, not on the stack. Busy tunnels
// never park, so the cost of a message is unchanged; an idle one pays one
// epoll_ctl to park and one goroutine start to wake.
//
// The epoll descriptor is itself waited on through the runtime's poller, so
// parking needs no extra thread. The sweeper and the dispatcher run only
// while tunnels exist.

// parkAfter is the sweep period: a direction parks after one to two
// periods without reading a byte. A variable for tests.
var parkAfter = time.Second

type parking struct {
	mu      sync.Mutex
	head    *Tunnel // registered tunnels, a list through Tunnel.next/prev
	n       int
	running bool
	epfd    int
	file    *os.File
	wake    chan struct{} // a sweep now, for tests that change parkAfter
	slots   []*dir        // epoll event data indexes this; nil when free
	gens    []uint32      // bumped as a slot is freed, so stale events miss
	free    []int32
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

// start creates the epoll instance and the two goroutines. p.mu is held.
func (p *parking) start() error {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return errNoParking
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return errNoParking
	}
	// Non-blocking, so os.NewFile hands it to the runtime's poller.
	f := os.NewFile(uintptr(fd), "wsgate-park")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return errNoParking
	}
	p.epfd, p.file, p.running = fd, f, true
	p.wake = make(chan struct{}, 1)
	go p.dispatch(rc)
	go p.sweep(p.wake)
	return nil
}

// dispatch wakes parked directions whose source became readable. It runs
// inside one RawConn.Read on the epoll descriptor, and waits only after an
// empty epoll_wait, so no readiness is lost; it ends when the descriptor
// is closed.
func (p *parking) dispatch(rc syscall.RawConn) {
	events := make([]unix.EpollEvent, 128)
	rc.Read(func(fd uintptr) bool {
		for {
			n, err := unix.EpollWait(int(fd), events, 0)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return true
			}
			if n == 0 {
				return false
			}
			p.mu.Lock()
			for _, ev := range events[:n] {
				s := ev.Fd &^ watchKind
				if s < 0 || int(s) >= len(p.slots) || p.gens[s] != uint32(ev.Pad) {
					continue
				}
				d := p.slots[s]
				switch {
				case d == nil:
				case ev.Fd&watchKind == 0:
					d.t.unpark(d.idx)
				case ev.Events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0:
					d.hangUp()
				}
			}
			p.mu.Unlock()
		}
	})
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
			f := p.file
			p.file, p.epfd = nil, -1
			p.mu.Unlock()
			// Outside p.mu: Close waits for dispatch to leave its read,
			// and dispatch may be waiting for p.mu with events in hand.
			f.Close()
			return
		}
		now := time.Now()
		var idle, old []*Tunnel
		for t := p.head; t != nil; t = t.next {
			if t.closing.Load() {
				continue
			}
			for i := range t.dirs {
				t.dirs[i].askPark()
			}
			if t.swept && t.idleFor(now) {
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
// IdleTimeout, as of the sweep at now. Under parker.mu.
func (t *Tunnel) idleFor(now time.Time) bool {
	at := int64(now.Sub(t.start))
	if n := t.dirs[c2b].n.Load() + t.dirs[b2c].n.Load(); n != t.idleN {
		t.idleN = n
		t.last.Store(at)
		return false
	}
	return at-t.last.Load() >= int64(t.cfg.IdleTimeout)
}

// askPark runs on the sweeper: a direction that has read nothing since the
// last sweep is asked to park, by a past read deadline that ends its wait.
func (d *dir) askPark() {
	if d.waitRC == nil || d.parked.Load() || d.parkReq.Load() {
		return
	}
	if n := d.n.Load(); n != d.seen {
		d.seen = n
		return
	}
	d.parkReq.Store(true)
	d.src.SetReadDeadline(aLongTimeAgo)
}

// aLongTimeAgo is a deadline that has passed.
var aLongTimeAgo = time.Unix(1, 0)

// park runs on direction i's relay goroutine after a read ended with a
// deadline error. It reports whether the direction is now parked, in which
// case the goroutine must return without exiting the tunnel; false means
// go on relaying (the deadline was the sweeper's, but parking is off now).
func (t *Tunnel) park(i int) bool {
	d := &t.dirs[i]
	// Before the source is armed: from then on, the next goroutine may
	// be running. An idle tunnel holds two descriptors and no buffer; the
	// next read makes another (generic path) and splice another pipe.
	d.releasePipe()
	d.small = nil
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

// arm registers d's source with the epoll instance for one readiness event.
// Control keeps the descriptor from being closed (and its number reused)
// while it is used.
func (p *parking) arm(d *dir) error {
	return p.register1(d, unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLONESHOT, 0)
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
	epfd := p.epfd
	p.mu.Unlock()
	var err error
	cerr := d.waitRC.Control(func(fd uintptr) {
		op := unix.EPOLL_CTL_MOD
		if !d.armed {
			op = unix.EPOLL_CTL_ADD
		}
		// Set before the call: once armed, the next goroutine may run.
		d.armed = true
		err = unix.EpollCtl(epfd, op, int(fd), &ev)
		switch err {
		case unix.EEXIST:
			err = unix.EpollCtl(epfd, unix.EPOLL_CTL_MOD, int(fd), &ev)
		case unix.ENOENT:
			err = unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
		}
		if err != nil {
			d.armed = false // not parked: no other goroutine runs
		}
	})
	if cerr != nil {
		return cerr
	}
	return err
}

// unpark hands a parked direction i to a new relay goroutine; it is a no-op
// unless the direction is parked.
func (t *Tunnel) unpark(i int) {
	if t.dirs[i].parked.CompareAndSwap(true, false) {
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
	parked  atomic.Bool // no goroutine: the epoll instance will start one
	parkReq atomic.Bool // the sweeper asked the relay to park
	seen    int64       // bytes read at the last sweep; the sweeper's
	slot    int32       // 1 + index in parker.slots; 0 for none; under parker.mu
	armed   bool        // the source is in the epoll set; the relay's

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
