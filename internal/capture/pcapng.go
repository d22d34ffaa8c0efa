package capture

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net/netip"
	"time"

	"github.com/wsgate/wsgate/internal/wsframe"
)

// jsonl writes a JSON object per line: a "session" record as a session is
// tapped, then a record per frame.
type jsonl struct{}

var dirNames = [2]string{"client", "backend"}

func (jsonl) session(w *bufio.Writer, s *Session, at time.Time) {
	b, _ := json.Marshal(map[string]any{
		"time": at.UTC().Format(time.RFC3339Nano), "event": "session", "session": s.ID,
		"client": s.Client.String(), "server": s.Server.String(), "key": s.Key, "location": s.Location,
	})
	w.Write(b)
	w.WriteByte('\n')
}

// Frame is a frame record of a jsonl capture.
type Frame struct {
	Time       time.Time `json:"time"`
	Session    uint64    `json:"session"`
	From       string    `json:"from"` // "client" or "backend"
	Fin        bool      `json:"fin"`
	Rsv        uint8     `json:"rsv"`
	Opcode     uint8     `json:"opcode"`
	Masked     bool      `json:"masked"`
	Length     int64     `json:"length"`
	Payload    string    `json:"payload,omitempty"` // base64 of the recorded bytes, unmasked
	PayloadLen int       `json:"payload_len"`       // bytes recorded
}

func (jsonl) frame(w *bufio.Writer, s *Session, dir int, at time.Time, h wsframe.Header, p []byte) {
	f := Frame{Time: at.UTC(), Session: s.ID, From: dirNames[dir], Fin: h.Fin, Rsv: h.Rsv, Opcode: uint8(h.Opcode),
		Masked: h.Masked, Length: h.Length, PayloadLen: len(p)}
	if len(p) > 0 {
		f.Payload = base64.StdEncoding.EncodeToString(p)
	}
	b, _ := json.Marshal(&f)
	w.Write(b)
	w.WriteByte('\n')
}

// pcapng writes a pcapng file (one section, one Ethernet interface) in
// which each session is a TCP connection between the client's address and
// port and the address and port it connected to: a made-up HTTP upgrade
// opens it, so that Wireshark dissects what follows as WebSocket, then
// each frame is a segment of its own, the client's toward the server and
// the backend's back. A frame's payload beyond what was recorded is left
// out as a snapshot length would: the packet's original length counts it,
// and sequence numbers run on as if it had been there.
type pcapng struct {
	seq map[uint64]*[2]uint32 // per session: next sequence number each way
}

const (
	linkEthernet = 1
	ipMax        = 65535
)

func (p *pcapng) header(w *bufio.Writer) {
	var b []byte
	b = le32(b, 0x0A0D0D0A)
	b = le32(b, 28)
	b = le32(b, 0x1A2B3C4D)
	b = le16(b, 1)
	b = le16(b, 0)
	b = le64(b, ^uint64(0)) // section length unknown
	b = le32(b, 28)
	b = le32(b, 1) // interface description
	b = le32(b, 20)
	b = le16(b, linkEthernet)
	b = le16(b, 0)
	b = le32(b, 0) // no snapshot length
	b = le32(b, 20)
	w.Write(b)
	p.seq = map[uint64]*[2]uint32{}
}

// Upgrade messages that open each session's stream.
const (
	fakeRequest  = "GET / HTTP/1.1\r\nHost: wsgate\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	fakeResponse = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ICX+Yqv66kxgM0FcWaLWlFLwTAI=\r\n\r\n"
)

func (p *pcapng) session(w *bufio.Writer, s *Session, at time.Time) {
	seq := &[2]uint32{1000, 5000}
	p.seq[s.ID] = seq
	p.packet(w, s, 0, at, []byte(fakeRequest), len(fakeRequest))
	p.packet(w, s, 1, at, []byte(fakeResponse), len(fakeResponse))
}

func (p *pcapng) frame(w *bufio.Writer, s *Session, dir int, at time.Time, h wsframe.Header, pl []byte) {
	if p.seq[s.ID] == nil {
		p.session(w, s, at)
	}
	wire := wsframe.AppendHeader(make([]byte, 0, wsframe.MaxHeaderLen+len(pl)), h)
	start := len(wire)
	wire = append(wire, pl...)
	if h.Masked {
		wsframe.MaskBytes(wire[start:], h.Key, 0) // as it was on the wire
	}
	p.packet(w, s, dir, at, wire, start+int(h.Length))
}

// packet writes a TCP segment of session s from dir (0: the client) that
// carried full bytes, of which data is what was recorded.
func (p *pcapng) packet(w *bufio.Writer, s *Session, dir int, at time.Time, data []byte, full int) {
	seq := p.seq[s.ID]
	src, dst := s.Client, s.Server
	if dir == 1 {
		src, dst = dst, src
	}
	v4 := src.Addr().Unmap().Is4() && dst.Addr().Unmap().Is4()
	ipLen := 20
	if !v4 {
		ipLen = 40
	}
	seg := min(full, ipMax-ipLen-20) // what one IP packet can say it carries
	data = data[:min(len(data), seg)]
	pkt := make([]byte, 0, 14+ipLen+20+len(data))
	pkt = append(pkt, 0x02, 0, 0, 0, 0, byte(1-dir), 0x02, 0, 0, 0, 0, byte(dir)) // made-up MACs
	if v4 {
		pkt = append(pkt, 0x08, 0x00)
		pkt = ipv4(pkt, src.Addr().Unmap(), dst.Addr().Unmap(), 20+seg)
	} else {
		pkt = append(pkt, 0x86, 0xDD)
		pkt = ipv6(pkt, src.Addr(), dst.Addr(), 20+seg)
	}
	pkt = binary.BigEndian.AppendUint16(pkt, src.Port())
	pkt = binary.BigEndian.AppendUint16(pkt, dst.Port())
	pkt = binary.BigEndian.AppendUint32(pkt, seq[dir])
	pkt = binary.BigEndian.AppendUint32(pkt, seq[1-dir])
	pkt = append(pkt, 5<<4, 0x18, 0xFF, 0xFF, 0, 0, 0, 0) // PSH|ACK, no checksum
	pkt = append(pkt, data...)
	seq[dir] += uint32(full)
	orig := len(pkt) - len(data) + seg

	us := uint64(at.UnixMicro())
	padded := (len(pkt) + 3) &^ 3
	var b []byte
	b = le32(b, 6) // enhanced packet
	b = le32(b, uint32(32+padded))
	b = le32(b, 0)
	b = le32(b, uint32(us>>32))
	b = le32(b, uint32(us))
	b = le32(b, uint32(len(pkt)))
	b = le32(b, uint32(orig))
	w.Write(b)
	w.Write(pkt)
	w.Write(make([]byte, padded-len(pkt)))
	w.Write(le32(nil, uint32(32+padded)))
}

func ipv4(b []byte, src, dst netip.Addr, payload int) []byte {
	start := len(b)
	b = append(b, 0x45, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(20+payload))
	b = append(b, 0, 0, 0x40, 0, 64, 6, 0, 0)
	s4, d4 := src.As4(), dst.As4()
	b = append(b, s4[:]...)
	b = append(b, d4[:]...)
	var sum uint32
	for i := start; i < start+20; i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	for sum > 0xFFFF {
		sum = sum&0xFFFF + sum>>16
	}
	binary.BigEndian.PutUint16(b[start+10:], ^uint16(sum))
	return b
}

func ipv6(b []byte, src, dst netip.Addr, payload int) []byte {
	b = append(b, 0x60, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(payload))
	b = append(b, 6, 64)
	s16, d16 := src.As16(), dst.As16()
	b = append(b, s16[:]...)
	return append(b, d16[:]...)
}

func le16(b []byte, v uint16) []byte { return binary.LittleEndian.AppendUint16(b, v) }
func le32(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }
func le64(b []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(b, v) }
