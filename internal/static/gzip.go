package static

import (
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/http1"
)

// Precompressed is nginx's gzip_static handler for the file at path (from
// Map): found reports that path+".gz" exists (so gzip_vary applies); a is
// its answer, with Content-Encoding gzip and the type of r.URI, or nil
// when it is a folder or cannot be opened, and the request goes on to
// Serve. Conditional requests apply to the .gz file; ranges do not, and a
// 304 has no Content-Encoding, as nginx.
func Precompressed(r *Request, path, root string) (a *Answer, found bool) {
	gz := path + ".gz"
	if escapesAlias(r.Files, gz, root) {
		return nil, false
	}
	f, err := (&opener{mode: r.Files.DisableSymlinks, from: fromOf(r)}).open(gz)
	if err != nil {
		return nil, false
	}
	st, err := f.Stat()
	switch {
	case err != nil:
		f.Close()
		return fail(500), true
	case st.IsDir():
		f.Close()
		return nil, true
	case !st.Mode().IsRegular():
		f.Close()
		a := fail(500)
		a.logf(errlog.Crit, "\"%s\" is not a regular file", gz)
		return a, true
	}
	whole := *r
	whole.Compressed = func(http1.Header, int64) bool { return true } // no ranges, as nginx
	a = serveFile(&whole, f, st)
	if a.Status == 200 {
		a.Header = append(a.Header, http1.Field{Name: "Content-Encoding", Value: "gzip"})
	}
	return a, true
}

func fromOf(r *Request) string {
	if r.Files.SymlinksFrom == nil {
		return ""
	}
	return r.Files.SymlinksFrom.Eval(r.Vars)
}
