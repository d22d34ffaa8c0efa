package wsproto

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// gorillaEcho is an independent WebSocket implementation to check the client against.
func gorillaEcho(t *testing.T) string {
	t.Helper()
	up := websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 1024}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		c.SetReadLimit(1 << 22)
		for {
			op, p, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(op, p); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestClientAgainstGorilla(t *testing.T) {
	addr := gorillaEcho(t)
	conn, err := net.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	c, err := Handshake(conn, addr, "/ws")
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	defer c.Close()
	tests := []struct {
		name      string
		op        Opcode
		size      int
		premasked bool
	}{
		{"empty text", OpText, 0, false},
		{"64 B binary", OpBinary, 64, false},
		{"126 B", OpBinary, 126, true},
		{"64 KiB premasked", OpBinary, 64 << 10, true},
		{"1 MiB", OpBinary, 1 << 20, false},
	}
	var buf []byte
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := bytes.Repeat([]byte("x"), tt.size)
			for i := range want {
				want[i] = byte('a' + i%26)
			}
			if tt.premasked {
				p := bytes.Clone(want)
				c.Premask(p)
				err = c.WritePremasked(tt.op, p)
			} else {
				err = c.WriteMessage(tt.op, want)
			}
			if err != nil {
				t.Fatal(err)
			}
			h, got, err := c.ReadMessage(buf)
			if err != nil {
				t.Fatal(err)
			}
			buf = got
			if h.Op != tt.op || !h.Fin || !bytes.Equal(got, want) {
				t.Fatalf("echo: op %v fin %v len %d, want op %v len %d", h.Op, h.Fin, len(got), tt.op, len(want))
			}
		})
	}
}

func TestHandshakeRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusBadGateway)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	conn, err := net.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := Handshake(conn, addr, "/ws"); err == nil || !strings.Contains(err.Error(), "502") {
		t.Fatalf("Handshake err = %v, want one naming the 502", err)
	}
}
