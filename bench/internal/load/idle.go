package load

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/bench/internal/wsproto"
)

// MaxIdlePerAgent caps the tunnels one agent holds, to stay well inside the
// per-process descriptor limit of 20,000.
const MaxIdlePerAgent = 5000

// IdleAgent holds idle tunnels to addr and obeys one command per input line,
// answering one line each:
//
//	open N   hold N tunnels (opening more as needed) -> "ok N" or "err ..."
//	check    send one message on every tunnel and await its echo -> "ok PASSED FAILED"
//	storm    drop every tunnel (no close frame) and reopen as many at once,
//	         one dialer per tunnel, retrying failures until StormTimeout
//	         -> "ok N RETRIES MILLISECONDS" or "err ..."
//	quit     close every tunnel and return (so does end of input)
//
// It dials cfg.Addr from cfg.Sources, over TLS when cfg.TLS, with cfg.Proto's
// tunnels, cfg.Streams to a connection; the other
// fields of cfg are unused. It returns when in ends, quit arrives or ctx ends.
func IdleAgent(ctx context.Context, cfg Config, in io.Reader, out io.Writer) error {
	r := newRun(Config{Addr: cfg.Addr, Path: cfg.Path, Sources: cfg.Sources, TLS: cfg.TLS, Proto: cfg.Proto, Streams: cfg.Streams})
	if r.cfg.Path == "" {
		r.cfg.Path = "/ws"
	}
	var held []*wsproto.Client
	defer func() {
		for _, c := range held {
			c.Conn.Close() // no close frame: thousands at once would only add noise
		}
	}()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		var line string
		var ok bool
		select {
		case line, ok = <-lines:
		case <-ctx.Done():
			return ctx.Err()
		}
		if !ok {
			return nil
		}
		cmd, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch cmd {
		case "open":
			n, err := strconv.Atoi(arg)
			if err != nil || n < 0 || n > MaxIdlePerAgent {
				fmt.Fprintf(out, "err bad count %q\n", arg)
				continue
			}
			held, err = r.openIdle(held, n)
			if err != nil {
				fmt.Fprintf(out, "err %d held: %v\n", len(held), err)
				continue
			}
			fmt.Fprintf(out, "ok %d\n", len(held))
		case "storm":
			var st StormResult
			held, st = r.storm(held)
			if st.Err != nil {
				fmt.Fprintf(out, "err %d held after storm: %v\n", len(held), st.Err)
				continue
			}
			fmt.Fprintf(out, "ok %d %d %d\n", len(held), st.Retries, st.Elapsed.Milliseconds())
		case "check":
			pass, fail, first := checkIdle(held)
			if first != nil {
				log.Printf("check: %d of %d tunnels failed, the first with: %v", fail, len(held), first)
			}
			fmt.Fprintf(out, "ok %d %d\n", pass, fail)
		case "quit":
			return nil
		default:
			fmt.Fprintf(out, "err unknown command %q\n", cmd)
		}
	}
}

// openIdle opens tunnels with a few parallel dialers until n are held, or
// closes the newest ones when more are held.
func (r *run) openIdle(held []*wsproto.Client, n int) ([]*wsproto.Client, error) {
	for len(held) > n {
		held[len(held)-1].Conn.Close()
		held = held[:len(held)-1]
	}
	need := n - len(held)
	if need == 0 {
		return held, nil
	}
	var (
		mu      sync.Mutex
		left    atomic.Int64
		firstEr error
		wg      sync.WaitGroup
	)
	left.Store(int64(need))
	// A busy machine can make a handshake time out now and then: retry a
	// bounded number of times before the step fails.
	var retries atomic.Int64
	retries.Store(int64(max(10, need/100)))
	for range min(16, need) {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				c, err := r.handshake()
				mu.Lock()
				if err != nil && retries.Add(-1) >= 0 {
					mu.Unlock()
					left.Add(1)
					continue
				}
				if err != nil {
					if firstEr == nil {
						firstEr = err
					}
					mu.Unlock()
					return
				}
				held = append(held, c)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return held, firstEr
}

// checkIdle sends one message on every tunnel and awaits its echo; it
// counts the tunnels that echoed and those that did not, and returns the
// first failure's error.
func checkIdle(held []*wsproto.Client) (pass, fail int, first error) {
	var np, nf atomic.Int64
	var mu sync.Mutex
	var next atomic.Int64
	var wg sync.WaitGroup
	msg := []byte("still there?")
	for range min(32, len(held)) {
		wg.Go(func() {
			buf := make([]byte, 64)
			for {
				i := next.Add(1) - 1
				if i >= int64(len(held)) {
					return
				}
				c := held[i]
				c.Conn.SetDeadline(time.Now().Add(10 * time.Second))
				err := c.WriteMessage(wsproto.OpText, msg)
				var got []byte
				if err == nil {
					_, got, err = c.ReadMessage(buf)
				}
				c.Conn.SetDeadline(time.Time{})
				if err == nil && !bytes.Equal(got, msg) {
					err = errMismatch
				}
				if err == nil {
					np.Add(1)
					continue
				}
				nf.Add(1)
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("tunnel %d: %w", i, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return int(np.Load()), int(nf.Load()), first
}

// StormTimeout bounds one agent's reconnect storm: tunnels not open again
// by then fail the storm.
const StormTimeout = 2 * time.Minute

// StormResult is one agent's reconnect storm: how long until every tunnel
// was open again, how many handshakes failed and were retried, and the
// error that ended it early.
type StormResult struct {
	Elapsed time.Duration
	Retries int64
	Err     error
}

// storm closes every held tunnel at once, then reopens the same number with
// one goroutine per tunnel, all dialing at the same moment; a failed
// handshake is retried at once until StormTimeout.
func (r *run) storm(held []*wsproto.Client) ([]*wsproto.Client, StormResult) {
	n := len(held)
	for _, c := range held {
		c.Conn.Close()
	}
	out := make([]*wsproto.Client, n)
	var (
		retries atomic.Int64
		mu      sync.Mutex
		firstEr error
		wg      sync.WaitGroup
	)
	t0 := time.Now()
	deadline := t0.Add(StormTimeout)
	for i := range n {
		wg.Go(func() {
			for {
				c, err := r.handshake()
				if err == nil {
					out[i] = c
					return
				}
				if time.Now().After(deadline) {
					mu.Lock()
					if firstEr == nil {
						firstEr = err
					}
					mu.Unlock()
					return
				}
				retries.Add(1)
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	res := StormResult{Elapsed: time.Since(t0), Retries: retries.Load(), Err: firstEr}
	held = out[:0]
	for _, c := range out {
		if c != nil {
			held = append(held, c)
		}
	}
	return held, res
}
