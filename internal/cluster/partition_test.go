package cluster

import (
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

// relay is a TCP relay on loopback between a store and Redis that the test
// can cut and restore on the same port: a network partition of one
// instance.
type relay struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
	wg     sync.WaitGroup
}

func startRelay(t *testing.T, target string) *relay {
	r := &relay{t: t, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t))), target: target}
	r.restore()
	t.Cleanup(r.cut)
	return r
}

func (r *relay) restore() {
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		r.t.Fatal(err)
	}
	r.mu.Lock()
	r.ln = ln
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", r.target)
			if err != nil {
				c.Close()
				continue
			}
			r.mu.Lock()
			r.conns = append(r.conns, c, up)
			r.mu.Unlock()
			r.wg.Add(2)
			go func() { defer r.wg.Done(); io.Copy(up, c); up.Close() }()
			go func() { defer r.wg.Done(); io.Copy(c, up); c.Close() }()
		}
	}()
}

// cut closes the listener and every relayed connection.
func (r *relay) cut() {
	r.mu.Lock()
	if r.ln != nil {
		r.ln.Close()
		r.ln = nil
	}
	for _, c := range r.conns {
		c.Close()
	}
	r.conns = nil
	r.mu.Unlock()
	r.wg.Wait()
}

// An instance cut off from the store while a close command is issued
// applies it once it reaches the store again: commands travel through a
// stream read from where the instance left off, not through pub/sub.
func TestCommandsReachAnInstanceThatWasCutOff(t *testing.T) {
	r := startRedis(t)
	a := openStore(t, r.url(), nil)
	rl := startRelay(t, r.addr())
	b := openStore(t, "redis://"+rl.addr, nil)
	closed := make(chan uint16, 1)
	b.Register("carol", "127.0.0.1", "/ws", func(code uint16, _ string) { closed <- code })
	waitFor(t, "b's session in the store, and b reading commands", func() bool {
		l, _ := a.Sessions("carol")
		b.sess.mu.Lock()
		reading := b.sess.last != ""
		b.sess.mu.Unlock()
		return len(l) == 1 && reading
	})
	rl.cut()
	waitFor(t, "b to notice the cut", func() bool { return !b.Up() })
	if _, err := a.CloseSessions("carol", 4002, "bye", time.Minute); err != nil {
		t.Fatal(err)
	}
	rl.restore()
	select {
	case code := <-closed:
		if code != 4002 {
			t.Fatalf("closed with %d", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the command never reached the instance that was cut off")
	}
	if !b.Banned("carol") {
		t.Fatal("the ban did not reach the instance that was cut off")
	}
}
