package accesslog

import (
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"
)

// Files is the set of open access-log files, keyed by path, kept across
// reloads so that a path named before and after a reload keeps its open
// file and its queued lines. A reload is a transaction: Open every path the
// new configuration names, then Commit once the new configuration serves
// (closing the paths it dropped) or Abort if it failed to load.
//
// The zero value is an empty set ready to use; it is safe for concurrent
// use. OnError, if set before the first Open, receives write errors of the
// files opened through it (at most one a minute per file).
type Files struct {
	OnError func(error)

	mu   sync.Mutex
	live map[string]*Writer
	next map[string]*entry // the reload in progress; nil when none
}

type entry struct {
	w     *Writer
	buf   int
	flush time.Duration
	fresh bool // opened by this reload
}

// Open returns the Writer for path within the reload in progress (starting
// one if none is): the live Writer if the current configuration has the
// path open, else a newly opened one. Buffer parameters take effect at
// Commit; two buffered access_log lines for one path must agree on them,
// as in nginx.
func (f *Files) Open(path string, buf int, flush time.Duration) (*Writer, error) {
	if err := checkParams(path, buf, flush); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.next == nil {
		f.next = map[string]*entry{}
	}
	if e, ok := f.next[path]; ok {
		if buf > 0 {
			if e.buf > 0 && (e.buf != buf || e.flush != flush) {
				return nil, fmt.Errorf("access_log %q already defined with conflicting parameters", path)
			}
			e.buf, e.flush = buf, flush
		}
		return e.w, nil
	}
	if w, ok := f.live[path]; ok {
		f.next[path] = &entry{w: w, buf: buf, flush: flush}
		return w, nil
	}
	w, err := openWriter(path, buf, flush, f.OnError)
	if err != nil {
		return nil, err
	}
	f.next[path] = &entry{w: w, buf: buf, flush: flush, fresh: true}
	return w, nil
}

// Commit makes the reload's files the live set and closes the live files
// it did not name. Call it after the new configuration took over; a
// connection of the old one still writing to a closed file loses nothing
// (see Writer).
func (f *Files) Commit() error {
	f.mu.Lock()
	next := f.next
	f.next = nil
	old := f.live
	f.live = make(map[string]*Writer, len(next))
	for p, e := range next {
		e.w.setParams(e.buf, e.flush)
		f.live[p] = e.w
	}
	f.mu.Unlock()
	var errs []error
	for p, w := range old {
		if _, kept := next[p]; !kept {
			errs = append(errs, w.Close())
		}
	}
	return errors.Join(errs...)
}

// Abort ends the reload in progress, closing the files only it opened.
func (f *Files) Abort() {
	f.mu.Lock()
	next := f.next
	f.next = nil
	f.mu.Unlock()
	for _, e := range next {
		if e.fresh {
			e.w.Close()
		}
	}
}

// ReopenAll reopens every live file (USR1); see Writer.Reopen.
func (f *Files) ReopenAll() error {
	f.mu.Lock()
	ws := maps.Clone(f.live)
	f.mu.Unlock()
	var errs []error
	for _, w := range ws {
		errs = append(errs, w.Reopen())
	}
	return errors.Join(errs...)
}

// CloseAll writes out and closes every file, live or opened by a reload in
// progress, and empties the set.
func (f *Files) CloseAll() error {
	f.mu.Lock()
	ws := make([]*Writer, 0, len(f.live)+len(f.next))
	for _, w := range f.live {
		ws = append(ws, w)
	}
	for _, e := range f.next {
		if e.fresh {
			ws = append(ws, e.w)
		}
	}
	f.live, f.next = nil, nil
	f.mu.Unlock()
	var errs []error
	for _, w := range ws {
		errs = append(errs, w.Close())
	}
	return errors.Join(errs...)
}
