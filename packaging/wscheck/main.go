// Command wscheck is the WebSocket backend and client of
// scripts/ci-package.sh, which checks an installed wsgate package end to
// end:
//
//	wscheck echo ADDRESS            serve WebSocket echo on ADDRESS until killed
//	wscheck roundtrip URL MESSAGE   send MESSAGE through URL, expect it back
//
// The backend is wsgate's demo echo server; the client is gorilla/websocket,
// an implementation independent of wsgate's.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/internal/echo"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "wscheck:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	switch {
	case len(args) == 2 && args[0] == "echo":
		srv, err := echo.Start(args[1])
		if err != nil {
			return err
		}
		defer srv.Close()
		fmt.Println("echo backend on", srv.Addr())
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		return nil
	case len(args) == 3 && args[0] == "roundtrip":
		return roundTrip(args[1], args[2])
	}
	return fmt.Errorf("usage: wscheck echo ADDRESS | wscheck roundtrip URL MESSAGE")
}

func roundTrip(url, msg string) error {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	c, resp, err := d.Dial(url, nil)
	if err != nil {
		if resp != nil {
			return fmt.Errorf("dial %s: %v (status %d)", url, err, resp.StatusCode)
		}
		return fmt.Errorf("dial %s: %v", url, err)
	}
	defer c.Close()
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, got, err := c.ReadMessage()
	if err != nil {
		return err
	}
	if string(got) != msg {
		return fmt.Errorf("echo %q, want %q", got, msg)
	}
	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	fmt.Printf("round trip through %s: %q\n", url, got)
	return nil
}
