package upstream

import (
	"container/list"
	"sync"
	"time"
)

// Learn configures nginx Plus's `sticky learn`: sessions that a backend
// created are remembered with the peer that created them, so that the
// requests naming the session go back to it.
type Learn struct {
	Zone    string        // the zone's name: generations of an upstream with the same zone share sessions
	Entries int           // at most this many sessions are kept; the least recently used goes first
	Timeout time.Duration // a session not used for this long is forgotten; 0: 10 minutes
}

// sessions is a bounded LRU map from a session identifier to the StickyID
// of the peer that created it. It is safe for concurrent use.
type sessions struct {
	zone string
	max  int

	mu    sync.Mutex
	byID  map[string]*list.Element
	order list.List // of *session, most recently used first
}

type session struct {
	id, peer string
	used     time.Time
}

// lookup returns the peer id of session id and marks it used, "" when the
// session is unknown or has not been used for timeout.
func (s *sessions) lookup(id string, now time.Time, timeout time.Duration) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.byID[id]
	if e == nil {
		return ""
	}
	ss := e.Value.(*session)
	if now.Sub(ss.used) >= timeout {
		s.remove(e)
		return ""
	}
	ss.used = now
	s.order.MoveToFront(e)
	return ss.peer
}

// store binds session id to peer, evicting the least recently used
// session when the zone is full and any unused for timeout on the way.
func (s *sessions) store(id, peer string, now time.Time, timeout time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.byID[id]; e != nil {
		ss := e.Value.(*session)
		ss.peer, ss.used = peer, now
		s.order.MoveToFront(e)
		return
	}
	for e := s.order.Back(); e != nil && (s.order.Len() >= s.max || now.Sub(e.Value.(*session).used) >= timeout); e = s.order.Back() {
		s.remove(e)
	}
	s.byID[id] = s.order.PushFront(&session{id: id, peer: peer, used: now})
}

func (s *sessions) remove(e *list.Element) {
	delete(s.byID, e.Value.(*session).id)
	s.order.Remove(e)
}

func (s *sessions) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byID)
}

// learnFrom gives u the sessions of cfg.Learn: prev's when prev learns
// into a zone of the same name and size, so that a reload forgets no
// session, else a new, empty zone. Each generation applies its own timeout.
func (u *Upstream) learnFrom(l *Learn, prev *Upstream) {
	if l == nil {
		return
	}
	u.learnTimeout = l.Timeout
	if u.learnTimeout <= 0 {
		u.learnTimeout = 10 * time.Minute
	}
	n := max(l.Entries, 1)
	if prev != nil && prev.learned != nil && prev.learned.zone == l.Zone && prev.learned.max == n {
		u.learned = prev.learned
		return
	}
	u.learned = &sessions{zone: l.Zone, max: n, byID: map[string]*list.Element{}}
}

// Learned picks the peer that created session id (Upstream.Learn) as
// Sticky picks a peer: only when it can take a request now. It returns nil
// when the upstream does not learn, the session is unknown or expired, or
// its peer is not usable; the caller then falls back to Next.
func (a *Attempt) Learned(id string) *Peer {
	u := a.u
	if u == nil || u.learned == nil || id == "" {
		return nil
	}
	return a.Sticky(u.learned.lookup(id, u.now(), u.learnTimeout))
}

// Learn remembers that p created session id: later Learned(id) picks p.
// It does nothing when u does not learn or id is empty.
func (u *Upstream) Learn(id string, p *Peer) {
	if u == nil || u.learned == nil || id == "" || p == nil {
		return
	}
	u.learned.store(id, p.StickyID(), u.now(), u.learnTimeout)
}

// Learns reports whether u was configured with Config.Learn.
func (u *Upstream) Learns() bool { return u != nil && u.learned != nil }
