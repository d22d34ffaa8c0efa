// Package handover is the wire between an old wsgate process and the new
// binary it starts on an upgrade: a unix SOCK_SEQPACKET socket pair, the
// child's end passed as a descriptor named by $WSGATE_HANDOVER_FD. Each
// message is one packet: a JSON Msg and up to two descriptors (SCM_RIGHTS).
//
// The conversation:
//
//	old -> new  listener (one per listening socket, with its descriptor)
//	old -> new  listeners (N: how many UDP sockets follow)
//	old -> new  listener with UDP (one per HTTP/3 socket), N of them
//	new -> old  ready, once its configuration is applied; or failed
//	old -> new  tunnel (Seq, Body, client and backend descriptors), many
//	new -> old  ack (Seq, Err) for each tunnel, adopted or not
//	old -> new  done, once the old process has nothing left but to exit
//
// The UDP sockets come after listeners so that a new process of an
// earlier version, which reads up to listeners, drops them unread.
//
// It knows nothing of what the descriptors and bodies are.
package handover

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// EnvFD names the environment variable that gives the new process the
// descriptor of its end.
const EnvFD = "WSGATE_HANDOVER_FD"

// Kinds of messages.
const (
	KindListener  = "listener"
	KindListeners = "listeners"
	KindReady     = "ready"
	KindFailed    = "failed"
	KindTunnel    = "tunnel"
	KindAck       = "ack"
	KindDone      = "done"
)

// Msg is one message.
type Msg struct {
	Kind string          `json:"kind"`
	Seq  uint64          `json:"seq,omitempty"`
	Addr string          `json:"addr,omitempty"` // listener: the listen address
	Unix string          `json:"unix,omitempty"` // listener: a unix socket's path
	UDP  bool            `json:"udp,omitempty"`  // listener: a UDP socket served with HTTP/3
	N    int             `json:"n,omitempty"`    // listeners: how many UDP listener messages follow
	Err  string          `json:"err,omitempty"`  // failed, ack
	PID  int             `json:"pid,omitempty"`  // ready
	Body json.RawMessage `json:"body,omitempty"` // tunnel
}

// maxPacket bounds a message; a tunnel's state and session take a few
// kilobytes.
const maxPacket = 1 << 20

// Conn is one end of the pair. Send and Recv are each safe for use by one
// goroutine at a time; Send from several is serialised.
type Conn struct {
	f   *os.File
	rc  syscall.RawConn
	wmu sync.Mutex
	buf []byte
	oob []byte
}

// Pair returns the old process's end and the file to give the new process
// (in exec.Cmd.ExtraFiles), which the caller closes once it has started.
func Pair() (*Conn, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, os.NewSyscallError("socketpair", err)
	}
	c, err := newConn(fds[0])
	if err != nil {
		unix.Close(fds[1])
		return nil, nil, err
	}
	return c, os.NewFile(uintptr(fds[1]), "wsgate-handover"), nil
}

// FromEnv returns the new process's end when $WSGATE_HANDOVER_FD names
// one, and unsets the variable; nil, nil when this is no upgrade.
func FromEnv() (*Conn, error) {
	v := os.Getenv(EnvFD)
	if v == "" {
		return nil, nil
	}
	os.Unsetenv(EnvFD)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("%s=%q is not a descriptor", EnvFD, v)
	}
	unix.CloseOnExec(fd)
	return newConn(fd)
}

func newConn(fd int) (*Conn, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "wsgate-handover")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Conn{f: f, rc: rc, buf: make([]byte, maxPacket), oob: make([]byte, unix.CmsgSpace(2*4))}, nil
}

// Close closes this end; the other end's Recv then fails.
func (c *Conn) Close() error { return c.f.Close() }

// Send writes m with the descriptors fds, which stay open here.
func (c *Conn) Send(m *Msg, fds ...int) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if len(b) > maxPacket {
		return fmt.Errorf("handover: %s message of %d bytes is too large", m.Kind, len(b))
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var serr error
	err = c.rc.Write(func(fd uintptr) bool {
		serr = unix.Sendmsg(int(fd), b, oob, nil, unix.MSG_NOSIGNAL)
		return serr != unix.EAGAIN
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("handover: sending %s: %w", m.Kind, err)
	}
	return nil
}

// ErrClosed: the other end has closed (or its process has exited).
var ErrClosed = errors.New("handover: the other process closed its end")

// Recv reads the next message and the descriptors that came with it
// (close-on-exec, owned by the caller).
func (c *Conn) Recv() (*Msg, []int, error) {
	var n, oobn, flags int
	var rerr error
	err := c.rc.Read(func(fd uintptr) bool {
		n, oobn, flags, _, rerr = unix.Recvmsg(int(fd), c.buf, c.oob, unix.MSG_CMSG_CLOEXEC)
		return rerr != unix.EAGAIN
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return nil, nil, fmt.Errorf("handover: receiving: %w", err)
	}
	fds, ferr := parseRights(c.oob[:oobn])
	if n == 0 && oobn == 0 {
		return nil, nil, ErrClosed
	}
	if flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 || ferr != nil {
		closeAll(fds)
		return nil, nil, fmt.Errorf("handover: a truncated message (flags %#x, %v)", flags, ferr)
	}
	var m Msg
	if err := json.Unmarshal(c.buf[:n], &m); err != nil {
		closeAll(fds)
		return nil, nil, fmt.Errorf("handover: a bad message: %w", err)
	}
	return &m, fds, nil
}

func parseRights(oob []byte) ([]int, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var fds []int
	for i := range msgs {
		got, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			closeAll(fds)
			return nil, err
		}
		fds = append(fds, got...)
	}
	return fds, nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// Conn returns a net.Conn for a received socket descriptor, which it takes
// over.
func SocketConn(fd int, name string) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	return net.FileConn(f)
}

// SocketListener is SocketConn for a listening socket.
func SocketListener(fd int, name string) (net.Listener, error) {
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	return net.FileListener(f)
}

// SocketPacketConn makes a received UDP socket a net.PacketConn; fd is
// closed.
func SocketPacketConn(fd int, name string) (net.PacketConn, error) {
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	return net.FilePacketConn(f)
}

// FD runs f with c's descriptor, which must be a socket.
func FD(c syscall.Conn, f func(fd int)) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Control(func(fd uintptr) { f(int(fd)) })
}

// Outbox sends tunnels from the old process and waits for their acks; it
// reads c until c fails or is closed, so nothing else may Recv meanwhile.
// Safe for concurrent use: tunnels are pipelined, each Send waiting only
// for its own ack.
type Outbox struct {
	c       *Conn
	mu      sync.Mutex
	seq     uint64
	waiting map[uint64]chan error
	err     error // once set, c is broken
	ended   chan struct{}
}

// Outbox starts reading acks on c.
func (c *Conn) Outbox() *Outbox {
	o := &Outbox{c: c, waiting: map[uint64]chan error{}, ended: make(chan struct{})}
	go o.readAcks()
	return o
}

func (o *Outbox) readAcks() {
	defer close(o.ended)
	for {
		m, fds, err := o.c.Recv()
		closeAll(fds)
		if err == nil && m.Kind != KindAck {
			err = fmt.Errorf("handover: unexpected %q message", m.Kind)
		}
		o.mu.Lock()
		if err != nil {
			o.err = err
			for seq, ch := range o.waiting {
				ch <- err
				delete(o.waiting, seq)
			}
			o.mu.Unlock()
			return
		}
		if ch := o.waiting[m.Seq]; ch != nil {
			delete(o.waiting, m.Seq)
			if m.Err != "" {
				ch <- errors.New(m.Err)
			} else {
				ch <- nil
			}
		}
		o.mu.Unlock()
	}
}

// Send sends a tunnel's body with its two descriptors and returns once
// the new process has answered: nil when it adopted the tunnel.
func (o *Outbox) Send(body any, fds ...int) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	ch := make(chan error, 1)
	o.mu.Lock()
	if o.err != nil {
		o.mu.Unlock()
		return o.err
	}
	o.seq++
	seq := o.seq
	o.waiting[seq] = ch
	o.mu.Unlock()
	if err := o.c.Send(&Msg{Kind: KindTunnel, Seq: seq, Body: b}, fds...); err != nil {
		o.mu.Lock()
		delete(o.waiting, seq)
		o.mu.Unlock()
		return err
	}
	return <-ch
}

// Done tells the new process that nothing more comes and closes c.
func (o *Outbox) Done() {
	o.c.Send(&Msg{Kind: KindDone})
	o.c.Close()
	<-o.ended
}
