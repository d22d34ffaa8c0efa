package backend

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
)

// Slots is the worker_connections accounting: a backend connection holds
// one slot from its dial until it is closed, idle in a Pool included.
type Slots interface {
	// Reserve takes a slot, or reports false when none is left.
	Reserve() bool
	// Release gives n slots back.
	Release(n int64)
}

// Pool keeps idle connections to the peers of one upstream (`keepalive
// N`): at most max in all, each for at most timeout and requests uses, as
// nginx's upstream keepalive cache. A nil *Pool keeps nothing. It is safe
// for concurrent use.
type Pool struct {
	slots    Slots
	max      int
	timeout  time.Duration
	requests int
	maxAge   time.Duration // keepalive_time: no new request on a connection older than this; 0: none

	mu    sync.Mutex
	conns []idleConn // oldest first
	done  bool
}

type idleConn struct {
	c     net.Conn
	peer  string
	tls   *tls.Config // the Transport's TLS, nil for a plain connection
	since time.Time
	born  time.Time // when it was dialled, for keepalive_time
	uses  int
}

// NewPool returns a keepalive cache of max connections, each kept idle for
// at most timeout and used for at most requests requests; a discarded
// connection gives its slot back to slots.
func NewPool(slots Slots, max int, timeout time.Duration, requests int) *Pool {
	return &Pool{slots: slots, max: max, timeout: timeout, requests: requests}
}

// SetMaxAge sets keepalive_time: a connection older than d is not used
// for another request.
func (p *Pool) SetMaxAge(d time.Duration) {
	if p != nil {
		p.maxAge = d
	}
}

// Idle reports how many connections the pool holds.
func (p *Pool) Idle() int {
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// get returns an idle connection to peer, made under cfg (nil: plain),
// that is still open, the requests it has served and when it was dialled,
// or nil.
func (p *Pool) get(peer string, cfg *tls.Config) (net.Conn, int, time.Time) {
	if p == nil {
		return nil, 0, time.Time{}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	for i := len(p.conns) - 1; i >= 0; i-- {
		ic := p.conns[i]
		if ic.peer != peer || ic.tls != cfg {
			continue
		}
		p.conns = append(p.conns[:i], p.conns[i+1:]...)
		if now.Sub(ic.since) > p.timeout || p.maxAge > 0 && now.Sub(ic.born) > p.maxAge || !alive(ic.c) {
			p.discard(ic.c)
			continue
		}
		return ic.c, ic.uses, ic.born
	}
	return nil, 0, time.Time{}
}

// put keeps c, which has served uses requests, for reuse; it reports false
// (and the caller closes c) when the pool is closed or c has served
// enough. A full pool drops its least recently used connection.
func (p *Pool) put(peer string, cfg *tls.Config, c net.Conn, uses int, born time.Time) bool {
	if p == nil || uses >= p.requests || p.maxAge > 0 && time.Since(born) > p.maxAge {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return false
	}
	if len(p.conns) >= p.max {
		p.discard(p.conns[0].c)
		p.conns = p.conns[1:]
	}
	p.conns = append(p.conns, idleConn{c: c, peer: peer, tls: cfg, since: time.Now(), born: born, uses: uses})
	return true
}

func (p *Pool) discard(c net.Conn) {
	c.Close()
	p.slots.Release(1)
}

// Close drops every idle connection and keeps none from now on (the
// configuration that owned the pool is gone).
func (p *Pool) Close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done = true
	for _, ic := range p.conns {
		p.discard(ic.c)
	}
	p.conns = nil
}

// alive checks, without blocking, that the peer has not closed an idle
// connection: a readable idle connection is either closed or out of sync
// (for TLS, a record the peer sent after the response, a close_notify or
// an alert).
func alive(c net.Conn) bool {
	sc := socketOf(c)
	if sc == nil {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	ok := true
	rc.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		ok = n < 0 && (errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK))
		if n == 0 && err == nil {
			ok = false // orderly shutdown by the peer
		}
		return true
	})
	return ok
}

// stale reports an error that a reused connection gives when the peer
// closed it while idle.
func stale(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
