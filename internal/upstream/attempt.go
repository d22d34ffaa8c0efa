package upstream

import (
	"hash/crc32"
	"strconv"
)

// maxSpins is nginx's bound on hash and random draws that land on unusable
// peers before falling back to round robin.
const maxSpins = 20

// Attempt is the selector state of one request across its retries: which
// peers it has tried (nginx's tried bitmap), whether it moved on to the
// backups, and the hash or draw position. It is not safe for concurrent
// use; one request owns it. The zero value is unusable: get one from
// Upstream.NewAttempt, or embed one in a per-request struct and Reset it.
// An Attempt must not be copied after Reset.
type Attempt struct {
	u        *Upstream
	key      []byte // Hash: the evaluated key, referenced, not copied
	addr     [16]byte
	addrLen  int
	small    [2]uint64 // tried bits for the first 128 peers of a list
	more     []uint64
	inBackup bool
	tries    int    // picks left, nginx's pc->tries: non-down peers
	spins    int    // hash/random draws so far, nginx's hp->tries
	hash     uint32 // ip_hash state, hash accumulator or ring position
	rehash   int
}

// NewAttempt starts the selection for one request. hashKey is used only by
// IPHash (the client address, 4 or 16 bytes; an IPv4-mapped IPv6 address
// counts as IPv4, as nginx sees it on an IPv4 listener) and Hash (the
// evaluated key; an empty key falls back to round robin as in nginx). The
// Attempt keeps a reference to hashKey: do not modify it while in use.
func (u *Upstream) NewAttempt(hashKey []byte) *Attempt {
	a := new(Attempt)
	a.Reset(u, hashKey)
	return a
}

// Reset prepares a for a new request on u, as NewAttempt does, without
// allocating when the upstream has at most 128 peers in each list.
func (a *Attempt) Reset(u *Upstream, hashKey []byte) {
	defer u.lockDynamic()()
	more := a.more[:0]
	*a = Attempt{u: u, tries: u.primary.tries + u.backup.tries}
	if n := max(len(u.primary.peers), len(u.backup.peers)); n > 128 {
		words := (n - 128 + 63) / 64
		if cap(more) >= words {
			a.more = more[:words]
			clear(a.more)
		} else {
			a.more = make([]uint64, words)
		}
	}
	switch u.method {
	case IPHash:
		a.hash = 89
		switch {
		case len(hashKey) == 4:
			a.addrLen = copy(a.addr[:], hashKey[:3])
		case len(hashKey) == 16 && isV4Mapped(hashKey):
			a.addrLen = copy(a.addr[:], hashKey[12:15])
		case len(hashKey) == 16:
			a.addrLen = copy(a.addr[:], hashKey)
		default:
			a.addrLen = 3 // nginx's pseudo address for non-IP clients: zeros
		}
	case Hash:
		a.key = hashKey
		if u.consistent && len(hashKey) > 0 && len(u.points) > 0 {
			a.hash = uint32(findPoint(u.points, crc32.ChecksumIEEE(hashKey)))
		}
	}
}

func isV4Mapped(b []byte) bool {
	for _, c := range b[:10] {
		if c != 0 {
			return false
		}
	}
	return b[10] == 0xff && b[11] == 0xff
}

// Tried returns how many peers this attempt has been given so far.
func (a *Attempt) Tried() int {
	defer a.u.lockDynamic()()
	return a.u.primary.tries + a.u.backup.tries - a.tries
}

// Next picks a peer not yet tried by this attempt and takes a connection
// slot on it; the caller must call Done on it. It returns ErrNoLivePeers
// when no peer can be picked, including when the attempt has used up its
// tries (one per peer not marked down; a lone peer gets one, as in nginx).
func (a *Attempt) Next() (*Peer, error) {
	u := a.u
	if u == nil || a.tries <= 0 {
		return nil, ErrNoLivePeers
	}
	now := &instant{clock: u.now}
	u.mu.Lock()
	var p *Peer
	// acquire fails only when another generation of this upstream filled
	// the peer concurrently; usable then skips it on the next round.
	for range 4 {
		if p = a.pick(now); p == nil || p.acquire() {
			break
		}
		p = nil
	}
	if p != nil {
		p.picked(now)
	}
	u.mu.Unlock()
	if p == nil {
		return nil, ErrNoLivePeers
	}
	if p.single {
		a.tries = 0
	} else {
		a.tries--
		a.setTried(p.idx)
	}
	return p, nil
}

func (a *Attempt) pick(now *instant) *Peer {
	switch a.u.method {
	case LeastConn, LeastTime:
		return a.leastConn(now)
	case IPHash:
		return a.ipHash(now)
	case Hash:
		if a.u.consistent {
			return a.consistentHash(now)
		}
		return a.plainHash(now)
	case Random:
		return a.random(now)
	}
	return a.roundRobin(now)
}

func (a *Attempt) list() *peerList {
	if a.inBackup {
		return &a.u.backup
	}
	return &a.u.primary
}

// toBackup moves the attempt to the backup peers, as nginx does once no
// primary can be picked; it reports false when there is nowhere to go.
func (a *Attempt) toBackup() bool {
	if a.inBackup || len(a.u.backup.peers) == 0 {
		return false
	}
	a.inBackup = true
	a.small = [2]uint64{}
	clear(a.more)
	return true
}

func (a *Attempt) isTried(i int) bool {
	if i < 128 {
		return a.small[i/64]&(1<<(i%64)) != 0
	}
	i -= 128
	if i/64 >= len(a.more) { // a Dynamic upstream grew after Reset
		return false
	}
	return a.more[i/64]&(1<<(i%64)) != 0
}

func (a *Attempt) setTried(i int) {
	if i < 128 {
		a.small[i/64] |= 1 << (i % 64)
		return
	}
	i -= 128
	for i/64 >= len(a.more) { // a Dynamic upstream grew after Reset
		a.more = append(a.more, 0)
	}
	a.more[i/64] |= 1 << (i % 64)
}

// roundRobin is nginx's smooth weighted round robin with the backup
// fallback; the hash and random methods fall back to it too.
func (a *Attempt) roundRobin(now *instant) *Peer {
	for {
		l := a.list()
		if l.single {
			// A lone peer ignores max_fails (nginx); down, unhealthy and
			// max_conns still apply.
			if p := l.peers[0]; p.usable(now) {
				return p
			}
		} else if p := a.smooth(l, now, -1); p != nil {
			return p
		}
		if !a.toBackup() {
			return nil
		}
	}
}

// smooth runs one round of smooth weighted round robin over the untried,
// usable peers of l (restricted to one consistent-hash server when server
// is not negative).
func (a *Attempt) smooth(l *peerList, now *instant, server int32) *Peer {
	var best *Peer
	var total int64
	for i, p := range l.peers {
		if (server >= 0 && p.server != server) || a.isTried(i) || !p.usable(now) {
			continue
		}
		total += p.smoothStep(now)
		if best == nil || p.current > best.current {
			best = p
		}
	}
	if best != nil {
		best.current -= total
	}
	return best
}

// smoothStep is one peer's part of a smooth weighted round-robin round:
// its current weight grows by its effective weight (under slow_start),
// which itself recovers towards the configured weight. It returns what
// was added, for the round's total that the chosen peer gives back.
func (p *Peer) smoothStep(now *instant) int64 {
	w := p.slowWeight(p.effective, now)
	p.current += w
	if p.effective < p.weight {
		p.effective += weightScale
	}
	return w
}

// lcWeight is the weight least_conn and random two divide by.
func (p *Peer) lcWeight(now *instant) int64 { return p.slowWeight(p.weight, now) }

func (a *Attempt) leastConn(now *instant) *Peer {
	for {
		l := a.list()
		if l.single {
			return a.roundRobin(now)
		}
		var best *Peer
		var bestConns, bestW int64
		many := false
		for i, p := range l.peers {
			if a.isTried(i) || !p.usable(now) {
				continue
			}
			c, w := a.load(p), p.lcWeight(now)
			if best == nil || c*bestW < bestConns*w {
				best, bestConns, bestW, many = p, c, w, false
			} else if c*bestW == bestConns*w {
				many = true
			}
		}
		if best != nil {
			if many {
				// Ties share by smooth round robin, starting from the first.
				var total int64
				first := best
				for i := first.idx; i < len(l.peers); i++ {
					p := l.peers[i]
					if a.isTried(i) || !p.usable(now) {
						continue
					}
					if a.load(p)*bestW != bestConns*p.lcWeight(now) {
						continue
					}
					total += p.smoothStep(now)
					if p.current > best.current {
						best = p
					}
				}
				best.current -= total
			}
			return best
		}
		if !a.toBackup() {
			return nil
		}
	}
}

// weightedIndex maps w in [0, total) onto a peer by configured weights.
func weightedIndex(l *peerList, w int64) int {
	i := 0
	for w >= int64(l.peers[i].cfg.Weight) {
		w -= int64(l.peers[i].cfg.Weight)
		i++
	}
	return i
}

func (a *Attempt) ipHash(now *instant) *Peer {
	l := &a.u.primary
	if a.spins > maxSpins || len(l.peers) < 2 {
		return a.roundRobin(now)
	}
	h := a.hash
	for {
		for _, b := range a.addr[:a.addrLen] {
			h = (h*113 + uint32(b)) % 6271
		}
		i := weightedIndex(l, int64(h)%l.total)
		if p := l.peers[i]; !a.isTried(i) && p.usable(now) {
			a.hash = h
			return p
		}
		if a.spins++; a.spins > maxSpins {
			return a.roundRobin(now)
		}
	}
}

func (a *Attempt) plainHash(now *instant) *Peer {
	l := &a.u.primary
	if a.spins > maxSpins || len(l.peers) < 2 || len(a.key) == 0 {
		return a.roundRobin(now)
	}
	for {
		// Cache::Memcached compatible, as nginx:
		// ((crc32([REHASH] KEY) >> 16) & 0x7fff) + PREV_HASH.
		var c uint32
		if a.rehash > 0 {
			c = crc32.Update(c, crc32.IEEETable, decimal(a.rehash))
		}
		c = crc32.Update(c, crc32.IEEETable, a.key)
		a.hash += (c >> 16) & 0x7fff
		a.rehash++
		i := weightedIndex(l, int64(a.hash%uint32(l.total)))
		if p := l.peers[i]; !a.isTried(i) && p.usable(now) {
			return p
		}
		if a.spins++; a.spins > maxSpins {
			return a.roundRobin(now)
		}
	}
}

func (a *Attempt) consistentHash(now *instant) *Peer {
	l := &a.u.primary
	pts := a.u.points
	if a.spins > maxSpins || len(l.peers) < 2 || len(a.key) == 0 || len(pts) == 0 {
		return a.roundRobin(now)
	}
	for {
		server := pts[a.hash%uint32(len(pts))].server
		if p := a.smooth(l, now, server); p != nil {
			return p
		}
		a.hash++
		if a.spins++; a.spins > maxSpins {
			return a.roundRobin(now)
		}
	}
}

// decimals holds the rehash prefixes a hash attempt normally needs, so
// that the crc input does not escape to the heap on every draw.
var decimals = func() (d [64][]byte) {
	for i := range d {
		d[i] = strconv.AppendInt(nil, int64(i), 10)
	}
	return d
}()

func decimal(n int) []byte {
	if n < len(decimals) {
		return decimals[n]
	}
	return strconv.AppendInt(nil, int64(n), 10)
}

// peek draws a peer index with probability proportional to its weight.
func (a *Attempt) peek(l *peerList) int {
	x := int64(a.u.randn(uint64(l.total)))
	i, j := 0, len(l.ranges)
	for j-i > 1 {
		k := (i + j) / 2
		if x < l.ranges[k] {
			j = k
		} else {
			i = k
		}
	}
	return i
}

func (a *Attempt) random(now *instant) *Peer {
	l := &a.u.primary
	if a.spins > maxSpins || len(l.peers) < 2 {
		return a.roundRobin(now)
	}
	var prev *Peer
	for {
		i := a.peek(l)
		p := l.peers[i]
		if p != prev && !a.isTried(i) && p.usable(now) {
			if !a.u.two {
				return p
			}
			if prev != nil {
				// Keep the one with fewer active connections per weight.
				if p.st.conns.Load()*prev.lcWeight(now) > prev.st.conns.Load()*p.lcWeight(now) {
					p = prev
				}
				return p
			}
			prev = p
		}
		if a.spins++; a.spins > maxSpins {
			return a.roundRobin(now)
		}
	}
}
