package wsdeflate

import (
	"testing"

	"github.com/wsgate/wsgate/internal/wsframe"
)

// FuzzReader feeds a wrapped leg arbitrary bytes, under limits: reading
// must not panic or hang, and what it returns must be frames the relay can
// follow (or the violation it refuses, after which bytes pass unparsed).
func FuzzReader(f *testing.F) {
	f.Add(frame(true, 4, wsframe.OpText, compress(jsonish(3000, 1))), int64(0))
	f.Add(frame(false, 4, wsframe.OpBinary, compress(jsonish(100, 2))), int64(50))
	f.Add(append(frame(false, 4, wsframe.OpText, []byte{0xff, 0x00}), frame(true, 0, wsframe.OpPing, nil)...), int64(0))
	f.Add(frame(true, 4, wsframe.OpText, compress(make([]byte, 1<<20))), int64(1000))
	f.Add([]byte{0xc1, 0x80, 1, 2, 3, 4}, int64(0))
	f.Fuzz(func(t *testing.T, in []byte, limit int64) {
		if limit < 0 || limit > 1<<20 {
			limit = 0
		}
		m := &memConn{}
		m.in.Reset(in)
		c := Wrap(m, nil, Config{Client: true, MaxMessageSize: limit})
		defer c.Close()
		var out []byte
		buf := make([]byte, 1000)
		for range 1 << 16 {
			n, err := c.Read(buf)
			out = append(out, buf[:n]...)
			if err != nil {
				break
			}
			if len(out) > 64<<20 {
				t.Fatal("unbounded output")
			}
		}
		for len(out) > 0 {
			h, n, err := wsframe.ParseFraming(out)
			if err != nil || n == 0 {
				return // a violation refused, or the input's own partial frame
			}
			out = out[min(int64(len(out)), int64(n)+h.Length):]
		}
	})
}
