package e2e

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

const h2AbuseConf = `
error_log {{DIR}}/error.log info;
events { worker_connections 8192; }
http {
    server {
        listen 127.0.0.1:%[1]d ssl http2;
        server_name ws.example.com;
        ssl_certificate %[3]s/ws.pem;
        ssl_certificate_key %[3]s/ws.key;
        location /slow { proxy_pass http://%[2]s; }
    }
}`

// TestH2RapidResetLogged: a client that opens streams and resets them at
// once while their handlers are still busy (CVE-2023-44487) gets a
// GOAWAY with ENHANCE_YOUR_CALM, and the error log says so.
func TestH2RapidResetLogged(t *testing.T) {
	hold := make(chan struct{})
	be := rawBackend(t, func(c net.Conn) {
		defer c.Close()
		<-hold // never answers: every handler stays busy
	})
	dir := t.TempDir()
	writeCert(t, dir, "ws", "ws.example.com")
	port := freePort(t)
	g := startGate(t, fmt.Sprintf(h2AbuseConf, port, be, dir))
	t.Cleanup(func() { close(hold) }) // runs before the gate stops

	tc, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{InsecureSkipVerify: true, ServerName: "ws.example.com", NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	tc.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := tc.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(tc, tc)
	var wmu sync.Mutex
	write := func(f func() error) error {
		wmu.Lock()
		defer wmu.Unlock()
		return f()
	}
	write(func() error { return fr.WriteSettings() })
	goaway := make(chan http2.ErrCode, 1)
	go func() {
		defer close(goaway)
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					write(func() error { return fr.WriteSettingsAck() })
				}
			case *http2.GoAwayFrame:
				goaway <- f.ErrCode
				return
			}
		}
	}()
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "ws.example.com"}, {":path", "/slow"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	block := hb.Bytes()
	var code http2.ErrCode
	got := false
	for id := uint32(1); id < 20000 && !got; id += 2 {
		err := write(func() error {
			if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: true, EndHeaders: true}); err != nil {
				return err
			}
			return fr.WriteRSTStream(id, http2.ErrCodeCancel)
		})
		select {
		case code, got = <-goaway:
		default:
		}
		if err != nil {
			break
		}
	}
	if !got {
		select {
		case code, got = <-goaway:
		case <-time.After(30 * time.Second):
		}
	}
	if !got || code != http2.ErrCodeEnhanceYourCalm {
		t.Fatalf("GOAWAY %v (received %v), want ENHANCE_YOUR_CALM", code, got)
	}
	waitFor(t, 10*time.Second, "the GOAWAY in the error log", func() bool {
		return strings.Contains(g.errorLog(), "too_many_early_resets") && strings.Contains(g.errorLog(), "closed with GOAWAY, client: 127.0.0.1")
	})
}
