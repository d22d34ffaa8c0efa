package tunnel

import (
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/wsframe"
)

// waitLeg is a client leg without a RawConn that waits for data as an
// HTTP/2 or HTTP/3 stream does (ReadWaiter): here by peeking at its
// socket. It reports each wait on waits, then waits for resume: the test
// looks at the direction in between.
type waitLeg struct {
	net.Conn
	rc            syscall.RawConn
	waits, resume chan struct{}
}

func (l *waitLeg) WaitRead() error {
	l.waits <- struct{}{}
	<-l.resume
	var one [1]byte
	var perr error
	err := l.rc.Read(func(fd uintptr) bool {
		_, _, perr = syscall.Recvfrom(int(fd), one[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return perr != syscall.EAGAIN
	})
	if err != nil {
		return err
	}
	if perr != nil {
		return perr
	}
	return nil
}

// TestReadWaiterHoldsNoBuffer: a direction whose source is a ReadWaiter
// holds no read buffer while it waits, before its first message and
// after each one, and relays what comes as any other leg.
func TestReadWaiterHoldsNoBuffer(t *testing.T) {
	cli, cliSock := tcpPair(t)
	beLeg, be := tcpPair(t)
	rc, err := cliSock.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	leg := &waitLeg{Conn: cliSock, rc: rc, waits: make(chan struct{}, 1), resume: make(chan struct{})}
	rg := startRig(t, cli, leg, beLeg, be, Config{Frames: true}, nil, nil)
	d := &rg.tun.dirs[c2b]
	waiting := func(what string) {
		t.Helper()
		select {
		case <-leg.waits:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the direction never waited", what)
		}
		// The send on waits follows the buffer's release.
		if d.rs == nil {
			t.Fatalf("%s: no relay state", what)
		}
		small := d.rs.small
		leg.resume <- struct{}{}
		if small != nil {
			t.Fatalf("%s: the waiting direction holds its read buffer", what)
		}
	}
	waiting("before the first message")
	for i := range 3 {
		msg := []byte{'m', byte('0' + i)}
		f := wsframe.AppendFrame(nil, wsframe.OpBinary, msg, true, [4]byte{1, 2, 3, 4})
		if _, err := cli.Write(f); err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "relayed frame", readN(t, be, len(f)), f)
		waiting("after a message")
	}
}
