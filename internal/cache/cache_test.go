package cache

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/http1"
)

func testParams(dir string) Params {
	return Params{Dir: dir, Levels: []int{1, 2}, MaxKeys: 1000, Inactive: time.Hour,
		ManagerFiles: 100, ManagerSleep: time.Millisecond, ManagerThreshold: time.Second,
		LoaderFiles: 100, LoaderSleep: time.Millisecond, LoaderThreshold: time.Second}
}

func acquire(t *testing.T, p Params) *Zone {
	t.Helper()
	z, err := Acquire(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(z.Release)
	return z
}

// store writes one entry and commits it.
func store(t *testing.T, z *Zone, key, body string, until int64) string {
	t.Helper()
	h := Hash(key, "")
	w, err := z.Create(h, h, &Meta{Key: key, Status: 200, Reason: "OK", ValidUntil: until,
		Header: http1.Header{{Name: "Content-Type", Value: "text/plain"}}, ETag: `"e"`})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, body)
	if err := w.Commit(until); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHashAndLayout(t *testing.T) {
	// nginx's own example: levels=1:2 puts this key's file under c/29.
	h := "b7f54b2df7773722d382f4809d65029c"
	if got := pathOf("/data", []int{1, 2}, h); got != "/data/c/29/"+h {
		t.Errorf("pathOf = %q", got)
	}
	if Hash("k", "") == Hash("k", "accept:x\n") {
		t.Error("a variant shares its key's file")
	}
}

func TestRoundTripAndRevalidate(t *testing.T) {
	z := acquire(t, testParams(t.TempDir()))
	now := time.Now().Unix()
	h := store(t, z, "http://a/x", "hello", now+60)
	hit, st, _ := z.Lookup(h, h, "http://a/x")
	if st != Fresh {
		t.Fatalf("state %v, want Fresh", st)
	}
	body, _ := io.ReadAll(hit.Body())
	hit.Close()
	if string(body) != "hello" || hit.Meta.Status != 200 || hit.Meta.Header.Get("Content-Type") != "text/plain" || hit.Meta.ETag != `"e"` {
		t.Errorf("read back %q %+v", body, hit.Meta)
	}
	// Another key with the same file name (as an MD5 collision) is a miss.
	if hit, st, _ := z.Lookup(h, h, "http://a/other"); st != Miss || hit != nil {
		t.Errorf("a file of another key was served")
	}
	if err := z.Revalidated(h, now-5); err != nil {
		t.Fatal(err)
	}
	if hit, st, _ := z.Lookup(h, h, "http://a/x"); st != Stale {
		t.Errorf("after moving validity to the past: %v", st)
	} else {
		hit.Close()
	}
}

func TestOtherVersionIgnoredAndRemoved(t *testing.T) {
	dir := t.TempDir()
	key := "http://a/v"
	h := Hash(key, "")
	// A well-formed file in every respect but its version.
	b := encodeHead(&Meta{Key: key, Status: 200, ValidUntil: time.Now().Unix() + 60})
	binary.BigEndian.PutUint32(b[4:], Version+1)
	path := pathOf(dir, []int{1, 2}, h)
	os.MkdirAll(filepath.Dir(path), 0o700)
	os.WriteFile(path, append(b, "body"...), 0o600)
	junk := pathOf(dir, []int{1, 2}, Hash("junk", ""))
	os.MkdirAll(filepath.Dir(junk), 0o700)
	os.WriteFile(junk, []byte("not a cache file"), 0o600)
	foreign := filepath.Join(dir, "README")
	os.WriteFile(foreign, []byte("keep me"), 0o600)

	z := acquire(t, testParams(dir))
	if hit, st, _ := z.Lookup(h, h, key); st != Miss || hit != nil {
		t.Fatal("a file of another version was read")
	}
	deadline := time.Now().Add(10 * time.Second)
	for exists(path) || exists(junk) {
		if time.Now().After(deadline) {
			t.Fatal("the loader left files of another format")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !exists(foreign) {
		t.Error("the loader removed a file that is not a cache file name")
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func TestLoaderIndexesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	z, _ := Acquire(testParams(dir))
	store(t, z, "k1", "one", time.Now().Unix()+60)
	store(t, z, "k2", "two", time.Now().Unix()+60)
	size := z.Size()
	z.Release()

	z = acquire(t, testParams(dir))
	deadline := time.Now().Add(10 * time.Second)
	for z.Size() != size {
		if time.Now().After(deadline) {
			t.Fatalf("loader indexed %d bytes, want %d", z.Size(), size)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestMaxSizeEvictsLeastRecentlyUsed(t *testing.T) {
	p := testParams(t.TempDir())
	p.MaxSize = 3 * 1100
	z := acquire(t, p)
	body := string(bytes.Repeat([]byte("x"), 1000))
	var hashes []string
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		hashes = append(hashes, store(t, z, k, body, time.Now().Unix()+60))
		if k == "b" {
			if hit, _, _ := z.Lookup(hashes[0], hashes[0], "a"); hit != nil {
				hit.Close() // "a" is used again: "b" is now the oldest
			}
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for z.Size() > p.MaxSize {
		if time.Now().After(deadline) {
			t.Fatalf("size %d stays above %d", z.Size(), p.MaxSize)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if exists(pathOf(p.Dir, p.Levels, hashes[1])) {
		t.Error("the least recently used entry was kept")
	}
	if !exists(pathOf(p.Dir, p.Levels, hashes[4])) {
		t.Error("the newest entry was removed")
	}
}

func TestReacquireKeepsLevels(t *testing.T) {
	p := testParams(t.TempDir())
	acquire(t, p)
	q := p
	q.Levels = []int{2}
	if z, err := Acquire(q); err == nil {
		z.Release()
		t.Error("the folder of an open zone was taken with other levels")
	}
	q = p
	q.MaxSize = 123
	z := acquire(t, q)
	if z.p.MaxSize != 123 {
		t.Error("a new max_size did not apply")
	}
}

// TestReleaseLeavesNothing: the last Release stops the loader and the
// manager, and closed hits hold no descriptors.
func TestReleaseLeavesNothing(t *testing.T) {
	goroutines, fds := runtime.NumGoroutine(), openFDs(t)
	z, err := Acquire(testParams(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	h := store(t, z, "k", "body", time.Now().Unix()+60)
	for range 10 {
		if hit, st, _ := z.Lookup(h, h, "k"); st == Fresh {
			io.Copy(io.Discard, hit.Body())
			hit.Close()
		}
	}
	z.Release()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > goroutines || openFDs(t) > fds {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines %d (were %d), descriptors %d (were %d)", runtime.NumGoroutine(), goroutines, openFDs(t), fds)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func openFDs(t *testing.T) int {
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

func TestKeysZoneBound(t *testing.T) {
	p := testParams(t.TempDir())
	p.MaxKeys = 3
	z := acquire(t, p)
	var hashes []string
	for _, k := range []string{"a", "b", "c", "d"} {
		hashes = append(hashes, store(t, z, k, "x", time.Now().Unix()+60))
	}
	z.mu.Lock()
	n := len(z.index)
	z.mu.Unlock()
	if n != 3 || exists(pathOf(p.Dir, p.Levels, hashes[0])) || !exists(pathOf(p.Dir, p.Levels, hashes[3])) {
		t.Errorf("a full keys zone kept %d keys; the oldest file exists: %v", n, exists(pathOf(p.Dir, p.Levels, hashes[0])))
	}
}

func TestLockOneFetcher(t *testing.T) {
	z := acquire(t, testParams(t.TempDir()))
	h := Hash("k", "")
	z.Lookup(h, h, "k")
	lease, _ := z.Lock(h, true, time.Second, time.Minute)
	if !lease.Held() {
		t.Fatal("the first request did not get the lock")
	}
	var wg sync.WaitGroup
	results := make(chan bool, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, updating := z.Lock(h, true, 10*time.Second, time.Minute)
			results <- !l.Held() && updating
		}()
	}
	for !waiting(z, h, 4) {
		runtime.Gosched()
	}
	z.Unlock(lease)
	wg.Wait()
	close(results)
	for ok := range results {
		if !ok {
			t.Error("a waiter took the lock instead of waiting for the holder")
		}
	}
	// A holder older than the lock age hands the lock on.
	old, _ := z.Lock(h, false, 0, time.Minute)
	next, _ := z.Lock(h, false, 0, 0)
	if !next.Held() {
		t.Fatal("the lock did not pass on after lock_age")
	}
	z.Unlock(old) // the first holder ends late: the lock stays the second's
	if !z.Updating(h, time.Minute) {
		t.Error("a lease that passed on released its successor's lock")
	}
	z.Unlock(next)
	if z.Updating(h, time.Minute) {
		t.Error("the holder's Unlock did not release the lock")
	}
}

// waiting reports whether n requests wait for h's update.
func waiting(z *Zone, h string, n int) bool {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.index[h].waiters == n
}

func TestValidity(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	r := Rules{Valid: func(status int) time.Duration {
		if status == 200 {
			return time.Minute
		}
		return 0
	}}
	hdr := func(kv ...string) http1.Header {
		var h http1.Header
		for i := 0; i < len(kv); i += 2 {
			h = append(h, http1.Field{Name: kv[i], Value: kv[i+1]})
		}
		return h
	}
	cases := []struct {
		name   string
		status int
		h      http1.Header
		rules  Rules
		until  int64
		ok     bool
	}{
		{"valid", 200, nil, r, now.Unix() + 60, true},
		{"no valid for 404", 404, nil, r, 0, false},
		{"max-age", 404, hdr("Cache-Control", "max-age=10"), r, now.Unix() + 10, true},
		{"s-maxage first", 200, hdr("Cache-Control", "max-age=10, s-maxage=20"), r, now.Unix() + 20, true},
		{"max-age=0", 200, hdr("Cache-Control", "max-age=0"), r, 0, false},
		{"junk max-age", 200, hdr("Cache-Control", "max-age=1x"), r, 0, false},
		{"no-store", 200, hdr("Cache-Control", "public, no-store"), r, 0, false},
		{"private", 200, hdr("Cache-Control", "private"), r, 0, false},
		{"Cache-Control ignored", 200, hdr("Cache-Control", "no-store"), Rules{Valid: r.Valid, IgnoreCacheControl: true}, now.Unix() + 60, true},
		{"Set-Cookie", 200, hdr("Set-Cookie", "a=b"), r, 0, false},
		{"Set-Cookie ignored", 200, hdr("Set-Cookie", "a=b"), Rules{Valid: r.Valid, IgnoreSetCookie: true}, now.Unix() + 60, true},
		{"Vary *", 200, hdr("Vary", "*"), r, 0, false},
		{"Vary too long", 200, hdr("Vary", string(bytes.Repeat([]byte("a"), 129))), r, 0, false},
		{"Expires future", 404, hdr("Expires", now.Add(time.Hour).UTC().Format(http1TimeFormat)), r, now.Unix() + 3600, true},
		{"Expires past", 200, hdr("Expires", now.Add(-time.Hour).UTC().Format(http1TimeFormat)), r, 0, false},
		{"Expires junk", 200, hdr("Expires", "0"), r, 0, false},
		{"X-Accel-Expires first", 200, hdr("Cache-Control", "no-cache", "X-Accel-Expires", "30"), r, now.Unix() + 30, true},
		{"X-Accel-Expires 0", 200, hdr("X-Accel-Expires", "0"), r, 0, false},
		{"X-Accel-Expires absolute", 200, hdr("X-Accel-Expires", "@1700000100"), r, 1_700_000_100, true},
		{"X-Accel-Expires absolute past", 200, hdr("X-Accel-Expires", "@1600000000"), r, 1_600_000_000, true},
		{"X-Accel-Expires @0", 200, hdr("X-Accel-Expires", "@0"), r, 0, false},
		{"X-Accel-Expires ignored", 200, hdr("X-Accel-Expires", "0"), Rules{Valid: r.Valid, IgnoreXAccelExpires: true}, now.Unix() + 60, true},
		{"X-Accel-Expires junk", 200, hdr("X-Accel-Expires", "soon"), r, now.Unix() + 60, true},
	}
	for _, c := range cases {
		until, ok := Validity(c.status, c.h, now, c.rules)
		if until != c.until || ok != c.ok {
			t.Errorf("%s: (%d, %v), want (%d, %v)", c.name, until, ok, c.until, c.ok)
		}
	}
}

const http1TimeFormat = "Mon, 02 Jan 2006 15:04:05 GMT"

func TestStaleExtensions(t *testing.T) {
	h := http1.Header{{Name: "Cache-Control", Value: "max-age=5, Stale-While-Revalidate=30, stale-if-error=60"}}
	if swr, sie := StaleExtensions(h, Rules{}); swr != 30 || sie != 60 {
		t.Errorf("got %d %d", swr, sie)
	}
	if swr, sie := StaleExtensions(h, Rules{IgnoreCacheControl: true}); swr != 0 || sie != 0 {
		t.Errorf("ignored Cache-Control gave %d %d", swr, sie)
	}
	m := &Meta{ValidUntil: 100, StaleWhileRevalidate: 30, StaleIfError: 60}
	if !m.StaleUpdating(130) || m.StaleUpdating(131) || !m.StaleError(160) || m.StaleError(161) {
		t.Error("windows past ValidUntil are wrong")
	}
	m2, _, _, err := readHead(bytes.NewReader(encodeHead(m)), make([]byte, 1024))
	if err != nil || m2.StaleWhileRevalidate != 30 || m2.StaleIfError != 60 {
		t.Errorf("not stored: %v %+v", err, m2)
	}
}

func TestVariant(t *testing.T) {
	get := func(name string) string {
		return map[string]string{"accept-encoding": "gzip", "accept-language": "en"}[name]
	}
	a := Variant("Accept-Encoding, Accept-Language", get)
	b := Variant("accept-encoding,accept-language", get)
	if a != b || a == "" {
		t.Errorf("variants %q and %q", a, b)
	}
}

func TestBrokenHeadRefused(t *testing.T) {
	good := encodeHead(&Meta{Key: "k", Status: 200, Header: http1.Header{{Name: "A", Value: "b"}}})
	for _, size := range []int{fixedHead + 2, 1024} { // the metadata read apart, and with the head
		for i := 0; i < len(good); i++ {
			if _, _, _, err := readHead(bytes.NewReader(good[:i]), make([]byte, size)); err == nil {
				t.Fatalf("a head cut at %d bytes was read (buffer %d)", i, size)
			}
		}
		m, off, prefix, err := readHead(bytes.NewReader(append(good, "body"...)), make([]byte, size))
		if err != nil || m.Key != "k" || m.Header.Get("A") != "b" || off != int64(len(good)) {
			t.Fatalf("whole head (buffer %d): %v %+v", size, err, m)
		}
		if size > len(good) && string(prefix) != "body" {
			t.Errorf("body read with the head: %q", prefix)
		}
	}
}
