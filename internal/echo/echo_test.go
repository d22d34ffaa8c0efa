package echo

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestEchoAndPage(t *testing.T) {
	s, err := Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, _, err := websocket.DefaultDialer.Dial("ws://"+s.Addr()+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, msg := range []string{"hello", strings.Repeat("x", 70000)} {
		if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		if _, got, err := c.ReadMessage(); err != nil || string(got) != msg {
			t.Fatalf("echo of %d bytes: %d bytes, %v", len(msg), len(got), err)
		}
	}
	c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "bye"), deadline())
	if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, 1000) {
		t.Errorf("close: %v", err)
	}
	c.Close()
	for path, want := range map[string]int{"/": 200, "/nope": 404} {
		resp, err := http.Get("http://" + s.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || (want == 200 && !strings.Contains(string(body), "new WebSocket")) {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
	// A handshake with a bad key is refused.
	if _, resp, err := websocket.DefaultDialer.Dial("ws://"+s.Addr()+"/ws", http.Header{"Sec-WebSocket-Key": {"short"}}); err == nil || resp == nil || resp.StatusCode != 400 {
		t.Errorf("bad key: %v %v", err, resp)
	}
	http.DefaultClient.CloseIdleConnections()
}

func deadline() (t time.Time) { return time.Now().Add(5 * time.Second) }
