package server

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/internal/capture"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/status"
	"github.com/wsgate/wsgate/internal/tunnel"
)

// On-demand capture: the api starts a capture of the tunnels that match
// (those open now and those that open while it runs), lists captures and
// stops them. With no capture running, a tunnel's data path sees nothing
// of it but a nil tap, and a handshake one atomic load.

// captures is a server's captures.
type captures struct {
	running atomic.Int32 // captures recording; handshakes check it
	mu      sync.Mutex
	seq     int
	list    []*capture.Capture                    // newest last; ended ones are kept for GET, up to keepEnded
	taps    map[*capture.Capture][]*tunnel.Tunnel // the tunnels each running capture taps
	tapOf   map[*tunnel.Tunnel]*capture.Capture   // the capture tapping each tunnel
}

// keepEnded is how many ended captures GET still lists.
const keepEnded = 32

// session describes the tunnel of e to a capture.
func (e *tunnelEnd) session() capture.Session {
	local, remote := e.t.ClientAddrs()
	s := capture.Session{ID: e.id, Key: e.key(), Client: addrPort(remote), Server: addrPort(local)}
	if e.info.loc != nil {
		loc := e.info.loc
		for loc.Parent != nil && loc.Modifier == "if" {
			loc = loc.Parent
		}
		s.Location = loc.Path
	}
	return s
}

// startCapture starts a capture into dir and taps the open tunnels it
// matches.
func (s *Server) startCapture(dir string, spec capture.Spec) (*capture.Capture, error) {
	cs := &s.caps
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.seq++
	id := time.Now().UTC().Format("20060102T150405") + "-" + strconv.Itoa(cs.seq)
	c, err := capture.Start(dir, id, spec, s.captureStopped)
	if err != nil {
		return nil, err
	}
	if cs.taps == nil {
		cs.taps = map[*capture.Capture][]*tunnel.Tunnel{}
		cs.tapOf = map[*tunnel.Tunnel]*capture.Capture{}
	}
	cs.taps[c] = nil
	cs.list = append(cs.list, c)
	cs.trim()
	cs.running.Add(1)
	s.mu.Lock()
	var ends []*tunnelEnd
	for _, ti := range s.tunnels {
		if ti.end != nil {
			ends = append(ends, ti.end)
		}
	}
	s.mu.Unlock()
	for _, e := range ends {
		cs.tapLocked(c, e)
	}
	return c, nil
}

// trim forgets the oldest ended captures beyond keepEnded.
func (cs *captures) trim() {
	ended := 0
	for _, c := range cs.list {
		if !c.Running() {
			ended++
		}
	}
	for i := 0; ended > keepEnded && i < len(cs.list); {
		if !cs.list[i].Running() {
			cs.list = append(cs.list[:i], cs.list[i+1:]...)
			ended--
			continue
		}
		i++
	}
}

// tapLocked has c record e's tunnel if it matches and no other capture
// records it. cs.mu is held.
func (cs *captures) tapLocked(c *capture.Capture, e *tunnelEnd) {
	if e.t == nil || cs.tapOf[e.t] != nil || !c.Running() {
		return
	}
	ses := e.session()
	if !c.Spec.Matches(&ses) {
		return
	}
	e.t.SetTap(c.Tap(ses))
	cs.tapOf[e.t] = c
	cs.taps[c] = append(cs.taps[c], e.t)
}

// tapNew offers a new tunnel to the running captures.
func (s *Server) tapNew(e *tunnelEnd) {
	cs := &s.caps
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for c := range cs.taps {
		cs.tapLocked(c, e)
	}
}

// untap forgets a tunnel that has ended.
func (s *Server) untap(t *tunnel.Tunnel) {
	cs := &s.caps
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c := cs.tapOf[t]
	if c == nil {
		return
	}
	delete(cs.tapOf, t)
	ts := cs.taps[c]
	for i := range ts {
		if ts[i] == t {
			cs.taps[c] = append(ts[:i], ts[i+1:]...)
			break
		}
	}
}

// captureStopped detaches a capture that has stopped from its tunnels.
func (s *Server) captureStopped(c *capture.Capture) {
	cs := &s.caps
	cs.mu.Lock()
	defer cs.mu.Unlock()
	ts, ok := cs.taps[c]
	if !ok {
		return
	}
	for _, t := range ts {
		t.SetTap(nil)
		delete(cs.tapOf, t)
	}
	delete(cs.taps, c)
	cs.running.Add(-1)
}

// stopCaptures ends the running captures, their files complete, as the
// server stops.
func (s *Server) stopCaptures() {
	cs := &s.caps
	cs.mu.Lock()
	list := append([]*capture.Capture(nil), cs.list...)
	cs.mu.Unlock()
	for _, c := range list {
		c.Stop("shutdown")
	}
}

// findCapture returns the capture called id, or nil.
func (s *Server) findCapture(id string) *capture.Capture {
	cs := &s.caps
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for _, c := range cs.list {
		if c.ID == id {
			return c
		}
	}
	return nil
}

func (s *Server) captureInfos() []map[string]any {
	cs := &s.caps
	cs.mu.Lock()
	defer cs.mu.Unlock()
	out := make([]map[string]any, 0, len(cs.list))
	for _, c := range cs.list {
		out = append(out, c.Info())
	}
	return out
}

// apiCaptures serves /9/http/websocket/captures[/ID]: GET lists or shows,
// POST starts a capture, DELETE stops one. POST and DELETE need api
// write=on, as every write of the api does.
func (x *exchange) apiCaptures(id string) bool {
	m := x.req.Method
	write := m == "POST" || m == "DELETE"
	switch {
	case write && !x.lc.Cluster.APIWrite:
		return x.apiAnswer(&status.APIError{Status: 405, Code: "MethodDisabled", Text: "method disabled: the api location needs write=on"}, nil)
	case m != "GET" && m != "HEAD" && !(m == "POST" && id == "") && !(m == "DELETE" && id != ""):
		return x.apiAnswer(&status.APIError{Status: 405, Code: "MethodNotSupported", Text: "method not supported"}, nil)
	case m == "POST":
		return x.apiStartCapture()
	}
	srv := x.conn.srv
	var b strings.Builder
	if id == "" {
		json.NewEncoder(&b).Encode(srv.captureInfos())
		return x.apiAnswer(nil, &b)
	}
	c := srv.findCapture(id)
	if c == nil {
		return x.apiAnswer(&status.APIError{Status: 404, Code: "CaptureNotFound", Text: "no such capture"}, nil)
	}
	if m == "DELETE" {
		c.Stop("api")
		x.log.Printf(errlog.Notice, x.conn.id, "api: capture %s stopped, client: %s", c.ID, x.vc.Remote.Addr())
	}
	json.NewEncoder(&b).Encode(c.Info())
	return x.apiAnswer(nil, &b)
}

// apiStartCapture starts a capture from the query's key, client, location,
// duration, bytes, payload and format.
func (x *exchange) apiStartCapture() bool {
	dir := x.lc.WS.CapturePath
	if dir == "" {
		return x.apiAnswer(&status.APIError{Status: 404, Code: "CapturePathNotConfigured", Text: "captures need websocket_capture_path"}, nil)
	}
	spec, text := captureSpec(x.req.RawQuery)
	if text == "" {
		if err := spec.Check(); err != nil {
			text = err.Error()
		}
	}
	if text != "" {
		return x.apiAnswer(&status.APIError{Status: 400, Code: "InvalidArgument", Text: text}, nil)
	}
	c, err := x.conn.srv.startCapture(dir, spec)
	if err != nil {
		x.log.Printf(errlog.Error, x.conn.id, "api: capture: %v", err)
		return x.apiAnswer(&status.APIError{Status: 500, Code: "CaptureFailed", Text: "the capture file could not be created"}, nil)
	}
	x.log.Printf(errlog.Notice, x.conn.id, "api: capture %s started into %s, client: %s", c.ID, c.File, x.vc.Remote.Addr())
	var b strings.Builder
	json.NewEncoder(&b).Encode(c.Info())
	hdr := http1.Header{{Name: "Content-Type", Value: "application/json"}, {Name: "Cache-Control", Value: "no-store"}}
	return x.respond(201, hdr, b.String())
}

// captureSpec reads a capture's query; text says what is wrong, if anything.
func captureSpec(raw string) (spec capture.Spec, text string) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return spec, "malformed query"
	}
	spec = capture.Spec{Key: q.Get("key"), Client: q.Get("client"), Location: q.Get("location"), Format: q.Get("format")}
	if spec.Format == "" {
		spec.Format = capture.FormatJSONL
	}
	if v := q.Get("duration"); v != "" {
		if spec.Duration, err = config.ParseDuration(v); err != nil || spec.Duration <= 0 {
			return spec, "duration must be a time such as 30s or 10m"
		}
	}
	if v := q.Get("bytes"); v != "" {
		if spec.Bytes, err = config.ParseSize(v); err != nil || spec.Bytes <= 0 {
			return spec, "bytes must be a size such as 10m"
		}
	}
	if v := q.Get("payload"); v != "" {
		if spec.Payload, err = strconv.Atoi(v); err != nil {
			return spec, "payload must be a number of bytes"
		}
	}
	return spec, ""
}
