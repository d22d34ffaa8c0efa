package errlog

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Level is a severity; lower is more verbose. It matches config.Level.
type Level int

// Severities in nginx's order.
const (
	Debug Level = iota
	Info
	Notice
	Warn
	Error
	Crit
	Alert
	Emerg
)

var names = [...]string{"debug", "info", "notice", "warn", "error", "crit", "alert", "emerg"}

func (l Level) String() string {
	if l < 0 || int(l) >= len(names) {
		return "unknown"
	}
	return names[l]
}

// Target is one destination: a path ("stderr" for the standard error) and
// the lowest level it records.
type Target struct {
	Path  string
	Level Level
}

// Logger writes to a fixed set of targets. It is safe for concurrent use;
// the zero value discards everything.
type Logger struct {
	mu    sync.Mutex
	outs  []*output
	min   Level
	pid   string
	clock func() time.Time
	// base, in a logger made by Debugging, is the logger whose targets,
	// lock and files it shares; such a logger writes every line to every
	// target, whatever the target's level.
	base *Logger
	dbg  atomic.Pointer[Logger] // Debugging's logger, made once
}

type output struct {
	path  string
	level Level
	w     io.Writer
	f     *os.File
}

// Open opens every target (creating files, appending) and returns a logger.
// Files are opened before any privilege drop, as nginx does.
func Open(targets []Target) (*Logger, error) {
	l := &Logger{min: Emerg + 1, pid: strconv.Itoa(os.Getpid()), clock: time.Now}
	for _, t := range targets {
		o := &output{path: t.Path, level: t.Level}
		if err := o.open(); err != nil {
			l.Close()
			return nil, err
		}
		l.outs = append(l.outs, o)
		if t.Level < l.min {
			l.min = t.Level
		}
	}
	return l, nil
}

// Stderr returns a logger that writes warn and above to the standard error,
// for the time before the configuration names its own logs.
func Stderr() *Logger {
	l, _ := Open([]Target{{Path: "stderr", Level: Warn}})
	return l
}

func (o *output) open() error {
	switch o.path {
	case "stderr", "/dev/stderr":
		o.w = os.Stderr
		return nil
	case "/dev/stdout":
		o.w = os.Stdout
		return nil
	}
	f, err := os.OpenFile(o.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open() %q failed (%w)", o.path, err)
	}
	o.f, o.w = f, f
	return nil
}

// Enabled reports whether a line at level would be written anywhere; use it
// to skip formatting debug lines.
func (l *Logger) Enabled(level Level) bool { return l != nil && level >= l.min }

// Printf writes one line at level with connection number conn (0 = none).
// The formatted message is escaped: a byte below 0x20 (tab, CR and LF
// included) or 0x7f is written as \xHH, so a value a client chose (a
// decoded path, a header) can neither start a forged line nor reach a
// terminal as a control sequence. nginx writes such bytes raw.
func (l *Logger) Printf(level Level, conn uint64, format string, args ...any) {
	if !l.Enabled(level) {
		return
	}
	now := time.Now
	if l.clock != nil {
		now = l.clock
	}
	b := make([]byte, 0, 160)
	b = now().AppendFormat(b, "2006/01/02 15:04:05")
	b = append(b, " ["...)
	b = append(b, level.String()...)
	b = append(b, "] "...)
	b = append(b, l.pid...)
	b = append(b, "#0: "...)
	if conn != 0 {
		b = append(b, '*')
		b = strconv.AppendUint(b, conn, 10)
		b = append(b, ' ')
	}
	b = escapeFrom(fmt.Appendf(b, format, args...), len(b))
	b = append(b, '\n')
	src := l
	if l.base != nil {
		src = l.base
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	for _, o := range src.outs {
		if level >= o.level || l.base != nil {
			o.w.Write(b) // a failing log disk must not stop the proxy
		}
	}
}

// Debugging returns a logger that writes lines of every level, debug
// included, to all of l's targets, as nginx's debug_connection does for
// the connections it lists. It shares l's files: Reopen and Close of l
// apply to it. nil stays nil.
func (l *Logger) Debugging() *Logger {
	if l == nil || l.base != nil {
		return l
	}
	if d := l.dbg.Load(); d != nil {
		return d
	}
	d := &Logger{min: Debug, pid: l.pid, clock: l.clock, base: l}
	if !l.dbg.CompareAndSwap(nil, d) {
		return l.dbg.Load()
	}
	return d
}

// escapeFrom rewrites the control bytes of b[from:] as \xHH. It copies
// only when there is one.
func escapeFrom(b []byte, from int) []byte {
	i := from
	for i < len(b) && b[i] >= 0x20 && b[i] != 0x7f {
		i++
	}
	if i == len(b) {
		return b
	}
	const hexd = "0123456789abcdef"
	out := append(make([]byte, 0, len(b)+16), b[:i]...)
	for _, c := range b[i:] {
		if c < 0x20 || c == 0x7f {
			out = append(out, '\\', 'x', hexd[c>>4], hexd[c&15])
			continue
		}
		out = append(out, c)
	}
	return out
}

// Reopen closes and reopens every file target (USR1, -s reopen). A target
// that cannot be reopened keeps its old file, so no line is lost.
func (l *Logger) Reopen() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var first error
	for _, o := range l.outs {
		if o.f == nil {
			continue
		}
		old := o.f
		if err := o.open(); err != nil {
			o.f, o.w = old, old
			if first == nil {
				first = err
			}
			continue
		}
		old.Close()
	}
	return first
}

// Close closes the file targets.
func (l *Logger) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, o := range l.outs {
		if o.f != nil {
			o.f.Close()
		}
	}
	l.outs = nil
	return nil
}
