package cache

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// managerPeriod is how often the manager looks for inactive entries when
// nothing wakes it sooner.
const managerPeriod = time.Second

// manager removes inactive entries and keeps the cache within max_size
// and min_free, least recently used first, in steps of manager_files
// files or manager_threshold, with manager_sleep between steps.
func (z *Zone) manager() {
	defer z.done.Done()
	t := time.NewTicker(managerPeriod)
	defer t.Stop()
	for {
		select {
		case <-z.stop:
			return
		case <-t.C:
		case <-z.kick:
		}
		for more, sleep := z.manageStep(); more; more, sleep = z.manageStep() {
			select {
			case <-z.stop:
				return
			case <-time.After(sleep):
			}
		}
	}
}

// manageStep removes up to manager_files entries; it reports whether
// more work is left and how long to pause first.
func (z *Zone) manageStep() (bool, time.Duration) {
	start := time.Now()
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.evictSome(start), z.p.ManagerSleep
}

// evictSome is one manager step. z.mu is held.
func (z *Zone) evictSome(start time.Time) bool {
	for n := 0; n < z.p.ManagerFiles && time.Since(start) < z.p.ManagerThreshold; n++ {
		el := z.lru.Front()
		if el == nil {
			return false
		}
		e := el.Value.(*entry)
		switch {
		case z.p.Inactive > 0 && time.Since(e.lastUse) > z.p.Inactive && !e.updating:
			z.remove(e)
		case z.p.MaxSize > 0 && z.size > z.p.MaxSize, z.lowOnDisk():
			if !z.evictOne() {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// lowOnDisk reports whether the file system has less than min_free free.
func (z *Zone) lowOnDisk() bool {
	if z.p.MinFree <= 0 {
		return false
	}
	var st syscall.Statfs_t
	if syscall.Statfs(z.p.Dir, &st) != nil {
		return false
	}
	return int64(st.Bavail)*int64(st.Bsize) < z.p.MinFree
}

// loader indexes the files found at start, loader_files at a time with
// loader_sleep between batches, and removes files of another version,
// broken ones and temporary files left behind.
func (z *Zone) loader() {
	defer z.done.Done()
	z.mu.Lock()
	p := z.p
	z.mu.Unlock()
	n, start := 0, time.Now()
	filepath.WalkDir(p.Dir, func(path string, d fs.DirEntry, err error) error {
		select {
		case <-z.stop:
			return filepath.SkipAll
		default:
		}
		if err != nil || d.IsDir() {
			return nil
		}
		z.load(p, path, d.Name())
		if n++; n >= p.LoaderFiles || time.Since(start) >= p.LoaderThreshold {
			select {
			case <-z.stop:
				return filepath.SkipAll
			case <-time.After(p.LoaderSleep):
			}
			n, start = 0, time.Now()
		}
		return nil
	})
}

// load indexes the file at path, or removes it when it is not one this
// build reads.
func (z *Zone) load(p Params, path, name string) {
	if strings.HasPrefix(name, "tmp.") {
		if fi, err := os.Stat(path); err == nil && time.Since(fi.ModTime()) > time.Minute {
			os.Remove(path) // left by a stop in the middle of a store
		}
		return
	}
	if !isHash(name) || path != pathOf(p.Dir, p.Levels, name) {
		return // not ours: left alone
	}
	buf := bufPool.Get().(*[]byte)
	defer bufPool.Put(buf)
	f, m, _, _, err := readFile(path, *buf)
	if err != nil {
		if err == ErrVersion || err == errFormat {
			os.Remove(path)
		}
		return
	}
	fi, err := f.Stat()
	f.Close()
	if err != nil {
		return
	}
	main := Hash(m.Key, "")
	z.mu.Lock()
	defer z.mu.Unlock()
	if e := z.index[name]; e != nil && e.exists {
		return // a request found it first
	}
	e := z.index[name]
	if e == nil {
		e = &entry{hash: name, main: main, key: m.Key, lastUse: time.Now()}
		z.index[name] = e
		e.elem = z.lru.PushFront(e)
	}
	e.exists, e.size, e.validUntil = true, fi.Size(), m.ValidUntil
	z.size += e.size
	if m.Vary != "" {
		z.varies[main] = m.Vary
	}
	z.trimKeys()
	if z.p.MaxSize > 0 && z.size > z.p.MaxSize {
		z.wakeLocked()
	}
}

func (z *Zone) wakeLocked() {
	select {
	case z.kick <- struct{}{}:
	default:
	}
}

func isHash(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// The registry keeps one Zone per folder for the whole process, so that a
// reload that keeps a proxy_cache_path keeps its index and its manager.
var registry = struct {
	sync.Mutex
	zones map[string]*Zone
}{zones: map[string]*Zone{}}

// Acquire returns the zone of p.Dir, opening it (and starting its loader
// and manager) on first use; a zone already open takes p's bounds, and
// refuses other levels (its files are laid out by the first). Each
// Acquire is paired with a Release.
func Acquire(p Params) (*Zone, error) {
	registry.Lock()
	defer registry.Unlock()
	if z := registry.zones[p.Dir]; z != nil {
		if !slices.Equal(z.p.Levels, p.Levels) {
			return nil, fmt.Errorf("cache path \"%s\" is in use with other levels; a restart changes them", p.Dir)
		}
		z.refs++
		z.mu.Lock()
		z.retune(p) // a reload's new bounds apply from now on
		z.mu.Unlock()
		return z, nil
	}
	z, err := newZone(p)
	if err != nil {
		return nil, err
	}
	z.refs, z.regName = 1, p.Dir
	registry.zones[p.Dir] = z
	return z, nil
}

// Release gives back one Acquire; the last one stops the zone's loader
// and manager. The files stay.
func (z *Zone) Release() {
	registry.Lock()
	z.refs--
	last := z.refs == 0
	if last {
		delete(registry.zones, z.regName)
	}
	registry.Unlock()
	if last {
		z.close()
	}
}

// retune takes p's bounds and pacing; the folder and its levels stay
// those the zone was opened with. z.mu is held.
func (z *Zone) retune(p Params) {
	z.p.MaxKeys, z.p.Inactive, z.p.MaxSize, z.p.MinFree = p.MaxKeys, p.Inactive, p.MaxSize, p.MinFree
	z.p.ManagerFiles, z.p.ManagerSleep, z.p.ManagerThreshold = p.ManagerFiles, p.ManagerSleep, p.ManagerThreshold
}
