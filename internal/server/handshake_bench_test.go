package server

import (
	"bytes"
	"fmt"
	"net"
	"testing"
	"time"
)

// BenchmarkWebSocketHandshake opens and closes one plain WebSocket
// through the server per op: the client connects, sends its upgrade,
// reads the 101 and closes; the backend answers and closes once the
// tunnel does. Allocations per op count the client's and the backend's
// (a constant few dozen) beside the server's; go test -benchmem shows
// them.
func BenchmarkWebSocketHandshake(b *testing.B) {
	be := holdBackend(b)
	port := freeTCPPort(b)
	s := applyTestConfig(b, "/tmp/b.conf", fmt.Sprintf(`
error_log stderr crit;
http {
    access_log off;
    server {
        listen 127.0.0.1:%d;
        location /ws {
            proxy_pass http://%s;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }
    }
}`, port, be.Addr()))
	defer s.Close()
	addr := s.Addrs()[0].String()
	req := []byte("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	buf := make([]byte, 1024)
	b.ReportAllocs()
	for b.Loop() {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		n := 0
		for !bytes.Contains(buf[:n], []byte("\r\n\r\n")) {
			m, err := c.Read(buf[n:])
			if err != nil {
				b.Fatalf("after %q: %v", buf[:n], err)
			}
			n += m
		}
		if !bytes.HasPrefix(buf[:n], []byte("HTTP/1.1 101 ")) {
			b.Fatalf("answer %q", buf[:n])
		}
		c.Close()
	}
	b.StopTimer()
	for end := time.Now().Add(10 * time.Second); s.Stats.Tunnels.Load() > 0; time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			b.Fatalf("%d tunnels still open", s.Stats.Tunnels.Load())
		}
	}
}
