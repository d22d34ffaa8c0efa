package cluster

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Session keys: one hash per session key (session id -> Session as JSON),
// the ban list (session key -> end of the ban, ms), and the command
// stream every instance reads.
const (
	sessPrefix  = prefix + "sess:"
	bansKey     = prefix + "bans"
	commandsKey = prefix + "commands"
	// commandsMax bounds the stream; an instance away for longer than
	// this many commands misses the oldest, but reloads the bans.
	commandsMax = 10000
	commandWait = time.Second // XREAD BLOCK
	// A key's session hash expires sessionTTL after the last renewal; each
	// instance renews the hashes of its live sessions every
	// sessionRefresh, so that entries left by instances that died (which
	// listings already skip) do not stay in the store for ever.
	sessionTTL     = time.Hour
	sessionRefresh = 10 * time.Minute
)

// Session is one live WebSocket registered under its session key.
type Session struct {
	ID       string    `json:"id"`
	Instance string    `json:"instance"`
	Client   string    `json:"client"`
	URI      string    `json:"uri"`
	Started  time.Time `json:"started"`
}

// Closer ends a local WebSocket with a close code and reason; it may
// block until the close handshake ends.
type Closer func(code uint16, reason string)

type localSession struct {
	key   string
	s     Session
	close Closer // guarded by sessions.mu: Attach sets it
}

// sessions is this instance's part of the cluster's sessions: the live
// ones it holds, and the bans it knows.
type sessions struct {
	mu    sync.Mutex
	byID  map[string]*localSession
	byKey map[string]map[string]*localSession
	bans  map[string]time.Time
	seq   uint64
	last  string // the last command applied ("" before the first read)
}

func newSessions() *sessions {
	return &sessions{byID: map[string]*localSession{}, byKey: map[string]map[string]*localSession{}, bans: map[string]time.Time{}}
}

// Banned reports whether key is on the ban list this instance knows (it
// follows the store's commands, and reloads the list when the store
// returns); it asks the store nothing.
func (s *Store) Banned(key string) bool {
	ss := s.sess
	ss.mu.Lock()
	defer ss.mu.Unlock()
	until, ok := ss.bans[key]
	if ok && time.Now().After(until) {
		delete(ss.bans, key)
		return false
	}
	return ok
}

// Register records a live WebSocket under key, in this instance and (with
// the next pipeline of writes, bounded by the timeout) in the store; close is how a
// DELETE from any instance ends it. The returned func unregisters it.
func (s *Store) Register(key, client, uri string, close Closer) (unregister func()) {
	r := s.Reserve(key, client, uri)
	r.Send()
	return r.Attach(close)
}

// Reservation is a session registered before its WebSocket is open: its
// store write can ride in the handshake's one round trip for limits
// (ChargeReqAcquireConns), and the handshake then attaches the socket, or
// cancels the reservation when it fails.
type Reservation struct {
	s      *Store
	ls     *localSession
	code   uint16 // a close asked before Attach (0: none)
	reason string
}

// Reserve records a session under key locally and returns its
// reservation; nothing is written to the store yet (see Send and
// ChargeReqAcquireConns).
func (s *Store) Reserve(key, client, uri string) *Reservation {
	ss := s.sess
	ss.mu.Lock()
	ss.seq++
	ls := &localSession{key: key, s: Session{
		ID: s.id + "-" + strconv.FormatUint(ss.seq, 10), Instance: s.id, Client: client, URI: uri, Started: time.Now().UTC(),
	}}
	r := &Reservation{s: s, ls: ls}
	ls.close = r.early
	ss.byID[ls.s.ID] = ls
	if ss.byKey[key] == nil {
		ss.byKey[key] = map[string]*localSession{}
	}
	ss.byKey[key][ls.s.ID] = ls
	ss.mu.Unlock()
	return r
}

// Key is the session key the reservation is under.
func (r *Reservation) Key() string { return r.ls.key }

// early records a close that arrives before Attach; ss.mu is not held.
func (r *Reservation) early(code uint16, reason string) {
	ss := r.s.sess
	ss.mu.Lock()
	r.code, r.reason = code, reason
	ss.mu.Unlock()
}

// write adds the reservation's store write to a pipeline.
func (r *Reservation) write(ctx context.Context, p redis.Pipeliner) {
	b, _ := json.Marshal(r.ls.s)
	p.HSet(ctx, sessPrefix+r.ls.key, r.ls.s.ID, b)
	p.PExpire(ctx, sessPrefix+r.ls.key, sessionTTL)
}

// Send writes the reservation to the store with the next pipeline of
// writes, for a handshake whose limits did not take it along.
func (r *Reservation) Send() { r.s.later(r.write) }

// Attach gives the reserved session the way to close its WebSocket and
// returns what unregisters it. A close asked for in between is carried
// out now.
func (r *Reservation) Attach(close Closer) (unregister func()) {
	ss := r.s.sess
	ss.mu.Lock()
	r.ls.close = close
	code, reason := r.code, r.reason
	ss.mu.Unlock()
	if code != 0 {
		go close(code, reason)
	}
	return func() { r.s.unregister(r.ls) }
}

// Cancel unregisters a reservation whose WebSocket never opened.
func (r *Reservation) Cancel() { r.s.unregister(r.ls) }

func (s *Store) unregister(ls *localSession) {
	ss := s.sess
	ss.mu.Lock()
	delete(ss.byID, ls.s.ID)
	if m := ss.byKey[ls.key]; m != nil {
		delete(m, ls.s.ID)
		if len(m) == 0 {
			delete(ss.byKey, ls.key)
		}
	}
	ss.mu.Unlock()
	s.later(func(ctx context.Context, p redis.Pipeliner) { p.HDel(ctx, sessPrefix+ls.key, ls.s.ID) })
}

// Sessions lists key's sessions on the live instances.
func (s *Store) Sessions(key string) ([]Session, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	var hall *redis.MapStringStringCmd
	var zlive *redis.StringSliceCmd
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		hall = p.HGetAll(ctx, sessPrefix+key)
		// Live instances renew their entries and drop expired ones every
		// second, on the store's clock: this reads no clock of its own.
		zlive = p.ZRange(ctx, instancesKey, 0, -1)
		return nil
	})
	if err != nil {
		return nil, s.fail(err)
	}
	all, live := hall.Val(), zlive.Val()
	alive := map[string]bool{}
	for _, id := range live {
		alive[id] = true
	}
	out := []Session{}
	var dead []string
	for id, v := range all {
		var ses Session
		if json.Unmarshal([]byte(v), &ses) != nil || !alive[ses.Instance] {
			dead = append(dead, id)
			continue
		}
		out = append(out, ses)
	}
	if len(dead) > 0 {
		s.c.HDel(ctx, sessPrefix+key, dead...)
	}
	return out, nil
}

// CloseSessions tells every instance to close key's sessions with code
// and reason and, when ban is positive, to refuse the key's handshakes
// for that long. It returns how many sessions were live.
func (s *Store) CloseSessions(key string, code uint16, reason string, ban time.Duration) (int, error) {
	list, err := s.Sessions(key)
	if err != nil {
		return 0, err
	}
	ctx, cancel := s.ctx()
	defer cancel()
	var until int64
	if ban > 0 {
		until = time.Now().Add(ban).UnixMilli()
	}
	_, err = s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		if until > 0 {
			p.HSet(ctx, bansKey, key, until)
		}
		p.XAdd(ctx, &redis.XAddArgs{Stream: commandsKey, MaxLen: commandsMax, Approx: true, Values: []any{
			"op", "close", "key", key, "code", int(code), "reason", reason, "ban_until", until,
		}})
		return nil
	})
	if err != nil {
		return 0, s.fail(err)
	}
	return len(list), nil
}

// commandLoop applies the store's commands in order, from where it left
// off: an instance that was cut off applies what it missed once the store
// answers again.
func (s *Store) commandLoop() {
	defer s.loops.Done()
	for {
		select {
		case <-s.stop:
			return
		default:
		}
		if err := s.readCommands(); err != nil {
			select {
			case <-s.stop:
				return
			case <-time.After(HeartbeatInterval):
			}
		}
	}
}

func (s *Store) readCommands() error {
	ss := s.sess
	ss.mu.Lock()
	last := ss.last
	ss.mu.Unlock()
	if last == "" {
		return s.startCommands()
	}
	ctx, cancel := context.WithTimeout(context.Background(), commandWait+s.timeout)
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	res, err := s.c.XRead(ctx, &redis.XReadArgs{Streams: []string{commandsKey, last}, Count: 100, Block: commandWait}).Result()
	if err == redis.Nil {
		return nil
	}
	if err != nil {
		return err
	}
	for _, st := range res {
		for _, m := range st.Messages {
			s.apply(m)
		}
	}
	return nil
}

// startCommands finds where the stream ends now, and loads the bans: what
// was said before this instance listened is in the ban list or moot.
func (s *Store) startCommands() error {
	ctx, cancel := s.ctx()
	defer cancel()
	msgs, err := s.c.XRevRangeN(ctx, commandsKey, "+", "-", 1).Result()
	if err != nil {
		return err
	}
	last := "0-0"
	if len(msgs) > 0 {
		last = msgs[0].ID
	}
	if err := s.loadBans(ctx); err != nil {
		return err
	}
	s.sess.mu.Lock()
	s.sess.last = last
	s.sess.mu.Unlock()
	return nil
}

func (s *Store) loadBans(ctx context.Context) error {
	bans, err := s.c.HGetAll(ctx, bansKey).Result()
	if err != nil {
		return err
	}
	now := time.Now()
	var expired []string
	ss := s.sess
	ss.mu.Lock()
	for k, v := range bans {
		ms, _ := strconv.ParseInt(v, 10, 64)
		if until := time.UnixMilli(ms); until.After(now) {
			ss.bans[k] = until
		} else {
			expired = append(expired, k)
		}
	}
	ss.mu.Unlock()
	if len(expired) > 0 {
		s.c.HDel(ctx, bansKey, expired...)
	}
	return nil
}

// apply carries out one command: bans first, so that a closed client
// cannot come straight back, then the closes.
func (s *Store) apply(m redis.XMessage) {
	str := func(k string) string { v, _ := m.Values[k].(string); return v }
	key := str("key")
	code, _ := strconv.Atoi(str("code"))
	until, _ := strconv.ParseInt(str("ban_until"), 10, 64)
	ss := s.sess
	ss.mu.Lock()
	ss.last = m.ID
	if until > 0 && time.UnixMilli(until).After(time.Now()) {
		ss.bans[key] = time.UnixMilli(until)
	}
	if str("op") == "upstream" {
		ss.mu.Unlock()
		s.pollUpstreams()
		return
	}
	var targets []Closer
	if str("op") == "close" {
		for _, ls := range ss.byKey[key] {
			targets = append(targets, ls.close)
		}
	}
	ss.mu.Unlock()
	for _, close := range targets {
		go close(uint16(code), str("reason"))
	}
}

// sessionFields are the local sessions, for writing back on recovery.
func (s *Store) sessionFields() map[string][]any {
	out := map[string][]any{}
	ss := s.sess
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, ls := range ss.byID {
		b, _ := json.Marshal(ls.s)
		out[ls.key] = append(out[ls.key], ls.s.ID, string(b))
	}
	return out
}

// refreshSessions renews the expiry of the session hashes of this
// instance's live sessions.
func (s *Store) refreshSessions() {
	ss := s.sess
	ss.mu.Lock()
	keys := make([]string, 0, len(ss.byKey))
	for k := range ss.byKey {
		keys = append(keys, k)
	}
	ss.mu.Unlock()
	for len(keys) > 0 {
		n := min(len(keys), 1000)
		batch := keys[:n]
		keys = keys[n:]
		s.later(func(ctx context.Context, p redis.Pipeliner) {
			for _, k := range batch {
				p.PExpire(ctx, sessPrefix+k, sessionTTL)
			}
		})
	}
}
