package cluster

import (
	"fmt"
	"strconv"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Run-time upstream changes: each upstream changed through the api has a
// document (its servers, as the api's caller encodes them) and a version
// in the store. A write names the version it changes and fails when
// another instance changed the upstream first; a successful one adds an
// "upstream" command to the command stream, and every instance also polls
// the versions once a heartbeat, so one that missed the command catches up.
const (
	upsDocsKey = prefix + "ups"    // hash: upstream name -> document
	upsVerKey  = prefix + "upsver" // hash: upstream name -> version
)

// upsCASScript writes a document if the version is still ARGV[2]. KEYS:
// documents, versions, command stream. ARGV: name, expected version,
// document, stream length. Reply: {1, new version} or {0, version,
// document}.
var upsCASScript = redis.NewScript(`
local v = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if v ~= tonumber(ARGV[2]) then
  return {0, v, redis.call('HGET', KEYS[1], ARGV[1]) or ''}
end
v = v + 1
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], v)
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', 'op', 'upstream', 'key', ARGV[1])
return {1, v}
`)

// upstreamWatch is who hears of changes, and the versions it was told of.
type upstreamWatch struct {
	poll  sync.Mutex // one poll at a time
	mu    sync.Mutex // guards fn and known
	fn    func(name string, version int64, doc []byte)
	known map[string]int64
}

// WatchUpstreams installs fn, called (from the store's own goroutines, one
// call at a time) with each upstream document whose version is newer than
// the last one fn was given for that name; fn is first called with every
// document the store holds. nil stops the calls.
func (s *Store) WatchUpstreams(fn func(name string, version int64, doc []byte)) {
	w := &s.ups
	w.mu.Lock()
	w.fn, w.known = fn, map[string]int64{}
	w.mu.Unlock()
	if fn != nil {
		go s.pollUpstreams()
	}
}

// Upstream returns an upstream's document and its version; version 0
// means the store has none.
func (s *Store) Upstream(name string) (int64, []byte, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	var doc *redis.StringCmd
	var ver *redis.StringCmd
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		doc = p.HGet(ctx, upsDocsKey, name)
		ver = p.HGet(ctx, upsVerKey, name)
		return nil
	})
	if err == redis.Nil {
		err = nil
	}
	if err != nil {
		return 0, nil, s.fail(err)
	}
	v, _ := ver.Int64()
	return v, []byte(doc.Val()), nil
}

// SetUpstream replaces an upstream's document if its version in the store
// is still expect (0: the store has none). It reports whether it did and
// the version the store holds now, with that version's document when it
// did not.
func (s *Store) SetUpstream(name string, expect int64, doc []byte) (ok bool, version int64, current []byte, err error) {
	ctx, cancel := s.ctx()
	defer cancel()
	v, err := upsCASScript.Run(ctx, s.c, []string{upsDocsKey, upsVerKey, commandsKey}, name, expect, doc, commandsMax).Slice()
	if err != nil {
		return false, 0, nil, s.fail(err)
	}
	if len(v) < 2 {
		return false, 0, nil, fmt.Errorf("cluster store: short reply to an upstream change")
	}
	okN, _ := v[0].(int64)
	version, _ = v[1].(int64)
	if okN == 1 {
		s.noteUpstream(name, version)
		return true, version, nil, nil
	}
	if len(v) > 2 {
		str, _ := v[2].(string)
		current = []byte(str)
	}
	return false, version, current, nil
}

// noteUpstream records that this instance has applied version itself.
func (s *Store) noteUpstream(name string, version int64) {
	w := &s.ups
	w.mu.Lock()
	if w.known != nil && w.known[name] < version {
		w.known[name] = version
	}
	w.mu.Unlock()
}

// pollUpstreams reads every version and hands the watcher the documents
// it has not seen. It runs on each heartbeat, on each "upstream" command,
// and when the watcher is installed; one poll runs at a time, and the
// watcher is called without the store's locks held.
func (s *Store) pollUpstreams() {
	w := &s.ups
	w.poll.Lock()
	defer w.poll.Unlock()
	w.mu.Lock()
	fn := w.fn
	w.mu.Unlock()
	if fn == nil || !s.Up() {
		return
	}
	ctx, cancel := s.ctx()
	vers, err := s.c.HGetAll(ctx, upsVerKey).Result()
	cancel()
	if err != nil {
		s.fail(err)
		return
	}
	for name, vs := range vers {
		v, _ := strconv.ParseInt(vs, 10, 64)
		if v <= w.seen(name) {
			continue
		}
		ver, doc, err := s.Upstream(name)
		if err != nil || ver <= w.seen(name) {
			continue
		}
		s.noteUpstream(name, ver)
		fn(name, ver, doc)
	}
}

func (w *upstreamWatch) seen(name string) int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.known[name]
}
