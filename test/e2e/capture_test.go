package e2e

import (
	"bufio"
	"bytes"
	"encoding/base64"
	be "encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// On-demand capture through the api.

const captureConfText = `pid {{DIR}}/logs/wsgate.pid;
error_log {{DIR}}/error.log info;
events { worker_connections 256; }
http {
    access_log off;
    websocket_capture_path {{DIR}}/captures;
    server {
        listen 127.0.0.1:%d;
        location /ws {
            proxy_pass http://%s;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }
        location /api/ {
            allow 127.0.0.1;
            deny all;
            api write=on;
        }
        location /ro/ { api; }
    }
}`

// captureRecord is a line of a jsonl capture.
type captureRecord struct {
	Event      string `json:"event"`
	Session    uint64 `json:"session"`
	From       string `json:"from"`
	Fin        bool   `json:"fin"`
	Opcode     int    `json:"opcode"`
	Masked     bool   `json:"masked"`
	Length     int64  `json:"length"`
	Payload    string `json:"payload"`
	PayloadLen int    `json:"payload_len"`
	Client     string `json:"client"`
}

func startCapture(t *testing.T, api, query string) map[string]any {
	t.Helper()
	code, body := apiCall(t, "127.0.0.1", "POST", api+"/api/9/http/websocket/captures?"+query)
	if code != 201 {
		t.Fatalf("POST: %d %s", code, body)
	}
	var info map[string]any
	json.Unmarshal([]byte(body), &info)
	return info
}

func stopCapture(t *testing.T, api, id string) map[string]any {
	t.Helper()
	code, body := apiCall(t, "127.0.0.1", "DELETE", api+"/api/9/http/websocket/captures/"+id)
	if code != 200 {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	var info map[string]any
	json.Unmarshal([]byte(body), &info)
	if info["running"] != false {
		t.Fatalf("still running after DELETE: %s", body)
	}
	return info
}

// sent is a frame the test sent or expects back: who sent it, its opcode
// and its payload.
type sent struct {
	from string
	op   int
	data []byte
}

// exchangeKnown sends a known sequence through c and returns the frames
// both sides sent, in the order each sent them.
func exchangeKnown(t *testing.T, c *websocket.Conn) []sent {
	t.Helper()
	msgs := []sent{
		{"client", 1, []byte("hello, capture")},
		{"client", 2, bytes.Repeat([]byte{0xAB, 0xCD}, 150)},
		{"client", 1, []byte(strings.Repeat("x", 60_000))}, // one frame: within gorilla's 64 KiB write buffers
	}
	var want []sent
	for _, m := range msgs {
		if err := c.WriteMessage(m.op, m.data); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(slow(10 * time.Second)))
		if _, got, err := c.ReadMessage(); err != nil || !bytes.Equal(got, m.data) {
			t.Fatalf("echo: %v", err)
		}
		want = append(want, m, sent{"backend", m.op, m.data})
	}
	return want
}

// TestCaptureJSONL: a capture started by client address records the
// frames of a tunnel that was open before it started, frame for frame as
// the test sent them and the backend echoed them: direction, opcode,
// masking, length and the payload's first bytes. DELETE stops it.
func TestCaptureJSONL(t *testing.T) {
	b := startBackend(t, "cap")
	port := freePort(t)
	g := startGate(t, fmt.Sprintf(captureConfText, port, b.addr))
	api := fmt.Sprintf("http://127.0.0.1:%d", port)
	c, _ := dial(t, fmt.Sprintf("ws://127.0.0.1:%d/ws", port), nil)
	echo(t, c, "before")
	info := startCapture(t, api, "client=127.0.0.1&duration=60s&payload=16&format=jsonl")
	want := exchangeKnown(t, c)
	id := info["id"].(string)
	stopCapture(t, api, id)
	file := info["file"].(string)
	if !strings.HasPrefix(file, filepath.Join(g.dir, "captures")) {
		t.Fatalf("file %s outside websocket_capture_path", file)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []captureRecord
	sessions := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r captureRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if r.Event == "session" {
			sessions++
			continue
		}
		got = append(got, r)
	}
	if sessions != 1 || len(got) != len(want) {
		t.Fatalf("%d sessions, %d frames recorded, want 1 and %d:\n%+v", sessions, len(got), len(want), got)
	}
	for i, w := range want {
		r := got[i]
		p, _ := base64.StdEncoding.DecodeString(r.Payload)
		prefix := w.data[:min(16, len(w.data))]
		if r.From != w.from || r.Opcode != w.op || !r.Fin || r.Length != int64(len(w.data)) ||
			r.Masked != (w.from == "client") || !bytes.Equal(p, prefix) || r.PayloadLen != len(prefix) {
			t.Errorf("frame %d: recorded %+v, sent %s op %d len %d %q", i, r, w.from, w.op, len(w.data), prefix)
		}
	}
	// Stopped: later frames are not recorded.
	echo(t, c, "after")
	st, _ := os.Stat(file)
	if n := lines(t, file); n != sessions+len(want) {
		t.Fatalf("%d lines after the stop (%d bytes)", n, st.Size())
	}
}

func lines(t *testing.T, file string) int {
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte("\n"))
}

// TestCaptureBoundsAndProtection: a capture stops by itself at its byte
// bound and at its duration; one that matches no session records none;
// writes need the write=on location (405 on a read-only api, 403 from a
// denied address) and bad arguments get 400.
func TestCaptureBoundsAndProtection(t *testing.T) {
	b := startBackend(t, "cap")
	port := freePort(t)
	startGate(t, fmt.Sprintf(captureConfText, port, b.addr))
	api := fmt.Sprintf("http://127.0.0.1:%d", port)

	if code, body := apiCall(t, "127.0.0.1", "POST", api+"/ro/9/http/websocket/captures?client=127.0.0.1&duration=1s"); code != 405 {
		t.Fatalf("read-only api: %d %s", code, body)
	}
	if code, body := apiCall(t, "127.0.0.2", "POST", api+"/api/9/http/websocket/captures?client=127.0.0.1&duration=1s"); code != 403 {
		t.Fatalf("denied address: %d %s", code, body)
	}
	for _, q := range []string{"client=127.0.0.1", "duration=1s", "client=nope&duration=1s", "client=127.0.0.1&duration=1s&format=pcap", "client=127.0.0.1&bytes=1k&payload=-1"} {
		if code, body := apiCall(t, "127.0.0.1", "POST", api+"/api/9/http/websocket/captures?"+q); code != 400 {
			t.Fatalf("%s: %d %s", q, code, body)
		}
	}

	const bound = 4096
	info := startCapture(t, api, fmt.Sprintf("location=/ws&bytes=%d&payload=0", bound))
	other := startCapture(t, api, "client=10.9.9.9&duration=1s")
	c, _ := dial(t, fmt.Sprintf("ws://127.0.0.1:%d/ws", port), nil)
	id := info["id"].(string)
	var state map[string]any
	for i := 0; ; i++ {
		echo(t, c, fmt.Sprintf("message %d", i))
		_, body := apiCall(t, "127.0.0.1", "GET", api+"/api/9/http/websocket/captures/"+id)
		json.Unmarshal([]byte(body), &state)
		if state["running"] == false {
			break
		}
		if i > 1000 {
			t.Fatal("the byte bound never stopped the capture")
		}
	}
	st, err := os.Stat(info["file"].(string))
	if err != nil || state["reason"] != "bytes" || st.Size() < bound || st.Size() > bound+512 {
		t.Fatalf("after the bound: %v, %v, %d bytes", err, state, st.Size())
	}
	waitFor(t, slow(10*time.Second), "the duration bound", func() bool {
		_, body := apiCall(t, "127.0.0.1", "GET", api+"/api/9/http/websocket/captures/"+other["id"].(string))
		return strings.Contains(body, `"reason":"duration"`)
	})
	if n := lines(t, other["file"].(string)); n != 0 {
		t.Fatalf("a capture of another client recorded %d lines", n)
	}
	_, body := apiCall(t, "127.0.0.1", "GET", api+"/api/9/http/websocket/captures")
	var list []map[string]any
	if json.Unmarshal([]byte(body), &list); len(list) != 2 {
		t.Fatalf("list: %s", body)
	}
	if code, _ := apiCall(t, "127.0.0.1", "DELETE", api+"/api/9/http/websocket/captures/nope"); code != 404 {
		t.Fatalf("DELETE of an unknown capture: %d", code)
	}
}

// TestCapturePcapng: a pcapng capture parses back block by block into
// Ethernet, IPv4 and TCP packets whose payloads are the upgrade and then
// the frames as they were on the wire (masked from the client), cut to the
// recorded length with the original length kept, and with TCP sequence
// numbers that count every byte of each stream.
func TestCapturePcapng(t *testing.T) {
	b := startBackend(t, "cap")
	port := freePort(t)
	startGate(t, fmt.Sprintf(captureConfText, port, b.addr))
	api := fmt.Sprintf("http://127.0.0.1:%d", port)
	info := startCapture(t, api, "location=/ws&duration=60s&payload=64&format=pcapng")
	c, _ := dial(t, fmt.Sprintf("ws://127.0.0.1:%d/ws", port), nil)
	want := exchangeKnown(t, c)
	stopCapture(t, api, info["id"].(string))
	data, err := os.ReadFile(info["file"].(string))
	if err != nil {
		t.Fatal(err)
	}
	type pkt struct {
		sport, dport uint16
		seq          uint32
		payload      []byte
		orig         int
	}
	var pkts []pkt
	le := be.LittleEndian
	for off := 0; off < len(data); {
		if len(data)-off < 12 {
			t.Fatalf("truncated block at %d", off)
		}
		typ, n := le.Uint32(data[off:]), int(le.Uint32(data[off+4:]))
		if n%4 != 0 || off+n > len(data) || le.Uint32(data[off+n-4:]) != uint32(n) {
			t.Fatalf("block %#x at %d: bad length %d", typ, off, n)
		}
		blk := data[off : off+n]
		switch {
		case off == 0 && (typ != 0x0A0D0D0A || le.Uint32(blk[8:]) != 0x1A2B3C4D):
			t.Fatal("no section header first")
		case typ == 1 && le.Uint16(blk[8:]) != 1:
			t.Fatal("interface is not Ethernet")
		case typ == 6:
			capLen, orig := int(le.Uint32(blk[20:])), int(le.Uint32(blk[24:]))
			p := blk[28 : 28+capLen]
			if be.BigEndian.Uint16(p[12:]) != 0x0800 || p[14] != 0x45 || p[23] != 6 {
				t.Fatalf("packet %d is not IPv4/TCP", len(pkts))
			}
			if tot := int(be.BigEndian.Uint16(p[16:])); tot != orig-14 {
				t.Fatalf("IP length %d, original length %d", tot, orig)
			}
			tcp := p[34:]
			pkts = append(pkts, pkt{be.BigEndian.Uint16(tcp), be.BigEndian.Uint16(tcp[2:]), be.BigEndian.Uint32(tcp[4:]), tcp[20:], orig - 54})
		}
		off += n
	}
	if len(pkts) != 2+len(want) || !strings.HasPrefix(string(pkts[0].payload), "GET ") || !strings.HasPrefix(string(pkts[1].payload), "HTTP/1.1 101") {
		t.Fatalf("%d packets, want the upgrade and %d frames", len(pkts), len(want))
	}
	server := uint16(port)
	next := map[uint16]uint32{}
	for i, p := range pkts {
		from := p.sport
		if exp, ok := next[from]; ok && p.seq != exp {
			t.Fatalf("packet %d: seq %d, want %d", i, p.seq, exp)
		}
		next[from] = p.seq + uint32(p.orig)
		if i < 2 {
			continue
		}
		w := want[i-2]
		if (w.from == "client") != (p.dport == server) {
			t.Fatalf("packet %d: ports %d>%d for a %s frame", i, p.sport, p.dport, w.from)
		}
		f := p.payload
		op, masked, l7 := int(f[0]&0xF), f[1]&0x80 != 0, int64(f[1]&0x7F)
		h := 2
		switch l7 {
		case 126:
			l7, h = int64(be.BigEndian.Uint16(f[2:])), 4
		case 127:
			l7, h = int64(be.BigEndian.Uint64(f[2:])), 10
		}
		body := bytes.Clone(f[h:])
		if masked {
			key := f[h : h+4]
			body = bytes.Clone(f[h+4:])
			for j := range body {
				body[j] ^= key[j%4]
			}
		}
		prefix := w.data[:min(64, len(w.data))]
		if op != w.op || masked != (w.from == "client") || l7 != int64(len(w.data)) || !bytes.Equal(body, prefix) {
			t.Fatalf("packet %d: op %d masked %v len %d body %q; sent %s op %d len %d", i, op, masked, l7, body, w.from, w.op, len(w.data))
		}
	}
}
