package server

import (
	"bufio"
	"errors"
	"net"
	"testing"
	"time"
)

// pausePair is a conn over a real loopback connection, as the serving loop
// sets it up, and the client's end.
func pausePair(t *testing.T, s *Server) (*conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.Close() })
	return &conn{srv: s, c: sc, br: bufio.NewReader(sc)}, client
}

func TestPause(t *testing.T) {
	s := &Server{halt: make(chan struct{})}
	t.Run("delay ends", func(t *testing.T) {
		c, client := pausePair(t, s)
		if err := c.pause(20 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
		// The pause's read deadline is lifted: a later read waits for data.
		time.AfterFunc(50*time.Millisecond, func() { client.Write([]byte("x")) })
		if b, err := c.br.ReadByte(); err != nil || b != 'x' {
			t.Fatalf("read after the pause: %q %v", b, err)
		}
	})
	t.Run("client closes", func(t *testing.T) {
		c, client := pausePair(t, s)
		go client.Close()
		if err := c.pause(time.Hour); !errors.Is(err, errClientGone) {
			t.Fatalf("%v, want errClientGone", err)
		}
	})
	t.Run("client sends more", func(t *testing.T) {
		c, client := pausePair(t, s)
		client.Write([]byte("GET / HTTP/1.1\r\n"))
		if err := c.pause(50 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if n := c.br.Buffered(); n == 0 {
			t.Fatal("the client's bytes were not kept for the next read")
		}
	})
	t.Run("server closes", func(t *testing.T) {
		c, _ := pausePair(t, s)
		go c.c.Close()
		if err := c.pause(time.Hour); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("%v, want net.ErrClosed", err)
		}
	})
	t.Run("halt ends a pause that cannot watch its client", func(t *testing.T) {
		c, _ := pausePair(t, s)
		c.virtual = true
		close(s.halt)
		if err := c.pause(time.Hour); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("%v, want net.ErrClosed", err)
		}
	})
}
