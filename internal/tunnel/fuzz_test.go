package tunnel

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/wsframe"
)

// relayModel returns how much of a client stream, followed by the end of
// the client's stream, a backend must receive, and whether wsgate's own
// close 1001 must follow it: only a frame whose boundaries wsgate cannot
// find gets one; an end without a close frame is passed on as it came.
// With pings, a pong that could answer one of wsgate's pings is held whole
// before it is judged.
func relayModel(data []byte, pings bool) (n int, addClose bool) {
	pos, closeSeen := 0, false
	for {
		h, hn, err := wsframe.ParseFraming(data[pos:])
		if err != nil {
			// Not forwarded, so the backend is at a boundary.
			return pos, !closeSeen
		}
		if hn == 0 {
			return pos, false // a partial header, never forwarded
		}
		end := int64(pos+hn) + h.Length
		if pings && h.Opcode == wsframe.OpPong && h.Length == pingLen && hn <= 6 && end > int64(len(data)) {
			return pos, false
		}
		if end > int64(len(data)) {
			return len(data), false // payload is streamed; ends mid-frame
		}
		pos = int(end)
		if h.Opcode == wsframe.OpClose {
			closeSeen = true
		}
		if pos == len(data) {
			return pos, false
		}
	}
}

func FuzzRelay(f *testing.F) {
	key := [4]byte{1, 2, 3, 4}
	valid := wsframe.AppendFrame(nil, wsframe.OpText, []byte("hello"), true, key)
	valid = wsframe.AppendFrame(valid, wsframe.OpPing, nil, true, key)
	f.Add(valid, uint16(3))
	f.Add(append(bytes.Clone(valid), closeFrame(1000, true)...), uint16(1))
	f.Add(append(bytes.Clone(valid), 0x83, 0x80), uint16(100))
	f.Add(append(bytes.Clone(valid), 0x82, 0xFE, 0x10), uint16(7))
	f.Add(append(bytes.Clone(valid), 0x82, 0x90, 1, 2, 3, 4, 'x'), uint16(2))
	f.Add([]byte{}, uint16(0))
	pong := wsframe.AppendFrame(nil, wsframe.OpPong, []byte("wsgc\x00\x00\x00\x01"), true, key)
	f.Add(append(bytes.Clone(valid), pong...), uint16(0x8003))
	f.Add(append(bytes.Clone(valid), pong[:9]...), uint16(0x8005))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint16) {
		if len(data) > 1<<16 {
			return
		}
		step := 1 + int(chunk)%4096
		cfg := Config{Frames: true, CloseGrace: 100 * time.Millisecond}
		pings := chunk&0x8000 != 0
		if pings {
			// Pings that never come due: only their pong handling
			// is exercised.
			cfg.PingInterval = time.Hour
		}
		rg := newRig(t, cfg, nil, nil)
		wrote := make(chan struct{})
		rg.cli.SetWriteDeadline(time.Now().Add(5 * time.Second))
		go func() {
			defer close(wrote)
			for p := data; len(p) > 0; p = p[min(step, len(p)):] {
				if _, err := rg.cli.Write(p[:min(step, len(p))]); err != nil {
					return
				}
			}
			rg.cli.(*net.TCPConn).CloseWrite()
		}()
		rg.be.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(rg.be)
		if err != nil {
			t.Fatalf("backend read: %v", err)
		}
		select {
		case <-wrote:
		case <-time.After(6 * time.Second):
			t.Fatal("client writes stuck")
		}
		n, addClose := relayModel(data, pings)
		if len(got) < n || !bytes.Equal(got[:n], data[:n]) {
			t.Fatalf("backend got %d bytes %x, want prefix %x", len(got), got, data[:n])
		}
		tail := got[n:]
		if !addClose {
			if len(tail) != 0 {
				t.Fatalf("unexpected tail %x", tail)
			}
		} else {
			fr, err := readFrame(bufio.NewReader(bytes.NewReader(tail)))
			if err != nil || fr.h.Opcode != wsframe.OpClose || !fr.h.Masked ||
				len(fr.payload) != 2 || binary.BigEndian.Uint16(fr.payload) != CodeGoingAway ||
				len(tail) != 8 {
				t.Fatalf("tail %x, want a masked close 1001", tail)
			}
		}
		rg.be.Close()
		rg.wait(t)
	})
}

// FuzzStrictRelay: with strict validation, whatever the client sends, the
// backend gets a prefix of it, possibly followed by wsgate's close 1001 and
// nothing else, and the tunnel ends.
func FuzzStrictRelay(f *testing.F) {
	key := [4]byte{1, 2, 3, 4}
	valid := wsframe.AppendFrame(nil, wsframe.OpText, []byte("héllo"), true, key)
	f.Add(valid, uint16(3))
	f.Add(append(bytes.Clone(valid), wsframe.AppendFrame(nil, wsframe.OpText, []byte("a\xffb"), true, key)...), uint16(5))
	f.Add(append(bytes.Clone(valid), 0x83, 0x80, 1, 2, 3, 4), uint16(100))
	f.Add(append(bytes.Clone(valid), closeFrame(1005, true)...), uint16(1))
	f.Add(append(bytes.Clone(valid), 0x01, 0x81, 1, 2, 3, 4, 0xc3^1, 0x80, 0x81, 1, 2, 3, 4, 0xa9^1), uint16(7))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint16) {
		if len(data) > 1<<16 {
			return
		}
		step := 1 + int(chunk)%4096
		rg := newRig(t, Config{Frames: true, Strict: true, CloseGrace: 100 * time.Millisecond}, nil, nil)
		go func() {
			for p := data; len(p) > 0; p = p[min(step, len(p)):] {
				if _, err := rg.cli.Write(p[:min(step, len(p))]); err != nil {
					return
				}
			}
			rg.cli.(*net.TCPConn).CloseWrite()
		}()
		rg.be.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(rg.be)
		if err != nil {
			t.Fatalf("backend read: %v", err)
		}
		if bytes.HasPrefix(data, got) {
			return
		}
		n := len(got) - 8
		if n < 0 || !bytes.HasPrefix(data, got[:n]) {
			t.Fatalf("backend got %x, not a prefix of %x", got, data)
		}
		fr, err := readFrame(bufio.NewReader(bytes.NewReader(got[n:])))
		if err != nil || fr.h.Opcode != wsframe.OpClose || !fr.h.Masked || binary.BigEndian.Uint16(fr.payload) != CodeGoingAway {
			t.Fatalf("tail %x, want a masked close 1001", got[n:])
		}
		rg.be.Close()
		rg.wait(t)
	})
}
