package tlsconf

import (
	"container/list"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	// bytesPerSession turns a shared:NAME:SIZE into a number of entries,
	// after nginx's "one megabyte of the cache contains about 4000
	// sessions".
	bytesPerSession = 256
	// builtinDefault is OpenSSL's default builtin cache size, in sessions.
	builtinDefault = 20480
	// sessionIDLen is the length of the handle given to clients instead of
	// a ticket when the server keeps the session.
	sessionIDLen = 16
)

// parseSessionCache returns the number of sessions the server keeps for
// an ssl_session_cache value; 0 means no server-side cache ("off",
// "none"). Several caches (e.g. "builtin:1000 shared:SSL:10m") become one
// of the largest size: wsgate has a single in-process store per server.
func parseSessionCache(v string) (int, error) {
	fields := strings.Fields(v)
	if len(fields) == 0 {
		return 0, nil
	}
	n := 0
	for _, f := range fields {
		switch {
		case f == "off" || f == "none":
			if len(fields) > 1 {
				return 0, fmt.Errorf("ssl_session_cache: %q cannot be combined with other values", f)
			}
		case f == "builtin":
			n = max(n, builtinDefault)
		case strings.HasPrefix(f, "builtin:"):
			k, err := strconv.Atoi(f[len("builtin:"):])
			if err != nil || k <= 0 {
				return 0, fmt.Errorf("ssl_session_cache: invalid session number in %q", f)
			}
			n = max(n, k)
		case strings.HasPrefix(f, "shared:"):
			parts := strings.Split(f, ":")
			if len(parts) != 3 || parts[1] == "" {
				return 0, fmt.Errorf("ssl_session_cache: invalid value %q, expected shared:NAME:SIZE", f)
			}
			size, err := parseSize(parts[2])
			if err != nil || size < bytesPerSession {
				return 0, fmt.Errorf("ssl_session_cache: invalid size in %q", f)
			}
			n = max(n, size/bytesPerSession)
		default:
			return 0, fmt.Errorf("ssl_session_cache: invalid value %q", f)
		}
	}
	return n, nil
}

// parseSize reads an nginx size ("10m", "512k", "1048576").
func parseSize(s string) (int, error) {
	mult := 1
	if s != "" {
		switch s[len(s)-1] {
		case 'k', 'K':
			mult, s = 1<<10, s[:len(s)-1]
		case 'm', 'M':
			mult, s = 1<<20, s[:len(s)-1]
		case 'g', 'G':
			mult, s = 1<<30, s[:len(s)-1]
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	return n * mult, nil
}

// sessionStore keeps serialized TLS sessions for resumption when tickets
// are off (ssl_session_tickets off with a session cache): clients get a
// random handle in the ticket extension, the state stays here. Bounded in
// entries (least recently used goes first) and in age. Safe for
// concurrent use.
type sessionStore struct {
	mu      sync.Mutex
	max     int
	ttl     time.Duration
	entries map[string]*list.Element
	lru     list.List // front: most recently used; values are *sessionEntry
	now     func() time.Time
}

type sessionEntry struct {
	id      string
	state   []byte
	expires time.Time
}

func newSessionStore(maxEntries int, ttl time.Duration) *sessionStore {
	return &sessionStore{max: maxEntries, ttl: ttl, entries: make(map[string]*list.Element), now: time.Now}
}

func (s *sessionStore) put(state []byte) []byte {
	id := make([]byte, sessionIDLen)
	rand.Read(id) // never fails (crypto/rand since Go 1.24)
	e := &sessionEntry{id: string(id), state: state, expires: s.now().Add(s.ttl)}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries[e.id] = s.lru.PushFront(e)
	for s.lru.Len() > s.max {
		old := s.lru.Back()
		s.lru.Remove(old)
		delete(s.entries, old.Value.(*sessionEntry).id)
	}
	return id
}

func (s *sessionStore) get(id []byte) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.entries[string(id)]
	if !ok {
		return nil
	}
	e := el.Value.(*sessionEntry)
	if !s.now().Before(e.expires) {
		s.lru.Remove(el)
		delete(s.entries, e.id)
		return nil
	}
	s.lru.MoveToFront(el)
	return e.state
}

func (s *sessionStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lru.Len()
}

func (s *sessionStore) wrap(_ tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
	b, err := ss.Bytes()
	if err != nil {
		return nil, err
	}
	return s.put(b), nil
}

func (s *sessionStore) unwrap(id []byte, _ tls.ConnectionState) (*tls.SessionState, error) {
	b := s.get(id)
	if b == nil {
		return nil, nil // unknown or expired: a full handshake
	}
	return tls.ParseSessionState(b)
}

// ticketAgeTag prefixes the SessionState.Extra entry holding the time a
// ticket was issued, so ssl_session_timeout bounds stateless tickets too
// (Go's own limit is 7 days).
const ticketAgeTag = "wsgate-tlsconf-issued-v1:"

// ticketTimeout enforces a session lifetime on Go's stateless tickets.
type ticketTimeout struct {
	cfg *tls.Config // the config whose ticket keys encrypt and decrypt
	ttl time.Duration
	now func() time.Time
}

func (t *ticketTimeout) wrap(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
	kept := ss.Extra[:0:0]
	for _, e := range ss.Extra {
		if !strings.HasPrefix(string(e), ticketAgeTag) {
			kept = append(kept, e)
		}
	}
	stamp := binary.BigEndian.AppendUint64([]byte(ticketAgeTag), uint64(t.now().Unix()))
	ss.Extra = append(kept, stamp)
	return t.cfg.EncryptTicket(cs, ss)
}

func (t *ticketTimeout) unwrap(ticket []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
	ss, err := t.cfg.DecryptTicket(ticket, cs)
	if ss == nil || err != nil {
		return ss, err
	}
	for _, e := range ss.Extra {
		if rest, ok := strings.CutPrefix(string(e), ticketAgeTag); ok && len(rest) == 8 {
			issued := time.Unix(int64(binary.BigEndian.Uint64([]byte(rest))), 0)
			if t.now().Sub(issued) < t.ttl {
				return ss, nil
			}
		}
	}
	return nil, nil // expired, or not ours: a full handshake
}
