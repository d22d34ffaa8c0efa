package upstream

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"
)

// HealthCheck configures active health checks (nginx Plus's health_check).
// Zero fields take the defaults noted. A peer turns unhealthy after Fails
// consecutive failed checks and healthy again after Passes consecutive
// passed ones; an unhealthy peer is never picked, even when it is the only
// one. Peers start healthy. Peers marked down are not checked.
type HealthCheck struct {
	Interval time.Duration // between checks of one peer; 5s
	Timeout  time.Duration // for one check, connect to status line; 5s
	Fails    int           // 1
	Passes   int           // 1
	URI      string        // "/"
	Port     int           // 0: the peer's own port
	Host     string        // Host header; "" = the upstream name
	// WebSocket makes each check a real WebSocket handshake: it passes
	// only on 101 with the right Sec-WebSocket-Accept, then sends a close
	// frame. A plain check passes on any 2xx or 3xx status.
	WebSocket bool
	// TLS, when set, runs each check over TLS (an upstream of https://
	// peers), with the proxying location's proxy_ssl_* settings.
	TLS *tls.Config
}

func (hc HealthCheck) withDefaults(upstreamName string) HealthCheck {
	if hc.Interval <= 0 {
		hc.Interval = 5 * time.Second
	}
	if hc.Timeout <= 0 {
		hc.Timeout = 5 * time.Second
	}
	if hc.Fails <= 0 {
		hc.Fails = 1
	}
	if hc.Passes <= 0 {
		hc.Passes = 1
	}
	if hc.URI == "" {
		hc.URI = "/"
	}
	if hc.Host == "" {
		hc.Host = upstreamName
	}
	return hc
}

// takeHealth hands the health state of every peer to u: with checks, u's
// checkers become the only writers (an older generation's checkers, still
// running until their Close, see they were superseded and stop writing);
// without checks, peers are healthy.
func (u *Upstream) takeHealth() {
	for _, p := range u.all {
		st := p.st
		st.mu.Lock()
		if u.health == nil || p.cfg.Down {
			st.owner = nil
			st.unhealthy.Store(false)
			st.hcPasses, st.hcFails = 0, 0
		} else {
			st.owner = u
		}
		st.mu.Unlock()
	}
}

// startCheckers runs one checker per peer of peers not marked down, until
// ctx ends (for a Dynamic upstream, or until the peer leaves).
func (u *Upstream) startCheckers(ctx context.Context, peers []*Peer) {
	hc := u.health
	for _, p := range peers {
		if p.cfg.Down {
			continue
		}
		addr := p.cfg.Addr
		if hc.Port > 0 {
			if host, _, err := net.SplitHostPort(addr); err == nil {
				addr = net.JoinHostPort(host, strconv.Itoa(hc.Port))
			}
		}
		host := hc.Host
		if host == "" {
			host = p.cfg.Addr
		}
		pctx := ctx
		if u.dynamic {
			var stop context.CancelFunc
			pctx, stop = context.WithCancel(ctx)
			if u.checks == nil {
				u.checks = map[*peerState]context.CancelFunc{}
			}
			u.checks[p.st] = stop
		}
		u.wg.Add(1)
		go u.checkLoop(pctx, p, addr, host)
	}
}

func (u *Upstream) checkLoop(ctx context.Context, p *Peer, addr, host string) {
	defer u.wg.Done()
	t := time.NewTicker(u.health.Interval)
	defer t.Stop()
	for {
		err := u.health.probe(ctx, addr, host)
		if ctx.Err() != nil {
			return
		}
		u.recordCheck(p, err)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// recordCheck applies one check result to p's health.
func (u *Upstream) recordCheck(p *Peer, err error) {
	st := p.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.owner != u {
		return
	}
	if err == nil {
		st.hcFails = 0
		if !st.unhealthy.Load() {
			return
		}
		if st.hcPasses++; st.hcPasses >= u.health.Passes {
			st.hcPasses = 0
			st.unhealthy.Store(false)
			if p.ss > 0 {
				st.recovered.Store(u.now().UnixNano())
			}
			u.warnf("upstream %q: server %s (%s) is healthy again", u.name, p.cfg.Name, p.cfg.Addr)
		}
		return
	}
	st.hcPasses = 0
	if st.unhealthy.Load() {
		return
	}
	if st.hcFails++; st.hcFails >= u.health.Fails {
		st.hcFails = 0
		st.unhealthy.Store(true)
		u.warnf("upstream %q: server %s (%s) is unhealthy: %v", u.name, p.cfg.Name, p.cfg.Addr, err)
	}
}

// wsGUID is RFC 6455's key suffix for Sec-WebSocket-Accept.
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

var errNotSwitching = errors.New("no WebSocket upgrade")

// probe runs one check against addr and returns why it failed, or nil.
func (hc *HealthCheck) probe(ctx context.Context, addr, host string) error {
	ctx, cancel := context.WithTimeout(ctx, hc.Timeout)
	defer cancel()
	var d net.Dialer
	network := "tcp"
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		network, addr = "unix", path
	}
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	// Unblock reads and writes when Close cancels or the timeout expires.
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if hc.TLS != nil {
		tc := tls.Client(c, hc.TLS)
		if err := tc.Handshake(); err != nil {
			return fmt.Errorf("SSL handshake: %w", err)
		}
		c = tc
	}

	var req strings.Builder
	fmt.Fprintf(&req, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: wsgate-health-check\r\n", hc.URI, host)
	var key string
	if hc.WebSocket {
		var nonce [16]byte
		rand.Read(nonce[:])
		key = base64.StdEncoding.EncodeToString(nonce[:])
		fmt.Fprintf(&req, "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", key)
	} else {
		req.WriteString("Connection: close\r\n\r\n")
	}
	if _, err := c.Write([]byte(req.String())); err != nil {
		return err
	}

	r := textproto.NewReader(bufio.NewReaderSize(c, 1024))
	line, err := r.ReadLine()
	if err != nil {
		return fmt.Errorf("reading status line: %w", err)
	}
	code, err := statusCode(line)
	if err != nil {
		return err
	}
	if !hc.WebSocket {
		if code < 200 || code > 399 {
			return fmt.Errorf("status %d", code)
		}
		return nil
	}
	if code != 101 {
		return fmt.Errorf("%w: status %d", errNotSwitching, code)
	}
	h, err := r.ReadMIMEHeader()
	if err != nil {
		return fmt.Errorf("reading headers: %w", err)
	}
	if !strings.EqualFold(h.Get("Upgrade"), "websocket") || !hasToken(h.Values("Connection"), "upgrade") {
		return fmt.Errorf("%w: missing Upgrade or Connection header", errNotSwitching)
	}
	sum := sha1.Sum([]byte(key + wsGUID))
	if h.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		return fmt.Errorf("%w: wrong Sec-WebSocket-Accept", errNotSwitching)
	}
	// A masked close frame with status 1000, so the backend logs a clean
	// close rather than an abrupt one.
	var mask [4]byte
	rand.Read(mask[:])
	frame := []byte{0x88, 0x82, mask[0], mask[1], mask[2], mask[3], 0x03 ^ mask[0], 0xe8 ^ mask[1]}
	if _, err := c.Write(frame); err != nil {
		return fmt.Errorf("sending close frame: %w", err)
	}
	return nil
}

func statusCode(line string) (int, error) {
	// "HTTP/1.1 200 OK"
	if len(line) < 12 || !strings.HasPrefix(line, "HTTP/1.") || line[8] != ' ' {
		return 0, fmt.Errorf("malformed status line %q", line)
	}
	code, err := strconv.Atoi(line[9:12])
	if err != nil || (len(line) > 12 && line[12] != ' ') {
		return 0, fmt.Errorf("malformed status line %q", line)
	}
	return code, nil
}

func hasToken(values []string, token string) bool {
	for _, v := range values {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
