package handover

import (
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// pair returns both ends, the child's as the new process finds it.
func pair(t *testing.T) (*Conn, *Conn) {
	t.Helper()
	parent, f, err := Pair()
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	t.Setenv(EnvFD, strconv.Itoa(fd))
	child, err := FromEnv()
	if err != nil || child == nil {
		t.Fatalf("FromEnv: %v %v", child, err)
	}
	if os.Getenv(EnvFD) != "" {
		t.Errorf("%s is still set", EnvFD)
	}
	t.Cleanup(func() { parent.Close(); child.Close() })
	return parent, child
}

// TestDescriptorsPass: a message's descriptors arrive as working ones.
func TestDescriptorsPass(t *testing.T) {
	parent, child := pair(t)
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	if err := parent.Send(&Msg{Kind: KindListener, Addr: "127.0.0.1:80"}, p[1]); err != nil {
		t.Fatal(err)
	}
	unix.Close(p[1])
	m, fds, err := child.Recv()
	if err != nil || m.Kind != KindListener || m.Addr != "127.0.0.1:80" || len(fds) != 1 {
		t.Fatalf("got %+v %v %v", m, fds, err)
	}
	if _, err := unix.Write(fds[0], []byte("x")); err != nil {
		t.Fatal(err)
	}
	unix.Close(fds[0])
	var b [1]byte
	if n, err := unix.Read(p[0], b[:]); n != 1 || err != nil || b[0] != 'x' {
		t.Fatalf("read %d %v", n, err)
	}
}

// TestOutboxAcks: each Send returns its own ack, an adoption's error
// included, and every Send fails once the other end is gone.
func TestOutboxAcks(t *testing.T) {
	parent, child := pair(t)
	out := parent.Outbox()
	go func() {
		for {
			m, fds, err := child.Recv()
			if err != nil {
				return
			}
			closeAll(fds)
			ack := &Msg{Kind: KindAck, Seq: m.Seq}
			if m.Seq == 2 {
				ack.Err = "refused"
			}
			if m.Seq == 3 {
				child.Close()
				return
			}
			child.Send(ack)
		}
	}()
	if err := out.Send(map[string]int{"n": 1}); err != nil {
		t.Fatalf("first: %v", err)
	}
	if err := out.Send(map[string]int{"n": 2}); err == nil || err.Error() != "refused" {
		t.Fatalf("second: %v", err)
	}
	if err := out.Send(map[string]int{"n": 3}); err == nil {
		t.Fatal("third: no error from a closed end")
	}
	if err := out.Send(map[string]int{"n": 4}); err == nil {
		t.Fatal("fourth: no error from a closed end")
	}
}

// TestFromEnvUnset: no variable, no upgrade.
func TestFromEnvUnset(t *testing.T) {
	t.Setenv(EnvFD, "")
	if c, err := FromEnv(); c != nil || err != nil {
		t.Fatalf("%v %v", c, err)
	}
	t.Setenv(EnvFD, "x")
	if _, err := FromEnv(); err == nil {
		t.Fatal("a bad descriptor was accepted")
	}
}
