package server

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/spool"
	"github.com/wsgate/wsgate/internal/static"
)

// store is a proxy_store copy of a response body on its way: a temporary
// file under proxy_temp_path, renamed to its place once the body is read
// whole. A write failure stops the copy, not the response.
type store struct {
	f      *os.File
	n      int64
	failed error
}

func (s *store) Write(p []byte) (int, error) {
	if s.failed == nil {
		var n int
		n, s.failed = s.f.Write(p)
		s.n += int64(n)
	}
	return len(p), nil
}

// startStore opens the copy of a 200 answer when proxy_store is on and
// the answer is buffered, as nginx; nil otherwise.
func (x *exchange) startStore(resp *http1.Response) *store {
	b := &x.lc.ProxyBuf
	if !b.Stores() || resp.Status != 200 || !x.buffering() {
		return nil
	}
	f, err := spool.CreateTemp(x.rt.cfg.Abs(b.TempPath), b.TempLevels, b.StoreAccess)
	if err != nil {
		x.logRequest(errlog.Crit, "", "open() proxy store temporary file failed (%v)", err)
		return nil
	}
	return &store{f: f}
}

// finishStore moves the copy to its place when the body was read whole
// (and, with a Content-Length, as long), as nginx; else removes it.
func (x *exchange) finishStore(s *store, resp *http1.Response, complete bool) {
	if s == nil {
		return
	}
	tmp := s.f.Name()
	err := s.f.Close()
	ok := complete && s.failed == nil && err == nil && (resp.ContentLength < 0 || resp.ContentLength == s.n)
	if !ok {
		os.Remove(tmp)
		return
	}
	b := &x.lc.ProxyBuf
	if t, perr := time.Parse(http1TimeFormat, resp.Header.Get("Last-Modified")); perr == nil {
		os.Chtimes(tmp, t, t) // the file has the answer's Last-Modified, as nginx
	}
	to := x.storePath()
	if err := renameCreating(tmp, to, b.StoreAccess); err != nil {
		x.logRequest(errlog.Crit, "", "rename() \"%s\" to \"%s\" failed (%v)", tmp, to, err)
		os.Remove(tmp)
	}
}

// storePath is where proxy_store puts the answer: the URI's file under
// root or alias with `on`, else the name given (from the prefix when
// relative).
func (x *exchange) storePath() string {
	b := &x.lc.ProxyBuf
	if b.StoreOn {
		path, _ := static.Map(&x.lc.Files, x.vc, x.vc.Path)
		return path
	}
	return x.rt.cfg.Abs(b.Store.Eval(x.vc))
}

// renameCreating renames from to to, making the missing directories with
// the access of the files plus search rights where they may be read. To
// another file system, the file is copied next to to and renamed there,
// as nginx copies.
func renameCreating(from, to string, access fs.FileMode) error {
	err := os.Rename(from, to)
	if errors.Is(err, fs.ErrNotExist) {
		dirMode := access | (access&0o444)>>2
		if err = os.MkdirAll(filepath.Dir(to), dirMode); err == nil {
			err = os.Rename(from, to)
		}
	}
	if errors.Is(err, syscall.EXDEV) {
		err = copyInto(from, to, access)
	}
	return err
}

// copyInto copies from to a new file beside to, which then replaces to.
func copyInto(from, to string, access fs.FileMode) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := spool.CreateTemp(filepath.Dir(to), nil, access)
	if err != nil {
		return err
	}
	st, _ := src.Stat()
	_, err = io.Copy(dst, src)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err == nil && st != nil {
		os.Chtimes(dst.Name(), st.ModTime(), st.ModTime())
		err = os.Rename(dst.Name(), to)
	}
	if err != nil {
		os.Remove(dst.Name())
		return err
	}
	return os.Remove(from)
}
