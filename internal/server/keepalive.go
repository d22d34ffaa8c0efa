package server

import (
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
)

// idlePool keeps idle connections to the peers of one upstream for plain
// HTTP (`keepalive N`): at most max in all, each for at most timeout and
// requests uses, as nginx's upstream keepalive cache. Idle connections
// still count against worker_connections, as in nginx.
type idlePool struct {
	srv      *Server
	max      int
	timeout  time.Duration
	requests int

	mu    sync.Mutex
	conns []idleConn // oldest first
	done  bool
}

type idleConn struct {
	c     *net.TCPConn
	peer  string
	since time.Time
	uses  int
}

// get returns an idle connection to peer that is still open, or nil.
func (p *idlePool) get(peer string) (*net.TCPConn, int) {
	if p == nil {
		return nil, 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	for i := len(p.conns) - 1; i >= 0; i-- {
		ic := p.conns[i]
		if ic.peer != peer {
			continue
		}
		p.conns = append(p.conns[:i], p.conns[i+1:]...)
		if now.Sub(ic.since) > p.timeout || !alive(ic.c) {
			p.discard(ic.c)
			continue
		}
		return ic.c, ic.uses
	}
	return nil, 0
}

// put keeps c for reuse; it reports false (and the caller closes c) when
// the pool is full of younger connections, closed, or c has served enough.
func (p *idlePool) put(peer string, c *net.TCPConn, uses int) bool {
	if p == nil || uses >= p.requests {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return false
	}
	if len(p.conns) >= p.max {
		p.discard(p.conns[0].c) // the least recently used goes
		p.conns = p.conns[1:]
	}
	p.conns = append(p.conns, idleConn{c: c, peer: peer, since: time.Now(), uses: uses})
	return true
}

func (p *idlePool) discard(c *net.TCPConn) {
	c.Close()
	p.srv.release(1)
}

// close drops every idle connection (the snapshot that owned the pool is
// gone).
func (p *idlePool) close() {
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
// connection: a readable idle connection is either closed or out of sync.
func alive(c *net.TCPConn) bool {
	rc, err := c.SyscallConn()
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
// closed it while idle: the request is sent again on a fresh connection.
func stale(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
