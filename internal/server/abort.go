package server

import (
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/internal/backend"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/limit"
)

// clientWatch notices a client that closes its connection while wsgate
// waits for the backend's answer, and then cuts the backend connection,
// as nginx does unless proxy_ignore_client_abort is on: the backend's
// work is cancelled and the request's limit_conn slot freed at once.
type clientWatch struct {
	tcp  *net.TCPConn
	gone atomic.Bool
	done chan struct{}
}

// watchClient starts watching while bc waits for its answer; nil when
// nothing is watched (proxy_ignore_client_abort on, an HTTP/2 or HTTP/3
// stream, a client that already sent more bytes, a request body that
// still streams from the client, or a WebSocket handshake: its backend
// answers at once, and the watch would cost every handshake a goroutine).
func (x *exchange) watchClient(bc *backend.Conn) *clientWatch {
	c := x.conn
	if x.lc.ProxyRest.IgnoreAbort || c.virtual || c.tcp == nil || x.upstreamOut.streamed || c.br != nil && c.br.Buffered() > 0 || x.upgrade() {
		return nil
	}
	rc, err := c.tcp.SyscallConn()
	if err != nil {
		return nil
	}
	w := &clientWatch{tcp: c.tcp, done: make(chan struct{})}
	backendConn, leases := bc.Net(), x.leases
	go func() {
		defer close(w.done)
		rc.Read(func(fd uintptr) bool {
			var b [1]byte
			n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			if err == syscall.EAGAIN {
				return false // nothing yet: wait until the socket is readable
			}
			if n == 0 { // end of stream or an error: the client has gone
				w.gone.Store(true)
				// The slots go first: the request's own release, after
				// stop's wait on done, finds them given back.
				limit.ReleaseAll(leases)
				backendConn.Close()
			}
			return true // data (a pipelined request) is not a close
		})
	}()
	return w
}

// stop ends the watch and reports whether the client has gone.
func (w *clientWatch) stop() bool {
	if w == nil {
		return false
	}
	w.tcp.SetReadDeadline(time.Unix(1, 0)) // wakes the watcher
	<-w.done
	w.tcp.SetReadDeadline(time.Time{})
	return w.gone.Load()
}

// clientAborted ends a request whose client left while the backend was
// working on it: 499, logged as nginx logs it, nothing answered, and the
// peer not blamed.
func (x *exchange) clientAborted(p *pass, bc *backend.Conn, peer string) bool {
	bc.Release(false)
	p.setStatus("499")
	x.setUpstreamVars(p)
	x.logRequest(errlog.Info, peer, "client prematurely closed connection, so upstream connection is closed too while reading response header from upstream")
	x.close = true
	x.status, x.vc.Status = 499, 499
	x.done()
	return false
}
