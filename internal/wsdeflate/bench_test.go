package wsdeflate

import (
	"bytes"
	stdflate "compress/flate"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"

	"github.com/wsgate/wsgate/internal/wsframe"
)

// What offload costs wsgate per message, against what it saves a backend
// that would otherwise compress itself, for JSON messages of typical sizes.
//
//	go test -run - -bench . -benchmem ./internal/wsdeflate/

var benchSizes = []int{100, 1 << 10, 8 << 10, 64 << 10}

// memConn is an in-memory leg for measuring CPU: reads serve the bytes
// queued, then report a timeout (as a quiet socket does under a read
// deadline); writes are counted and dropped.
type memConn struct {
	net.Conn
	in  bytes.Reader
	out int64
}

func (m *memConn) Read(b []byte) (int, error) {
	n, err := m.in.Read(b)
	if err == io.EOF {
		return 0, os.ErrDeadlineExceeded
	}
	return n, err
}

func (m *memConn) Write(b []byte) (int, error) { m.out += int64(len(b)); return len(b), nil }
func (m *memConn) Close() error                { return nil }

// drain reads everything c can produce from its queued input.
func drain(c *Conn, buf []byte) int {
	n := 0
	for {
		k, err := c.Read(buf)
		n += k
		if err != nil {
			return n
		}
	}
}

// BenchmarkProxyOffload is wsgate's work per message and direction with
// `websocket_compression on`: inflating a client's message (in) and
// deflating a backend's (out), framing and masking included.
func BenchmarkProxyOffload(b *testing.B) {
	for _, n := range benchSizes {
		msg := jsonish(n, 1)
		z := frame(true, 4, wsframe.OpText, compress(msg))
		plain := wsframe.AppendFrame(nil, wsframe.OpText, msg, false, [4]byte{})
		buf := make([]byte, 32<<10)
		b.Run(fmt.Sprintf("in/%d", n), func(b *testing.B) {
			m := &memConn{}
			c := Wrap(m, nil, Config{Client: true})
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				m.in.Reset(z)
				drain(c, buf)
			}
		})
		for _, level := range []int{0, 6} {
			b.Run(fmt.Sprintf("out-level%d/%d", level, n), func(b *testing.B) {
				m := &memConn{}
				c := Wrap(m, nil, Config{Client: true, Level: level})
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					c.Write(plain)
				}
				b.ReportMetric(float64(m.out)/float64(b.N), "wire-B/msg")
			})
		}
	}
}

// BenchmarkBackendSelf is what a backend spends per message and direction
// when it does permessage-deflate itself as common servers do (Go's
// compress/flate at BestSpeed, writers and readers pooled, no context
// takeover): the work offload takes off it.
func BenchmarkBackendSelf(b *testing.B) {
	var writers, readers sync.Pool
	for _, n := range benchSizes {
		msg := jsonish(n, 1)
		z := compress(msg)
		b.Run(fmt.Sprintf("in/%d", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			out := make([]byte, n)
			src := new(bytes.Reader)
			for b.Loop() {
				src.Reset(append(z, syncTail...))
				r, _ := readers.Get().(io.ReadCloser)
				if r == nil {
					r = stdflate.NewReader(src)
				} else {
					r.(stdflate.Resetter).Reset(src, nil)
				}
				io.ReadFull(r, out)
				readers.Put(r)
			}
		})
		b.Run(fmt.Sprintf("out/%d", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			var dst bytes.Buffer
			for b.Loop() {
				dst.Reset()
				w, _ := writers.Get().(*stdflate.Writer)
				if w == nil {
					w, _ = stdflate.NewWriter(&dst, stdflate.BestSpeed)
				} else {
					w.Reset(&dst)
				}
				w.Write(msg)
				w.Flush()
				writers.Put(w)
			}
		})
	}
}

// BenchmarkTunnelMemory reports the heap an offloaded leg holds: idle
// (between messages) and busy (inside a compressed message whose rest has
// not come yet), per tunnel, over 1000 legs; the figures do not depend on
// b.N, so -benchtime=1x will do. The memConn itself is counted (about 64
// bytes).
func BenchmarkTunnelMemory(b *testing.B) {
	const legs = 1000
	msg := jsonish(64<<10, 1)
	z := compress(msg)
	whole := frame(true, 4, wsframe.OpText, z)
	half := frame(false, 4, wsframe.OpText, z[:len(z)/2])
	buf := make([]byte, 32<<10)
	measure := func(input []byte) float64 {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		cs := make([]*Conn, legs)
		for i := range cs {
			m := &memConn{}
			m.in.Reset(input)
			cs[i] = Wrap(m, nil, Config{Client: true})
			drain(cs[i], buf)
			cs[i].Write(wsframe.AppendFrame(nil, wsframe.OpText, msg[:1000], false, [4]byte{}))
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(cs)
		per := float64(after.HeapAlloc-before.HeapAlloc) / legs
		for _, c := range cs {
			c.Close()
		}
		return per
	}
	idle, busy := measure(whole), measure(half)
	for b.Loop() {
	}
	b.ReportMetric(idle, "idle-B/tunnel")
	b.ReportMetric(busy, "busy-B/tunnel")
}
