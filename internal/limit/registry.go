package limit

import (
	"fmt"
	"sync"
	"time"
)

// Registry carries zones across reloads, as nginx carries shared memory
// zones: a zone declared again with the same name and size keeps its state
// (buckets, connection counts); one whose size changed starts empty. The
// config layer keeps one Registry for the process and, for each load, fills
// a Build and commits it only once the whole configuration is good, so a
// failed reload leaves the running zones as they were.
//
// A Registry is safe for concurrent use; loads are expected to be serialized
// (two overlapping Builds both commit, the later one wins). The zero value
// is not usable: use NewRegistry.
type Registry struct {
	clock func() time.Time

	mu   sync.Mutex
	req  map[string]*reqState
	conn map[string]*connState
	// shared is the cluster store for sync zones, or nil.
	shared Shared
}

// NewRegistry returns an empty registry whose zones read clock (nil for
// time.Now).
func NewRegistry(clock func() time.Time) *Registry {
	if clock == nil {
		clock = time.Now
	}
	return &Registry{clock: clock, req: map[string]*reqState{}, conn: map[string]*connState{}}
}

// Build collects the zones of one configuration load. It is not safe for
// concurrent use, and must not be used after Commit.
type Build struct {
	r          *Registry
	req        map[string]*reqState
	conn       map[string]*connState
	shared     Shared
	connShared map[*connState]*sharedBox // the conn zones Share made cluster-wide
}

// Begin starts collecting the zones of a new configuration.
func (r *Registry) Begin() *Build {
	return &Build{r: r, req: map[string]*reqState{}, conn: map[string]*connState{}, connShared: map[*connState]*sharedBox{}}
}

// ReqZone returns the zone of a limit_req_zone directive: key is the key
// expression as written (nginx refuses a reload that keeps a zone's name and
// size but changes its key), sizeBytes and rateMilli as for NewReqZone. The
// zone shares its buckets with the running zone of that name when the size
// is the same; the rate is always the new one. Errors carry no file:line:
// the caller adds them.
func (b *Build) ReqZone(name, key string, sizeBytes, rateMilli int64) (*ReqZone, error) {
	if rateMilli <= 0 {
		return nil, fmt.Errorf("limit_req_zone %q: rate must be positive", name)
	}
	if st, ok := b.req[name]; ok {
		return nil, fmt.Errorf("limit_req_zone %q is already bound to key %q", name, st.key)
	}
	b.r.mu.Lock()
	old := b.r.req[name]
	b.r.mu.Unlock()
	var st *reqState
	switch {
	case old != nil && old.size == sizeBytes && old.key != key:
		return nil, fmt.Errorf("limit_req %q uses the %q key while previously it used the %q key", name, key, old.key)
	case old != nil && old.size == sizeBytes:
		st = old
	default:
		st = newReqState(sizeBytes, key, b.r.clock)
	}
	b.req[name] = st
	return &ReqZone{name: name, rate: rateMilli, st: st}, nil
}

// ConnZone returns the zone of a limit_conn_zone directive, with the same
// reuse rules as ReqZone: counts carry over when name, size and key match.
func (b *Build) ConnZone(name, key string, sizeBytes int64) (*ConnZone, error) {
	if st, ok := b.conn[name]; ok {
		return nil, fmt.Errorf("limit_conn_zone %q is already bound to key %q", name, st.key)
	}
	b.r.mu.Lock()
	old := b.r.conn[name]
	b.r.mu.Unlock()
	var st *connState
	switch {
	case old != nil && old.size == sizeBytes && old.key != key:
		return nil, fmt.Errorf("limit_conn_zone %q uses the %q key while previously it used the %q key", name, key, old.key)
	case old != nil && old.size == sizeBytes:
		st = old
	default:
		st = newConnState(sizeBytes, key)
	}
	b.conn[name] = st
	return &ConnZone{name: name, st: st, build: b}, nil
}

// Commit makes this Build's zones the ones the next load reuses; zones the
// new configuration no longer declares are forgotten (tunnels of the old
// snapshot still release into them).
func (b *Build) Commit() {
	for _, st := range b.conn {
		st.shared.Store(b.connShared[st])
	}
	b.r.mu.Lock()
	b.r.req, b.r.conn, b.r.shared = b.req, b.conn, b.shared
	b.r.mu.Unlock()
}
