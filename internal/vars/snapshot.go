package vars

import (
	"net/netip"
	"strings"
	"time"
)

// lateVars are the variables whose value a WebSocket session's access log
// line takes at the session's end rather than at its 101: the clock, the
// byte and message counts, the close, the connection counters, and the
// process that writes the line (a binary upgrade moves tunnels).
var lateVars = map[string]bool{
	"pid": true, "nginx_version": true,
	"time_local": true, "time_iso8601": true, "msec": true, "request_time": true,
	"bytes_sent": true, "body_bytes_sent": true, "upstream_response_time": true,
	"websocket_messages_in": true, "websocket_messages_out": true, "websocket_close_code": true, "websocket_closed_by": true, "websocket_close_reason": true,
	"connections_active": true, "connections_reading": true, "connections_writing": true, "connections_waiting": true,
	"connection_time": true, "request_completion": true,
}

// isLate reports whether a variable belongs to lateVars or $tcpinfo_*.
func isLate(name string) bool {
	return lateVars[name] || strings.HasPrefix(name, "tcpinfo_")
}

// A Snapshot is what a log line written at a session's end needs of a
// request whose context goes back to its pool at the 101: the values the
// line's variables have now, and the fields from which the late
// variables (see lateVars) are computed then. It holds neither the
// request's head nor its connection.
type Snapshot struct {
	tab       *Table
	idx       []int32
	vals      []string
	start     time.Time
	connStart time.Time
	status    int
	reqLength int64
	pipelined bool
	stats     ConnStats
}

// Freeze evaluates now the variables in idx that are not late and returns
// them with what Restore needs; nil when one of them reads a late
// variable (a map of $request_time, say), whose value cannot be settled
// before the end: the caller then keeps c itself. Either way c's cache is
// as it was, so that what Freeze evaluated is evaluated again when asked.
func (c *Ctx) Freeze(idx []int) *Snapshot {
	var onStack [256]bool
	had := append(onStack[:0], c.have...)
	defer copy(c.have, had)
	s := &Snapshot{tab: c.tab, start: c.Start, status: c.Status, reqLength: c.ReqLength, stats: c.Stats}
	if c.Core != nil {
		s.connStart, s.pipelined = c.Core.ConnStart(), c.Core.Pipelined()
	}
	for _, i := range idx {
		if c.tab.vars[i].late || s.has(i) {
			continue
		}
		c.lateRead = false
		v := c.Get(i)
		if c.lateRead {
			return nil
		}
		s.idx = append(s.idx, int32(i))
		s.vals = append(s.vals, v)
	}
	return s
}

func (s *Snapshot) has(i int) bool {
	for _, j := range s.idx {
		if int(j) == i {
			return true
		}
	}
	return false
}

// Restore resets c for the snapshot's table with the values and fields it
// kept; the caller sets what the session's end settles (End, the byte
// counts, WS, UpstreamRespTime) before the line is written.
func (s *Snapshot) Restore(c *Ctx) {
	c.Reset(s.tab)
	c.Start, c.Status, c.ReqLength, c.Stats = s.start, s.status, s.reqLength, s.stats
	c.Core = s
	for k, i := range s.idx {
		c.Set(int(i), s.vals[k])
	}
}

// Each calls f with the name and value of every variable kept, for a
// process whose table numbers them differently (see SetName).
func (s *Snapshot) Each(f func(name, value string)) {
	for k, i := range s.idx {
		f(s.tab.vars[i].name, s.vals[k])
	}
}

// SetName gives variable name the value v in c, as Restore does for the
// variables of its snapshot; false when c's table does not know name (no
// template of its configuration reads it). The table is not changed.
func (c *Ctx) SetName(name, v string) bool {
	i, ok := c.tab.index[name]
	if !ok || i >= len(c.vals) {
		return false
	}
	c.Set(i, v)
	return true
}

// A Snapshot is the CoreInfo of the context it restores: it answers the
// late core variables. Completed is true: a session's line is written
// once it has ended.
func (s *Snapshot) ConnStart() time.Time                { return s.connStart }
func (s *Snapshot) Pipelined() bool                     { return s.pipelined }
func (s *Snapshot) Completed() bool                     { return true }
func (s *Snapshot) RequestBody() string                 { return "" }
func (s *Snapshot) ProxyProtocolServer() netip.AddrPort { return netip.AddrPort{} }
func (s *Snapshot) ProxyProtocolTLVs() []byte           { return nil }
func (s *Snapshot) TCPInfo() (TCPInfo, bool)            { return TCPInfo{}, false }
