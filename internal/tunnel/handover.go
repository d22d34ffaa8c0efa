package tunnel

import (
	"errors"
	"net"
	"time"

	"github.com/wsgate/wsgate/internal/wsframe"
)

// Handing a tunnel over to another process (a binary upgrade).
//
// Detach pauses both directions of a tunnel between two reads: each relays
// what it has read, splices what its pipe holds, and stops, preferably at
// a frame boundary (see boundaryWait). A paused direction is parked without
// an epoll registration: it holds no goroutine, no buffer and no pipe, and
// its parser state lives in its dir. Detach then takes both directions,
// so that nothing of this process touches the sockets any more, and
// returns the tunnel's State: the frame position of each direction (the
// rest of the frame in progress and any partial header already read), its
// fragmented-message, limit and validation state, the ping state and the
// counts. Resume, in this process or another one that received the two
// sockets, goes on from there; the peers see an unbroken stream.
//
// A close that wsgate decides on while a direction is pausing (Shutdown,
// a timeout, a limit, a peer's end) wins: the tunnel closes here as usual,
// and Detach fails with ErrNotMovable.

// ErrNotMovable: the tunnel cannot be handed over: a leg is not a plain
// TCP or unix socket (TLS, an HTTP/2 or HTTP/3 stream), or it is closing.
var ErrNotMovable = errors.New("tunnel: cannot be handed over")

// boundaryWait is how long a pausing direction in the middle of a frame
// goes on relaying to reach the frame's end before it pauses where it is,
// its position in the frame carried in the State. A variable for tests.
var boundaryWait = 250 * time.Millisecond

// fDetach asks a direction to pause for a handover (a dir flag). Its bit is
// far above relay.go's flags, which count up from the first bit.
const fDetach uint32 = 1 << 24

// detachReq is a handover in progress: the time by which a direction
// pauses even in the middle of a frame, and where paused directions say so.
type detachReq struct {
	boundaryBy time.Time
	paused     chan struct{}
}

// Settings are the parts of Config a handover carries: Config without its
// hooks (Meter, OnClose), which the adopting process gives anew.
type Settings struct {
	Frames, Strict               bool
	AllowRSV                     uint8
	SessionCode                  uint16
	IdleTimeout, SendTimeout     time.Duration
	CloseGrace                   time.Duration
	PingInterval, PingTimeout    time.Duration
	MaxFrameSize, MaxMessageSize int64
	MessageRate                  float64
	MessageBurst                 int
	RateLimitBackend             bool
	MaxSession                   time.Duration
	FDReserve                    int
}

// Config returns s as a Config with meter and onClose for hooks.
func (s Settings) Config(meter *Meter, onClose Closer) Config {
	return Config{
		Frames: s.Frames, Strict: s.Strict, AllowRSV: s.AllowRSV, SessionCode: s.SessionCode,
		IdleTimeout: s.IdleTimeout, SendTimeout: s.SendTimeout, CloseGrace: s.CloseGrace,
		PingInterval: s.PingInterval, PingTimeout: s.PingTimeout,
		MaxFrameSize: s.MaxFrameSize, MaxMessageSize: s.MaxMessageSize,
		MessageRate: s.MessageRate, MessageBurst: s.MessageBurst, RateLimitBackend: s.RateLimitBackend,
		MaxSession: s.MaxSession, FDReserve: s.FDReserve, Meter: meter, OnClose: onClose,
	}
}

func settingsOf(c *conf) Settings {
	return Settings{
		Frames: c.Frames, Strict: c.Strict, AllowRSV: c.AllowRSV, SessionCode: c.SessionCode,
		IdleTimeout: c.IdleTimeout, SendTimeout: c.SendTimeout, CloseGrace: c.CloseGrace,
		PingInterval: c.PingInterval, PingTimeout: c.PingTimeout,
		MaxFrameSize: c.MaxFrameSize, MaxMessageSize: c.MaxMessageSize,
		MessageRate: c.MessageRate, MessageBurst: c.MessageBurst, RateLimitBackend: c.RateLimitBackend,
		MaxSession: c.MaxSession, FDReserve: int(c.FDReserve),
	}
}

// State is a paused tunnel, as Resume takes it up again. Times are
// nanoseconds from Start, as the tunnel's timers count them.
type State struct {
	Settings Settings
	Start    time.Time
	Last     int64 // the last read either way (IdleTimeout)
	Dirs     [2]DirState
	// AtBoundary reports that both directions paused at a frame
	// boundary (informational: Resume takes any position).
	AtBoundary bool
	// The closing handshake so far: the first close frame's sender and
	// code, once one has passed (Result.ClosedBy, Result.CloseCode).
	ClosedBy         Side
	CloseCode        uint16
	ByKnown, CodeSet bool
}

// DirState is one direction of a paused tunnel: Dirs[0] reads the client,
// Dirs[1] the backend.
type DirState struct {
	Read, Messages int64  // bytes read from the source, data messages relayed
	Pending        []byte // bytes read and not yet relayed
	Held           []byte // a partial frame header, read and not yet forwarded
	// The frame in progress: its payload bytes still to come, opcode,
	// mask, close-code capture; FinData: it ends a data message.
	Remaining int64
	Op        uint8
	Masked    bool
	Key       [4]byte
	PayPos    uint8
	Code      [2]byte
	FinData   bool
	// The destination's side: it is inside a frame, or it has had its
	// close frame; SrcClosed: the source's close frame has passed.
	MidFrame, GotClose, SrcClosed bool
	// Pings and limits (with Frames).
	LastRead, PingAt, Resumed int64
	PingSeq                   uint32
	PingDue                   bool
	MsgSize, RateTAT, LastMsg int64
	// Strict validation.
	FrameLen      int64
	InMsg, InText bool
	Text, Reason  uint32
}

// Movable reports whether both legs are plain sockets whose descriptors
// can be handed to another process.
func (t *Tunnel) Movable() bool {
	return t.dirs[c2b].srcRC() != nil && t.dirs[b2c].srcRC() != nil
}

// Paused is a detached tunnel: its connections, still open, and its state.
// The caller owns the connections: it sends their descriptors and closes
// them, or gives them to Resume.
type Paused struct {
	Client, Backend net.Conn
	State           State
	Meter           *Meter // the tunnel's Config.Meter, for a Resume here
}

// Detach pauses t and takes it out of this process's relay, within wait;
// see the comment at the top of this file. On success t no longer exists:
// its OnClose is never called and Shutdown returns at once. On failure
// (ErrNotMovable, or a timeout, which also reports ErrNotMovable) t runs
// on as if nothing had happened.
func (t *Tunnel) Detach(wait time.Duration) (*Paused, error) {
	if !t.Movable() {
		return nil, ErrNotMovable
	}
	req := &detachReq{boundaryBy: time.Now().Add(boundaryWait), paused: make(chan struct{}, 2)}
	t.mu.Lock()
	if t.closing.Load() || !t.detach.CompareAndSwap(nil, req) {
		t.mu.Unlock()
		return nil, ErrNotMovable
	}
	t.mu.Unlock()
	var held [2]bool
	end := time.Now().Add(wait)
	poke := time.NewTimer(0)
	defer poke.Stop()
	for {
		if t.closing.Load() || t.dirs[c2b].flags.Load()&fExited != 0 || t.dirs[b2c].flags.Load()&fExited != 0 {
			t.release(held)
			return nil, ErrNotMovable
		}
		for i := range t.dirs {
			if !held[i] {
				held[i] = t.take(i)
			}
		}
		if held[c2b] && held[b2c] {
			if p := t.seal(); p != nil {
				t.detach.Store(nil)
				return p, nil
			}
			t.release(held)
			return nil, ErrNotMovable
		}
		if time.Now().After(end) {
			t.release(held)
			return nil, ErrNotMovable
		}
		select {
		case <-req.paused:
		case <-poke.C:
			// A poke can be lost to a relay that was clearing its
			// deadline (parking); ask again now and then.
			poke.Reset(5 * time.Millisecond)
		}
	}
}

// take claims direction i if it is parked or paused (no goroutine runs
// it), or asks its relay to pause.
func (t *Tunnel) take(i int) bool {
	d := &t.dirs[i]
	if d.parked.CompareAndSwap(true, false) {
		return true
	}
	if d.flags.Load()&fDetach == 0 {
		d.flags.Or(fDetach)
	}
	d.src.SetReadDeadline(aLongTimeAgo)
	return false
}

// release ends a handover that failed: the directions Detach holds, and
// any that paused meanwhile, relay on.
func (t *Tunnel) release(held [2]bool) {
	t.detach.Store(nil) // first: a direction pausing from now on sees it
	for i := range t.dirs {
		d := &t.dirs[i]
		if held[i] {
			d.flags.And(^fDetach)
			t.clearReadDeadline(d)
			go t.run(i)
			continue
		}
		// The relay may meet take's deadline still: as a poke, which
		// it lifts and goes on.
		d.flags.Or(fPoke)
		d.flags.And(^fDetach)
		t.clearReadDeadline(d)
		t.unpark(i)
	}
}

// pause runs on direction i's relay goroutine when a read ends on a
// deadline and fDetach is set: it reports whether the direction is now
// paused (the goroutine returns without exiting the tunnel); false means
// relay on, to reach a frame boundary or because the handover is over.
func (t *Tunnel) pause(i int) bool {
	d := &t.dirs[i]
	req := t.detach.Load()
	if req == nil {
		d.flags.And(^fDetach)
		t.clearReadDeadline(d)
		return false
	}
	if (d.remaining != 0 || d.heldN != 0) && time.Now().Before(req.boundaryBy) {
		// Mid-frame: relay on a little, then look again.
		d.src.SetReadDeadline(time.Now().Add(2 * time.Millisecond))
		return false
	}
	d.flags.And(^fDetach)
	d.parkReq.Store(false)
	t.clearReadDeadline(d)
	d.dropState()
	d.parked.Store(true)
	select {
	case req.paused <- struct{}{}:
	default:
	}
	if (t.closing.Load() || t.detach.Load() != req) && d.parked.CompareAndSwap(true, false) {
		// closeWith, or the end of a failed handover, may have missed
		// the pause: relay on.
		return false
	}
	return true
}

// seal ends t in this process once Detach holds both directions, and
// returns its connections and state; nil if a close came first.
func (t *Tunnel) seal() *Paused {
	t.mu.Lock()
	if t.closing.Load() {
		t.mu.Unlock()
		return nil
	}
	t.closing.Store(true)
	t.closed.Store(true) // closeConns must not close what is handed over
	if t.tick != nil {
		t.tick.Stop()
	}
	t.mu.Unlock()
	// A parked source would stay in the epoll set until its socket's
	// last descriptor closes, in the other process: it leaves the set,
	// and unregister retires its slot, so that its events, if any, miss.
	parker.disarm(&t.dirs[c2b])
	parker.disarm(&t.dirs[b2c])
	parker.unregister(t)
	p := &Paused{Client: t.dirs[c2b].src, Backend: t.dirs[b2c].src, Meter: t.cfg.Meter}
	st := &p.State
	st.Settings = settingsOf(&t.cfg)
	st.Start = t.start
	st.Last = t.last.Load()
	st.AtBoundary = true
	t.mu.Lock()
	st.ClosedBy, st.ByKnown, st.CloseCode, st.CodeSet = t.by, t.bySet, t.code, t.codeSet
	t.mu.Unlock()
	for i := range t.dirs {
		d := &t.dirs[i]
		d.src.SetDeadline(time.Time{})
		d.save(&st.Dirs[i])
		if d.remaining != 0 || d.heldN != 0 {
			st.AtBoundary = false
		}
	}
	t.live.Store(0)
	t.wg.Add(-2)
	return p
}

// save copies d's state into s. Both relays are stopped; wmu is taken for
// the fields a ping from the timer may still touch.
func (d *dir) save(s *DirState) {
	s.Read, s.Messages = d.n.Load(), d.msgs.Load()
	if d.pending != nil {
		s.Pending = append([]byte(nil), *d.pending...)
	}
	s.Held = append([]byte(nil), d.held[:d.heldN]...)
	s.Remaining, s.Op, s.Masked, s.Key = d.remaining, uint8(d.op), d.masked, d.key
	s.PayPos, s.Code, s.FinData = d.payPos, d.code, d.finData
	d.wmu.Lock()
	s.MidFrame, s.GotClose = d.midFrame, d.gotClose
	d.wmu.Unlock()
	s.SrcClosed = d.flags.Load()&fSrcClosed != 0
	x := d.x
	if x == nil {
		return
	}
	s.LastRead, s.PingAt, s.Resumed = x.last.Load(), x.pingAt.Load(), x.resumed.Load()
	s.PingSeq, s.PingDue = x.pingSeq.Load(), x.pingDue.Load()
	s.MsgSize, s.RateTAT, s.LastMsg = x.msgSize, x.tat, x.lastMsg
	s.FrameLen, s.InMsg, s.InText = x.frameLen, x.inMsg, x.inText
	s.Text, s.Reason = x.text.State(), x.reason.State()
}

// restore sets d's state from s, before its relay starts.
func (d *dir) restore(s *DirState) {
	d.n.Store(s.Read)
	d.msgs.Store(s.Messages)
	if len(s.Pending) > 0 {
		p := append([]byte(nil), s.Pending...)
		d.pending = &p
	}
	d.heldN = uint8(copy(d.held[:], s.Held))
	d.remaining, d.op, d.masked, d.key = s.Remaining, wsframe.Opcode(s.Op), s.Masked, s.Key
	d.payPos, d.code, d.finData = s.PayPos, s.Code, s.FinData
	d.midFrame, d.gotClose = s.MidFrame, s.GotClose
	if s.SrcClosed {
		d.flags.Or(fSrcClosed)
	}
	d.seen = s.Read
	x := d.x
	if x == nil {
		return
	}
	x.last.Store(s.LastRead)
	x.pingAt.Store(s.PingAt)
	x.resumed.Store(s.Resumed)
	x.pingSeq.Store(s.PingSeq)
	x.pingDue.Store(s.PingDue)
	x.msgSize, x.tat, x.lastMsg = s.MsgSize, s.RateTAT, s.LastMsg
	x.frameLen, x.inMsg, x.inText = s.FrameLen, s.InMsg, s.InText
	x.text, x.reason = wsframe.UTF8FromState(s.Text), wsframe.UTF8FromState(s.Reason)
}

// Resume starts a tunnel from the state Detach saved, on the same two
// connections (in this process, or descriptors received by another one);
// cfg is st.Settings with the hooks of the adopting process. It returns at
// once, as Start does; the Tunnel owns the connections from then on.
func Resume(client, backend net.Conn, st *State, cfg Config) *Tunnel {
	return start(client, backend, nil, nil, cfg, st)
}

// restore gives a new tunnel the state of the one Detach took apart.
func (t *Tunnel) restore(st *State) {
	t.start = st.Start
	t.last.Store(st.Last)
	t.by, t.bySet, t.code, t.codeSet = st.ClosedBy, st.ByKnown, st.CloseCode, st.CodeSet
	for i := range t.dirs {
		t.dirs[i].restore(&st.Dirs[i])
	}
}
