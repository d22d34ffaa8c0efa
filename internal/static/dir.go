package static

import (
	"errors"
	"os"
	"strings"
	"syscall"

	"github.com/wsgate/wsgate/internal/errlog"
)

// Dir answers r for a URI that ends in '/', whose directory is at path
// (from Map, ending in '/'). When an index file exists it returns its URI
// (r.URI followed by the name, or an index given as an absolute URI) and
// no answer: the caller serves that URI. Otherwise it lists the directory
// with autoindex, or answers 403 as nginx without autoindex, or 405 for a
// method other than GET, HEAD and POST.
func Dir(r *Request, index []string, path, root string) (string, *Answer) {
	switch r.Method {
	case "GET", "HEAD", "POST":
	default:
		return "", fail(405)
	}
	if escapesAlias(r.Files, path, root) {
		a := fail(403)
		a.logf(errlog.Error, "\"%s\" leaves the alias \"%s\"", path, root)
		return "", a
	}
	if uri, a := findIndex(r, index, path); uri != "" || a != nil {
		return uri, a
	}
	if r.Files.Autoindex && r.Method != "POST" {
		return "", autoindex(r, path)
	}
	a := fail(403)
	a.logf(errlog.Error, "directory index of \"%s\" is forbidden", path)
	return "", a
}

// findIndex is nginx's index module: the first index file that opens
// wins; a missing directory is 404 and one that cannot be searched 403.
func findIndex(r *Request, index []string, path string) (string, *Answer) {
	o := opener{mode: r.Files.DisableSymlinks}
	if r.Files.SymlinksFrom != nil {
		o.from = r.Files.SymlinksFrom.Eval(r.Vars)
	}
	dirTested := false
	for _, name := range index {
		if strings.HasPrefix(name, "/") {
			return name, nil
		}
		f, err := o.open(path + name)
		if err == nil {
			f.Close()
			return r.URI + name, nil
		}
		en := err.(*openError).err
		switch en {
		case syscall.ENOTDIR, syscall.ENAMETOOLONG, syscall.EACCES:
			return "", indexError(r, path+name, en)
		}
		if !dirTested {
			if a := testDir(r, path); a != nil {
				return "", a
			}
			dirTested = true
		}
		if en == syscall.ENOENT {
			continue
		}
		a := fail(500)
		a.logf(errlog.Crit, "%s \"%s\" failed %s", err.(*openError).op, path+name, ErrnoText(en))
		return "", a
	}
	return "", nil
}

// testDir checks the directory of a missing index file.
func testDir(r *Request, path string) *Answer {
	dir := strings.TrimSuffix(path, "/")
	if dir == "" {
		dir = "/"
	}
	st, err := os.Stat(dir)
	if err != nil {
		var en syscall.Errno
		errors.As(err, &en)
		return indexError(r, dir, en)
	}
	if !st.IsDir() {
		a := fail(500)
		a.logf(errlog.Alert, "\"%s\" is not a directory", dir)
		return a
	}
	return nil
}

func indexError(r *Request, path string, en syscall.Errno) *Answer {
	if en == syscall.EACCES {
		a := fail(403)
		a.logf(errlog.Error, "\"%s\" is forbidden %s", path, ErrnoText(en))
		return a
	}
	a := fail(404)
	if r.Files.LogNotFound {
		a.logf(errlog.Error, "\"%s\" is not found %s", path, ErrnoText(en))
	}
	return a
}
