package static

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/http1"
)

// entry is one listed name.
type entry struct {
	name  string
	dir   bool
	file  bool // a regular file
	mtime time.Time
	size  int64
}

// autoindex lists the directory at path as nginx's autoindex module, in
// the location's autoindex_format. Names starting with '.' are left out;
// directories come first, then files, each in byte order.
func autoindex(r *Request, path string) *Answer {
	dir := path
	if len(dir) > 1 {
		dir = strings.TrimSuffix(dir, "/")
	}
	entries, a := readDir(dir)
	if a != nil {
		return a
	}
	// A listing has no validators: only "*" and the preconditions apply.
	if status := notModified(r, r.Files, meta{mtime: -1}); status != 0 {
		return &Answer{Status: status, Length: -1}
	}
	slices.SortFunc(entries, func(x, y entry) int {
		if x.dir != y.dir {
			if x.dir {
				return -1
			}
			return 1
		}
		return strings.Compare(x.name, y.name)
	})
	var b bytes.Buffer
	ctype := "text/html"
	switch r.Files.AutoindexFormat {
	case "json", "jsonp":
		cb, ok := jsonpCallback(r)
		if !ok {
			a := fail(400)
			a.logf(errlog.Info, "client sent invalid callback name: \"%s\"", cb)
			return a
		}
		ctype = "application/json"
		if cb != "" {
			ctype = "application/javascript"
			b.WriteString("/* callback */\r\n" + cb + "(")
		}
		listJSON(&b, entries)
		if cb != "" {
			b.WriteString(");")
		}
	case "xml":
		ctype = "text/xml; charset=utf-8"
		listXML(&b, entries)
	default:
		listHTML(&b, r.URI, entries, r.Files.AutoindexExactSize, r.Files.AutoindexLocaltime)
	}
	return &Answer{Status: 200, Header: http1.Header{{Name: "Content-Type", Value: ctype}}, Length: -1, Body: bytesBody{b.Bytes()}}
}

// readDir reads the entries of dir, following symlinks (a dangling one is
// listed as itself), as nginx does.
func readDir(dir string) ([]entry, *Answer) {
	des, err := os.ReadDir(dir)
	if err != nil {
		var en syscall.Errno
		errors.As(err, &en)
		status, _ := statusOf(en)
		if en == syscall.ELOOP || en == syscall.EMLINK {
			status = 500
		}
		a := fail(status)
		level := errlog.Error
		if status == 500 {
			level = errlog.Crit
		}
		a.logf(level, "opendir() \"%s\" failed %s", dir, ErrnoText(err))
		return nil, a
	}
	out := make([]entry, 0, len(des))
	for _, de := range des {
		if strings.HasPrefix(de.Name(), ".") {
			continue
		}
		p := dir + "/" + de.Name()
		st, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			st, err = os.Lstat(p)
		}
		if err != nil {
			if errors.Is(err, fs.ErrPermission) {
				continue
			}
			a := fail(500)
			a.logf(errlog.Crit, "stat() \"%s\" failed %s", p, ErrnoText(err))
			return nil, a
		}
		out = append(out, entry{name: de.Name(), dir: st.IsDir(), file: st.Mode().IsRegular(), mtime: st.ModTime(), size: st.Size()})
	}
	return out, nil
}

// jsonpCallback returns the callback argument: letters, digits, '_' and
// '.' only, as nginx allows.
func jsonpCallback(r *Request) (string, bool) {
	if r.Files.AutoindexFormat != "jsonp" {
		return "", true
	}
	cb := ""
	for args := r.Args; args != ""; {
		var kv string
		kv, args, _ = strings.Cut(args, "&")
		if k, v, _ := strings.Cut(kv, "="); strings.EqualFold(k, "callback") {
			cb = v
			break
		}
	}
	for i := 0; i < len(cb); i++ {
		c := cb[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.') {
			return cb, false
		}
	}
	return cb, true
}

const nameLen = 50 // nginx's NGX_HTTP_AUTOINDEX_NAME_LEN

func listHTML(b *bytes.Buffer, uri string, es []entry, exact, localtime bool) {
	u := escapeHTML(uri)
	b.WriteString("<html>\r\n<head><title>Index of " + u + "</title></head>\r\n<body>\r\n<h1>Index of " + u + "</h1><hr><pre><a href=\"../\">../</a>\r\n")
	for _, e := range es {
		b.WriteString("<a href=\"" + escape(e.name, componentEscape))
		if e.dir {
			b.WriteByte('/')
		}
		b.WriteString("\">")
		n := len(e.name)
		shown := e.name
		if n > nameLen {
			shown = shown[:nameLen-3]
		}
		b.WriteString(escapeHTML(shown))
		if n > nameLen {
			b.WriteString("..&gt;</a>")
		} else {
			if e.dir && n < nameLen {
				b.WriteByte('/')
				n++
			}
			b.WriteString("</a>")
			b.WriteString(strings.Repeat(" ", nameLen-n))
		}
		t := e.mtime.UTC()
		if localtime {
			t = e.mtime.Local()
		}
		b.WriteString(" " + t.Format("02-Jan-2006 15:04") + " ")
		b.WriteString(sizeColumn(e, exact))
		b.WriteString("\r\n")
	}
	b.WriteString("</pre><hr></body>\r\n</html>\r\n")
}

// sizeColumn is the size as autoindex_exact_size asks: bytes in 19
// columns, or a rounded K, M or G figure in 7.
func sizeColumn(e entry, exact bool) string {
	pad := func(s string, w int) string { return strings.Repeat(" ", max(0, w-len(s))) + s }
	if exact {
		if e.dir {
			return pad("-", 19)
		}
		return pad(itoa(e.size), 19)
	}
	if e.dir {
		return pad("-", 7)
	}
	n := e.size
	const k, m, g = 1024, 1024 * 1024, 1024 * 1024 * 1024
	var scale byte
	switch {
	case n > g-1:
		n, scale = n/g+boolInt(n%g > g/2-1), 'G'
	case n > m-1:
		n, scale = n/m+boolInt(n%m > m/2-1), 'M'
	case n > 9999:
		n, scale = n/k+boolInt(n%k > 511), 'K'
	}
	if scale == 0 {
		return pad(itoa(n), 7)
	}
	return pad(itoa(n), 6) + string(scale)
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func kind(e entry) string {
	switch {
	case e.dir:
		return "directory"
	case e.file:
		return "file"
	}
	return "other"
}

func listJSON(b *bytes.Buffer, es []entry) {
	b.WriteString("[\r\n")
	for i, e := range es {
		b.WriteString("{ \"name\":\"" + escapeJSON(e.name) + "\", \"type\":\"" + kind(e) + "\", \"mtime\":\"" + e.mtime.UTC().Format(HTTPTime) + "\"")
		if e.file {
			b.WriteString(", \"size\":" + itoa(e.size))
		}
		b.WriteString(" }")
		if i < len(es)-1 {
			b.WriteByte(',')
		}
		b.WriteString("\r\n")
	}
	b.WriteString("]")
}

func listXML(b *bytes.Buffer, es []entry) {
	b.WriteString("<?xml version=\"1.0\"?>\r\n<list>\r\n")
	for _, e := range es {
		k := kind(e)
		b.WriteString("<" + k + " mtime=\"" + e.mtime.UTC().Format("2006-01-02T15:04:05Z") + "\"")
		if e.file {
			b.WriteString(" size=\"" + itoa(e.size) + "\"")
		}
		b.WriteString(">" + escapeHTML(e.name) + "</" + k + ">\r\n")
	}
	b.WriteString("</list>\r\n")
}

// escapeJSON escapes '"', '\' and control bytes, as nginx's
// ngx_escape_json.
func escapeJSON(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20:
			switch c {
			case '\n':
				b.WriteString("\\n")
			case '\r':
				b.WriteString("\\r")
			case '\t':
				b.WriteString("\\t")
			case '\b':
				b.WriteString("\\b")
			case '\f':
				b.WriteString("\\f")
			default:
				b.WriteString("\\u00" + strconv.FormatInt(int64(c)>>4, 16) + strconv.FormatInt(int64(c)&15, 16))
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// bytesBody is a body held in memory.
type bytesBody struct{ b []byte }

func (b bytesBody) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(b.b)
	return int64(n), err
}

func (bytesBody) Close() error { return nil }
