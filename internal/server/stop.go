package server

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/tunnel"
)

// Shutdown stops gracefully (QUIT), as nginx does: it closes the
// listeners and idle keep-alive connections, lets requests in flight
// finish (a request delayed by limit_req is answered when its delay ends,
// or ends when its client leaves; a proxied one is answered when its
// backend answers), sends close 1001 on every tunnel, spread over its
// websocket_drain_period, and waits for all of it. When ctx ends or the
// configuration's worker_shutdown_timeout passes, it closes what is left
// as Close does.
func (s *Server) Shutdown(ctx context.Context) error {
	if rt := s.rt.Load(); rt != nil && rt.cfg.WorkerShutdownTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, rt.cfg.WorkerShutdownTimeout)
		defer cancel()
	}
	s.mu.Lock()
	s.stopLoops()
	s.closing = true
	for ap, q := range s.quic {
		// GOAWAY, then wait for the streams: tunnels over HTTP/3 drain
		// with their close frames like the others.
		go func() {
			q.h3.Shutdown(ctx)
			q.close()
		}()
		delete(s.quic, ap)
	}
	for ap, l := range s.listeners {
		l.ln.Close()
		delete(s.listeners, ap)
	}
	tunnels := make(map[*tunnel.Tunnel]*tunnelInfo, len(s.tunnels))
	for t, ti := range s.tunnels {
		tunnels[t] = ti
	}
	s.closeIdle()
	s.mu.Unlock()
	drain(tunnels, tunnel.ReasonShutdown, "going away")
	return s.waitGraceful(ctx)
}

// waitGraceful waits until every connection and tunnel has ended, or until
// ctx ends: then it closes the rest.
func (s *Server) waitGraceful(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	// Connections that were mid-request become idle later: poll them.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			s.closeRuntime()
			return nil
		case <-ctx.Done():
			s.mu.Lock()
			conns, tunnels := len(s.conns), len(s.tunnels)
			s.mu.Unlock()
			s.log.Load().Printf(errlog.Notice, 0, "shutdown timed out: closing %d connections and %d WebSocket tunnels", conns, tunnels)
			s.Close()
			return ctx.Err()
		case <-tick.C:
			s.mu.Lock()
			s.closeIdle()
			s.mu.Unlock()
		}
	}
}

// closeIdle closes the connections waiting for a request; s.mu is held.
func (s *Server) closeIdle() {
	for c := range s.conns {
		c.closeIfIdle()
	}
}

// abandonWait is how long Close waits, once the tunnels are closed, for
// requests still in progress.
const abandonWait = time.Second

// Close stops at once (TERM): listeners, connections and tunnels are
// closed; tunnels still get a close frame where one can be written without
// waiting. It waits for the tunnels' close handshakes, then at most
// abandonWait for requests still in progress: a request waiting on its
// backend does not notice that its client connection was closed until
// the backend answers or proxy_read_timeout passes, and the process, which
// exits when Close returns, does not wait for that.
func (s *Server) Close() error {
	s.mu.Lock()
	s.stopLoops()
	s.closing = true
	s.haltOnce.Do(func() { close(s.halt) })
	s.closeQUIC()
	for ap, l := range s.listeners {
		l.ln.Close()
		delete(s.listeners, ap)
	}
	for c := range s.conns {
		c.sock().Close()
	}
	tunnels := make([]*tunnel.Tunnel, 0, len(s.tunnels))
	for t := range s.tunnels {
		tunnels = append(tunnels, t)
	}
	s.mu.Unlock()
	var closing sync.WaitGroup
	for _, t := range tunnels {
		closing.Go(func() { t.Shutdown(1001, "going away") })
	}
	closing.Wait()
	s.waitStopped(abandonWait)
	s.closeRuntime() // flushes the access logs; a request given up logs nothing more
	return nil
}

// waitStopped waits up to d for every goroutine of the server to end.
func (s *Server) waitStopped(d time.Duration) {
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.log.Load().Printf(errlog.Notice, 0, "exiting with requests still waiting on their backends")
	}
}

func (s *Server) closeRuntime() {
	s.acme.Close()
	s.stopCaptures()
	s.closeCluster()
	s.closeOtel()
	s.files.CloseAll()
	if rt := s.rt.Load(); rt != nil {
		rt.discard()
	}
}

// stopLoops ends the background loops once and marks the server as
// stopping; s.mu is held.
func (s *Server) stopLoops() {
	if !s.closing {
		close(s.stop)
	}
	s.stopping.Store(true)
}

// errClientGone reports that the client closed its connection while its
// request was held.
var errClientGone = errors.New("client prematurely closed connection")

// pause holds the request for d (limit_req's delay) while watching the
// client, as nginx does: it returns errClientGone as soon as the client
// closes its connection, or net.ErrClosed when the server closes it (TERM,
// worker_shutdown_timeout). A client that sends more bytes meanwhile (a
// body, a pipelined request) cannot be watched without reading them: it
// is then held for the rest of d.
func (c *conn) pause(d time.Duration) error {
	end := time.Now().Add(d)
	if !c.virtual && c.br != nil && c.br.Buffered() == 0 {
		c.c.SetReadDeadline(end)
		_, err := c.br.Peek(1)
		c.c.SetReadDeadline(time.Time{})
		switch {
		case err == nil:
		case isTimeout(err):
			return nil
		case errors.Is(err, net.ErrClosed):
			return err
		default:
			return errClientGone
		}
	}
	t := time.NewTimer(time.Until(end))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-c.srv.halt:
		return net.ErrClosed
	}
}

// abandon ends a request whose pause failed: the client left (logged as
// nginx logs it, status 499) or the server closed the connection. It
// reports that the connection is done.
func (x *exchange) abandon(err error) bool {
	x.close = true
	if errors.Is(err, errClientGone) {
		x.vc.Status = 499
		x.log.Printf(errlog.Info, x.conn.id, "%v%s", err, x.logSuffix())
	}
	x.done()
	return false
}
