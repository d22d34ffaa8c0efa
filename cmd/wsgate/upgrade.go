//go:build linux

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/handover"
	"github.com/wsgate/wsgate/internal/server"
)

// A binary upgrade (USR2, `-s upgrade`): the running process starts its
// executable again with the same arguments and a handover socket
// (internal/handover); the new process inherits the listening sockets,
// applies its configuration and says it is ready, then adopts the plain
// tunnels while the old process stops accepting, finishes its requests and
// keeps what cannot move for websocket_upgrade_drain_period. Until the new
// process is ready nothing changes here: if it fails, this process goes on
// serving and logs why.

// upgradeReadyWait bounds the new process's start, up to its ready message.
const upgradeReadyWait = time.Minute

// upgrading is an upgrade whose new process is ready.
type upgrading struct {
	pid int
	out *handover.Outbox
}

// startUpgrade starts the new process and waits until it serves; nil, with
// the reason logged, when it does not.
func startUpgrade(srv *server.Server, log *errlog.Logger) *upgrading {
	up, err := spawnUpgrade(srv)
	if err != nil {
		log.Printf(errlog.Alert, 0, "binary upgrade failed, this process keeps serving: %v", err)
		return nil
	}
	log.Printf(errlog.Notice, 0, "new binary is serving as pid %d; handing over the WebSocket tunnels", up.pid)
	return up
}

func spawnUpgrade(srv *server.Server) (*upgrading, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	c, childEnd, err := handover.Pair()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, os.Args[1:]...)
	cmd.Env = upgradeEnv(os.Environ())
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{childEnd} // descriptor 3, named in the environment
	err = cmd.Start()
	childEnd.Close()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("starting %s: %w", self, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	pid, err := handshake(c, srv)
	if err != nil {
		c.Close()
		select {
		case werr := <-exited:
			if werr != nil {
				err = fmt.Errorf("the new binary (pid %d) exited: %v (%w)", cmd.Process.Pid, werr, err)
			}
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
		}
		return nil, err
	}
	return &upgrading{pid: pid, out: c.Outbox()}, nil
}

// upgradeEnv is the new process's environment: this one's, naming the
// handover socket, without what made this process a daemon child (the new
// one is neither forked again nor reporting to a terminal) and without
// systemd's WATCHDOG_PID, which names this process: the new one, the
// service's main process once it sends MAINPID=, keeps the watchdog fed.
func upgradeEnv(env []string) []string {
	out := make([]string, 0, len(env)+1)
	for _, e := range env {
		if strings.HasPrefix(e, "WSGATE_DAEMON=") || strings.HasPrefix(e, "WATCHDOG_PID=") || strings.HasPrefix(e, handover.EnvFD+"=") {
			continue
		}
		out = append(out, e)
	}
	return append(out, handover.EnvFD+"=3")
}

// handshake gives the new process the listening sockets and waits for its
// answer: its pid once it serves, or why it cannot.
func handshake(c *handover.Conn, srv *server.Server) (int, error) {
	lfs, err := srv.ListenerFiles()
	if err != nil {
		return 0, err
	}
	defer func() {
		for _, lf := range lfs {
			lf.File.Close()
		}
	}()
	// The UDP sockets follow the end of the list, which says how many
	// come: a new process of an earlier version, which knows none, then
	// binds its own and drops these unread.
	var tcp, udp []server.ListenerFile
	for _, lf := range lfs {
		if lf.UDP {
			udp = append(udp, lf)
		} else {
			tcp = append(tcp, lf)
		}
	}
	if err := sendListeners(c, tcp); err != nil {
		return 0, err
	}
	if err := c.Send(&handover.Msg{Kind: handover.KindListeners, N: len(udp)}); err != nil {
		return 0, err
	}
	if err := sendListeners(c, udp); err != nil {
		return 0, err
	}
	type answer struct {
		m   *handover.Msg
		err error
	}
	got := make(chan answer, 1)
	go func() {
		m, fds, err := c.Recv()
		for _, fd := range fds {
			unix.Close(fd)
		}
		got <- answer{m, err}
	}()
	select {
	case a := <-got:
		switch {
		case a.err != nil:
			return 0, fmt.Errorf("the new binary ended before it was ready (%w)", a.err)
		case a.m.Kind == handover.KindFailed:
			return 0, fmt.Errorf("the new binary failed: %s", a.m.Err)
		case a.m.Kind != handover.KindReady:
			return 0, fmt.Errorf("the new binary sent %q", a.m.Kind)
		}
		return a.m.PID, nil
	case <-time.After(upgradeReadyWait):
		return 0, fmt.Errorf("the new binary was not ready within %v", upgradeReadyWait)
	}
}

// sendListeners sends one message per socket, with its descriptor.
func sendListeners(c *handover.Conn, lfs []server.ListenerFile) error {
	for _, lf := range lfs {
		// Not File.Fd, which would make the socket blocking, for this
		// process's listener too.
		rc, err := lf.File.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = c.Send(&handover.Msg{Kind: handover.KindListener, Addr: lf.Addr, Unix: lf.Unix, UDP: lf.UDP}, int(fd))
		}); err != nil {
			return err
		}
		if serr != nil {
			return serr
		}
	}
	return nil
}

// send hands one tunnel to the new process.
func (up *upgrading) send(m *server.Moved, client, backend net.Conn) error {
	var fds [2]int
	for i, c := range []net.Conn{client, backend} {
		sc, ok := c.(syscall.Conn)
		if !ok {
			return errors.New("not a socket")
		}
		if err := handover.FD(sc, func(fd int) { fds[i] = fd }); err != nil {
			return err
		}
	}
	return up.out.Send(m, fds[0], fds[1])
}

// retire runs the old process's part once the new one serves, and returns
// when nothing is left here.
func (up *upgrading) retire(srv *server.Server, log *errlog.Logger, period time.Duration) {
	moved, stayed := srv.Retire(up.send, period)
	up.out.Done()
	log.Printf(errlog.Notice, 0, "%d WebSocket tunnels moved to pid %d, %d ended here", moved, up.pid, stayed)
}

// upgradeChild is the new process's end of an upgrade.
type upgradeChild struct {
	c *handover.Conn
}

// inheritUpgrade takes the listening sockets of the process that started
// this one for an upgrade; nil when this is no upgrade.
func inheritUpgrade(srv *server.Server) (*upgradeChild, error) {
	c, err := handover.FromEnv()
	if c == nil || err != nil {
		return nil, err
	}
	var lns []net.Listener
	udp := 0
	for {
		m, fds, err := c.Recv()
		if err != nil {
			return nil, err
		}
		if m.Kind == handover.KindListeners {
			udp = m.N
			break
		}
		if m.Kind != handover.KindListener || m.UDP || len(fds) != 1 {
			return nil, fmt.Errorf("handover: unexpected %q message", m.Kind)
		}
		ln, err := handover.SocketListener(fds[0], m.Addr)
		if err != nil {
			return nil, fmt.Errorf("inheriting %s: %w", m.Addr, err)
		}
		lns = append(lns, ln)
	}
	srv.InheritListeners(lns)
	pcs := map[netip.AddrPort]net.PacketConn{}
	for range udp {
		m, fds, err := c.Recv()
		if err != nil {
			return nil, err
		}
		if m.Kind != handover.KindListener || !m.UDP || len(fds) != 1 {
			return nil, fmt.Errorf("handover: unexpected %q message", m.Kind)
		}
		pc, err := inheritUDP(fds[0], m.Addr)
		if err != nil {
			return nil, fmt.Errorf("inheriting udp %s: %w", m.Addr, err)
		}
		pcs[pc.addr] = pc.pc
	}
	srv.InheritQUIC(pcs)
	return &upgradeChild{c: c}, nil
}

type inheritedUDP struct {
	addr netip.AddrPort
	pc   net.PacketConn
}

// inheritUDP takes one of the old process's HTTP/3 sockets.
func inheritUDP(fd int, addr string) (inheritedUDP, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		unix.Close(fd)
		return inheritedUDP{}, err
	}
	pc, err := handover.SocketPacketConn(fd, addr)
	return inheritedUDP{ap, pc}, err
}

// failed tells the old process why this one cannot take over. It then
// reads what is left until the old process closes its end (at most a few
// seconds): closing a socket with unread messages would reset the
// connection, and the old process could lose the reason.
func (u *upgradeChild) failed(err error) {
	if u == nil {
		return
	}
	u.c.Send(&handover.Msg{Kind: handover.KindFailed, Err: err.Error()})
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for {
			_, fds, err := u.c.Recv()
			for _, fd := range fds {
				unix.Close(fd)
			}
			if err != nil {
				return
			}
		}
	}()
	select {
	case <-drained:
	case <-time.After(5 * time.Second):
	}
	u.c.Close()
}

// upgradeFailedEarly tells the process that started this one for an
// upgrade, if one did, why this one stops before it could serve.
func upgradeFailedEarly(err error) {
	if os.Getenv(handover.EnvFD) == "" {
		return
	}
	if c, cerr := handover.FromEnv(); cerr == nil {
		(&upgradeChild{c: c}).failed(err)
	}
}

// quicHoldMargin is how long after its websocket_upgrade_drain_period the
// new process waits at most for the old one before it reads the HTTP/3
// sockets anyway: the old process's tunnels have had their close 1001 by
// then.
const quicHoldMargin = time.Minute

// ready tells the old process that this one serves, tells systemd that it
// is the service's main process now, and adopts the tunnels that come.
// HTTP/3 starts once the old process is done with the UDP sockets (the
// handover ends: it says done once its own QUIC connections have closed,
// or it exited), or drain plus quicHoldMargin from now.
func (u *upgradeChild) ready(srv *server.Server, log *errlog.Logger, sd *notifier, drain time.Duration) {
	if u == nil {
		return
	}
	sd.send("MAINPID="+strconv.Itoa(os.Getpid()), "READY=1", "STATUS="+oneLine(servingStatus(srv)))
	if err := u.c.Send(&handover.Msg{Kind: handover.KindReady, PID: os.Getpid()}); err != nil {
		log.Printf(errlog.Alert, 0, "binary upgrade: %v", err)
		u.c.Close()
		srv.StartQUIC()
		return
	}
	bound := time.AfterFunc(drain+quicHoldMargin, srv.StartQUIC)
	go func() {
		u.adopt(srv, log)
		bound.Stop()
		srv.StartQUIC()
	}()
}

// adoptWorkers is how many tunnels the new process adopts at once: the
// old process keeps that many and more in flight, and a busy machine
// schedules one goroutine per message too slowly.
const adoptWorkers = 8

// adopt takes the tunnels the old process hands over, until it is done.
func (u *upgradeChild) adopt(srv *server.Server, log *errlog.Logger) {
	type job struct {
		m   *handover.Msg
		fds []int
	}
	jobs := make(chan job, 256)
	var n atomic.Int64
	var wg sync.WaitGroup
	for range adoptWorkers {
		wg.Go(func() {
			for j := range jobs {
				ack := &handover.Msg{Kind: handover.KindAck, Seq: j.m.Seq}
				if err := adoptOne(srv, j.m, j.fds); err != nil {
					ack.Err = err.Error()
				} else {
					n.Add(1)
				}
				u.c.Send(ack) // a failure shows in Recv
			}
		})
	}
	err := u.receive(func(m *handover.Msg, fds []int) { jobs <- job{m, fds} })
	close(jobs)
	wg.Wait()
	u.c.Close()
	if err != nil {
		log.Printf(errlog.Warn, 0, "binary upgrade: the old process left after %d WebSocket tunnels: %v", n.Load(), err)
		return
	}
	log.Printf(errlog.Notice, 0, "binary upgrade: %d WebSocket tunnels adopted", n.Load())
}

// receive passes each tunnel message to got until the old process is
// done (nil) or the connection fails.
func (u *upgradeChild) receive(got func(*handover.Msg, []int)) error {
	for {
		m, fds, err := u.c.Recv()
		if err != nil {
			return err
		}
		switch m.Kind {
		case handover.KindDone:
			return nil
		case handover.KindTunnel:
			got(m, fds)
		default:
			for _, fd := range fds {
				unix.Close(fd)
			}
		}
	}
}

func adoptOne(srv *server.Server, m *handover.Msg, fds []int) error {
	if len(fds) != 2 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return fmt.Errorf("a tunnel came with %d descriptors", len(fds))
	}
	var mv server.Moved
	if err := json.Unmarshal(m.Body, &mv); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return err
	}
	client, err := handover.SocketConn(fds[0], "client")
	if err != nil {
		unix.Close(fds[1])
		return err
	}
	backend, err := handover.SocketConn(fds[1], "backend")
	if err != nil {
		client.Close()
		return err
	}
	srv.Adopt(&mv, client, backend)
	return nil
}

// removePIDIfOurs removes the pid file unless it names another process
// (the new binary of an upgrade, which wrote it).
func removePIDIfOurs(path string) {
	b, err := os.ReadFile(path)
	if err == nil && strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		return
	}
	os.Remove(path)
}
