package capture

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/wsframe"
)

func TestSpecCheckAndMatch(t *testing.T) {
	for _, bad := range []Spec{
		{Client: "127.0.0.1", Format: "jsonl"},                                // no bound
		{Duration: time.Second, Format: "jsonl"},                              // no match
		{Client: "nope", Duration: time.Second, Format: "jsonl"},              // bad address
		{Client: "::1", Duration: time.Second, Format: "pcap"},                // bad format
		{Client: "::1", Bytes: 10, Payload: MaxPayload + 1, Format: "pcapng"}, // payload too long
	} {
		if bad.Check() == nil {
			t.Errorf("%+v passed", bad)
		}
	}
	s := Spec{Client: "::ffff:10.0.0.1", Location: "/ws", Duration: time.Second, Format: "jsonl"}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	ses := Session{Client: netip.MustParseAddrPort("10.0.0.1:5000"), Location: "/ws"}
	if !s.Matches(&ses) {
		t.Error("a mapped address does not match its IPv4 form")
	}
	ses.Location = "/other"
	if s.Matches(&ses) {
		t.Error("another location matches")
	}
}

// clientFrame is a masked frame as a client sends it, and its header.
func clientFrame(op wsframe.Opcode, p []byte) (wsframe.Header, []byte) {
	h := wsframe.Header{Fin: true, Opcode: op, Masked: true, Key: [4]byte{0xA1, 0xB2, 0xC3, 0xD4}, Length: int64(len(p))}
	wire := bytes.Clone(p)
	wsframe.MaskBytes(wire, h.Key, 0)
	return h, wire
}

// TestJSONLTruncatesAndUnmasks: payload that reaches the tap in pieces is
// unmasked across them and cut at the set length.
func TestJSONLTruncatesAndUnmasks(t *testing.T) {
	c, err := Start(t.TempDir(), "t1", Spec{Location: "/", Duration: time.Minute, Payload: 10, Format: FormatJSONL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tap := c.Tap(Session{ID: 7, Client: netip.MustParseAddrPort("127.0.0.1:1"), Server: netip.MustParseAddrPort("127.0.0.1:2")})
	msg := []byte("abcdefghijklmnopqrstuvwxyz")
	h, wire := clientFrame(wsframe.OpText, msg)
	tap.Frame(0, h)
	for _, cut := range [][2]int{{0, 3}, {3, 7}, {7, 26}} { // odd pieces: the mask offset moves
		tap.Payload(0, wire[cut[0]:cut[1]])
	}
	tap.Frame(1, wsframe.Header{Fin: true, Opcode: wsframe.OpPing})
	c.Stop("test")
	b, _ := os.ReadFile(c.File)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines:\n%s", len(lines), b)
	}
	var f Frame
	json.Unmarshal([]byte(lines[1]), &f)
	p, _ := base64.StdEncoding.DecodeString(f.Payload)
	if f.From != "client" || f.Length != 26 || !f.Masked || string(p) != "abcdefghij" || f.PayloadLen != 10 {
		t.Fatalf("record %+v, payload %q", f, p)
	}
	json.Unmarshal([]byte(lines[2]), &f)
	if f.From != "backend" || f.Opcode != 9 || f.PayloadLen != 0 {
		t.Fatalf("record %+v", f)
	}
	if c.Info()["frames"] != int64(2) {
		t.Fatalf("info %v", c.Info())
	}
}

// TestPcapngIPv6: over IPv6 each block is well formed, the IPv6 payload
// length counts the whole frame, and the capture holds only the recorded
// part of it.
func TestPcapngIPv6(t *testing.T) {
	c, err := Start(t.TempDir(), "t2", Spec{Client: "::1", Bytes: 1 << 20, Payload: 4, Format: FormatPcapng}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tap := c.Tap(Session{ID: 1, Client: netip.MustParseAddrPort("[::1]:40000"), Server: netip.MustParseAddrPort("[::1]:8080")})
	h, wire := clientFrame(wsframe.OpBinary, make([]byte, 300))
	tap.Frame(0, h)
	tap.Payload(0, wire)
	c.Stop("test")
	data, _ := os.ReadFile(c.File)
	le := binary.LittleEndian
	var epbs [][]byte
	var origs []int
	for off := 0; off < len(data); {
		n := int(le.Uint32(data[off+4:]))
		if n%4 != 0 || le.Uint32(data[off+n-4:]) != uint32(n) {
			t.Fatalf("bad block at %d", off)
		}
		if le.Uint32(data[off:]) == 6 {
			capLen := int(le.Uint32(data[off+20:]))
			epbs = append(epbs, data[off+28:off+28+capLen])
			origs = append(origs, int(le.Uint32(data[off+24:])))
		}
		off += n
	}
	if len(epbs) != 3 {
		t.Fatalf("%d packets, want the upgrade and a frame", len(epbs))
	}
	p := epbs[2]
	if binary.BigEndian.Uint16(p[12:]) != 0x86DD || p[20] != 6 {
		t.Fatal("not IPv6/TCP")
	}
	frameLen := 4 + 4 + 300 // a 16-bit length header, the key, the payload
	if pl := int(binary.BigEndian.Uint16(p[18:])); pl != 20+frameLen || origs[2] != 14+40+20+frameLen {
		t.Fatalf("IPv6 payload length %d, original %d", pl, origs[2])
	}
	if got := len(p) - 14 - 40 - 20; got != 8+4 {
		t.Fatalf("%d frame bytes captured, want the header and 4 payload bytes", got)
	}
	sc := bufio.NewScanner(bytes.NewReader(epbs[0][14+40+20:]))
	if sc.Scan(); !strings.HasPrefix(sc.Text(), "GET / HTTP/1.1") {
		t.Fatalf("first segment %q", sc.Text())
	}
}
