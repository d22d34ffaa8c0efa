package accesslog

import (
	"path/filepath"
	"testing"

	"github.com/wsgate/wsgate/internal/vars"
)

// BenchmarkCombined renders a combined line for a fresh request each time:
// the Ctx is reset, so nothing is cached from the previous iteration.
func BenchmarkCombined(b *testing.B) {
	tab := vars.NewTable()
	f := Combined(tab)
	proto := *newCtx(tab, nil)
	var c vars.Ctx
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		c.Reset(tab)
		refill(&c, &proto)
		buf = f.Append(buf[:0], &c)
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkCombinedCached is the same line when the request already
// evaluated $remote_addr and $request (for proxy_set_header, say).
func BenchmarkCombinedCached(b *testing.B) {
	tab := vars.NewTable()
	f := Combined(tab)
	c := newCtx(tab, nil)
	f.Append(nil, c)
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = f.Append(buf[:0], c)
	}
}

// BenchmarkLogWrite is the full path of a closing tunnel: render, queue,
// with the writer goroutine writing to a real file.
func BenchmarkLogWrite(b *testing.B) {
	tab := vars.NewTable()
	w, err := OpenWriter(filepath.Join(b.TempDir(), "access.log"), 64<<10, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	l := &Log{W: w, F: Combined(tab)}
	proto := *newCtx(tab, nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var c vars.Ctx
		for pb.Next() {
			c.Reset(tab)
			refill(&c, &proto)
			l.Write(&c)
		}
	})
}

// refill copies the request fields of p into c without touching c's
// variable caches.
func refill(c, p *vars.Ctx) {
	c.Method, c.RequestURI, c.Path, c.Proto, c.Args = p.Method, p.RequestURI, p.Path, p.Proto, p.Args
	c.Header, c.Host, c.Scheme, c.ServerName = p.Header, p.Host, p.Scheme, p.ServerName
	c.Remote, c.Local, c.Start, c.End = p.Remote, p.Local, p.Start, p.End
	c.Status, c.BytesSent, c.BodyBytesSent, c.ReqLength = p.Status, p.BytesSent, p.BodyBytesSent, p.ReqLength
}
