package accesslog

import (
	"sync"

	"github.com/wsgate/wsgate/internal/vars"
)

// Log is one access_log line of a configuration: where, in which format,
// and under which if= condition. It is immutable once built and safe for
// concurrent use.
type Log struct {
	W  *Writer
	F  *Format
	If *vars.Template // nil: always; else skip when it renders "" or "0"
}

// lineBufs holds render buffers so that a line costs no allocation.
var lineBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// maxPooled keeps a freak line's buffer out of the pool.
const maxPooled = 64 << 10

// Write renders c and queues the line. It may wait only when the file has
// fallen far behind (see Writer).
func (l *Log) Write(c *vars.Ctx) {
	bp := lineBufs.Get().(*[]byte)
	b := (*bp)[:0]
	if l.If != nil {
		// Rendered into the line buffer rather than with Eval, which
		// allocates for a condition with several parts.
		b = l.If.Append(b, c)
		if len(b) == 0 || len(b) == 1 && b[0] == '0' {
			release(bp, b)
			return
		}
		b = b[:0]
	}
	b = l.F.Append(b, c)
	b = append(b, '\n')
	l.W.write(b)
	release(bp, b)
}

// Vars appends the indexes of the variables a line of l reads through
// the variable layer (its condition's and its format's, not the log
// module's own: see Format) to dst.
func (l *Log) Vars(dst []int) []int {
	if l.If != nil {
		dst = append(dst, l.If.Vars()...)
	}
	for i := range l.F.ops {
		if o := &l.F.ops[i]; o.kind == opVar {
			dst = append(dst, o.tpl.Vars()...)
		}
	}
	return dst
}

func release(bp *[]byte, b []byte) {
	if cap(b) > maxPooled {
		return
	}
	*bp = b
	lineBufs.Put(bp)
}
