package cache

import (
	"bytes"
	"container/list"
	"crypto/rand"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Params are a proxy_cache_path's settings.
type Params struct {
	Dir              string
	Levels           []int
	MaxKeys          int           // what the keys zone holds; the least recently used key goes first
	Inactive         time.Duration // entries not used for this long are removed
	MaxSize          int64         // 0: unbounded
	MinFree          int64         // 0: no minimum
	ManagerFiles     int
	ManagerSleep     time.Duration
	ManagerThreshold time.Duration
	LoaderFiles      int
	LoaderSleep      time.Duration
	LoaderThreshold  time.Duration
}

// Zone is one on-disk cache with its in-memory index. It is safe for
// concurrent use.
type Zone struct {
	p Params

	mu      sync.Mutex
	index   map[string]*entry // by hash
	lru     *list.List        // of *entry, least recently used at the front
	varies  map[string]string // main key hash -> the Vary of its last stored response
	size    int64             // bytes of the files indexed
	kick    chan struct{}     // wakes the manager early
	stop    chan struct{}
	done    sync.WaitGroup
	refs    int
	regName string
}

// entry is one key (or variant) the zone knows of, with or without a file.
type entry struct {
	hash       string
	main       string // the hash of the key without its variant
	key        string
	size       int64 // of the file; 0 without one
	exists     bool  // a file is on disk
	uses       int
	lastUse    time.Time
	validUntil int64
	elem       *list.Element

	updating bool          // a request is fetching the response to store
	since    time.Time     // when the update began
	wait     chan struct{} // closed when the update ends
	waiters  int           // requests waiting for the update
}

func newZone(p Params) (*Zone, error) {
	if err := os.MkdirAll(p.Dir, 0o700); err != nil {
		return nil, err
	}
	z := &Zone{p: p, index: map[string]*entry{}, lru: list.New(), varies: map[string]string{},
		kick: make(chan struct{}, 1), stop: make(chan struct{})}
	z.done.Add(2)
	go z.loader()
	go z.manager()
	return z, nil
}

// close stops the manager and the loader and waits for them.
func (z *Zone) close() {
	close(z.stop)
	z.done.Wait()
}

// Vary returns the Vary header last stored for the key with hash main, ""
// when none.
func (z *Zone) Vary(main string) string {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.varies[main]
}

// touch finds or adds the entry of hash, counts a use and marks it most
// recently used. z.mu is held.
func (z *Zone) touch(hash, main, key string) *entry {
	e := z.index[hash]
	if e == nil {
		e = &entry{hash: hash, main: main, key: key}
		z.index[hash] = e
		e.elem = z.lru.PushBack(e)
		z.trimKeys()
	} else {
		z.lru.MoveToBack(e.elem)
	}
	e.uses++
	e.lastUse = time.Now()
	return e
}

// trimKeys drops the least recently used keys beyond MaxKeys. z.mu is held.
func (z *Zone) trimKeys() {
	for z.p.MaxKeys > 0 && len(z.index) > z.p.MaxKeys {
		if !z.evictOne() {
			return
		}
	}
}

// evictOne removes the least recently used entry that no request is
// updating; it reports whether it found one. z.mu is held.
func (z *Zone) evictOne() bool {
	for el := z.lru.Front(); el != nil; el = el.Next() {
		e := el.Value.(*entry)
		if !e.updating {
			z.remove(e)
			return true
		}
	}
	return false
}

// remove drops e from the index and its file from the disk. z.mu is held.
func (z *Zone) remove(e *entry) {
	delete(z.index, e.hash)
	z.lru.Remove(e.elem)
	if e.exists {
		z.size -= e.size
		os.Remove(pathOf(z.p.Dir, z.p.Levels, e.hash))
	}
}

// State is what a lookup found.
type State int

const (
	Miss  State = iota // no usable file
	Fresh              // a file within its validity
	Stale              // a file past its validity
)

// Hit is an open cache file.
type Hit struct {
	Meta   *Meta
	Size   int64 // of the body
	f      *os.File
	off    int64
	buf    *[]byte
	prefix []byte // the start of the body, read with the head
}

// Body reads the stored body.
func (h *Hit) Body() io.Reader {
	if int64(len(h.prefix)) == h.Size {
		return bytes.NewReader(h.prefix)
	}
	rest := io.NewSectionReader(h.f, h.off+int64(len(h.prefix)), h.Size-int64(len(h.prefix)))
	if len(h.prefix) == 0 {
		return rest
	}
	return io.MultiReader(bytes.NewReader(h.prefix), rest)
}

// Bytes is the whole body when it was read with the head; ok is false
// for a body to read with Body. The bytes are valid until Close.
func (h *Hit) Bytes() (b []byte, ok bool) {
	return h.prefix, int64(len(h.prefix)) == h.Size
}

// Section returns the body's bytes [start, end), valid until Close.
func (h *Hit) Section(start, end int64) io.Reader {
	if end <= int64(len(h.prefix)) {
		return bytes.NewReader(h.prefix[start:end])
	}
	return io.NewSectionReader(h.f, h.off+start, end-start)
}

// Close closes the file; the body read from it is no longer valid.
func (h *Hit) Close() error {
	err := h.f.Close()
	h.prefix = nil
	bufPool.Put(h.buf)
	return err
}

// Lookup counts a use of the key (hash, of main) and opens its file.
// The returned uses count includes this one. A file of another version,
// one whose key is not key (an MD5 collision), or a broken one, is a miss.
func (z *Zone) Lookup(hash, main, key string) (*Hit, State, int) {
	z.mu.Lock()
	e := z.touch(hash, main, key)
	uses := e.uses
	z.mu.Unlock()
	buf := bufPool.Get().(*[]byte)
	f, m, off, prefix, err := readFile(pathOf(z.p.Dir, z.p.Levels, hash), *buf)
	if err != nil {
		bufPool.Put(buf)
		return nil, Miss, uses
	}
	fi, err := f.Stat()
	if err != nil || m.Key != key || fi.Size() < off+int64(len(prefix)) {
		f.Close()
		bufPool.Put(buf)
		return nil, Miss, uses
	}
	z.mu.Lock()
	if !e.exists && z.index[hash] == e {
		e.exists, e.size = true, fi.Size()
		z.size += e.size
	}
	e.validUntil = m.ValidUntil
	z.mu.Unlock()
	h := &Hit{Meta: m, Size: fi.Size() - off, f: f, off: off, buf: buf, prefix: prefix}
	if m.ValidUntil < time.Now().Unix() {
		return h, Stale, uses
	}
	return h, Fresh, uses
}

// Lease is a hold on a key's lock; the zero Lease holds nothing.
type Lease struct {
	hash string
	ch   chan struct{}
}

// Held reports whether the lease holds the lock.
func (l Lease) Held() bool { return l.ch != nil }

// Lock makes the caller the one request that fetches hash from the
// backend. With wait, a caller that finds another request updating waits
// for it up to timeout; the lock passes to a caller once the holder has
// held it for age. A held lease is given back with Unlock; updating says
// another request was updating (and still may be).
func (z *Zone) Lock(hash string, wait bool, timeout, age time.Duration) (lease Lease, updating bool) {
	deadline := time.Now().Add(timeout)
	for {
		z.mu.Lock()
		e := z.index[hash]
		if e == nil {
			z.mu.Unlock()
			return Lease{}, false
		}
		// After lock_age the lock passes to one more request; the other
		// waiters, woken by their timers too, wait for it in turn.
		if !e.updating || time.Since(e.since) >= age {
			e.updating, e.since, e.wait = true, time.Now(), make(chan struct{})
			z.mu.Unlock()
			return Lease{hash, e.wait}, false
		}
		ch, left := e.wait, min(time.Until(deadline), age-time.Since(e.since))
		if !wait || left <= 0 && time.Until(deadline) <= 0 {
			z.mu.Unlock()
			return Lease{}, true
		}
		e.waiters++
		z.mu.Unlock()
		t := time.NewTimer(left)
		select {
		case <-ch:
		case <-t.C:
		}
		t.Stop()
		z.mu.Lock()
		e.waiters--
		z.mu.Unlock()
		select {
		case <-ch:
			return Lease{}, true
		default:
		}
	}
}

// Updating reports whether a request has been fetching hash for less
// than age.
func (z *Zone) Updating(hash string, age time.Duration) bool {
	z.mu.Lock()
	defer z.mu.Unlock()
	e := z.index[hash]
	return e != nil && e.updating && time.Since(e.since) < age
}

// Unlock gives back a lease Lock gave and wakes the waiters; a lease
// that passed on after lock_age is no longer the lock, and changes
// nothing.
func (z *Zone) Unlock(l Lease) {
	z.mu.Lock()
	defer z.mu.Unlock()
	if e := z.index[l.hash]; e != nil && e.updating && e.wait == l.ch {
		e.updating = false
		close(e.wait)
	}
}

// Writer stores one response: the body goes to a temporary file in the
// cache folder, which Commit renames into place.
type Writer struct {
	z    *Zone
	hash string
	main string
	key  string
	vary string
	f    *os.File
	n    int64
	err  error
}

// Create starts storing a response under hash.
func (z *Zone) Create(hash, main string, m *Meta) (*Writer, error) {
	var rnd [8]byte
	rand.Read(rnd[:])
	f, err := os.OpenFile(filepath.Join(z.p.Dir, "tmp."+hex.EncodeToString(rnd[:])), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	w := &Writer{z: z, hash: hash, main: main, key: m.Key, vary: m.Vary, f: f}
	head := encodeHead(m)
	if _, err := f.Write(head); err != nil {
		w.Abort()
		return nil, err
	}
	w.n = int64(len(head))
	return w, nil
}

// Write appends body bytes; a failure is kept for Commit.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return len(p), nil
	}
	n, err := w.f.Write(p)
	w.n += int64(n)
	w.err = err
	return len(p), nil // the client's copy goes on whatever the disk does
}

// Err is the first write failure, nil when none.
func (w *Writer) Err() error { return w.err }

// Abort drops what was written.
func (w *Writer) Abort() {
	w.f.Close()
	os.Remove(w.f.Name())
}

// Commit puts the file in place of the key's previous one and indexes it.
func (w *Writer) Commit(validUntil int64) error {
	err := w.err
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	z := w.z
	dst := pathOf(z.p.Dir, z.p.Levels, w.hash)
	if err == nil {
		if err = os.MkdirAll(filepath.Dir(dst), 0o700); err == nil {
			err = os.Rename(w.f.Name(), dst)
		}
	}
	if err != nil {
		os.Remove(w.f.Name())
		return err
	}
	z.mu.Lock()
	e := z.index[w.hash]
	if e == nil {
		e = z.touch(w.hash, w.main, w.key)
	}
	if e.exists {
		z.size -= e.size
	}
	e.exists, e.size, e.validUntil = true, w.n, validUntil
	z.size += w.n
	if w.vary != "" {
		z.varies[w.main] = w.vary
	} else {
		delete(z.varies, w.main)
	}
	over := z.p.MaxSize > 0 && z.size > z.p.MaxSize
	z.mu.Unlock()
	if over {
		z.wake()
	}
	return nil
}

// Revalidated extends the validity of hash's file after the backend
// confirmed it (a 304 to a conditional request).
func (z *Zone) Revalidated(hash string, validUntil int64) error {
	f, err := os.OpenFile(pathOf(z.p.Dir, z.p.Levels, hash), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	var b [8]byte
	for i := range 8 {
		b[i] = byte(uint64(validUntil) >> (56 - 8*i))
	}
	_, err = f.WriteAt(b[:], offValid)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	z.mu.Lock()
	if e := z.index[hash]; e != nil {
		e.validUntil = validUntil
	}
	z.mu.Unlock()
	return err
}

// Purge removes the key with hash main and all its variants; it reports
// whether a file was removed.
func (z *Zone) Purge(main string) bool {
	z.mu.Lock()
	defer z.mu.Unlock()
	found := false
	for _, e := range z.index {
		if e.main == main || e.hash == main {
			found = found || e.exists
			z.remove(e)
		}
	}
	delete(z.varies, main)
	// A file the loader has not indexed yet.
	if err := os.Remove(pathOf(z.p.Dir, z.p.Levels, main)); err == nil {
		found = true
	}
	return found
}

// PurgePrefix removes every entry whose key starts with prefix (nginx
// Plus's wildcard purge); it reports whether a file was removed. Files
// the loader has not indexed yet stay until it does.
func (z *Zone) PurgePrefix(prefix string) bool {
	z.mu.Lock()
	defer z.mu.Unlock()
	found := false
	for _, e := range z.index {
		if e.key != "" && strings.HasPrefix(e.key, prefix) {
			found = found || e.exists
			delete(z.varies, e.main)
			z.remove(e)
		}
	}
	return found
}

// Size is the bytes of the files the zone indexes.
func (z *Zone) Size() int64 {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.size
}

func (z *Zone) wake() {
	select {
	case z.kick <- struct{}{}:
	default:
	}
}
