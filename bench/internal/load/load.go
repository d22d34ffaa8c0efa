package load

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/bench/internal/echo"
	"github.com/wsgate/wsgate/bench/internal/procstat"
	"github.com/wsgate/wsgate/bench/internal/stats"
	"github.com/wsgate/wsgate/bench/internal/wsproto"
)

// Mode names accepted by Run.
const (
	ModeHandshake  = "handshake"
	ModeEcho       = "echo"
	ModeThroughput = "throughput"
	ModePaced      = "paced"
	// ModePacedHandshake opens connections on a fixed timetable of Rate
	// handshakes per second over all workers (open loop), so that every
	// target is measured at the same load.
	ModePacedHandshake = "paced-handshake"
)

// Config describes one timed run. Addr is the target's host:port on a
// loopback address; the zero values of the other fields are replaced by the
// defaults noted beside them.
type Config struct {
	Addr      string
	Path      string        // default "/ws"
	Sources   []netip.Addr  // client source addresses; none: the kernel picks
	Workers   int           // concurrent workers or connections; default 16
	Size      int           // message payload bytes; default 64
	Warmup    time.Duration // untimed lead-in; default 1 s
	Duration  time.Duration // timed window; default 5 s
	CPUPID    int           // process whose CPU time, with its descendants', is sampled around the window; 0: none
	TLS       bool          // wss: TLS 1.3 with ClientTLS's settings, a full handshake per connection
	Resume    bool          // with TLS: keep session tickets, so connections after the first resume
	Rate      int           // paced: messages (paced-handshake: handshakes) per second over all workers; default 1000
	Proto     string        // ProtoHTTP1, ProtoH2 or ProtoH3; h2 and h3 imply TLS and ignore TLS and Resume
	Streams   int           // h2, h3: tunnels per connection; default 1
	StracePID int           // count that process's system calls over the window with strace -f -c
	// Echo, when set, is a loopback address on which Run also serves the
	// echo backend (bench/internal/echo) in this process for the run, so
	// that the load and the backend share one runtime instead of two
	// processes taking turns on a CPU.
	Echo string
}

// ClientTLS returns the client settings of wss runs: TLS 1.3 only, X25519
// key exchange (so every server negotiates the same group; Go would offer a
// post-quantum hybrid that OpenSSL 3.0 lacks), ALPN http/1.1, no certificate
// verification (the harness's certificate is self-signed), and no session
// tickets or cache, so that every connection pays a full handshake. Each
// call returns a new value the caller may change.
func ClientTLS() *tls.Config {
	return &tls.Config{
		ServerName:             "localhost",
		InsecureSkipVerify:     true,
		MinVersion:             tls.VersionTLS13,
		MaxVersion:             tls.VersionTLS13,
		CurvePreferences:       []tls.CurveID{tls.X25519},
		NextProtos:             []string{"http/1.1"},
		SessionTicketsDisabled: true,
	}
}

// Result is one run's figures. Latencies are in microseconds.
type Result struct {
	Mode       string  `json:"mode"`
	Ops        uint64  `json:"ops"`
	Seconds    float64 `json:"seconds"`
	OpsPerSec  float64 `json:"ops_per_sec"`
	MBPerSec   float64 `json:"mb_per_sec"`
	P50        float64 `json:"p50_us"`
	P90        float64 `json:"p90_us"`
	P99        float64 `json:"p99_us"`
	P999       float64 `json:"p999_us"`
	Max        float64 `json:"max_us"`      // paced only: the slowest round trip in the window
	CPUSeconds float64 `json:"cpu_seconds"` // target's CPU time in the window; 0 without CPUPID
	CPUPerOpUS float64 `json:"cpu_us_per_op"`
	// UserSeconds is the part of CPUSeconds spent in user space, the rest
	// in the kernel; UserPerOpUS per operation.
	UserSeconds float64 `json:"user_cpu_seconds"`
	UserPerOpUS float64 `json:"user_cpu_us_per_op"`
	Resumed     uint64  `json:"resumed"` // handshakes in the window that resumed a TLS session
	// Syscalls counts the target's system calls in the window by name
	// (with StracePID); the window's CPU figures are then meaningless.
	Syscalls   map[string]uint64 `json:"syscalls,omitempty"`
	Errors     uint64            `json:"errors"`
	FirstError string            `json:"first_error,omitempty"`
}

// handshakeTimeout bounds one connect plus upgrade; generous, because other
// work on a two-core machine can stall a proxy for seconds.
const handshakeTimeout = 10 * time.Second

const (
	phaseWarmup int32 = iota
	phaseMeasure
	phaseDone
)

type run struct {
	cfg   Config
	d     dialer
	mux   mux // the connection taking the next h2 or h3 tunnel
	phase atomic.Int32
	end   time.Time // hard deadline for any blocked I/O

	mu       sync.Mutex
	hist     stats.Histogram
	ops      uint64
	resumed  uint64
	errs     uint64
	firstErr error
	max      time.Duration // paced: slowest round trip measured
}

func (r *run) fail(err error) {
	r.mu.Lock()
	r.errs++
	if r.firstErr == nil {
		r.firstErr = err
	}
	r.mu.Unlock()
}

func (r *run) merge(h *stats.Histogram, ops, resumed uint64) {
	r.mu.Lock()
	r.hist.Merge(h)
	r.ops += ops
	r.resumed += resumed
	r.mu.Unlock()
}

// Run executes one mode against cfg.Addr and returns its figures. It stops by
// itself after Warmup+Duration plus at most a few seconds of I/O deadline, or
// earlier when ctx ends.
func Run(ctx context.Context, mode string, cfg Config) (Result, error) {
	if cfg.Path == "" {
		cfg.Path = "/ws"
	}
	cfg.Workers = cmp0(cfg.Workers, 16)
	cfg.Size = cmp0(cfg.Size, 64)
	if cfg.Warmup == 0 {
		cfg.Warmup = time.Second
	}
	if cfg.Duration == 0 {
		cfg.Duration = 5 * time.Second
	}
	if cfg.Echo != "" {
		stop, err := serveEcho(cfg.Echo)
		if err != nil {
			return Result{}, err
		}
		defer stop()
	}
	r := newRun(cfg)
	r.end = time.Now().Add(cfg.Warmup + cfg.Duration + 10*time.Second)

	var worker func(id int, h *stats.Histogram) (ops, resumed uint64)
	switch mode {
	case ModeHandshake:
		worker = r.handshakeWorker
	case ModeEcho, ModeThroughput:
		clients, err := r.connectAll(cfg.Workers)
		if err != nil {
			return Result{}, err
		}
		worker = func(id int, h *stats.Histogram) (uint64, uint64) { return r.echoWorker(clients[id], h), 0 }
	case ModePacedHandshake:
		r.cfg.Rate = cmp0(cfg.Rate, 1000)
		worker = r.pacedHandshakeWorker
	case ModePaced:
		if cfg.Rate <= 0 {
			cfg.Rate = 1000
			r.cfg.Rate = cfg.Rate
		}
		clients, err := r.connectAll(cfg.Workers)
		if err != nil {
			return Result{}, err
		}
		worker = func(id int, h *stats.Histogram) (uint64, uint64) { return r.pacedWorker(clients[id], id, h), 0 }
	default:
		return Result{}, fmt.Errorf("load: unknown mode %q", mode)
	}

	var wg sync.WaitGroup
	for i := range cfg.Workers {
		wg.Go(func() {
			var h stats.Histogram
			n, resumed := worker(i, &h)
			r.merge(&h, n, resumed)
		})
	}
	res, err := r.window(ctx)
	wg.Wait()
	if err != nil {
		return Result{}, err
	}
	res.Mode = mode
	res.Ops = r.ops
	res.Resumed = r.resumed
	res.OpsPerSec = float64(r.ops) / res.Seconds
	if mode != ModeHandshake {
		res.MBPerSec = res.OpsPerSec * float64(cfg.Size) / 1e6
	}
	res.P50, res.P90 = r.hist.Quantile(0.50), r.hist.Quantile(0.90)
	res.P99, res.P999 = r.hist.Quantile(0.99), r.hist.Quantile(0.999)
	res.Max = float64(r.max.Nanoseconds()) / 1e3
	if cfg.CPUPID != 0 && r.ops > 0 {
		res.CPUPerOpUS = res.CPUSeconds * 1e6 / float64(r.ops)
		res.UserPerOpUS = res.UserSeconds * 1e6 / float64(r.ops)
	}
	res.Errors = r.errs
	if r.firstErr != nil {
		res.FirstError = r.firstErr.Error()
	}
	if r.ops == 0 {
		return res, fmt.Errorf("load: no operation completed in the window: %v", r.firstErr)
	}
	return res, nil
}

// serveEcho serves the echo backend on addr until stop.
func serveEcho(addr string) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("load: echo backend: %w", err)
	}
	var s echo.Server
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Serve(ln)
	}()
	return func() { s.Close(); <-done }, nil
}

func newRun(cfg Config) *run {
	r := &run{cfg: cfg, d: dialer{srcs: cfg.Sources}}
	if cfg.TLS {
		r.d.tls = ClientTLS()
		if cfg.Resume {
			r.d.tls.SessionTicketsDisabled = false
			r.d.tls.ClientSessionCache = tls.NewLRUClientSessionCache(0)
		}
	}
	return r
}

func cmp0(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// window runs the warm-up and the timed window, sampling CPU time at both ends.
func (r *run) window(ctx context.Context) (Result, error) {
	defer r.phase.Store(phaseDone)
	sleep := func(d time.Duration) error {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := sleep(r.cfg.Warmup); err != nil {
		return Result{}, err
	}
	var cpu0, cpu1 procstat.CPU
	var err error
	if r.cfg.CPUPID != 0 {
		if cpu0, err = procstat.TreeCPUTime(r.cfg.CPUPID); err != nil {
			return Result{}, err
		}
	}
	var tr *tracer
	if r.cfg.StracePID != 0 {
		if tr, err = startTrace(r.cfg.StracePID); err != nil {
			return Result{}, err
		}
	}
	t0 := time.Now()
	r.phase.Store(phaseMeasure)
	serr := sleep(r.cfg.Duration)
	r.phase.Store(phaseDone)
	t1 := time.Now()
	var calls map[string]uint64
	if tr != nil {
		c, err := tr.stop()
		if serr == nil {
			serr = err
		}
		calls = c
	}
	if serr != nil {
		return Result{}, serr
	}
	if r.cfg.CPUPID != 0 {
		if cpu1, err = procstat.TreeCPUTime(r.cfg.CPUPID); err != nil {
			return Result{}, err
		}
	}
	used := cpu1.Sub(cpu0)
	return Result{Seconds: t1.Sub(t0).Seconds(), CPUSeconds: used.Total().Seconds(), UserSeconds: used.User.Seconds(), Syscalls: calls}, nil
}

// handshakeWorker opens, upgrades and closes connections one after another;
// it counts them, and those that resumed a TLS session.
func (r *run) handshakeWorker(_ int, h *stats.Histogram) (n, resumed uint64) {
	for {
		p := r.phase.Load()
		if p == phaseDone {
			return n, resumed
		}
		ok, counted, res := r.measureHandshake(p, time.Now(), h)
		if !ok {
			time.Sleep(time.Millisecond) // do not spin on a refusing target
		}
		n, resumed = n+b2u(counted), resumed+b2u(res)
	}
}

// pacedHandshakeWorker opens a connection every Workers/Rate seconds,
// offset by id so that the workers interleave. Latency runs from the
// scheduled time, so a handshake that made the worker late counts the
// delay it caused; a late worker catches up without waiting.
func (r *run) pacedHandshakeWorker(id int, h *stats.Histogram) (n, resumed uint64) {
	interval := time.Duration(float64(time.Second) * float64(r.cfg.Workers) / float64(r.cfg.Rate))
	next := time.Now().Add(interval * time.Duration(id) / time.Duration(r.cfg.Workers))
	for {
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		p := r.phase.Load()
		if p == phaseDone {
			return n, resumed
		}
		_, counted, res := r.measureHandshake(p, next, h)
		n, resumed = n+b2u(counted), resumed+b2u(res)
		next = next.Add(interval)
	}
}

// measureHandshake opens one connection and closes it. A failure counts
// against the run when the attempt started (phase p) in the measured
// phase; a success that completes in it is counted, its latency from t0
// recorded in h. It reports whether the handshake succeeded, whether it
// was counted, and whether that one resumed a TLS session.
func (r *run) measureHandshake(p int32, t0 time.Time, h *stats.Histogram) (ok, counted, resumed bool) {
	c, err := r.handshake()
	if err != nil {
		if p == phaseMeasure {
			r.fail(err)
		}
		return false, false, false
	}
	lat := time.Since(t0)
	tc, isTLS := c.Conn.(*tls.Conn)
	c.Close()
	if r.phase.Load() != phaseMeasure {
		return true, false, false
	}
	h.Record(lat)
	return true, true, isTLS && tc.ConnectionState().DidResume
}

// b2u is 1 for true.
func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func (r *run) handshake() (*wsproto.Client, error) {
	if r.cfg.Proto != ProtoHTTP1 {
		return r.tunnel()
	}
	conn, err := r.d.dial(r.cfg.Addr, handshakeTimeout)
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(handshakeTimeout))
	if r.d.tls != nil {
		tc := tls.Client(conn, r.d.tls)
		// Explicit, so a TLS failure is reported as one rather than as a
		// failed upgrade write.
		if err := tc.Handshake(); err != nil {
			conn.Close()
			return nil, fmt.Errorf("tls: %w", err)
		}
		conn = tc
	}
	c, err := wsproto.Handshake(conn, r.cfg.Addr, r.cfg.Path)
	if err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	return c, nil
}

func (r *run) connectAll(n int) ([]*wsproto.Client, error) {
	out := make([]*wsproto.Client, 0, n)
	for range n {
		c, err := r.handshake()
		if err != nil {
			for _, c := range out {
				c.Close()
			}
			return nil, err
		}
		nc := c.Conn
		if tc, ok := nc.(*tls.Conn); ok {
			nc = tc.NetConn()
		}
		if tc, ok := nc.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		c.Conn.SetDeadline(r.end)
		out = append(out, c)
	}
	return out, nil
}

var (
	errMismatch = errors.New("load: echoed payload differs")
	errBehind   = errors.New("load: paced target fell too many messages behind")
)

// echoWorker ping-pongs one message at a time on c (closed loop).
func (r *run) echoWorker(c *wsproto.Client, h *stats.Histogram) uint64 {
	defer c.Close()
	want := make([]byte, r.cfg.Size)
	for i := range want {
		want[i] = byte('a' + i%26)
	}
	masked := bytes.Clone(want)
	c.Premask(masked)
	buf := make([]byte, r.cfg.Size)
	var n uint64
	for r.phase.Load() != phaseDone {
		t0 := time.Now()
		if err := c.WritePremasked(wsproto.OpBinary, masked); err != nil {
			r.fail(err)
			return n
		}
		hd, got, err := c.ReadMessage(buf)
		if err != nil {
			r.fail(err)
			return n
		}
		lat := time.Since(t0)
		// Small payloads are compared whole; large ones at both ends, to keep
		// the client's CPU for sending.
		ok := hd.Op == wsproto.OpBinary && len(got) == len(want)
		if ok && len(want) <= 1024 {
			ok = bytes.Equal(got, want)
		} else if ok && len(want) > 0 {
			ok = got[0] == want[0] && got[len(got)-1] == want[len(want)-1]
		}
		if !ok {
			r.fail(errMismatch)
			return n
		}
		if r.phase.Load() == phaseMeasure {
			h.Record(lat)
			n++
		}
	}
	return n
}
